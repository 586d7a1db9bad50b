"""Teardown's image rule against the local AWS (ECR and SageMaker APIs): only this model's recorded copies
that no other model recorded and no remaining SageMaker model uses are deleted (issue 14 item 5)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

import pytest

from sagelift.domain.images import derive_copy_record_tag, manifest_digest
from sagelift.domain.tags import derive_run_tags
from sagelift.steps.images import CopyOutcome, create_repository, record_copy
from sagelift.steps.teardown import delete_copied_images
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws

HOST = f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ROLE = f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-model-execution"
MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


def _manifest(seed: str) -> bytes:
    blob = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob, "size": 2},
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob, "size": 2}
            ],
        },
        separators=(",", ":"),
    ).encode()


class World:
    """The scientist account's ECR and SageMaker, with images pushed and copies recorded as step 4 does."""

    def __init__(self, aws: LocalAws) -> None:
        self.ecr = aws.client("ecr", SCIENTIST_ACCOUNT)
        self.sagemaker = aws.client("sagemaker", SCIENTIST_ACCOUNT)

    def push(self, repository: str, seed: str, tag: str) -> str:
        """An image as skopeo's copy (or the scientist's own push) leaves it: the manifest under a tag."""
        with contextlib.suppress(self.ecr.exceptions.RepositoryAlreadyExistsException):
            self.ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")
        raw = _manifest(seed)
        digest = manifest_digest(raw)
        self.ecr.put_image(
            repositoryName=repository, imageManifest=raw.decode(), imageTag=tag, imageDigest=digest
        )
        return digest

    def copy_for(self, model: str, repository: str, seed: str, tag: str = "1.0") -> str:
        """Step 4 for ``model``: the copy (already there when another model copied it), then its record."""
        raw = _manifest(seed)
        digest = manifest_digest(raw)
        if self.tags(repository, digest) is None:
            self.push(repository, seed, tag)
        record_copy(self.ecr, repository, CopyOutcome(digest, "copied", raw, MEDIA_TYPE), model)
        return digest

    def model_using(self, name: str, image: str) -> None:
        self.sagemaker.create_model(ModelName=name, PrimaryContainer={"Image": image}, ExecutionRoleArn=ROLE)

    def tags(self, repository: str, digest: str) -> list[str] | None:
        """The image's tags, or None when the image (or its repository) is gone."""
        try:
            details = self.ecr.describe_images(repositoryName=repository)["imageDetails"]
        except self.ecr.exceptions.RepositoryNotFoundException:
            return None
        for detail in details:
            if detail["imageDigest"] == digest:
                return sorted(detail.get("imageTags", []))
        return None

    def teardown(self, model: str, ecr: Any = None) -> Any:
        return delete_copied_images(
            ecr or self.ecr, self.sagemaker, model, SCIENTIST_ACCOUNT, REGION, "sagelift/"
        )


@pytest.fixture
def world(local_aws: LocalAws) -> World:
    return World(local_aws)


def test_only_copies_recorded_for_the_model_alone_and_unused_are_deleted(world: World) -> None:
    trainer = world.copy_for("churn", "sagelift/team/trainer", "trainer")
    shared = world.copy_for("churn", "sagelift/team/server", "server", tag="2.0")
    world.copy_for("fraud", "sagelift/team/server", "server", tag="2.0")
    pushed = world.push("sagelift/team/server", "pushed-by-the-scientist", "mine")
    by_digest = world.copy_for("churn", "sagelift/team/tool", "tool")
    by_tag = world.copy_for("churn", "sagelift/team/tool2", "tool2", tag="3.1")
    world.model_using("hand-made", f"{HOST}/sagelift/team/tool@{by_digest}")
    world.model_using("other-team", f"{HOST}/sagelift/team/tool2:3.1")
    outside = world.push("churn-serving", "outside-the-prefix", "1.4")

    result = world.teardown("churn")

    assert result.deleted == [f"{HOST}/sagelift/team/trainer@{trainer}"]
    assert world.tags("sagelift/team/trainer", trainer) is None
    # fraud recorded the same digest: only churn's record went
    assert result.released == [f"{HOST}/sagelift/team/server@{shared}"]
    assert world.tags("sagelift/team/server", shared) == sorted(
        ["2.0", derive_copy_record_tag("fraud", shared)]
    )
    assert world.tags("sagelift/team/server", pushed) == ["mine"]
    # models left in the account use these, by digest and by tag: image and record stay
    assert result.kept == [
        f"{HOST}/sagelift/team/tool@{by_digest} (used by SageMaker model hand-made)",
        f"{HOST}/sagelift/team/tool2@{by_tag} (used by SageMaker model other-team)",
    ]
    assert world.tags("sagelift/team/tool", by_digest) == sorted(
        ["1.0", derive_copy_record_tag("churn", by_digest)]
    )
    assert world.tags("churn-serving", outside) == ["1.4"]

    again = world.teardown("churn")
    assert (again.deleted, again.released) == ([], [])
    assert len(again.kept) == 2

    world.sagemaker.delete_model(ModelName="hand-made")
    world.sagemaker.delete_model(ModelName="other-team")
    finished = world.teardown("churn")
    assert sorted(finished.deleted) == sorted(
        [f"{HOST}/sagelift/team/tool@{by_digest}", f"{HOST}/sagelift/team/tool2@{by_tag}"]
    )
    assert world.tags("sagelift/team/tool", by_digest) is None

    fraud = world.teardown("fraud")
    assert fraud.deleted == [f"{HOST}/sagelift/team/server@{shared}"]
    assert world.tags("sagelift/team/server", shared) is None
    assert world.tags("sagelift/team/server", pushed) == ["mine"]


