"""Who may deploy where: validate and teardown's validate check the user a run acts for against the
platform's deployers, before anything else; the plan carries that user to the run's tags.

The runs here are described as Airflow's Task SDK describes them to a task (``dag_run`` with
``triggering_user_name``, ``run_type``, ``run_id``, ``conf``); tests/live/test_access.py drives the same
through a real API server, its REST API and its UI, as two users.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.api.datamodels._generated import DagRunType
from airflow.sdk.exceptions import AirflowFailException

from sagelift.domain.plan import Plan
from sagelift.operators.teardown import TeardownValidateOperator
from sagelift.operators.validate import ValidateRunOperator
from sagelift.steps.tags import resolve_tags
from tests.conftest import ROOT
from tests.support.scenario import demo_conf

B_ACCOUNT = "333333333333"  # bob's
A_ACCOUNT = "444444444444"  # alice's
PLATFORM = {
    "region": "us-east-1",
    "groups": {"churn-team": ["bob", "priya.shah"]},
    "accounts": {
        B_ACCOUNT: {"deployers": {"groups": ["churn-team"], "users": ["marco.rossi"]}},
        A_ACCOUNT: {"deployers": {"users": ["alice"]}},
    },
}
# owner marco.rossi, in B
FRAUD = json.loads((ROOT / "include/examples/retrain/fraud-scorer.json").read_text())
RETRAIN_RUN = "retrain__sagemaker_retrain_fraud_scorer__scheduled__2026-03-02T02:30:00+00:00"


@pytest.fixture(autouse=True)
def platform(monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(PLATFORM))
    for account in (B_ACCOUNT, A_ACCOUNT):  # validate checks the onboarded account's connection exists
        monkeypatch.setenv(f"AIRFLOW_CONN_SAGELIFT_AWS_{account}", json.dumps({"conn_type": "aws"}))


def _run(conf: dict[str, Any], user: str | None, run_type: str = "manual", run_id: str = "manual__1"):
    dag_run = SimpleNamespace(
        conf=conf,
        dag_id="sagemaker_deploy",
        run_id=run_id,
        run_type=DagRunType(run_type),  # as the Task SDK hands it to the task: an enum
        triggering_user_name=user,
    )
    return {"dag_run": dag_run}


def _validate(context) -> dict[str, Any]:
    return ValidateRunOperator(task_id="validate").execute(context)


def _refusal(operator, context) -> str:
    with pytest.raises(AirflowFailException) as raised:
        operator.execute(context)
    message = str(raised.value)
    assert len(message.splitlines()[0]) <= 200, message
    return message


# --- sagemaker_deploy's validate ------------------------------------------------------------------------
def test_a_deployer_of_the_account_gets_a_plan_that_names_them():
    plan = _validate(_run(demo_conf(account_id=B_ACCOUNT), "bob"))
    assert plan["triggered_by"] == "bob"
    assert Plan.from_xcom(plan).triggered_by == "bob"


def test_a_user_is_refused_in_an_account_that_is_not_theirs_naming_only_them_and_it():
    message = _refusal(
        ValidateRunOperator(task_id="validate"), _run(demo_conf(account_id=B_ACCOUNT), "alice")
    )
    assert message.splitlines()[0] == (
        f"Invalid run configuration. account_id: user 'alice' may not deploy into account {B_ACCOUNT}: "
        "not one of its deployers (platform.accounts.<account>.deployers)"
    )
    for other in (A_ACCOUNT, "bob", "priya.shah", "marco.rossi", "churn-team"):
        assert other not in message


def test_an_account_that_is_not_onboarded_is_refused_in_the_same_words():
    onboarded = _refusal(
        ValidateRunOperator(task_id="validate"), _run(demo_conf(account_id=B_ACCOUNT), "alice")
    )
    unknown = _refusal(
        ValidateRunOperator(task_id="validate"), _run(demo_conf(account_id="999999999999"), "alice")
    )
    assert unknown.replace("999999999999", B_ACCOUNT) == onboarded


@pytest.mark.parametrize(
    ("run_type", "run_id"),
    [
        ("manual", "manual__1"),
        ("scheduled", "scheduled__2026-03-02T02:30:00+00:00"),
        ("asset_triggered", "asset_triggered__2026-03-02T02:30:00+00:00"),
        ("operator_triggered", "manual__1"),  # started by some other DAG's task
    ],
)
def test_a_run_nobody_triggered_acts_for_no_one_and_is_refused(run_type, run_id):
    message = _refusal(
        ValidateRunOperator(task_id="validate"), _run(demo_conf(account_id=B_ACCOUNT), None, run_type, run_id)
    )
    assert message.startswith("Invalid run configuration. triggering_user: the run has no triggering user")


def test_a_scheduled_retrain_acts_for_the_owner_its_registration_names():
    plan = _validate(_run(FRAUD["conf"], None, "operator_triggered", RETRAIN_RUN))
    assert plan["triggered_by"] == FRAUD["owner"] == "marco.rossi"


@pytest.mark.parametrize(
    ("case", "conf", "run_type", "run_id"),
    [
        # A user cannot create an operator-triggered run: their run of the same shape is "manual".
        ("a user's run with a retrain's run id and conf", FRAUD["conf"], "manual", RETRAIN_RUN),
        (
            "a conf that is not the registered one",
            {**FRAUD["conf"], "account_id": A_ACCOUNT},
            "operator_triggered",
            RETRAIN_RUN,
        ),
        (
            "another retrain's run id",
            FRAUD["conf"],
            "operator_triggered",
            "retrain__sagemaker_retrain_churn_predictor__scheduled__1",
        ),
        (
            "a model name that is a path",
            {**FRAUD["conf"], "model_name": "../retrain/fraud-scorer"},
            "operator_triggered",
            RETRAIN_RUN,
        ),
        (
            "a model with no registration",
            demo_conf(model_name="unregistered"),
            "operator_triggered",
            RETRAIN_RUN,
        ),
    ],
)
def test_only_a_registered_retrain_started_by_its_dag_acts_for_the_owner(case, conf, run_type, run_id):
    message = _refusal(ValidateRunOperator(task_id="validate"), _run(conf, None, run_type, run_id))
    assert "triggering_user: the run has no triggering user" in message.splitlines()[0], case


def test_a_retrain_owner_who_is_not_a_deployer_is_refused_like_a_user(monkeypatch):
    demoted = {**PLATFORM, "accounts": {**PLATFORM["accounts"], B_ACCOUNT: {"deployers": {"users": ["bob"]}}}}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(demoted))
    message = _refusal(
        ValidateRunOperator(task_id="validate"), _run(FRAUD["conf"], None, "operator_triggered", RETRAIN_RUN)
    )
    assert f"account_id: user 'marco.rossi' may not deploy into account {B_ACCOUNT}" in message


def test_a_retrain_a_user_starts_by_hand_acts_for_that_user_not_the_owner():
    # Airflow passes the triggering user of the retrain run on to the deploy run it starts.
    message = _refusal(
        ValidateRunOperator(task_id="validate"),
        _run(FRAUD["conf"], "alice", "operator_triggered", RETRAIN_RUN),
    )
    assert f"user 'alice' may not deploy into account {B_ACCOUNT}" in message
    plan = _validate(_run(FRAUD["conf"], "bob", "operator_triggered", RETRAIN_RUN))
    assert plan["triggered_by"] == "bob"


def test_the_user_reaches_the_tags_of_every_resource():
    plan = Plan.from_xcom(_validate(_run(demo_conf(account_id=B_ACCOUNT), "bob")))
    assert Plan.from_xcom(plan.to_xcom()) == plan
    # No tag document configured: no S3 read, the run's own tags only.
    tags = {t["Key"]: t["Value"] for t in resolve_tags(plan, s3=None)}
    assert tags["sagelift:triggered-by"] == "bob"


# --- sagemaker_teardown's validate ---------------------------------------------------------------------
def _teardown(account: str, user: str | None, run_type: str = "manual"):
    conf = {"model_name": "churn-predictor", "account_id": account, "confirm": "churn-predictor"}
    return {
        "dag_run": SimpleNamespace(
            conf=conf,
            dag_id="sagemaker_teardown",
            run_id="manual__1",
            run_type=DagRunType(run_type),
            triggering_user_name=user,
        )
    }


def test_a_deployer_may_tear_down_in_their_account():
    plan = TeardownValidateOperator(task_id="validate").execute(_teardown(B_ACCOUNT, "bob"))
    assert plan["teardown"]["account_id"] == B_ACCOUNT


@pytest.mark.parametrize("account", [B_ACCOUNT, "999999999999"])
def test_a_teardown_in_an_account_that_is_not_the_users_is_refused(account):
    message = _refusal(TeardownValidateOperator(task_id="validate"), _teardown(account, "alice"))
    assert message.splitlines()[0] == (
        f"Teardown refused. account_id: user 'alice' may not tear down in account {account}: "
        "not one of its deployers (platform.accounts.<account>.deployers)"
    )
    assert A_ACCOUNT not in message and "bob" not in message


@pytest.mark.parametrize("run_type", ["manual", "scheduled", "operator_triggered"])
def test_a_teardown_nobody_triggered_is_refused(run_type):
    message = _refusal(TeardownValidateOperator(task_id="validate"), _teardown(B_ACCOUNT, None, run_type))
    assert message.startswith("Teardown refused. triggering_user: the run has no triggering user")


def test_a_user_who_may_not_act_there_learns_nothing_else_about_the_conf_or_the_account():
    conf = demo_conf(account_id=B_ACCOUNT, training_instance_count=0, pvc_storage_class="gold")
    message = _refusal(ValidateRunOperator(task_id="validate"), _run(conf, "alice"))
    assert message == (
        f"Invalid run configuration. account_id: user 'alice' may not deploy into account {B_ACCOUNT}: "
        "not one of its deployers (platform.accounts.<account>.deployers)"
    )
