"""label_data on Airflow (issue 20 item 4): the task defers like training to the generic job trigger,
which carries no credential; on resume it returns the job's facts; marking the deferred task failed stops
the labeling job (the trigger's on_kill), and so does killing the task in the worker; a failed job fails
the task naming the reason; a run without ``labeling`` skips with an XCom left for later readers."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from sagelift.links.sagemaker import SageMakerLabelingJobLink
from sagelift.operators.labeling import SageMakerLabelingOperator
from sagelift.triggers.jobs import SageMakerJobTrigger
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import DATA_BUCKET
from tests.support.task_context import step_plan, step_session, use_scientist_keys

WORKTEAM = f"arn:aws:sagemaker:{REGION}:{SCIENTIST_ACCOUNT}:workteam/private-crowd/agronomists"
LABELING = {
    "manifest_s3_uri": f"s3://{DATA_BUCKET}/to-label/leaves.manifest",
    "task_type": "text_classification",
    "labels": ["positive", "negative"],
    "channel": "labeled",
}


def _platform(deferrable: bool) -> dict[str, Any]:
    account = {"labeling_workteam_arn": WORKTEAM, "labeling_prefixes": [f"s3://{DATA_BUCKET}/to-label/"]}
    return {
        "region": REGION,
        "sagemaker": {"deferrable": deferrable, "check_interval_seconds": 1},
        "accounts": {SCIENTIST_ACCOUNT: account},
    }


def _task(conn_id: str, run_id: str, deferrable: bool = True, **conf: Any) -> SageMakerLabelingOperator:
    conf.setdefault("labeling", LABELING)
    return SageMakerLabelingOperator(
        task_id="label_data",
        plan=step_plan(conf, _platform(deferrable), run_id=run_id),
        session=step_session(conn_id),
        tags=[{"Key": "team", "Value": "nlp"}],
    )


def _manifest(aws: LocalAws) -> None:
    s3 = aws.client("s3", SCIENTIST_ACCOUNT)
    s3.create_bucket(Bucket=DATA_BUCKET)
    body = b'{"source": "great service"}\n{"source": "slow delivery"}\n'
    s3.put_object(Bucket=DATA_BUCKET, Key="to-label/leaves.manifest", Body=body)


def _status(aws: LocalAws, name: str) -> str:
    sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
    return str(sm.describe_labeling_job(LabelingJobName=name)["LabelingJobStatus"])


async def _first_event(trigger: SageMakerJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger fired nothing")


def test_the_task_defers_and_resumes_with_the_jobs_facts(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    _manifest(local_aws)
    with SageMakerLifecycle(time_scale=20).labeling(seconds=20).installed(local_aws):
        task = _task(conn_id, "label-defer")
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({})
        trigger = deferred.value.trigger
        assert isinstance(trigger, SageMakerJobTrigger)
        _, kwargs = trigger.serialize()
        secret = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])["password"]
        assert secret not in json.dumps(kwargs) and kwargs["operation"] == "labeling_job"
        event = asyncio.run(_first_event(SageMakerJobTrigger(**{**kwargs, "waiter_delay": 0.2})))
        assert event["status"] == "success"
        facts = _task(conn_id, "label-defer").execute_complete({}, event)  # a fresh operator resumes
    assert facts["status"] == "Completed" and facts["labeled"] == 2
    assert facts["output_manifest_s3_uri"].endswith(f"/{kwargs['job_name']}/manifests/output/output.manifest")
    json.dumps(facts)  # an XCom
    link = SageMakerLabelingJobLink().format_result(facts)
    assert link == (
        f"https://console.aws.amazon.com/sagemaker/groundtruth?region={REGION}"
        f"#/labeling-jobs/details/{kwargs['job_name']}"
    )
    assert SageMakerLabelingOperator.operator_extra_links == (SageMakerLabelingJobLink(),)


def test_marking_the_deferred_task_failed_stops_the_job(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    _manifest(local_aws)
    with SageMakerLifecycle(time_scale=20).labeling(seconds=36000, stop_seconds=20).installed(local_aws):
        with pytest.raises(TaskDeferred) as deferred:
            _task(conn_id, "label-cancel").execute({})
        trigger = deferred.value.trigger
        asyncio.run(trigger.on_kill())  # Airflow cancels the trigger of a task marked failed
        # a stop was asked of a job scripted to label for hours (it is Stopped 1 s later, so a slow
        # machine may see either)
        assert _status(local_aws, trigger.job_name) in ("Stopping", "Stopped")
        _, kwargs = trigger.serialize()
        stopped = asyncio.run(_first_event(SageMakerJobTrigger(**{**kwargs, "waiter_delay": 0.2})))
        assert stopped["status"] == "stopped"
        with pytest.raises(AirflowFailException, match="ended Stopped"):
            _task(conn_id, "label-cancel").execute_complete({}, stopped)


def test_killing_the_task_in_the_worker_stops_the_job(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    _manifest(local_aws)
    with SageMakerLifecycle(time_scale=1).labeling(seconds=3600, stop_seconds=60).installed(local_aws):
        task = _task(conn_id, "label-kill")
        with pytest.raises(TaskDeferred):
            task.execute({})  # started the job and recorded its name and connection
        task.on_kill()
        assert _status(local_aws, str(task.job_name)) == "Stopping"


def test_a_failed_job_fails_the_task_naming_the_reason(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    _manifest(local_aws)
    life = SageMakerLifecycle(time_scale=50).labeling(
        seconds=10, outcome="Failed", failure_reason="ClientError: the workteam has no workers"
    )
    with life.installed(local_aws), pytest.raises(AirflowFailException) as failed:
        _task(conn_id, "label-failed", deferrable=False).execute({})
    first = str(failed.value).splitlines()[0]
    assert "ended Failed: ClientError: the workteam has no workers" in first and len(first) < 200


def test_a_run_without_labeling_skips(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    with pytest.raises(AirflowSkipException, match="labeling is not set"):
        _task(conn_id, "label-skip", labeling={}).execute({})
