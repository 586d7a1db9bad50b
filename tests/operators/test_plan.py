"""plan_changes on Airflow (issue 16 item 9): a plan-only run pushes its change set and skips every later
step but the run's teardown; any other run goes on without a call to AWS."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.sdk.exceptions import DownstreamTasksSkipped

from sagelift.domain.changes import ChangeSet
from sagelift.domain.plan import SessionFacts
from sagelift.operators.plan import PlanChangesOperator
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.scenario import Scenario
from tests.support.task_context import FakeTaskInstance, step_plan, use_scientist_keys


def wired(plan: dict[str, Any], session: dict[str, Any]) -> PlanChangesOperator:
    with DAG("plan_test", schedule=None):
        planner = PlanChangesOperator(task_id="plan_changes", plan=plan, session=session)
        lock = EmptyOperator(task_id="acquire_model_lock")
        later = EmptyOperator(task_id="deploy_endpoint")
        release = EmptyOperator(task_id="release_model_lock").as_teardown(setups=lock)
        planner >> lock >> later >> release
    return planner


def session_facts(conn_id: str) -> dict[str, Any]:
    return SessionFacts(
        region=REGION,
        account_id=SCIENTIST_ACCOUNT,
        execution_role_arn=f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-pipeline-execution",
        caller_arn="arn:aws:sts::333333333333:assumed-role/sagelift-pipeline-execution/s",
        session_name="s",
        aws_conn_id=conn_id,
    ).to_xcom()


def test_a_plan_only_run_pushes_its_changes_and_skips_all_but_the_teardown(
    local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = Scenario(local_aws).build()
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    planner = wired(step_plan({"plan_only": True}, world.platform()), session_facts(conn_id))
    ti = FakeTaskInstance({})

    with pytest.raises(DownstreamTasksSkipped) as skipped:
        planner.execute({"ti": ti})

    assert sorted(skipped.value.tasks) == ["acquire_model_lock", "deploy_endpoint"]
    changes = ChangeSet.from_xcom(ti.pushed["return_value"])
    assert {(c.kind, c.action) for c in changes.changes} >= {
        ("model lock", "create"),
        ("SageMaker endpoint", "create"),
        ("API Gateway REST API", "create"),
    }
    assert local_aws.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_any_other_run_goes_on_without_a_call(local_aws: LocalAws) -> None:
    planner = wired(step_plan(), session_facts("sagelift_aws_unused"))
    ti = FakeTaskInstance({})
    before = local_aws.request_count()

    assert planner.execute({"ti": ti}) is None

    assert ti.pushed == {} and local_aws.request_count() == before
