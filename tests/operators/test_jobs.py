"""The generic job task (sagelift.operators.jobs) and its trigger (sagelift.triggers.jobs), shown on a
training job, whose lifecycle the stand-in scripts (success, failure, stop): the task starts or adopts the
run's one job, waits deferred or in the worker, fails naming SageMaker's reason, and stops the job on
cancel; the trigger fires the job's end (or gives up) and carries no credential."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException, TaskDeferred

from sagelift.domain.lock import plan_lock, run_holder
from sagelift.domain.plan import Plan
from sagelift.operators.jobs import SageMakerJobOperator
from sagelift.steps import jobs, training
from sagelift.steps import lock as locks
from sagelift.triggers.jobs import SageMakerJobTrigger
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.task_context import step_plan, step_session, use_scientist_keys


def _platform(deferrable: bool) -> dict[str, Any]:
    return {
        "region": REGION,
        "sagemaker": {"deferrable": deferrable, "check_interval_seconds": 1},
        "accounts": {SCIENTIST_ACCOUNT: {}},
    }


class _TrainingTask(SageMakerJobOperator):
    """A job task as issue 20's tasks write one: a kind, a request, a result."""

    job_kind = jobs.TRAINING_JOB

    def skip_reason(self, plan: Plan) -> str | None:
        return None if plan.params.trains else "nothing to train"

    def build_request(self, plan: Plan, context: Any) -> dict[str, Any]:
        return training.training_request(plan, self.read_tags(), None)

    def finish(self, description: dict[str, Any], plan: Plan) -> dict[str, Any]:
        return {"job": description["TrainingJobName"], "status": description["TrainingJobStatus"]}


def _task(conn_id: str, run_id: str, deferrable: bool = False, **conf: Any) -> _TrainingTask:
    return _TrainingTask(
        task_id="a_job",
        plan=step_plan(conf, _platform(deferrable), run_id=run_id),
        session=step_session(conn_id),
    )


