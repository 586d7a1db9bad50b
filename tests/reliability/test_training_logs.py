"""The training job's log in train_model's task log, in both waits, each line once.

The emulated SageMaker (tests/support/sagemaker_lifecycle.py) writes the job's log lines into the local
AWS's CloudWatch Logs as the job progresses; the deferred wait's trigger streams them, the in-worker wait
prints them with the provider's own log reader.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

from sagelift.domain.plan import build_plan, derive_run_key
from sagelift.operators.sagemaker import SageMakerTrainModelOperator
from sagelift.triggers.sagemaker import TrainingLogTail
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle, training_log_lines
from tests.support.scenario import DATA_BUCKET, demo_conf, role_arn
from tests.support.task_context import SCIENTIST_CONN_ID, FakeTaskInstance, step_session, use_scientist_keys

pytestmark = pytest.mark.e2e


class _Lines:
    """Collects what is logged, formatted, in place of a trigger's logger."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)

    def warning(self, message: str, *args: Any, **_: Any) -> None:
        self.warnings.append(message % args)

    error = warning


def _create_job(local_aws, name: str, instance_count: int) -> None:
    local_aws.client("sagemaker", SCIENTIST_ACCOUNT).create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-training-execution"),
        OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": instance_count, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )


def test_deferred_training_streams_each_log_line_into_the_task_log_once(run_deploy, lifecycle, capfd):
    # A failed job: when its log matters most, and the run stops after train_model (a shorter test).
    # 2 s, so the trigger reads the log over several polls before the final read.
    lifecycle.training(seconds=120, outcome="Failed", failure_reason="AlgorithmError: loss is NaN")

    result = run_deploy(demo_conf())  # two instances: each line carries its stream's name

    assert result.states["train_model"] == "failed"
    job = f"churn-predictor-{derive_run_key('sagemaker_deploy', result.dag_run.run_id)}"
    expected = lifecycle.task_log_lines(job)
    lines = training_log_lines(job, 2, "Failed", "AlgorithmError: loss is NaN")
    assert len(expected) == 2 * len(lines["algo-1"])
    assert lines["algo-1"][-1] == "Training failed: AlgorithmError: loss is NaN"
    out = capfd.readouterr().out
    assert {line: out.count(line) for line in expected} == {line: 1 for line in expected}


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "not-streamed"])
def test_in_worker_training_prints_the_log_unless_the_platform_turns_it_off(
    lifecycle, local_aws, monkeypatch, capfd, stream
):
    # The provider's in-worker reader asks for the job's status only every 30 s: a job already ended
    # at its first look keeps this test short.
    lifecycle.training(seconds=0)
    use_scientist_keys(local_aws, monkeypatch)
    platform = {
        "region": REGION,
        "accounts": {SCIENTIST_ACCOUNT: {}},
        "sagemaker": {"deferrable": False, "check_interval_seconds": 1, "stream_training_logs": stream},
    }
    conf = demo_conf(training_instance_count=1)
    plan = build_plan(conf, platform, "sagemaker_deploy", f"manual__{stream}")
    ti = FakeTaskInstance({}, task_id="train_model")
    operator = SageMakerTrainModelOperator(
        task_id="train_model", plan=plan, session=step_session(SCIENTIST_CONN_ID), tags=[]
    )

    result = operator.execute({"ti": ti})

    assert result["Training"]["TrainingJobStatus"] == "Completed"
    out = capfd.readouterr().out
    lines = training_log_lines(plan["names"]["training_job"])["algo-1"]
    assert {line: out.count(line) for line in lines} == {line: int(stream) for line in lines}


def test_polls_resume_where_they_stopped_and_a_new_trigger_starts_over(lifecycle, local_aws, monkeypatch):
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    lifecycle.training(seconds=90)  # 1.5 s, written while the polls run
    _create_job(local_aws, "job-tail", instance_count=2)
    printed, again = _Lines(), _Lines()

    async def follow() -> None:
        async with await AwsLogsHook(aws_conn_id=conn_id, region_name=REGION).get_async_conn() as client:
            tail = TrainingLogTail("job-tail", printed, instance_count=2)
            ended, deadline = time.monotonic() + 1.6, time.monotonic() + 30
            while not (tail.caught_up and time.monotonic() > ended):
                assert time.monotonic() < deadline, "the polls never caught up with the log"
                # One line per stream per poll: lines printed together get split across polls.
                await tail.poll(client, budget=2)
                await asyncio.sleep(0.05)
            # A trigger resumed on another triggerer knows nothing of the first one's positions.
            await TrainingLogTail("job-tail", again, instance_count=2).poll(client)

    asyncio.run(follow())

    expected = lifecycle.task_log_lines("job-tail")
    streamed = [line for line in printed.lines if line.startswith("[algo-")]
    assert sorted(streamed) == sorted(expected)  # each line once, none missing
    for stream in ("[algo-1-", "[algo-2-"):  # each stream in its own order
        assert [x for x in streamed if x.startswith(stream)] == [x for x in expected if x.startswith(stream)]
    assert printed.warnings == []  # polls before the log group existed are normal
    assert sorted(line for line in again.lines if line.startswith("[algo-")) == sorted(expected)


def test_the_emulated_log_grows_with_the_job_and_ends_at_a_stop(local_aws):
    logs = local_aws.client("logs", SCIENTIST_ACCOUNT)

    def lines() -> list[str]:
        found = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")["logStreams"]
        assert [s["logStreamName"].rsplit("-", 1)[0] for s in found] == ["job-stop/algo-1"]
        events = logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=found[0]["logStreamName"]
        )["events"]
        return [e["message"] for e in events]

    # 8 s: the stream appears at 0.8 s, the last line would come at 8 s (room for a loaded machine to stop
    # the job before its scripted end; a 2-s job once ended before the stop reached it).
    with SageMakerLifecycle(time_scale=100).training(seconds=800).installed(local_aws):
        _create_job(local_aws, "job-stop", instance_count=1)
        deadline = time.monotonic() + 6
        while "/aws/sagemaker/TrainingJobs" not in [
            g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]
        ]:
            assert time.monotonic() < deadline, "no training log"
        local_aws.client("sagemaker", SCIENTIST_ACCOUNT).stop_training_job(TrainingJobName="job-stop")
        time.sleep(8)  # past the job's scripted end
        written = lines()

    script = training_log_lines("job-stop")["algo-1"]
    assert 1 <= len(written) - 1 < len(script)
    assert written == [*script[: len(written) - 1], "Received SIGTERM; training stopped"]
