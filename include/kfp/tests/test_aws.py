"""The role chain as the KFP components build it (the core's chained_session) against the local AWS's three
accounts: from the pod's own identity, through the platform's master role, to the execution role."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from sagelift.domain.platform import PlatformConfig
from sagelift.steps.role_chain import RoleChainError, chained_session, derive_session_name
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.scenario import Scenario


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    with LocalAws() as aws:
        yield Scenario(aws).build()


def _runner(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> boto3.session.Session:
    monkeypatch.setenv("AWS_ENDPOINT_URL", scenario.aws.url)
    key, secret = scenario.runner_key
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)


def test_chain_reaches_the_execution_role_under_the_run_session_name(scenario, monkeypatch) -> None:
    platform = PlatformConfig.from_dict(scenario.platform())
    name = derive_session_name("sagemaker-deploy", "run-1", fallback="kfp")
    session = chained_session(
        platform, SCIENTIST_ACCOUNT, name, runner=lambda: _runner(scenario, monkeypatch)
    )
    identity = session.client("sts").get_caller_identity()
    assert identity["Account"] == SCIENTIST_ACCOUNT
    assert identity["Arn"].endswith(f":assumed-role/sagelift-pipeline-execution/{name}")
    assert name.startswith("sagelift-") and name.endswith("-sagemaker-deploy") and len(name) <= 64


def test_a_refused_hop_names_the_hop_and_the_role(scenario, monkeypatch) -> None:
    raw = scenario.platform() | {"master_role_arn": "arn:aws:iam::222222222222:role/missing"}
    platform = PlatformConfig.from_dict(raw)
    # moto does not evaluate trust policies; a role that does not exist is refused, as AWS refuses one
    with pytest.raises(
        RoleChainError, match=r"hop 1 of 2 \(runner identity -> arn:aws:iam::222222222222:role/missing\)"
    ):
        chained_session(
            platform, SCIENTIST_ACCOUNT, "sagelift-test", runner=lambda: _runner(scenario, monkeypatch)
        )
