"""Configuration mistakes are blamed on the right thing (issue 18 item 6).

What a user reads when the platform, not their conf, is at fault: the task fails at once (no retries),
its message is headed as platform configuration for the ML engineer and names the setting or the
connection and the README section that fixes it. A conf mistake keeps its own heading.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import DagRunType
from airflow.sdk.exceptions import AirflowFailException

from sagelift.operators.sts import StsAssumeRoleChainOperator
from sagelift.operators.validate import ValidateRunOperator
from tests.support.scenario import demo_conf
from tests.support.task_context import step_plan

ACCOUNT = "333333333333"
CONN_ENV = f"AIRFLOW_CONN_SAGELIFT_AWS_{ACCOUNT}"
PLATFORM = {"region": "us-east-1", "accounts": {ACCOUNT: {"deployers": {"users": ["bob"]}}}}
# Nothing listens here: a step that made a call anyway would fail with a connection error, retried.
NOWHERE = "http://127.0.0.1:9"


def _connection(**extra: Any) -> str:
    return json.dumps(
        {"conn_type": "aws", "extra": {"endpoint_url": NOWHERE, "region_name": "us-east-1", **extra}}
    )


@pytest.fixture
def platform(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(PLATFORM))
    monkeypatch.setenv(CONN_ENV, _connection())


def _validate(conf: dict[str, Any] | None = None) -> dict[str, Any]:
    dag_run = SimpleNamespace(
        conf=demo_conf(**(conf or {})),
        dag_id="sagemaker_deploy",
        run_id="manual__1",
        run_type=DagRunType("manual"),
        triggering_user_name="bob",
    )
    return ValidateRunOperator(task_id="validate").execute({"dag_run": dag_run})


def _refusal(conf: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(AirflowFailException) as raised:  # final: Airflow does not retry it
        _validate(conf)
    lines = str(raised.value).splitlines()
    assert len(lines[0]) <= 200, lines[0]
    return lines


# --- the platform Variable ------------------------------------------------------------------------------
def test_invalid_json_in_the_variable_is_named_as_invalid_json_with_its_position(platform, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", '{"region": "us-east-1",\n "accounts": {}')
    lines = _refusal()
    assert lines[0] == (
        "Platform configuration error. platform: the Variable 'sagelift_platform' is not valid JSON "
        "(Expecting ',' delimiter at character 39)"
    )
    assert "ML engineer" in lines[1] and "README 'Platform configuration'" in lines[1]


def test_an_unset_variable_is_headed_as_platform_configuration(platform, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_SAGELIFT_PLATFORM")
    lines = _refusal()
    assert lines[0].startswith(
        "Platform configuration error. platform: the Airflow Variable 'sagelift_platform'"
    )
    assert "is not set" in lines[0]


def test_a_platform_setting_error_is_headed_for_the_ml_engineer_not_as_the_run_s_conf(platform, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps({**PLATFORM, "region": "moon-1"}))
    lines = _refusal()
    assert lines[0].startswith("Platform configuration error. platform.region: ")
    assert "Invalid run configuration" not in "\n".join(lines)
    assert "ML engineer" in lines[1]


def test_with_both_broken_the_platform_leads_and_the_conf_s_problem_is_still_listed(platform, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps({**PLATFORM, "region": "moon-1"}))
    lines = _refusal({"training_instance_count": 0})
    assert lines[0].startswith("Platform configuration error. platform.region: ")
    assert any(line.startswith("  - training_instance_count: ") for line in lines[2:]), lines


def test_a_conf_mistake_keeps_the_run_configuration_heading(platform):
    lines = _refusal({"training_instance_count": 0})
    assert lines[0].startswith("Invalid run configuration. training_instance_count: ")
    assert "ML engineer" not in "\n".join(lines)


# --- the account's connection -----------------------------------------------------------------------------
def test_validate_refuses_an_onboarded_account_without_its_connection(platform, monkeypatch):
    monkeypatch.delenv(CONN_ENV)
    lines = _refusal()
    assert lines[0] == (
        f"Platform configuration error. account_id: account {ACCOUNT} is onboarded but its AWS connection "
        f"'sagelift_aws_{ACCOUNT}' does not exist"
    )
    assert "README 'Onboarding a scientist account'" in lines[1]


def test_validate_passes_once_the_connection_exists(platform):
    assert _validate()["params"]["account_id"] == ACCOUNT


# --- [aws] session_factory -----------------------------------------------------------------------------------
def test_without_the_session_factory_the_first_aws_task_fails_at_once_naming_it(monkeypatch):
    from airflow.providers.amazon.aws.hooks import base_aws

    monkeypatch.setattr(base_aws, "SessionFactory", base_aws.BaseSessionFactory)  # no [aws] session_factory
    monkeypatch.setenv(
        CONN_ENV,
        _connection(
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/sagelift-pipeline-execution",
            role_chain=[{"role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline"}],
        ),
    )
    plan = step_plan(platform={"region": "us-east-1", "accounts": {ACCOUNT: {}}})
    operator = StsAssumeRoleChainOperator(task_id="assume_role_chain", plan=plan)
    with pytest.raises(AirflowFailException) as raised:  # final at once, before any AWS call
        operator.execute({})
    first, second = str(raised.value).splitlines()[:2]
    assert first.startswith("Platform configuration error. [aws] session_factory is not sagelift's ")
    assert "found BaseSessionFactory" in first and len(first) <= 200
    assert "sagelift.hooks.session_factory.RoleChainSessionFactory" in second
    assert "README 'Pointing sagelift at real AWS'" in second