def _status(local_aws: LocalAws, name: str) -> str:
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    return str(sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"])


def _creates(local_aws: LocalAws) -> int:
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    return len(sm.list_training_jobs()["TrainingJobSummaries"])


def test_the_task_waits_in_the_worker_and_a_retry_follows_the_same_job(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    with SageMakerLifecycle(time_scale=10).training(seconds=20).installed(local_aws):
        first = _task(conn_id, "jobs-1").execute({})
        again = _task(conn_id, "jobs-1").execute({})  # a retry of the same run
    assert first == again == {"job": first["job"], "status": "Completed"}
    assert _creates(local_aws) == 1


def test_a_failed_job_fails_the_task_for_good_naming_the_reason(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    life = SageMakerLifecycle(time_scale=20).training(
        seconds=10, outcome="Failed", failure_reason="OOM on algo-1"
    )
    with life.installed(local_aws), pytest.raises(AirflowFailException) as failed:
        _task(conn_id, "jobs-2").execute({})
    first_line = str(failed.value).splitlines()[0]
    assert "ended Failed: OOM on algo-1" in first_line and len(first_line) < 200


def test_deferred_the_trigger_carries_no_credential_and_the_end_is_judged_on_resume(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    with SageMakerLifecycle(time_scale=10).training(seconds=20).installed(local_aws):
        task = _task(conn_id, "jobs-3", deferrable=True)
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({})
        trigger = deferred.value.trigger
        assert isinstance(trigger, SageMakerJobTrigger)
        _, kwargs = trigger.serialize()
        secret = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])["password"]
        assert secret not in json.dumps(kwargs) and kwargs["operation"] == "training_job"
        event = asyncio.run(_first_event(SageMakerJobTrigger(**{**kwargs, "waiter_delay": 0.2})))
        assert event["status"] == "success"
        resumed = _task(conn_id, "jobs-3", deferrable=True)  # the triggerer's resume: a fresh operator
        assert resumed.execute_complete({}, event)["status"] == "Completed"
        with pytest.raises(AirflowException, match="ended with timeout"):
            resumed.execute_complete({}, {"status": "timeout", "job_name": event["job_name"], "message": "x"})


def test_the_trigger_fires_failed_and_stopped_with_the_reason_and_gives_up_after_its_attempts(
    local_aws, monkeypatch
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    plan = Plan.from_xcom(step_plan({}, _platform(True), run_id="jobs-4"))
    request = training.training_request(plan, [], None)
    name = str(request["TrainingJobName"])
    life = SageMakerLifecycle(time_scale=10).training(seconds=60, outcome="Failed", failure_reason="bad data")
    with life.installed(local_aws):
        jobs.start_or_adopt(local_aws.client("sagemaker", SCIENTIST_ACCOUNT), jobs.TRAINING_JOB, request)
        gave_up = asyncio.run(_first_event(_trigger(conn_id, name, attempts=1)))
        ended = asyncio.run(_first_event(_trigger(conn_id, name)))
    assert gave_up["status"] == "timeout" and "did not end within 1 polls" in gave_up["message"]
    assert (ended["status"], ended["message"]) == ("failed", "bad data")

    plan = Plan.from_xcom(step_plan({}, _platform(True), run_id="jobs-5"))
    request = training.training_request(plan, [], None)
    with SageMakerLifecycle(time_scale=20).training(seconds=3600, stop_seconds=20).installed(local_aws):
        jobs.start_or_adopt(local_aws.client("sagemaker", SCIENTIST_ACCOUNT), jobs.TRAINING_JOB, request)
        trigger = _trigger(conn_id, str(request["TrainingJobName"]))
        asyncio.run(trigger.on_kill())  # the deferred task was marked failed
        # a stop was asked of a job scripted to train for hours (Stopped 1 s later: a slow machine sees either)
        assert _status(local_aws, str(request["TrainingJobName"])) in ("Stopping", "Stopped")
        stopped = asyncio.run(_first_event(trigger))
    assert stopped["status"] == "stopped"


def test_killing_the_task_in_the_worker_stops_the_job_and_a_run_it_does_not_apply_to_skips(
    local_aws, monkeypatch
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    with SageMakerLifecycle(time_scale=1).training(seconds=3600, stop_seconds=60).installed(local_aws):
        plan = Plan.from_xcom(step_plan({}, _platform(False), run_id="jobs-6"))
        request = training.training_request(plan, [], None)
        jobs.start_or_adopt(local_aws.client("sagemaker", SCIENTIST_ACCOUNT), jobs.TRAINING_JOB, request)
        task = _task(conn_id, "jobs-6")
        task.aws_conn_id, task.region_name = conn_id, REGION  # what execute() records before it waits
        task.job_name = str(request["TrainingJobName"])
        task.on_kill()
        assert _status(local_aws, task.job_name) == "Stopping"
    skipped = _task(
        conn_id,
        "jobs-7",
        model_artifact_s3_path="s3://sagelift-demo-models/m/model.tar.gz",
        training_docker_image=None,
    )
    with pytest.raises(AirflowSkipException, match="nothing to train"):
        skipped.execute({})


def test_job_states_cover_every_kind_s_own_words():
    rec = jobs.RECOMMENDATION_JOB
    assert [jobs.job_state(rec, {"Status": s}) for s in ("PENDING", "IN_PROGRESS", "STOPPING")] == [
        "running"
    ] * 3
    assert jobs.job_state(rec, {"Status": "COMPLETED"}) == "success"
    assert jobs.job_state(rec, {"Status": "STOPPED"}) == "stopped"
    assert jobs.job_state(rec, {"Status": "FAILED"}) == "failed"
    assert jobs.job_state(jobs.LABELING_JOB, {"LabelingJobStatus": "Initializing"}) == "running"
    assert jobs.job_state(jobs.PROCESSING_JOB, {"ProcessingJobStatus": "Completed"}) == "success"
    message = jobs.ended_message(rec, {"JobName": "r-1", "Status": "FAILED", "FailureReason": "x" * 500})
    assert message.startswith("Inference recommendations job r-1 ended FAILED: xxx") and len(message) < 300


def test_an_in_process_wait_tells_each_status_once_and_gives_up_after_its_budget():
    class _Client:
        def __init__(self, statuses: list[str]) -> None:
            self.statuses = statuses

        def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
            return {"LabelingJobName": LabelingJobName, "LabelingJobStatus": status}

    said: list[str] = []
    client = _Client(["Initializing", "InProgress", "InProgress", "Completed"])
    done = jobs.wait_for_job(client, jobs.LABELING_JOB, "l-1", 0, 10, said.append, sleep=lambda _: None)
    assert done["LabelingJobStatus"] == "Completed"
    assert said == [
        "Labeling job l-1: Initializing",
        "Labeling job l-1: InProgress",
        "Labeling job l-1: Completed",
    ]
    with pytest.raises(jobs.StepFailed, match="did not end within the wait budget"):
        jobs.wait_for_job(
            _Client(["InProgress"]), jobs.LABELING_JOB, "l-2", 0, 3, said.append, sleep=lambda _: None
        )


def _trigger(conn_id: str, name: str, attempts: int = 400) -> SageMakerJobTrigger:
    return SageMakerJobTrigger(
        operation="training_job",
        job_name=name,
        waiter_delay=0.2,
        waiter_max_attempts=attempts,
        aws_conn_id=conn_id,
        region_name=REGION,
    )


async def _first_event(trigger: SageMakerJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger fired nothing")


def test_a_job_task_stops_before_its_job_when_another_run_took_the_model_lock(local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    bucket = f"sagelift-state-{SCIENTIST_ACCOUNT}"
    local_aws.client("s3", SCIENTIST_ACCOUNT).create_bucket(Bucket=bucket)
    locked = {**_platform(False), "locks_s3_uri": "s3://sagelift-state-{account_id}/locks/"}
    slow = step_plan({}, {**locked, "locks": {"lease_seconds": 1}}, run_id="jobs-slow")
    later = Plan.from_xcom(step_plan({}, locked, run_id="jobs-later"))
    s3 = local_aws.client("s3", SCIENTIST_ACCOUNT)
    assert locks.try_acquire(s3, plan_lock(later), run_holder(Plan.from_xcom(slow))).acquired
    time.sleep(2.2)  # slow's lease lapsed (queued, say, for hours): the later run takes the lock over
    assert locks.try_acquire(s3, plan_lock(later), run_holder(later)).took_over is not None
    task = _TrainingTask(task_id="a_job", plan=slow, session=step_session(conn_id))
    with pytest.raises(AirflowFailException, match="is now locked by run jobs-later"):
        task.execute({})
    assert _creates(local_aws) == 0
