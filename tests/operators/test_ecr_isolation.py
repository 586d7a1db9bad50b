"""copy_images cannot be turned against the platform's own network (issue 14, items 2 and 9).

A run's conf names the source image, so it names a host the worker connects to. These tests drive the
operator against the local AWS (ECR API) and real or hostile registries on loopback, with a platform
that allows those loopback registries explicitly, as a platform team would allow its own registry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sagelift.domain.params import parse_params
from sagelift.domain.plan import derive_names
from sagelift.operators.ecr import EcrCopyImagesOperator
from sagelift.steps.registry import RegistryError
from tests.support.fake_registry import FakeRegistry, MetadataStandIn
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.oci_images import build_single_platform_image
from tests.support.oci_registry import RegistryPair
from tests.support.scenario import demo_conf
from tests.support.task_context import FakeTaskInstance, step_session, use_scientist_keys

CONN_ID = f"sagelift_aws_{SCIENTIST_ACCOUNT}"
ECR_PASSWORD = f"{SCIENTIST_ACCOUNT}-auth-token"  # what moto's GetAuthorizationToken hands out
RUN_TAGS = [{"Key": "sagelift:model", "Value": "churn"}]
RUN_ID = "manual__2026-12-01T10:00:00+00:00"
# A plan's params as validate writes them; the image is then set as a plan could carry it (copy_images
# checks the source again, whatever the plan says).
VALID_PARAMS = parse_params(demo_conf(model_name="churn")).to_dict()


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryPair]:
    pair = RegistryPair(tmp_path_factory.mktemp("registries"), ECR_PASSWORD)
    yield pair
    pair.stop()


@pytest.fixture(scope="module")
def trainer(registries: RegistryPair, tmp_path_factory: pytest.TempPathFactory) -> str:
    image = build_single_platform_image(tmp_path_factory.mktemp("trainer"), "1.0", [4096, 65_536], seed=41)
    return registries.push(image.reference, "team/trainer", "1.0")


@pytest.fixture
def scientist_conn(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    return use_scientist_keys(local_aws, monkeypatch, CONN_ID)


@pytest.fixture
def metadata() -> Iterator[MetadataStandIn]:
    stand_in = MetadataStandIn()
    yield stand_in
    stand_in.stop()


def copy_images(training: str, ecr: dict[str, Any]) -> dict[str, Any]:
    """Run copy_images with a plan validate could have built (platform ``ecr`` settings as given)."""
    plan = {
        "params": {**VALID_PARAMS, "training_docker_image": training, "model_docker_image": None},
        "names": derive_names("churn", "sagemaker_deploy", RUN_ID).__dict__,
        "platform": {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: {}}, "ecr": ecr},
        "dag_id": "sagemaker_deploy",
        "run_id": RUN_ID,
    }
    session = step_session(CONN_ID)
    operator = EcrCopyImagesOperator(
        task_id="copy_images", plan=plan, session=session, tags=RUN_TAGS, backoff_seconds=0.1
    )
    return operator.execute({"ti": FakeTaskInstance({}, task_id="copy_images", run_id=RUN_ID)})  # type: ignore[arg-type]


def test_a_registry_whose_realm_points_at_a_metadata_service_is_refused(
    registries: RegistryPair, trainer: str, metadata: MetadataStandIn, scientist_conn: str
) -> None:
    hostile = FakeRegistry(registries.ca, realm=metadata.url, upstream=registries.source)
    registries.ecr.mark()
    try:
        with pytest.raises(AirflowFailException, match=rf"registry {hostile.host} sends token requests to "):
            copy_images(
                trainer.replace(registries.source.host, hostile.host), registries.platform_ecr_settings()
            )
        assert metadata.requests == []
        assert hostile.authorizations() == []
        assert registries.ecr.requests() == []
    finally:
        hostile.stop()


@pytest.mark.parametrize(
    "image",
    [
        "169.254.169.254/latest/meta-data:1",
        "localhost:5000/team/trainer:1",
        "metadata.google.internal/computemetadata/v1:1",
        "kubernetes.default.svc/api/v1:1",
        "registry.example.com/team/trainer:1",
    ],
)
def test_a_source_outside_the_platform_allow_list_is_refused_before_any_connection(
    registries: RegistryPair, scientist_conn: str, local_aws: LocalAws, image: str
) -> None:
    with pytest.raises(AirflowFailException, match=r"^training_docker_image: ") as err:
        copy_images(
            image, {"registry_endpoint": registries.ecr.host, "registry_ca_file": str(registries.ca.ca_file)}
        )
    assert len(str(err.value).splitlines()[0]) <= 200
    assert local_aws.client("ecr", SCIENTIST_ACCOUNT).describe_repositories()["repositories"] == []


def test_loopback_registries_are_refused_unless_the_platform_allows_them(
    registries: RegistryPair, trainer: str, scientist_conn: str
) -> None:
    default = {"registry_endpoint": registries.ecr.host, "registry_ca_file": str(registries.ca.ca_file)}
    with pytest.raises(AirflowFailException, match=r"is an IP address"):
        copy_images(trainer, default)
    copied = copy_images(trainer, registries.platform_ecr_settings())
    assert copied["training_docker_image"]["action"] == "copied"


def test_a_hung_source_registry_fails_the_task_within_the_platform_bound(
    registries: RegistryPair, scientist_conn: str
) -> None:
    """Accepts connections and TLS, never answers: the task fails within copy_timeout_base_minutes
    (0.05 min here) naming the registry, instead of waiting for hours."""
    hung = FakeRegistry(registries.ca, hang="all")
    started = time.monotonic()
    try:
        with pytest.raises(RegistryError, match=hung.host):
            copy_images(
                f"{hung.host}/team/trainer:1.0",
                registries.platform_ecr_settings(
                    copy_timeout_base_minutes=0.05, copy_timeout_max_minutes=0.05
                ),
            )
        assert time.monotonic() - started < 3 + 15
        assert hung.hung >= 1
    finally:
        hung.stop()


OCI_INDEX = "application/vnd.oci.image.index.v1+json"
BAD_DOCUMENTS = {
    "a list": (b'[{"schemaVersion": 2}]', None, "served a list where a manifest is a JSON object"),
    "a string": (b'"application/vnd.oci.image.manifest.v1+json"', None, "served a string where a manifest"),
    "10,000 levels deep": (b"[" * 10_000 + b"]" * 10_000, None, "more than 12 levels deep"),
    "10,000 levels deep in an object": (
        b'{"schemaVersion": 2, "annotations": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001,
        None,
        "more than 12 levels deep",
    ),
    "an index of strings": (
        json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": ["sha256:" + "1" * 64]}
        ).encode(),
        OCI_INDEX,
        "the index's manifests[0] is a string, not an object",
    ),
    "an index whose digest is a path": (
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{"digest": "sha256:../../v2/_catalog"}],
            }
        ).encode(),
        OCI_INDEX,
        "the index's manifests[0] has no digest of the form sha256:",
    ),
    "an index whose manifests is an object": (
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {"linux": "x"}}).encode(),
        OCI_INDEX,
        "the index's manifests is an object, not a list",
    ),
}


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
def test_a_registry_serving_a_broken_manifest_fails_the_task_once_naming_the_image(
    registries: RegistryPair, scientist_conn: str, local_aws: LocalAws, case: str
) -> None:
    """Not JSON objects, nested past any real manifest, indexes with bad entries: the task fails for good
    (no retry) with a short message naming the field and the image; nothing is created or pushed."""
    body, media_type, message = BAD_DOCUMENTS[case]
    broken = FakeRegistry(
        registries.ca, manifest=body, manifest_type=media_type or "application/vnd.oci.image.manifest.v1+json"
    )
    registries.ecr.mark()
    image = f"{broken.host}/team/trainer:1.0"
    try:
        with pytest.raises(AirflowFailException) as err:
            copy_images(image, registries.platform_ecr_settings())
        first_line = str(err.value).splitlines()[0]
        assert first_line.startswith(f"training_docker_image: {image}: ")
        assert message in first_line
        assert len(first_line) <= 200
        manifest_reads = [r for r in broken.requests if "/manifests/" in r.path]
        assert 1 <= len(manifest_reads) <= 2, manifest_reads  # skopeo's own GET; no retry of the step
        assert registries.ecr.requests() == []
        ecr = local_aws.client("ecr", SCIENTIST_ACCOUNT)
        assert [
            ecr.describe_images(repositoryName=r["repositoryName"])["imageDetails"]
            for r in ecr.describe_repositories()["repositories"]
        ] in ([], [[]])
    finally:
        broken.stop()
