"""Many SageMaker waits on one event loop, as on a triggerer: shared clients, one describe per poll, and
the training log read within CloudWatch Logs' rate limits.

The jobs and endpoints follow the local AWS's SageMaker lifecycle emulation (tests/support/
sagemaker_lifecycle.py), which writes each job's log into the local CloudWatch Logs as it trains.
"""

from __future__ import annotations

import asyncio
import importlib
from itertools import pairwise
from typing import Any

import pytest
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

from sagelift.triggers.clients import open_keys
from sagelift.triggers.logs import (
    DESCRIBE_LOG_STREAMS_PER_SECOND,
    GET_LOG_EVENTS_PER_SECOND,
    TrainingLogTail,
)
from sagelift.triggers.sagemaker import SageMakerEndpointCompleteTrigger, SageMakerTrainingCompleteTrigger
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import DATA_BUCKET, role_arn
from tests.support.task_context import use_scientist_keys
from tests.triggers.conftest import most_in_one_second

DELAY = 0.25  # seconds between polls


class _Lines:
    """Collects what one trigger logs, formatted, in place of its logger."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str, *args: Any, **_: Any) -> None:
        self.lines.append(message % args)

    def warning(self, message: str, *args: Any, **_: Any) -> None:
        self.warnings.append(message % args)

    error = warning


def _create_jobs(local_aws, names: list[str], instance_count: int = 1) -> None:
    sagemaker = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    for name in names:
        sagemaker.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
            RoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-training-execution"),
            OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/out/"},
            ResourceConfig={
                "InstanceType": "ml.m5.large",
                "InstanceCount": instance_count,
                "VolumeSizeInGB": 1,
            },
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
        )


def _create_endpoints(local_aws, names: list[str]) -> None:
    sagemaker = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    sagemaker.create_model(
        ModelName="m",
        PrimaryContainer={"Image": "img", "ModelDataUrl": f"s3://{DATA_BUCKET}/model.tar.gz"},
        ExecutionRoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-model-execution"),
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="c",
        ProductionVariants=[
            {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        ],
    )
    for name in names:
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName="c")


def _as_stored(trigger: Any, drop: tuple[str, ...] = ()) -> Any:
    """The trigger rebuilt from its serialized kwargs, as the triggerer does (``drop``: kwargs an older
    revision did not serialize)."""
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(
        **{k: v for k, v in kwargs.items() if k not in drop}
    )


def _training(conn_id: str, job: str, **kwargs: Any) -> SageMakerTrainingCompleteTrigger:
    return SageMakerTrainingCompleteTrigger(
        job_name=job,
        waiter_delay=DELAY,  # type: ignore[arg-type]  # seconds; a float keeps the test short
        waiter_max_attempts=400,
        aws_conn_id=conn_id,
        region_name=REGION,
        **kwargs,
    )


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def test_training_and_endpoint_waits_share_two_clients_and_describe_each_job_once_per_poll(
    local_aws, monkeypatch, async_aws
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    jobs, endpoints = [f"job-{i:02d}" for i in range(20)], [f"endpoint-{i}" for i in range(5)]
    _create_jobs(local_aws, jobs)  # before the lifecycle: each job's clock starts at its first describe
    life = SageMakerLifecycle(time_scale=60).training(seconds=180).endpoint_create(seconds=60)
    with life.installed(local_aws):
        _create_endpoints(local_aws, endpoints)
        training = [_as_stored(_training(conn_id, job, instance_count=1)) for job in jobs]
        logs = {job: _Lines() for job in jobs}
        for trigger in training:
            trigger._log = logs[trigger.job_name]
        waiting = [
            _as_stored(
                SageMakerEndpointCompleteTrigger(
                    job_name=name,
                    waiter_delay=DELAY,
                    waiter_max_attempts=400,
                    aws_conn_id=conn_id,
                    region_name=REGION,
                )
            )
            for name in endpoints
        ]

        async def triggerer() -> list[dict[str, Any]]:
            events = await asyncio.gather(*(_first_event(t) for t in [*training, *waiting]))
            assert open_keys() == []  # the last wait to end closed the clients
            return list(events)

        events = asyncio.run(triggerer())
        expected = {job: life.task_log_lines(job) for job in jobs}

    assert [e["status"] for e in events] == ["success"] * 25
    assert sorted(async_aws.made) == ["logs", "sagemaker"] and async_aws.closed == 2
    for job in jobs:
        describes = async_aws.times("DescribeTrainingJob", TrainingJobName=job)
        gaps = [b - a for a, b in pairwise(describes)]
        assert len(describes) >= 2 and min(gaps) > DELAY / 2, f"{job} described again within a poll: {gaps}"
        # Listed once: when the waiter's answer showed its container started (the stream was there).
        assert len(async_aws.times("DescribeLogStreams", logStreamNamePrefix=f"{job}/")) == 1
        assert [line for line in logs[job].lines if not line.startswith("Training log of")] == expected[job]
        assert logs[job].warnings == []


def test_a_trigger_stored_without_the_instance_count_learns_it_from_its_waiter(
    local_aws, monkeypatch, async_aws
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    _create_jobs(local_aws, ["job-two"], instance_count=2)
    with SageMakerLifecycle(time_scale=60).training(seconds=90).installed(local_aws) as life:
        trigger = _as_stored(_training(conn_id, "job-two", instance_count=2), drop=("instance_count",))
        assert trigger.instance_count == 0
        trigger._log = lines = _Lines()

        event = asyncio.run(_first_event(trigger))
        expected = life.task_log_lines("job-two")

    assert event["status"] == "success"
    describes = async_aws.times("DescribeTrainingJob", TrainingJobName="job-two")
    assert min(b - a for a, b in pairwise(describes)) > DELAY / 2  # no extra describe
    streamed = [line for line in lines.lines if line.startswith("[algo-")]
    assert sorted(streamed) == sorted(expected)  # both streams, each line once, with its stream's name


def test_streams_are_not_looked_for_before_the_container_starts_nor_at_every_poll_after(
    local_aws, monkeypatch, async_aws
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)

    async def polls() -> None:
        async with await AwsLogsHook(aws_conn_id=conn_id, region_name=REGION).get_async_conn() as client:
            waiting = TrainingLogTail("job-starting", _Lines(), 1, wait_for_start=True, list_backoff=0.05)
            waiting.observe({"SecondaryStatus": "LaunchingMLInstances"})
            started = TrainingLogTail("job-silent", _Lines(), 1, wait_for_start=True, list_backoff=0.05)
            started.observe({"SecondaryStatus": "Training"})
            for _ in range(120):  # 1.2 s of polls every 10 ms
                await waiting.poll(client)
                await started.poll(client)
                await asyncio.sleep(0.01)

    asyncio.run(polls())

    assert async_aws.times("DescribeLogStreams", logStreamNamePrefix="job-starting/") == []
    # A job whose stream never comes: looked for after 0, 0.05, 0.15, 0.35, 0.75 s..., not 120 times.
    assert 3 <= len(async_aws.times("DescribeLogStreams", logStreamNamePrefix="job-silent/")) <= 7


@pytest.mark.parametrize("waits", [40])
def test_many_training_waits_read_their_logs_within_the_cloudwatch_rate_limits(
    local_aws, monkeypatch, async_aws, waits
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    monkeypatch.setenv("AIRFLOW__SAGELIFT__GET_LOG_EVENTS_PER_SECOND", "4")  # an account's own budget
    jobs = [f"busy-{i:02d}" for i in range(waits)]
    # 6 s of real time per job: streams at 0.6 s, then lines every 1.2 s; the waits poll every 0.25 s,
    # so unpaced, their tails would ask for 160 reads a second.
    _create_jobs(local_aws, jobs)
    with SageMakerLifecycle(time_scale=600).training(seconds=3600).installed(local_aws):
        triggers = [_as_stored(_training(conn_id, job, instance_count=1)) for job in jobs]
        for trigger in triggers:
            trigger._log = _Lines()

        async def triggerer_for(seconds: float) -> list[object]:
            running = [asyncio.create_task(_first_event(t)) for t in triggers]
            await asyncio.sleep(seconds)
            for task in running:
                task.cancel()  # the triggerer shutting down
            ended = await asyncio.gather(*running, return_exceptions=True)
            assert open_keys() == []
            return ended

        ended = asyncio.run(triggerer_for(4.0))

    assert all(isinstance(e, asyncio.CancelledError) for e in ended)
    listed, read = async_aws.times("DescribeLogStreams"), async_aws.times("GetLogEvents")
    assert listed and read
    assert most_in_one_second(listed) <= DESCRIBE_LOG_STREAMS_PER_SECOND
    assert most_in_one_second(read) <= 4 < GET_LOG_EVENTS_PER_SECOND
    assert async_aws.closed == len(async_aws.made) == 2
