"""copy_images against the local AWS (ECR API) and two real registries on loopback."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from sagelift.domain.images import pinned_image
from sagelift.operators.ecr import EcrCopyImagesOperator
from sagelift.steps.registry import RegistryAccess, RegistryCredentials, RegistryHook
from tests.support.botocore_validation import recording_aws_calls
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.oci_images import BuiltImage, build_multi_platform_image, build_single_platform_image
from tests.support.oci_registry import OciRegistry, RegistryPair
from tests.support.task_context import FakeTaskInstance, step_plan, step_session, use_scientist_keys

CONN_ID = f"sagelift_aws_{SCIENTIST_ACCOUNT}"
ECR_HOST = f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ECR_PASSWORD = f"{SCIENTIST_ACCOUNT}-auth-token"  # what moto's GetAuthorizationToken hands out
RUN_TAGS = [{"Key": "team", "Value": "risk"}, {"Key": "sagelift:model", "Value": "churn"}]


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryPair]:
    pair = RegistryPair(tmp_path_factory.mktemp("registries"), ECR_PASSWORD)
    yield pair
    pair.stop()


@pytest.fixture(scope="module")
def images(
    registries: RegistryPair, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[BuiltImage, str]]:
    trainer = build_single_platform_image(
        tmp_path_factory.mktemp("trainer"), "1.0", [4096, 2 * 1024 * 1024, 512, 65_536], seed=11
    )
    server = build_multi_platform_image(tmp_path_factory.mktemp("server"), "2.0", [2048, 300_000], seed=12)
    other = build_single_platform_image(tmp_path_factory.mktemp("other"), "1.0", [1024], seed=13)
    return {
        "trainer": (trainer, registries.push(trainer.reference, "team/trainer", "1.0")),
        "server": (server, registries.push(server.reference, "team/server", "2.0")),
        "other": (other, other.reference),
    }


@pytest.fixture
def scientist_conn(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_scientist_keys(local_aws, monkeypatch, CONN_ID)


def make_context(
    registries: RegistryPair, *, training: str | None, model: str | None, **ecr: Any
) -> dict[str, Any]:
    """copy_images' inputs: a plan naming these images, the scientist session, the run's tags."""
    platform = {
        "region": REGION,
        "accounts": {SCIENTIST_ACCOUNT: {}},
        "ecr": registries.platform_ecr_settings(**ecr),
    }
    plan = step_plan(
        {"model_name": "churn"},
        platform,
        params={"training_docker_image": training, "model_docker_image": model},
    )
    return {"plan": plan, "session": step_session(CONN_ID), "tags": RUN_TAGS, "ti": FakeTaskInstance({})}


def run(inputs: dict[str, Any]) -> dict[str, Any]:
    operator = EcrCopyImagesOperator(
        task_id="copy_images",
        backoff_seconds=0.1,
        plan=inputs["plan"],
        session=inputs["session"],
        tags=inputs["tags"],
    )
    return operator.execute({"ti": inputs["ti"]})


def ecr_side(registries: RegistryPair) -> tuple[RegistryHook, RegistryAccess]:
    return RegistryHook(retry_times=0, attempts=1), RegistryAccess(
        registries.ecr.host, RegistryCredentials("AWS", ECR_PASSWORD), str(registries.ca.ca_file)
    )


def test_copies_both_images_and_publishes_them_pinned_by_digest(
    registries: RegistryPair, images, scientist_conn: str, local_aws: LocalAws
) -> None:
    trainer, trainer_ref = images["trainer"]
    server, server_ref = images["server"]
    with recording_aws_calls() as calls:
        result = run(make_context(registries, training=trainer_ref, model=server_ref))

    assert (
        pinned_image(result, "training_docker_image") == f"{ECR_HOST}/sagelift/team/trainer@{trainer.digest}"
    )
    assert pinned_image(result, "model_docker_image") == f"{ECR_HOST}/sagelift/team/server@{server.digest}"
    assert result["training_docker_image"]["action"] == result["model_docker_image"]["action"] == "copied"
    hook, access = ecr_side(registries)
    assert hook.inspect(f"{registries.ecr.host}/sagelift/team/trainer:1.0", access).digest == trainer.digest
    assert hook.inspect(f"{registries.ecr.host}/sagelift/team/server:2.0", access).digest == server.digest
    for digest in server.platform_digests.values():
        assert (
            hook.digest_if_present(f"{registries.ecr.host}/sagelift/team/server@{digest}", access) == digest
        )

    ecr = local_aws.client("ecr")
    repos = {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}
    assert set(repos) == {"sagelift/team/trainer", "sagelift/team/server"}
    for repo in repos.values():
        assert repo["imageTagMutability"] == "IMMUTABLE"
        assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
        assert ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == RUN_TAGS
    assert [c.errors for c in calls if c.errors] == []
    assert "get_authorization_token" not in json.dumps(result)
    assert ECR_PASSWORD not in json.dumps(result)


def test_a_second_run_is_skipped_and_moves_no_layer(
    registries: RegistryPair, images, scientist_conn: str
) -> None:
    _, trainer_ref = images["trainer"]
    _, server_ref = images["server"]
    first = run(make_context(registries, training=trainer_ref, model=server_ref, repository_prefix="rerun/"))
    registries.source.mark()
    registries.ecr.mark()
    context = make_context(registries, training=trainer_ref, model=server_ref, repository_prefix="rerun/")

    with pytest.raises(AirflowSkipException, match="already copied"):
        run(context)

    assert registries.ecr.uploaded_blob_bytes() == 0
    assert registries.ecr.blob_uploads() == []
    assert registries.source.downloaded_blob_bytes() == 0
    again = context["ti"].pushed["return_value"]
    assert {k: v["image"] for k, v in again.items()} == {k: v["image"] for k, v in first.items()}
    assert again["training_docker_image"]["action"] == "already_copied"


def test_a_missing_tag_fails_naming_the_image(registries: RegistryPair, images, scientist_conn: str) -> None:
    _, trainer_ref = images["trainer"]
    missing = trainer_ref.replace(":1.0", ":9.9-missing")
    with pytest.raises(AirflowFailException, match=r"team/trainer:9\.9-missing"):
        run(make_context(registries, training=missing, model=None))


def test_an_image_already_in_the_account_ecr_is_used_by_digest(
    registries: RegistryPair, scientist_conn: str, local_aws: LocalAws
) -> None:
    ecr = local_aws.client("ecr")
    ecr.create_repository(repositoryName="models/xgb")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "a" * 64,
                "size": 2,
            },
            "layers": [],
        }
    )
    digest = ecr.put_image(repositoryName="models/xgb", imageManifest=manifest, imageTag="3")["image"][
        "imageId"
    ]["imageDigest"]
    context = make_context(registries, training=f"{ECR_HOST}/models/xgb:3", model=None)
    registries.ecr.mark()

    with pytest.raises(AirflowSkipException, match="already in the account ECR"):
        run(context)

    published = context["ti"].pushed["return_value"]
    assert pinned_image(published, "training_docker_image") == f"{ECR_HOST}/models/xgb@{digest}"
    assert published["model_docker_image"] is None
    assert registries.ecr.requests() == []
    with pytest.raises(AirflowFailException, match=r"models/xgb:4"):
        run(make_context(registries, training=f"{ECR_HOST}/models/xgb:4", model=None))


def test_a_platform_filter_pins_the_chosen_platform(
    registries: RegistryPair, images, scientist_conn: str
) -> None:
    server, server_ref = images["server"]
    result = run(
        make_context(
            registries, training=None, model=server_ref, platforms=["linux/arm64"], repository_prefix="arm/"
        )
    )
    arm = server.platform_digests["linux/arm64"]
    assert pinned_image(result, "model_docker_image") == f"{ECR_HOST}/arm/team/server@{arm}"
    hook, access = ecr_side(registries)
    assert hook.inspect(f"{registries.ecr.host}/arm/team/server:2.0", access).digest == arm


def test_a_moved_tag_is_not_overwritten_in_an_immutable_repository(
    registries: RegistryPair, images, scientist_conn: str, tmp_path: Path
) -> None:
    moved = build_single_platform_image(tmp_path / "moved", "1.0", [777], seed=21)
    ref = registries.push(moved.reference, "team/moving", "1.0")
    run(make_context(registries, training=ref, model=None))
    replacement = build_single_platform_image(tmp_path / "replacement", "1.0", [778], seed=22)
    registries.push(replacement.reference, "team/moving", "1.0")

    with pytest.raises(AirflowFailException, match=r"moving:1\.0 in ECR holds another image .* immutable"):
        run(make_context(registries, training=ref, model=None))
    mutable = run(
        make_context(
            registries, training=ref, model=None, tag_mutability="MUTABLE", repository_prefix="mutable/"
        )
    )
    assert mutable["training_docker_image"]["digest"] == replacement.digest


@pytest.fixture(scope="module")
def private_source(
    registries: RegistryPair, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """A third registry that wants a password for pulls, holding one image."""
    root = tmp_path_factory.mktemp("private")
    registry = OciRegistry(root / "registry", registries.ca, "puller", "s3cret-pull").start()
    try:
        image = build_single_platform_image(root / "image", "0.1", [1500, 3000], seed=31)
        authfile = root / "auth.json"
        authfile.write_text(json.dumps({"auths": {registry.host: {"auth": "cHVsbGVyOnMzY3JldC1wdWxs"}}}))
        ref = f"{registry.host}/secret/trainer:0.1"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--preserve-digests",
                "--authfile",
                str(authfile),
                "--dest-cert-dir",
                str(registries.ca.cert_dir),
                image.reference,
                f"docker://{ref}",
            ],
            check=True,
            capture_output=True,
        )
        yield {"registry": registry, "image": image, "ref": ref}
    finally:
        registry.stop()


def source_conn(monkeypatch: pytest.MonkeyPatch, registry: OciRegistry, password: str) -> str:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SAGELIFT_SOURCE_REGISTRY",
        json.dumps(
            {
                "conn_type": "generic",
                "host": "127.0.0.1",
                "port": registry.port,
                "login": "puller",
                "password": password,
            }
        ),
    )
    return "sagelift_source_registry"


def test_source_credentials_come_from_the_platform_connection(
    registries: RegistryPair, private_source, scientist_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = source_conn(monkeypatch, private_source["registry"], "s3cret-pull")
    result = run(
        make_context(
            registries,
            training=private_source["ref"],
            model=None,
            source_registry_conn_id=conn_id,
            repository_prefix="private/",
        )
    )
    assert result["training_docker_image"]["digest"] == private_source["image"].digest


def test_a_refused_source_password_names_the_registry(
    registries: RegistryPair, private_source, scientist_conn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = source_conn(monkeypatch, private_source["registry"], "wrong")
    with pytest.raises(AirflowFailException, match=private_source["registry"].host):
        run(
            make_context(
                registries,
                training=private_source["ref"],
                model=None,
                source_registry_conn_id=conn_id,
                repository_prefix="refused/",
            )
        )


DLC = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference"
DLC_DIGEST = "sha256:" + "5d" * 32


def test_aws_owned_images_are_used_in_place_without_a_registry_or_ecr_call(
    registries: RegistryPair, scientist_conn: str, local_aws: LocalAws
) -> None:
    """A built-in algorithm's image named as the training image and a Deep Learning Container pinned by
    digest: SageMaker pulls both from AWS's registries, so nothing is copied, resolved or created."""
    from sagelift.domain.params import RunParams, builtin_algorithm_image
    from sagelift.domain.sagemaker import resolve_model_image, resolve_training_image

    xgboost = builtin_algorithm_image("xgboost", REGION)
    assert xgboost is not None and xgboost.startswith("683313688378.dkr.ecr.us-east-1.amazonaws.com/")
    platform = {
        "region": REGION,
        "accounts": {SCIENTIST_ACCOUNT: {}},
        "ecr": registries.platform_ecr_settings(),
    }
    plan = step_plan(
        {
            "model_name": "churn",
            "training_docker_image": xgboost,
            "model_docker_image": f"{DLC}@{DLC_DIGEST}",
        },
        platform,
    )
    context = {"plan": plan, "session": step_session(CONN_ID), "tags": RUN_TAGS, "ti": FakeTaskInstance({})}
    registries.ecr.mark()
    requests_before = local_aws.request_count()

    with recording_aws_calls() as calls, pytest.raises(AirflowSkipException, match="AWS-owned"):
        run(context)

    published = context["ti"].pushed["return_value"]
    assert published["training_docker_image"]["action"] == "aws_owned"
    assert published["training_docker_image"]["digest"] is None
    assert pinned_image(published, "training_docker_image") == xgboost  # the tag as given
    assert pinned_image(published, "model_docker_image") == f"{DLC}@{DLC_DIGEST}"
    assert list(calls) == [] and local_aws.request_count() == requests_before
    assert registries.ecr.requests() == []
    params = RunParams.from_dict(plan["params"])
    assert resolve_training_image(params, REGION, published) == xgboost
    assert resolve_model_image(params, REGION, published) == f"{DLC}@{DLC_DIGEST}"


