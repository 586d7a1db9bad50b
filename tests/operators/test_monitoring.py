"""monitor_endpoint on Airflow (issue 20 item 3): the baseline job deferred on the generic job trigger
(which carries no credential), the schedule and alarms applied on resume, the return value the links and
the summary read, a failed baseline failing the task for good, and a run without monitoring skipping."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from sagelift.domain.summary import build_run_summary, render_run_summary
from sagelift.links.sagemaker import SageMakerMonitoringScheduleLink, SageMakerProcessingJobLink
from sagelift.operators.monitoring import SageMakerMonitorEndpointOperator
from sagelift.triggers.jobs import SageMakerJobTrigger
from tests.steps.test_monitoring import CAPTURES, TOPIC, _account
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.sagemaker_monitoring import script_baseline
from tests.support.task_context import step_plan, step_session, use_scientist_keys

MONITORED = {
    "endpoint": {"data_capture": {"sampling_percent": 20}},
    "monitoring": {"data_quality": {"schedule": "hourly", "alarm": {"actions": [TOPIC]}}},
}


def _platform(deferrable: bool) -> dict[str, Any]:
    return {
        "region": REGION,
        "sagemaker": {"deferrable": deferrable, "check_interval_seconds": 1},
        "accounts": {SCIENTIST_ACCOUNT: {"endpoint": {"capture_prefixes": [CAPTURES]}}},
    }


def _task(
    conn_id: str, run_id: str, deferrable: bool = False, **conf: Any
) -> SageMakerMonitorEndpointOperator:
    return SageMakerMonitorEndpointOperator(
        task_id="monitor_endpoint",
        plan=step_plan(conf, _platform(deferrable), run_id=run_id),
        session=step_session(conn_id),
        tags=[{"Key": "team", "Value": "churn"}],
    )


async def _first_event(trigger: SageMakerJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger fired nothing")


def test_deferred_baseline_then_schedule_alarms_links_and_summary(
    local_aws: LocalAws, monkeypatch: Any
) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    _account(local_aws)
    with SageMakerLifecycle(time_scale=20).installed(local_aws) as life:
        script_baseline(life, seconds=20)
        task = _task(conn_id, "mon-op-1", deferrable=True, **MONITORED)
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({})
        trigger = deferred.value.trigger
        _, kwargs = trigger.serialize()
        secret = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])["password"]
        assert secret not in json.dumps(kwargs) and kwargs["operation"] == "processing_job"
        event = asyncio.run(_first_event(SageMakerJobTrigger(**{**kwargs, "waiter_delay": 0.2})))
        assert event["status"] == "success"
        result = _task(conn_id, "mon-op-1", deferrable=True, **MONITORED).execute_complete({}, event)
    json.dumps(result)  # XCom: JSON-able
    facts = result["Monitoring"]
    assert (
        facts["schedule"] == "churn-predictor"
        and facts["frequency"] == "hourly"
        and len(facts["alarms"]) == 4
    )
    schedule_url = SageMakerMonitoringScheduleLink().format_result(result)
    assert schedule_url.endswith("/sagemaker/home?region=us-east-1#/monitoring-schedules/churn-predictor")
    assert (
        SageMakerProcessingJobLink()
        .format_result(result)
        .endswith(f"#/processing-jobs/{result['Baseline']['ProcessingJobName']}")
    )
    plan = step_plan(MONITORED, _platform(True), run_id="mon-op-1")
    summary = build_run_summary(
        plan, images=None, training=None, model=None, endpoint=None, api=None, monitoring=result
    )
    assert summary["monitoring"]["console_url"] == facts["console_url"]
    assert {
        "kind": "monitoring schedule",
        "name": "churn-predictor",
        "action": "created",
        "link": facts["console_url"],
    } in summary["resources"]
    assert "Model monitoring: schedule churn-predictor (hourly, created)" in render_run_summary(summary)


def test_a_failed_baseline_fails_the_task_for_good_and_no_monitoring_skips(
    local_aws: LocalAws, monkeypatch: Any
) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    _account(local_aws)
    with SageMakerLifecycle(time_scale=20).installed(local_aws) as life:
        script_baseline(
            life, seconds=10, outcome="Failed", failure_reason="AlgorithmError: no numeric column"
        )
        with pytest.raises(AirflowFailException) as failed:
            _task(conn_id, "mon-op-2", **MONITORED).execute({})
    first = str(failed.value).splitlines()[0]
    assert "ended Failed: AlgorithmError: no numeric column" in first and len(first) < 200
    assert local_aws.client("sagemaker").list_monitoring_schedules()["MonitoringScheduleSummaries"] == []
    with pytest.raises(AirflowSkipException, match="monitoring is not set"):
        _task(conn_id, "mon-op-3").execute({})
