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
