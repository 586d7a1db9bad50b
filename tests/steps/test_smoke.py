"""The smoke test against the local AWS (issue 16 item 8): a right answer passes; a wrong status or an
error reverts the endpoint to the config recorded before the update and fails naming the status and the
body's first bytes, escaped; a retried step still knows the config to revert to."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config

from sagelift.domain.endpoint_settings import Autoscaling, SmokeTest
from sagelift.steps.autoscaling import apply_scaling
from sagelift.steps.errors import StepFailed
from sagelift.steps.smoke import remember_previous, smoke_test
from tests.steps.test_autoscaling import ENDPOINT, VARIANT, endpoint, scaling_state
from tests.support import sagemaker_runtime
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle

SAMPLE = SmokeTest(body='{"features": [1, 2, 3]}')


def run_smoke(aws: LocalAws, config: str, smoke: SmokeTest = SAMPLE) -> Any:
    return smoke_test(
        aws.client("sagemaker"),
        aws.client("sagemaker-runtime"),
        aws.client("application-autoscaling"),
        ENDPOINT,
        config,
        smoke,
        variant_name=VARIANT,
        interval_seconds=1,
        budget_seconds=10,
    )


def update_to(aws: LocalAws, config: str, instance_type: str = "ml.m5.large") -> Any:
    sm = endpoint(aws, config, instance_type)
    assert remember_previous(sm, ENDPOINT, config) == "cfg-1"
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)
    return sm


def test_a_right_answer_passes_and_the_sample_is_sent(local_aws: LocalAws) -> None:
    endpoint(local_aws)
    update_to(local_aws, "cfg-2")
    answer = run_smoke(local_aws, "cfg-2")
    assert answer.status == 200
    (sent,) = sagemaker_runtime.requests
    assert (sent.endpoint, sent.config, sent.content_type, sent.body) == (
        ENDPOINT,
        "cfg-2",
        "application/json",
        b'{"features": [1, 2, 3]}',
    )


def test_a_wrong_status_reverts_to_the_previous_config_and_names_status_and_body(local_aws: LocalAws) -> None:
    endpoint(local_aws)
    sm = update_to(local_aws, "cfg-2")
    sagemaker_runtime.answer(ENDPOINT, 500, b'{"error": "boom"}\x1b[2J' + b"x" * 400, config="cfg-2")
    with pytest.raises(StepFailed) as failed:
        run_smoke(local_aws, "cfg-2")
    message = str(failed.value)
    assert message.startswith(
        f'Smoke test of endpoint {ENDPOINT} failed: status 500, body \'{{"error": "boom"}}\\x1b[2Jxxx'
    )
    assert (
        "(expected status 200). Reverted the endpoint to its previous config cfg-1: it is InService on cfg-1."
        in message
    )
    assert len(message) < 400 and "x" * 200 not in message
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == "cfg-1"


def test_an_unexpected_200_fails_too_and_a_retried_step_still_knows_the_previous_config(
    local_aws: LocalAws,
) -> None:
    endpoint(local_aws)
    sm = update_to(local_aws, "cfg-2")
    # A retried task finds the endpoint already on its config: the recorded previous config stays.
    assert remember_previous(sm, ENDPOINT, "cfg-2") == "cfg-1"
    with pytest.raises(
        StepFailed, match=r"status 200, body '\{\"predictions\": \[0.5\]\}' \(expected status 204\)"
    ):
        run_smoke(local_aws, "cfg-2", SmokeTest(body="{}", expected_status=204))
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == "cfg-1"


def test_an_invocation_error_reverts(local_aws: LocalAws) -> None:
    endpoint(local_aws)
    sm = update_to(local_aws, "cfg-2")
    key, secret = local_aws.create_access_key(SCIENTIST_ACCOUNT)
    runtime = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION
    ).client("sagemaker-runtime", endpoint_url=local_aws.url, config=Config(retries={"max_attempts": 1}))
    failing = SageMakerLifecycle().fault("*", "internal", count=5)
    refused = pytest.raises(StepFailed, match=r"failed: no answer \('InternalFailure: .*expected status 200")
    with failing.installed(local_aws), refused:
        smoke_test(
            sm,
            runtime,
            local_aws.client("application-autoscaling"),
            ENDPOINT,
            "cfg-2",
            SAMPLE,
            variant_name=VARIANT,
            interval_seconds=1,
            budget_seconds=10,
        )
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == "cfg-1"


def test_a_revert_that_changes_the_scaled_variant_deregisters_it_first(local_aws: LocalAws) -> None:
    endpoint(local_aws)
    sm = update_to(local_aws, "cfg-2", "ml.m5.xlarge")
    apply_scaling(local_aws.client("application-autoscaling"), ENDPOINT, VARIANT, Autoscaling(1, 3, 50))
    sagemaker_runtime.answer(ENDPOINT, 503, "overloaded")
    with pytest.raises(StepFailed, match="status 503, body 'overloaded'"):
        run_smoke(local_aws, "cfg-2")
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == "cfg-1"
    assert scaling_state(local_aws) == ([], [])


def test_an_endpoint_this_run_created_has_nothing_to_revert_to(local_aws: LocalAws) -> None:
    sm = endpoint(local_aws)
    assert remember_previous(sm, ENDPOINT, "cfg-1") is None
    sagemaker_runtime.answer(ENDPOINT, 400, "bad input")
    with pytest.raises(StepFailed, match="no previous config to revert to: it stays on cfg-1"):
        run_smoke(local_aws, "cfg-1")
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == "cfg-1"
