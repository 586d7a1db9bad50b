"""Safe request overrides (issue 17 item 5), validate's botocore half: an allowed field SageMaker's model
refuses is refused before anything runs, naming its path under request_overrides."""

from __future__ import annotations

import pytest

from sagelift.domain.errors import RUN_HEADING, SageliftValidationError
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


def _checked(overrides: dict, **conf: object) -> dict:
    plan = build_plan(
        demo_conf(request_overrides=overrides, **conf),
        PLATFORM,
        "sagemaker_deploy",
        "manual__2026-12-02T10:00:00+00:00",
        triggered_by=DAG_TEST_USER,
    )
    return checked_plan(plan)


def _refusals(overrides: dict, **conf: object) -> list[tuple[str, str]]:
    with pytest.raises(SageliftValidationError) as err:
        _checked(overrides, **conf)
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


SPOT = {"training": {"use_spot": True}}  # max wait: twice the platform's max runtime (86400 s)


def test_a_spot_runtime_raised_above_the_max_wait_is_refused_naming_both_fields():
    with pytest.raises(SageliftValidationError) as err:
        _checked({"CreateTrainingJob": {"StoppingCondition": {"MaxRuntimeInSeconds": 200000}}}, **SPOT)
    first_line = f"{RUN_HEADING} {err.value}".splitlines()[0]  # as validate shows it
    assert first_line == (
        f"{RUN_HEADING} request_overrides.CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds: 200000 "
        "exceeds spot MaxWaitTimeInSeconds 172800 (training.max_wait_seconds)"
    )
    assert len(first_line) < 200
    # a max wait that covers it lets the run through, and so does a runtime within the default wait
    raised = {"use_spot": True, "max_wait_seconds": 200000}
    _checked({"CreateTrainingJob": {"StoppingCondition": {"MaxRuntimeInSeconds": 200000}}}, training=raised)
    _checked({"CreateTrainingJob": {"StoppingCondition": {"MaxRuntimeInSeconds": 7200}}}, **SPOT)


def test_a_max_wait_on_an_on_demand_job_is_refused():
    problems = _refusals({"CreateTrainingJob": {"StoppingCondition": {"MaxWaitTimeInSeconds": 7200}}})
    assert problems == [
        (
            "request_overrides.CreateTrainingJob.StoppingCondition.MaxWaitTimeInSeconds",
            "applies to spot training only; set training.use_spot",
        )
    ]


def test_maximums_and_patterns_botocore_does_not_check_are_refused_naming_the_field():
    problems = _refusals(
        {
            "CreateTrainingJob": {
                "StoppingCondition": {"MaxPendingTimeInSeconds": 3_000_000},
                "Environment": {"1_BAD": "x", "LONG": "v" * 513},
            }
        }
    )
    assert problems == [
        (
            "request_overrides.CreateTrainingJob.StoppingCondition.MaxPendingTimeInSeconds",
            "at most 2419200, got 3000000",
        ),
        ("request_overrides.CreateTrainingJob.Environment.1_BAD", "must match [a-zA-Z_][a-zA-Z0-9_]*"),
        ("request_overrides.CreateTrainingJob.Environment.LONG", "at most 512 characters, got 513"),
    ]
    too_many = {f"K{i}": "v" for i in range(101)}
    assert _refusals({"CreateTrainingJob": {"Environment": too_many}}) == [
        ("request_overrides.CreateTrainingJob.Environment", "at most 100 entries, got 101")
    ]
    # within the model's bounds
    _checked({"CreateTrainingJob": {"Environment": {f"K{i}": "v" * 512 for i in range(100)}}})
