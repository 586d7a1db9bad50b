"""approve_deploy (issue 17 item 8) against the local AWS, with the events Airflow resumes it with.

The request the task writes (what the Required Actions page shows) is captured where the operator hands
it to Airflow (``upsert_hitl_detail``); the answers are the resume payloads Airflow 3.3 builds
(HITLDetail.as_resume_event_payload: a user's answer, the scheduler's timeout default) and the failure
event of a timeout without a default. Each answer is checked where a user sees it: the version's status
in the registry, the task's outcome and message, and the account (no model or endpoint created).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.sdk.api.datamodels._generated import DagRunType
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskAwaitingInput

from sagelift.domain.plan import Plan
from sagelift.operators.approval import SageMakerApproveDeployOperator
from sagelift.steps.model_registry import register_version
from tests.support.botocore_validation import recording_aws_calls
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.scenario import DAG_TEST_USER, Scenario, demo_conf
from tests.support.task_context import FakeTaskInstance, step_plan, step_session, use_scientist_keys

TAGS = [{"Key": "team", "Value": "churn"}]
ARTIFACT = "s3://sagelift-data/models/churn/model.tar.gz"
SECRET = "tok-3f9a1c0d"
METRICS = {"validation:auc": 0.91, "train:loss": 0.2}


def approver(user: str = DAG_TEST_USER) -> dict[str, str]:
    return {"id": user, "name": user}


def answer(option: str, user: dict[str, str] | None, *, timedout: bool = False) -> dict[str, Any]:
    """The resume payload of HITLDetail.as_resume_event_payload (a user's answer or the timeout's default)."""
    return {
        "chosen_options": [option],
        "params_input": {},
        "responded_at": datetime(2026, 12, 2, 12, 0, tzinfo=UTC),
        "responded_by_user": user,
        "timedout": timedout,
    }


class Setup:
    def __init__(self, aws: LocalAws, monkeypatch: pytest.MonkeyPatch, *, requires_approval: bool = True):
        self.aws = aws
        world = Scenario(aws).build()
        platform = world.platform()
        account = platform["accounts"][SCIENTIST_ACCOUNT]
        account["requires_approval"] = requires_approval
        account["deployers"] = {"users": [DAG_TEST_USER], "groups": ["ml"]}
        platform["groups"] = {"ml": ["ines"]}
        platform["approval_timeout_seconds"] = 3600
        conf = {"environment": {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info", "API_TOKEN": SECRET}}
        self.plan = step_plan(conf, platform)
        conn_id = use_scientist_keys(aws, monkeypatch)
        self.session = step_session(conn_id)
        typed = Plan.from_xcom(self.plan)
        if requires_approval:
            sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
            self.registered = register_version(sm, typed, TAGS, None, ARTIFACT, METRICS)
        else:
            self.registered = {"skipped": True, "reason": "not registered in this test"}
        self.requests: list[dict[str, Any]] = []
        monkeypatch.setattr(
            "airflow.providers.standard.operators.hitl.upsert_hitl_detail",
            lambda **request: self.requests.append(request),
        )
        with DAG("approval_test", schedule=None):
            self.task = SageMakerApproveDeployOperator(
                task_id="approve_deploy",
                plan=self.plan,
                session=self.session,
                tags=TAGS,
                registered=self.registered,
            )
            self.task >> EmptyOperator(task_id="create_model")

    def ask(self) -> dict[str, Any]:
        ti = FakeTaskInstance({}, task_id="approve_deploy")
        ti.id = "0193a1c2-0000-7000-8000-000000000001"  # type: ignore[attr-defined]
        with recording_aws_calls() as calls, pytest.raises(TaskAwaitingInput) as waiting:
            self.task.execute({"ti": ti, "task_instance": ti})
        assert [c.errors for c in calls if c.errors] == []
        assert waiting.value.timeout is not None and waiting.value.timeout.total_seconds() == 3600
        [request] = self.requests
        return request

    def status(self) -> str:
        sm = self.aws.client("sagemaker", SCIENTIST_ACCOUNT)
        arn = self.registered["model_package_arn"]
        return str(sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"])

    def nothing_deployed(self) -> bool:
        sm = self.aws.client("sagemaker", SCIENTIST_ACCOUNT)
        return sm.list_models()["Models"] == [] and sm.list_endpoints()["Endpoints"] == []


def test_the_request_shows_version_metrics_and_plan_to_the_deployers_and_no_secret(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup(local_aws, monkeypatch)
    request = setup.ask()

    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert request["assigned_users"] == [approver(DAG_TEST_USER), approver("ines")]
    assert request["subject"] == f"Deploy churn-predictor version 1 into account {SCIENTIST_ACCOUNT}?"
    body = request["body"]
    assert "- version: 1" in body and "validation:auc: 0.91" in body.replace("\\", "")
    # the change set a plan_only run prints: the model, its endpoint config and endpoint, the API
    for line in (
        "**create** SageMaker model",
        "**create** SageMaker endpoint config",
        "**create** API Gateway",
    ):
        assert line in body, body
    assert "1 h" in body and SECRET not in body and "API_TOKEN" not in body
    assert setup.status() == "PendingManualApproval"


def test_approve_makes_the_version_approved_and_the_run_goes_on(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup(local_aws, monkeypatch)

    # Airflow resumes the task in a new process: execute_complete works from its inputs alone.
    with recording_aws_calls() as calls:
        result = setup.task.execute_complete({}, answer("Approve", approver()))

    assert [c.errors for c in calls if c.errors] == []
    assert result == {
        "status": "Approved",
        "version": 1,
        "model_package_arn": setup.registered["model_package_arn"],
        "approved_by": DAG_TEST_USER,
    }
    assert setup.status() == "Approved"


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (answer("Reject", approver("ines")), "rejected by 'ines'"),
        (
            answer("Reject", None, timedout=True),
            "no answer within 3600 s (platform.approval_timeout_seconds)",
        ),
        ({"error": "no response", "error_type": "timeout"}, "no answer within 3600 s"),
        (answer("Approve", approver("mallory")), "approved by 'mallory', who is not one of the account's"),
    ],
    ids=["reject", "timeout-default", "timeout-without-default", "approve-by-a-non-deployer"],
)
def test_reject_or_timeout_makes_the_version_rejected_and_fails_the_task(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch, event: dict[str, Any], why: str
) -> None:
    setup = Setup(local_aws, monkeypatch)

    with pytest.raises(AirflowFailException) as failed:
        setup.task.execute_complete({}, event)

    message = str(failed.value)
    assert message.startswith(f"approve_deploy: {why}"), message
    assert (
        "churn-predictor version 1 is Rejected" in message and "nothing in the account was changed" in message
    )
    assert len(message.splitlines()[0]) < 200
    assert setup.status() == "Rejected"
    assert setup.nothing_deployed()


def test_an_account_without_approval_skips_saying_why(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Setup(local_aws, monkeypatch, requires_approval=False)
    before = local_aws.request_count()
    ti = FakeTaskInstance({}, task_id="approve_deploy")

    with pytest.raises(AirflowSkipException) as skipped:
        setup.task.execute({"ti": ti, "task_instance": ti})

    assert "does not require approval (platform.accounts.<account>.requires_approval)" in str(skipped.value)
    assert setup.requests == [] and local_aws.request_count() == before


def test_the_kfp_dag_s_validate_refuses_a_run_that_needs_approval(monkeypatch: pytest.MonkeyPatch) -> None:
    from sagelift.dags.sagemaker_deploy_kfp import dag

    account = {"deployers": {"users": ["bob"]}, "requires_approval": True}
    platform = {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: account}}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(platform))
    dag_run = SimpleNamespace(
        conf=demo_conf(),
        dag_id="sagemaker_deploy_kfp",
        run_id="manual__1",
        run_type=DagRunType("manual"),
        triggering_user_name="bob",
    )

    with pytest.raises(AirflowFailException) as refused:
        dag.get_task("validate").execute({"dag_run": dag_run})

    assert (
        "requires approval (platform.accounts.<id>.requires_approval); KFP cannot ask: use the Airflow DAG"
        in str(refused.value)
    )
