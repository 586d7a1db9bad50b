"""Parsing and validation of run parameters, and the plan's names."""

from __future__ import annotations

import json

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.params import MODEL_NAME_MAX, SAGEMAKER_NAME_RE, parse_params
from sagelift.domain.plan import build_plan, derive_names
from tests.support.scenario import demo_conf

PLATFORM = {"region": "us-east-1", "accounts": {"333333333333": {}}}


def test_kfp_string_forms_and_native_forms_parse_the_same():
    native = demo_conf()
    strings = dict(
        native,
        environment=json.dumps(native["environment"]),
        training_hyperparameters=json.dumps(native["training_hyperparameters"]),
        training_channels=json.dumps(native["training_channels"]),
        training_instance_count=str(native["training_instance_count"]),
        account_id=333333333333,
    )
    assert parse_params(strings) == parse_params(native)


def test_hyperparameters_become_strings():
    params = parse_params(demo_conf(training_hyperparameters={"a": 1, "b": 0.5, "c": True, "d": [1, 2]}))
    assert params.training_hyperparameters == {"a": "1", "b": "0.5", "c": "true", "d": "[1,2]"}


def test_all_problems_are_reported_at_once():
    with pytest.raises(SageliftValidationError) as raised:
        parse_params(demo_conf(model_name="", account_id="x", training_instance_count=0))
    assert raised.value.fields == ["model_name", "account_id", "training_instance_count"]


def test_names_are_deterministic_valid_and_distinct_per_run():
    a = derive_names("m" * MODEL_NAME_MAX, "sagemaker_deploy", "manual__1")
    again = derive_names("m" * MODEL_NAME_MAX, "sagemaker_deploy", "manual__1")
    b = derive_names("m" * MODEL_NAME_MAX, "sagemaker_deploy", "manual__2")
    assert a == again
    assert a.training_job != b.training_job
    assert a.endpoint == b.endpoint == "m" * MODEL_NAME_MAX
    for name in (a.training_job, a.model, a.endpoint_config, a.endpoint):
        assert SAGEMAKER_NAME_RE.match(name)


def test_plan_refuses_accounts_the_platform_has_not_onboarded():
    with pytest.raises(SageliftValidationError) as raised:
        build_plan(demo_conf(account_id="444444444444"), PLATFORM, "d", "r")
    assert "account_id: account 444444444444 is not onboarded" in str(raised.value)


def test_plan_refuses_a_missing_platform_configuration():
    with pytest.raises(SageliftValidationError, match="sagelift_platform"):
        build_plan(demo_conf(), None, "d", "r")


def test_plan_refuses_an_algorithm_without_a_registry_in_the_region():
    platform = dict(PLATFORM, region="sa-east-1")
    conf = demo_conf(training_docker_image="", training_algorithm_name="lda")
    with pytest.raises(SageliftValidationError, match="no registry listed for region sa-east-1"):
        build_plan(conf, platform, "d", "r")


# --- hostile input gets a field error, never a raw Python error ----------------------------------------
def refusal(conf, platform=PLATFORM) -> SageliftValidationError:
    with pytest.raises(SageliftValidationError) as raised:
        build_plan(conf, platform, "sagemaker_deploy", "manual__1")
    return raised.value


def nested_json(depth: int) -> str:
    return '{"a": ' * depth + '"x"' + "}" * depth


