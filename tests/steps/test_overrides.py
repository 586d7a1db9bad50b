"""Safe request overrides (issue 17 item 5), validate's botocore half: an allowed field SageMaker's model
refuses is refused before anything runs, naming its path under request_overrides."""

from __future__ import annotations

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.plan import build_plan
from sagelift.steps.overrides import checked_plan
from tests.support.scenario import DAG_TEST_USER, demo_conf

ACCOUNT = "333333333333"
PLATFORM = {
    "region": "us-east-1",
    "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline",
    "accounts": {ACCOUNT: {"deployers": {"users": [DAG_TEST_USER]}}},
    "sagemaker": {
        "allowed_overrides": {
            "CreateTrainingJob": ["StoppingCondition", "Environment"],
            "CreateEndpointConfig": ["DataCaptureConfig.InitialSamplingPercentage"],
        }
    },
}


def _checked(overrides: dict) -> dict:
    plan = build_plan(
        demo_conf(request_overrides=overrides),
        PLATFORM,
        "sagemaker_deploy",
        "manual__2026-12-02T10:00:00+00:00",
        triggered_by=DAG_TEST_USER,
    )
    return checked_plan(plan)


def _refusals(overrides: dict) -> list[tuple[str, str]]:
    with pytest.raises(SageliftValidationError) as err:
        _checked(overrides)
    return err.value.problems


def test_valid_overrides_pass_and_the_plan_is_returned_unchanged():
    plan = _checked({"CreateTrainingJob": {"StoppingCondition": {"MaxRuntimeInSeconds": 3600}}})
    assert plan["params"]["request_overrides"] == {
        "CreateTrainingJob": {"StoppingCondition": {"MaxRuntimeInSeconds": 3600}}
    }


def test_botocore_refusals_name_the_field_path():
    problems = _refusals(
        {
            "CreateTrainingJob": {
                "StoppingCondition": {"MaxRuntimeInSeconds": "an hour", "MaxPendingSeconds": 5},
                "Environment": {"LOG_LEVEL": 3},
            }
        }
    )
    fields = [f for f, _ in problems]
    assert fields == [
        "request_overrides.CreateTrainingJob.StoppingCondition.MaxPendingSeconds",
        "request_overrides.CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds",
        "request_overrides.CreateTrainingJob.Environment.LOG_LEVEL",
    ]
    rules = dict(problems)
    assert "valid types: <class 'int'>" in rules[fields[1]]
    assert "must be one of: MaxRuntimeInSeconds, MaxWaitTimeInSeconds" in rules[fields[0]]
    assert all(len(rule) <= 160 for rule in rules.values())


def test_a_required_member_the_merge_leaves_out_is_named():
    # the demo run captures nothing, so a sampling rate alone makes a DataCaptureConfig without its
    # required members
    problems = _refusals({"CreateEndpointConfig": {"DataCaptureConfig": {"InitialSamplingPercentage": 50}}})
    assert [f for f, _ in problems] == [
        "request_overrides.CreateEndpointConfig.DataCaptureConfig.DestinationS3Uri",
        "request_overrides.CreateEndpointConfig.DataCaptureConfig.CaptureOptions",
    ]