def test_a_built_in_algorithm_conf_has_nothing_to_copy(registries: RegistryPair, scientist_conn: str) -> None:
    from sagelift.domain.params import RunParams, builtin_algorithm_image
    from sagelift.domain.sagemaker import resolve_model_image, resolve_training_image

    platform = {
        "region": REGION,
        "accounts": {SCIENTIST_ACCOUNT: {}},
        "ecr": registries.platform_ecr_settings(),
    }
    plan = step_plan(
        {"training_docker_image": "", "training_algorithm_name": "xgboost", "model_docker_image": ""},
        platform,
    )
    context = {"plan": plan, "session": step_session(CONN_ID), "tags": RUN_TAGS, "ti": FakeTaskInstance({})}

    with pytest.raises(
        AirflowSkipException, match=r"training_docker_image: not set; model_docker_image: not set"
    ):
        run(context)

    published = context["ti"].pushed["return_value"]
    params = RunParams.from_dict(plan["params"])
    assert resolve_training_image(params, REGION, published) == builtin_algorithm_image("xgboost", REGION)
    assert resolve_model_image(params, REGION, published) == builtin_algorithm_image("xgboost", REGION)


def test_each_copy_is_recorded_for_its_model_on_the_copied_digest(
    registries: RegistryPair, images, scientist_conn: str, local_aws: LocalAws
) -> None:
    """The record teardown reads: an extra tag on the digest in the account's ECR API, one per model."""
    from sagelift.domain.images import derive_copy_record_tag

    trainer, trainer_ref = images["trainer"]
    server, server_ref = images["server"]
    for model in ("churn", "churn", "fraud"):  # a re-run, then another model copying the same images
        context = make_context(registries, training=trainer_ref, model=server_ref, repository_prefix="rec/")
        context["plan"]["params"]["model_name"] = model
        with contextlib.suppress(AirflowSkipException):  # skipped when already copied
            run(context)
    ecr = local_aws.client("ecr")
    for repository, digest in (("rec/team/trainer", trainer.digest), ("rec/team/server", server.digest)):
        (detail,) = ecr.describe_images(repositoryName=repository)["imageDetails"]
        assert detail["imageDigest"] == digest
        assert sorted(detail["imageTags"]) == sorted(
            [derive_copy_record_tag("churn", digest), derive_copy_record_tag("fraud", digest)]
        )
