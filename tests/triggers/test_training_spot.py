"""The deferred training wait shows a spot job's interruption and its resume in the task log (issue 17
item 2), learnt from the waiter's own DescribeTrainingJob answers: no extra call."""

from __future__ import annotations

import asyncio
import time

from sagelift.triggers.sagemaker import SageMakerTrainingCompleteTrigger
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import DATA_BUCKET, role_arn
from tests.support.task_context import use_scientist_keys
from tests.triggers.test_sagemaker import _first_event, _Lines

DELAY = 0.75  # seconds between polls: longer than the emulated interruption (0.5 s), which is still told


def _start_spot_job(local_aws, name: str) -> None:
    local_aws.client("sagemaker", SCIENTIST_ACCOUNT).create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-training-execution"),
        OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        EnableManagedSpotTraining=True,
        CheckpointConfig={"S3Uri": f"s3://{DATA_BUCKET}/out/{name}/checkpoints/"},
    )


def _spot_lines(conn_id: str, name: str, max_attempts: int) -> list[str]:
    """Wait for the job as the deferred task does; the spot lines the wait logged (it must succeed)."""
    trigger = SageMakerTrainingCompleteTrigger(
        job_name=name,
        waiter_delay=DELAY,  # type: ignore[arg-type]
        waiter_max_attempts=max_attempts,
        aws_conn_id=conn_id,
        region_name=REGION,
        instance_count=1,
    )
    trigger._log = lines = _Lines()
    event = asyncio.run(_first_event(trigger))
    assert event["status"] == "success"
    spot = [line for line in lines.lines if line.startswith(f"Spot training job {name}")]
    assert len(spot) == 2, lines.lines  # interrupted, then resumed
    assert "interrupted" in spot[0] and "resumed" in spot[1]
    return spot


def test_the_wait_logs_the_interruption_and_the_resume_once_each(local_aws, monkeypatch, async_aws):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    # 5 s: interrupted from 2.0 s to 2.5 s, between two polls: the wait learns of it from the transitions
    with SageMakerLifecycle(time_scale=20).training(seconds=100, interruptions=1).installed(local_aws):
        _start_spot_job(local_aws, "job-spot")
        _spot_lines(conn_id, "job-spot", max_attempts=400)


def test_an_interruption_is_told_when_the_job_completed_before_the_first_poll(
    local_aws, monkeypatch, async_aws
):
    """The waiter's final, successful answer is the only one the wait gets: it is shown to the log tail too."""
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    life = SageMakerLifecycle(time_scale=1000).training(seconds=100, interruptions=1)  # 0.1 s
    with life.installed(local_aws):
        _start_spot_job(local_aws, "job-spot-quick")
        sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
        deadline = time.monotonic() + 30
        while sm.describe_training_job(TrainingJobName="job-spot-quick")["TrainingJobStatus"] != "Completed":
            assert time.monotonic() < deadline, "the emulated job never completed"
            time.sleep(0.05)
        _spot_lines(conn_id, "job-spot-quick", max_attempts=10)