@pytest.mark.parametrize(
    ("overrides", "field", "rule"),
    [
        ({"environment": nested_json(10_000)}, "environment", "more than 16 levels deep"),
        ({"training_channels": "[" * 200_000}, "training_channels", "more than 16 levels deep"),
        ({"training_instance_count": "9" * 5000}, "training_instance_count", "at most 2048 characters"),
        ({"training_instance_count": "9" * 2000}, "training_instance_count", "whole number from 1 to 100"),
        ({"training_instance_count": 10**5000}, "training_instance_count", "more than 19 digits"),
        ({"training_hyperparameters": '{"a": ' + "1" * 5000 + "}"}, "training_hyperparameters", "19 digits"),
        ({"training_hyperparameters": '{"a": NaN}'}, "training_hyperparameters", "NaN, which is not JSON"),
        ({"environment": {"A": float("inf")}}, "environment.A", "not finite"),
        ({"environment": "x" * 600_000}, "environment", "at most 524288 characters"),
        ({"model_name": "m" * 100_000}, "model_name", "at most 2048 characters"),
        ({"model_name": ["churn"]}, "model_name", "must be a string, got a list"),
        ({"environment": {"A": "\x00"}}, "environment.A", "NUL"),
        ({"environment": {"A": "\ud800"}}, "environment.A", "lone surrogate"),
        ({"account_id": "٣" * 12}, "account_id", "twelve digits"),
        ({"account_id": 3.3e11}, "account_id", "twelve digits"),
        (
            {"training_channels": 42},
            "training_channels",
            "must be a JSON array (or its JSON text), got a number",
        ),
        ({"training_channels": []}, "training_channels", "at least one channel"),
        ({"model_artifact_s3_path": "s3://bkt/model.tar.gz\nx"}, "model_artifact_s3_path", "S3 URI"),
    ],
)
def test_hostile_values_get_a_short_field_error(overrides, field, rule):
    error = refusal(demo_conf(**overrides))
    first_line = f"Invalid run configuration. {error}".splitlines()[0]
    assert len(first_line) <= 200, first_line
    assert any(f == field and rule in r for f, r in error.problems), error.problems


def test_a_conf_that_is_not_an_object_is_refused():
    assert refusal(["model_name"]).fields == ["conf"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field", "hint"),
    [
        ({"training_instance_type": "ml.m5.larg"}, "training_instance_type", "did you mean ml.m5.large?"),
        ({"endpoint_instance_type": "m5.xlarge"}, "endpoint_instance_type", "did you mean ml.m5.xlarge?"),
        (
            {"training_docker_image": "", "training_algorithm_name": "xgbost", "model_docker_image": ""},
            "training_algorithm_name",
            "did you mean xgboost?",
        ),
        ({"training_instance_cont": 2}, "training_instance_cont", "did you mean 'training_instance_count'?"),
    ],
)
def test_mistyped_names_get_close_matches(overrides, field, hint):
    error = refusal(demo_conf(**overrides))
    assert [(f, hint in r) for f, r in error.problems] == [(field, True)]
    assert len(str(error).splitlines()[0]) <= 160


def test_many_problems_have_a_short_first_line_naming_the_first_and_counting_the_others():
    error = refusal(
        demo_conf(model_name="", account_id="x", training_instance_count=0, environment={"1BAD": "v"})
    )
    lines = str(error).splitlines()
    assert lines[0] == "model_name: required: the name of the model to train and deploy (and 3 more problems)"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  - account_id",
        "  - environment.1BAD",
        "  - training_instance_count",
    ]


def test_a_flood_of_bad_keys_stays_a_short_message():
    conf = demo_conf(environment={f"{i}bad": "v" for i in range(100)})
    conf.update({f"unknown_{i}": 1 for i in range(5000)})
    message = f"Invalid run configuration. {refusal(conf)}"
    assert len(message.splitlines()[0]) <= 200
    assert len(message) < 8000


def test_platform_and_conf_problems_are_reported_together_conf_first():
    platform = {**PLATFORM, "api": {"authorization": "AWS_IAM", "quota_limit": 10}}
    error = refusal(demo_conf(model_name=""), platform)
    assert error.fields == ["model_name", "platform.api.quota_limit"]


def test_claim_overrides_stay_within_the_platform_s_bounds():
    platform = {**PLATFORM, "kubernetes": {"max_pvc_size": "2Gi", "allowed_storage_classes": ["gp3"]}}
    assert refusal(demo_conf(pvc_size="3Gi", pvc_storage_class="io2"), platform).fields == [
        "pvc_size",
        "pvc_storage_class",
    ]
    plan = build_plan(demo_conf(pvc_size="2Gi", pvc_storage_class="gp3"), platform, "d", "r")
    assert (plan["params"]["pvc_size"], plan["params"]["pvc_storage_class"]) == ("2Gi", "gp3")


def test_plan_only_is_true_or_false_and_off_by_default():
    assert build_plan(demo_conf(), PLATFORM, "d", "r")["params"]["plan_only"] is False
    assert build_plan(demo_conf(plan_only=True), PLATFORM, "d", "r")["params"]["plan_only"] is True
    for value in ("yes", 1, {"on": True}):
        error = refusal(demo_conf(plan_only=value))
        assert error.fields == ["plan_only"]
        assert str(error).startswith("plan_only: must be true or false")
