"""Bad confs are refused by the validate task, naming field and rule, before any AWS call."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sagelift.operators.validate import ValidateRunOperator
from tests.support.scenario import DAG_TEST_USER, demo_conf

pytestmark = pytest.mark.e2e

CHANNEL = {
    "ChannelName": "train",
    "DataSource": {"S3DataSource": {"S3Uri": "s3://scientist-ml-data/churn/train/"}},
}

INVALID_CONFS = [
    ("missing model name", {"model_name": ""}, "model_name", "required"),
    ("model name with underscores", {"model_name": "churn_model"}, "model_name", "letters, digits and '-'"),
    ("model name too long", {"model_name": "m" * 60}, "model_name", "at most 54 characters"),
    ("account id too short", {"account_id": "12345"}, "account_id", "twelve digits"),
    ("account not onboarded", {"account_id": "444444444444"}, "account_id", "may not deploy into account"),
    (
        "both training image and algorithm",
        {"training_algorithm_name": "xgboost"},
        "training_algorithm_name",
        "exactly one",
    ),
    (
        "neither training image nor algorithm",
        {"training_docker_image": ""},
        "training_docker_image",
        "give training_docker_image or training_algorithm_name",
    ),
    (
        "artifact plus training image",
        {"model_artifact_s3_path": "s3://scientist-ml-data/m/model.tar.gz"},
        "training_docker_image",
        "must be empty when model_artifact_s3_path",
    ),
    (
        "an existing artifact without its serving image",
        {
            "model_docker_image": "",
            "model_artifact_s3_path": "s3://scientist-ml-data/m/model.tar.gz",
            "training_docker_image": "",
        },
        "model_docker_image",
        "required",
    ),
    (
        "a mode the account does not allow",
        {"endpoint": '{"mode": "serverless"}'},
        "endpoint.mode",
        "not allowed in this account",
    ),
    (
        "malformed output path",
        {"training_s3_output_path": "bucket/output"},
        "training_s3_output_path",
        "S3 URI",
    ),
    (
        "instance type outside ml.*",
        {"training_instance_type": "m5.large"},
        "training_instance_type",
        "ml.* family",
    ),
    (
        "unknown endpoint instance type",
        {"endpoint_instance_type": "ml.bogus.large"},
        "endpoint_instance_type",
        "not a SageMaker endpoint instance type",
    ),
    ("instance count zero", {"training_instance_count": "0"}, "training_instance_count", "between 1 and 100"),
    (
        "instance count not a number",
        {"training_instance_count": "two"},
        "training_instance_count",
        "whole number",
    ),
    ("channels not JSON", {"training_channels": "[{oops"}, "training_channels", "not valid JSON"),
    (
        "duplicate channel names",
        {
            "training_channels": [
                {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://bkt/a"}}},
                {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://bkt/b"}}},
            ]
        },
        "training_channels[1].ChannelName",
        "unique",
    ),
    (
        "channel without a data source",
        {"training_channels": [{"ChannelName": "train"}]},
        "training_channels[0].DataSource",
        "required",
    ),
    (
        "channel with an ill-typed field",
        {"training_channels": [{**CHANNEL, "ShuffleConfig": "yes please"}]},
        "training_channels[0].ShuffleConfig",
        "must be an object, got a string",
    ),
    (
        "channel with an unknown S3DataSource key",
        {
            "training_channels": [
                {"ChannelName": "t", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/k", "Region": "x"}}}
            ]
        },
        "training_channels[0].DataSource.S3DataSource.Region",
        "unknown field",
    ),
    ("no channels while training", {"training_channels": "[]"}, "training_channels", "at least one channel"),
    (
        "environment nested too deeply",
        {"environment": '{"A": ' * 5000 + "1" + "}" * 5000},
        "environment",
        "more than 16 levels deep",
    ),
    (
        "a 5,000-digit count",
        {"training_instance_count": "9" * 5000},
        "training_instance_count",
        "at most 2048",
    ),
    (
        "a mistyped instance type",
        {"endpoint_instance_type": "ml.m5.xlarg"},
        "endpoint_instance_type",
        "did you mean ml.m5.xlarge?",
    ),
    (
        "a storage class the platform does not allow",
        {"pvc_storage_class": "premium"},
        "pvc_storage_class",
        "not allowed",
    ),
    (
        "hyperparameter value too long",
        {"training_hyperparameters": {"blob": "x" * 2501}},
        "training_hyperparameters.blob",
        "at most 2500",
    ),
    (
        "environment with a bad name",
        {"environment": json.dumps({"1BAD": "x"})},
        "environment.1BAD",
        "variable names",
    ),
    (
        "typo in a parameter name",
        {"training_instance_cont": 2},
        "training_instance_cont",
        "did you mean 'training_instance_count'",
    ),
    ("bad PVC size", {"pvc_size": "lots"}, "pvc_size", "Kubernetes quantity"),
    ("bad PVC name", {"pvc_name": "Scratch_Space"}, "pvc_name", "DNS-1123"),
]


def _context(conf: dict) -> dict:
    dag_run = SimpleNamespace(
        conf=conf,
        dag_id="sagemaker_deploy",
        run_id="manual__test",
        run_type="manual",
        triggering_user_name=DAG_TEST_USER,
    )
    return {"dag_run": dag_run}


@pytest.mark.parametrize(
    ("case", "overrides", "field", "rule"), INVALID_CONFS, ids=[c[0] for c in INVALID_CONFS]
)
def test_validate_refuses_bad_conf_naming_field_and_rule(scenario, local_aws, case, overrides, field, rule):
    before = local_aws.request_count()
    with pytest.raises(AirflowFailException) as raised:
        ValidateRunOperator(task_id="validate").execute(_context(demo_conf(**overrides)))
    message = str(raised.value)
    assert f"{field}: " in message
    assert rule in message
    assert len(message.splitlines()[0]) <= 200
    assert local_aws.request_count() == before  # no AWS call at all


def test_validate_refuses_platform_api_settings_that_would_fail_at_expose_api(
    scenario, local_aws, monkeypatch
):
    platform = {**scenario.platform(), "api": {"authorization": "AWS_IAM", "quota_limit": 1000}}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(platform))
    before = local_aws.request_count()
    with pytest.raises(AirflowFailException) as raised:
        ValidateRunOperator(task_id="validate").execute(_context(demo_conf()))
    first_line = str(raised.value).splitlines()[0]
    assert first_line.startswith(
        "Platform configuration error. platform.api.quota_limit: quotas are enforced per API key"
    )
    assert len(first_line) <= 200
    assert local_aws.request_count() == before


def test_refusing_an_account_names_no_other_onboarded_account(scenario, monkeypatch):
    platform = {**scenario.platform(), "accounts": {"333333333333": {}, "555555555555": {}}}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(platform))
    with pytest.raises(AirflowFailException) as raised:
        ValidateRunOperator(task_id="validate").execute(_context(demo_conf(account_id="444444444444")))
    assert "may not deploy into account 444444444444" in str(raised.value)
    assert "333333333333" not in str(raised.value) and "555555555555" not in str(raised.value)


def test_an_invalid_run_fails_at_validate_and_creates_nothing(run_deploy, local_aws, capfd):
    before = local_aws.request_count()
    # Rules the trigger form's schema leaves to validate (an unknown instance type is refused earlier,
    # when the run is triggered: tests/dags/test_params_schema.py).
    result = run_deploy(demo_conf(account_id="12345", training_s3_output_path="churn/output"))
    task_log = capfd.readouterr().out

    assert result.states["validate"] == "failed"
    assert {state for task, state in result.states.items() if task != "validate"} == {"upstream_failed"}
    assert "account_id: must be exactly twelve digits" in task_log
    assert "training_s3_output_path: must be an S3 URI like s3://bucket/path" in task_log
    assert result.calls == []
    assert local_aws.request_count() == before


def test_a_broken_platform_variable_fails_validate_with_a_field_error(scenario, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", "[" * 100_000)
    with pytest.raises(AirflowFailException) as raised:
        ValidateRunOperator(task_id="validate").execute(_context(demo_conf()))
    assert str(raised.value).startswith(
        "Platform configuration error. platform: the Variable 'sagelift_platform' nests"
    )