def test_a_model_without_records_deletes_nothing_and_asks_sagemaker_nothing(world: World) -> None:
    digest = world.push("sagelift/team/trainer", "legacy-copy", "1.0")  # copied before records existed
    calls: list[str] = []
    world.sagemaker.meta.events.register("before-call.sagemaker", lambda model, **_: calls.append(model.name))

    result = world.teardown("churn")

    assert (result.deleted, result.released, result.kept) == ([], [], [])
    assert world.tags("sagelift/team/trainer", digest) == ["1.0"]
    assert calls == []


class _RecordsMeanwhile:
    """The ECR client, with another model's copy recording the image between teardown's listing and its
    delete (a concurrent deploy of that model copying the same image)."""

    def __init__(self, world: World, repository: str, seed: str) -> None:
        self._world, self._repository, self._seed = world, repository, seed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world.ecr, name)

    def batch_delete_image(self, **kwargs: Any) -> Any:
        self._world.copy_for("fraud", self._repository, self._seed)
        return self._world.ecr.batch_delete_image(**kwargs)


def test_a_record_added_while_teardown_runs_keeps_the_image(world: World) -> None:
    digest = world.copy_for("churn", "sagelift/team/trainer", "trainer")

    result = world.teardown("churn", _RecordsMeanwhile(world, "sagelift/team/trainer", "trainer"))

    # teardown removed the tags it had listed; fraud's new record keeps the image alive
    assert result.deleted == [f"{HOST}/sagelift/team/trainer@{digest}"]
    assert world.tags("sagelift/team/trainer", digest) == [derive_copy_record_tag("fraud", digest)]


def test_records_are_idempotent_and_one_per_model_in_an_immutable_repository(world: World) -> None:
    digest = world.copy_for("churn", "sagelift/team/trainer", "trainer")
    world.copy_for("churn", "sagelift/team/trainer", "trainer")  # a re-run
    world.copy_for("fraud", "sagelift/team/trainer", "trainer")
    newer = world.copy_for("churn", "sagelift/team/trainer", "trainer-v2", tag="2.0")

    repository = world.ecr.describe_repositories(repositoryNames=["sagelift/team/trainer"])["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert world.tags("sagelift/team/trainer", digest) == sorted(
        ["1.0", derive_copy_record_tag("churn", digest), derive_copy_record_tag("fraud", digest)]
    )
    assert world.tags("sagelift/team/trainer", newer) == sorted(
        ["2.0", derive_copy_record_tag("churn", newer)]
    )


# --- repositories ----------------------------------------------------------------------------------------
def _create_for(world: World, model: str, repository: str) -> None:
    """Step 4's CreateRepository for ``model``: the run's tags, whose owner tag names the model."""
    tags = derive_run_tags(
        model_name=model, dag_id="sagemaker_deploy", run_id="manual__1", account_id=SCIENTIST_ACCOUNT
    )
    assert create_repository(world.ecr, repository, tags=tags, scan_on_push=False, tag_mutability="IMMUTABLE")


def _repositories(world: World) -> set[str]:
    return {r["repositoryName"] for r in world.ecr.describe_repositories()["repositories"]}


def test_a_repository_sagelift_created_for_the_model_is_deleted_once_left_empty(world: World) -> None:
    _create_for(world, "churn", "sagelift/team/trainer")
    world.copy_for("churn", "sagelift/team/trainer", "trainer")  # churn's copy alone: emptied below
    _create_for(world, "churn", "sagelift/team/failed")  # created, then the copy failed: empty
    _create_for(world, "churn", "sagelift/team/server")
    world.copy_for("churn", "sagelift/team/server", "server")
    world.push("sagelift/team/server", "pushed-by-the-scientist", "mine")  # holds another image
    _create_for(world, "fraud", "sagelift/team/fraud")  # empty, but another model's
    world.copy_for("churn", "sagelift/team/own", "own")  # the scientist's repository: no owner tag
    _create_for(world, "churn", "sagelift/team/shared")
    world.copy_for("churn", "sagelift/team/shared", "shared")
    world.copy_for("fraud", "sagelift/team/shared", "shared")

    result = world.teardown("churn")

    assert sorted(result.repositories) == ["sagelift/team/failed", "sagelift/team/trainer"]
    assert _repositories(world) == {
        "sagelift/team/server",
        "sagelift/team/fraud",
        "sagelift/team/own",  # empty now, but sagelift did not create it
        "sagelift/team/shared",
    }
    assert world.teardown("churn").repositories == []
    # fraud empties the shared repository, which churn's run created: fraud's teardown leaves it ...
    fraud = world.teardown("fraud")
    assert fraud.repositories == ["sagelift/team/fraud"]
    assert "sagelift/team/shared" in _repositories(world)
    # ... and churn's next teardown finds it empty and deletes it
    assert world.teardown("churn").repositories == ["sagelift/team/shared"]
    assert _repositories(world) == {"sagelift/team/server", "sagelift/team/own"}


class _PushedMeanwhile:
    """The ECR client, with an image pushed into the repository just before teardown deletes it."""

    def __init__(self, world: World) -> None:
        self._world = world

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world.ecr, name)

    def delete_repository(self, **kwargs: Any) -> Any:
        self._world.push(kwargs["repositoryName"], "arrived-meanwhile", "late")
        return self._world.ecr.delete_repository(**kwargs)


def test_a_repository_an_image_reaches_meanwhile_is_kept_with_the_image(world: World) -> None:
    _create_for(world, "churn", "sagelift/team/trainer")
    world.copy_for("churn", "sagelift/team/trainer", "trainer")

    result = world.teardown("churn", _PushedMeanwhile(world))

    assert result.repositories == []
    late = manifest_digest(_manifest("arrived-meanwhile"))
    assert world.tags("sagelift/team/trainer", late) == ["late"]
