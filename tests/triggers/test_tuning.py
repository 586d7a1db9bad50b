"""The deferred tuning wait (issue 17 item 1): it logs the tuning's progress from the waiter's own
DescribeHyperParameterTuningJob answers (no extra call), ends with the provider's events, carries no
credential, and stops the tuning job when the deferred task is marked failed (its on_kill); the operator's
on_kill stops it when the task waits in the worker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sagelift.domain.plan import Plan, build_plan
from sagelift.operators.tuning import SageMakerTuneModelOperator
from sagelift.steps import tuning
from sagelift.triggers.sagemaker import SageMakerTuningCompleteTrigger
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import demo_conf
from tests.support.task_context import use_scientist_keys
from tests.triggers.test_sagemaker import _as_stored, _first_event, _Lines

DELAY = 0.25
PLATFORM = {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: {}}}
TUNING = {
    "objective_metric": "validation:auc",
    "parameter_ranges": {"depth": {"type": "integer", "min": 3, "max": 9}},
    "max_jobs": 3,
    "max_parallel_jobs": 1,
}


def _start(local_aws: Any, run_id: str) -> str:
    conf = demo_conf(
        training={"metric_definitions": [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}]}, tuning=TUNING
    )
    plan = Plan.from_xcom(build_plan(conf, PLATFORM, "sagemaker_deploy", run_id))
    request = tuning.tuning_request(plan, [], None)
    tuning.start_tuning(local_aws.client("sagemaker", SCIENTIST_ACCOUNT), request)
    return str(request["HyperParameterTuningJobName"])


def _trigger(conn_id: str, name: str) -> SageMakerTuningCompleteTrigger:
    return SageMakerTuningCompleteTrigger(
        job_name=name,
        waiter_delay=DELAY,  # type: ignore[arg-type]  # seconds; a float keeps the test short
        waiter_max_attempts=400,
        aws_conn_id=conn_id,
        region_name=REGION,
    )


def _status(local_aws: Any, name: str) -> str:
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    return sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)[
        "HyperParameterTuningJobStatus"
    ]


def test_the_wait_logs_progress_once_per_change_and_ends_with_success(local_aws, monkeypatch, async_aws):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    with (
        SageMakerLifecycle(time_scale=25)  # 6 s: one job completes every 2 s
        .tuning(seconds=150, objective_values=(0.7, 0.9, 0.8))
        .installed(local_aws)
    ):
        name = _start(local_aws, "wait-1")
        trigger = _as_stored(_trigger(conn_id, name))  # as the triggerer rebuilds it
        trigger._log = lines = _Lines()
        event = asyncio.run(_first_event(trigger))
    assert event == {"status": "success", "job_name": name}
    progress = [line for line in lines.lines if line.startswith(f"Tuning job {name}")]
    assert len(progress) == len(set(progress)) >= 2, lines.lines  # each change told once
    assert any("2 training jobs completed" in line and "0.9" in line for line in progress)
    # the progress comes from the waiter's own polls: one describe per poll, no more
    describes = async_aws.of("DescribeHyperParameterTuningJob")
    assert describes and all(params == {"HyperParameterTuningJobName": name} for _, params in describes)


def test_a_failed_tuning_job_ends_the_wait_with_its_reason(local_aws, monkeypatch, async_aws):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    life = SageMakerLifecycle(time_scale=50).tuning(
        seconds=10, outcome="Failed", failure_reason="All jobs failed"
    )
    with life.installed(local_aws):
        name = _start(local_aws, "wait-2")
        event = asyncio.run(_first_event(_trigger(conn_id, name)))
    assert (event["status"], event["message"]) == ("failed", "All jobs failed")


def test_marking_the_deferred_task_failed_stops_the_tuning_job(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    with SageMakerLifecycle(time_scale=1).tuning(seconds=3600, stop_seconds=60).installed(local_aws):
        name = _start(local_aws, "kill-1")
        trigger = _trigger(conn_id, name)
        # The trigger carries no credential: the triggerer builds the session from the connection.
        assert "password" not in json.dumps(trigger.serialize()[1])
        asyncio.run(trigger.on_kill())
        assert _status(local_aws, name) == "Stopping"


def test_killing_the_task_waiting_in_the_worker_stops_the_tuning_job(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    with SageMakerLifecycle(time_scale=1).tuning(seconds=3600, stop_seconds=60).installed(local_aws):
        name = _start(local_aws, "kill-2")
        operator = SageMakerTuneModelOperator(task_id="tune_model", aws_conn_id=conn_id, region_name=REGION)
        operator.job_name = name  # what execute() records before it waits
        operator.on_kill()
        assert _status(local_aws, name) == "Stopping"
