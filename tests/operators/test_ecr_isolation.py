"""copy_images cannot be turned against the platform's own network (issue 14, items 2 and 9).

A run's conf names the source image, so it names a host the worker connects to. These tests drive the
operator against the local AWS (ECR API) and real or hostile registries on loopback, with a platform
that allows those loopback registries explicitly, as a platform team would allow its own registry.
"""

from __future__ import annotations

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
