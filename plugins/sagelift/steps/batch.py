"""batch_transform: score the conf's S3 prefix with the run's model, as a SageMaker batch transform job.

The job's name is fixed for the run (``<model_name>-<run key>``, the run's model's name), so a retry, a
resumed deferral or a create whose answer was lost finds the job that exists and follows it instead of
starting a second one. Only ``Completed`` is a success; ``Failed`` and ``Stopped`` are final. Waiting
belongs to the engine: Airflow defers to its trigger (or waits in the worker), KFP waits with botocore's
waiter in ``transform_here``. Cancelling stops the job (``stop_transform``).

Nothing is deleted after a batch run: the job ends by itself and its results are the scientist's data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import WaiterError

from sagelift.domain.batch_settings import build_transform_job_request, transform_facts
from sagelift.domain.plan import Plan
from sagelift.steps import jobs
from sagelift.steps.endpoint import attempts
from sagelift.steps.errors import StepFailed, stop_on_sigterm

log = logging.getLogger(__name__)

RUNNING = jobs.RUNNING
STOPPABLE = jobs.STOPPABLE


def transform_job_name(plan: Plan) -> str:
    """The run's transform job: named as the run's model, which it scores."""
    return plan.names.model


def transform_request(plan: Plan, tags: list[dict[str, str]]) -> dict[str, Any]:
    return build_transform_job_request(
        plan.params.batch,
        job_name=transform_job_name(plan),
        model_name=plan.names.model,
        training_output=plan.params.training_s3_output_path,
        tags=tags,
        network=plan.platform.account(plan.account_id).network,
        overrides=plan.params.request_overrides.get("CreateTransformJob"),
    )


def start_transform(client: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """Create the job, or adopt the run's job when it exists; returns its description."""
    source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    started = f": {source} -> {request['TransformOutput']['S3OutputPath']}"
    return jobs.start_or_adopt(client, jobs.TRANSFORM_JOB, request, started)


def stop_transform(client: Any, name: str) -> bool:
    """Stop the job if it is still running; True when a stop was requested."""
    return jobs.stop_if_running(client, jobs.TRANSFORM_JOB, name)


def ended_message(description: Mapping[str, Any]) -> str:
    name = description.get("TransformJobName", "?")
    status = description.get("TransformJobStatus", "in an unknown state")
    if status == "Stopped":
        detail = "it was stopped before it completed (StopTransformJob, or the run was stopped)"
    else:
        detail = description.get("FailureReason") or "SageMaker gave no reason"
    return (
        f"Transform job {name} ended {status}: {detail}. "
        "Its name is fixed for this run, so trigger a new run to score again."
    )


def transform_outcome(description: Mapping[str, Any]) -> Mapping[str, Any]:
    """The description of a Completed job; any other end is final (``StepFailed``)."""
    if description.get("TransformJobStatus") != "Completed":
        raise StepFailed(ended_message(description))
    return description


def report_transform(description: Mapping[str, Any], say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Tell (``say``) where the results are; returns the job's JSON-able facts."""
    facts = transform_facts(description)
    took = f" in {facts['seconds']:g} s" if facts.get("seconds") is not None else ""
    say(
        f"Transform job {facts['job']} scored {facts['input_s3_uri']} on {facts['instance_count']} x "
        f"{facts['instance_type']}{took}; the results are under {facts['output_s3_uri']} "
        "(one <input object>.out per input object)."
    )
    return facts


def wait_for_transform(client: Any, name: str, delay: int, max_attempts: int) -> dict[str, Any]:
    """Wait (botocore's waiter) until the job has ended, however it ended; returns its description."""
    try:
        client.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName=name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
    except WaiterError as err:
        description = dict(client.describe_transform_job(TransformJobName=name))
        if description["TransformJobStatus"] in RUNNING:
            raise StepFailed(f"Transform job {name} did not end within the wait budget: {err}") from None
        return description
    return dict(client.describe_transform_job(TransformJobName=name))


def transform_here(
    client: Any, plan: Plan, tags: list[dict[str, str]], say: Callable[[str], None] = log.info
) -> dict[str, Any]:
    """Score in this process, for an engine that waits where Airflow defers (KFP): start this run's job
    or follow it, wait with botocore's waiter, stop it if the process is told to end (SIGTERM), and
    return the ended job's facts; empty when the run does not score in batch."""
    if plan.skip_reason("batch_transform"):
        return {}
    request = transform_request(plan, tags)
    name = str(request["TransformJobName"])
    start_transform(client, request)
    wait = plan.platform.sagemaker
    with stop_on_sigterm(lambda: stop_transform(client, name)):
        description = wait_for_transform(
            client,
            name,
            wait.check_interval_seconds,
            attempts(wait.training_wait_budget_seconds, wait.check_interval_seconds),
        )
    transform_outcome(description)
    return report_transform(description, say)
