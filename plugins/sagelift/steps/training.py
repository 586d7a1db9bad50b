"""Step 5, train_model: start the run's training job (or adopt it), stop it, and judge its outcome.

The job's name is fixed for the run (``<model_name>-<run key>``), so a retry, a resumed deferral or a
create whose answer was lost finds the job that exists and follows it instead of starting a second one.
Only ``Completed`` is a success; ``Failed`` and ``Stopped`` are final (a retry could only find the same
ended job). Waiting belongs to the engine: Airflow defers to its trigger or waits in the worker with the
provider's log streaming, KFP waits with the botocore waiter in ``wait_for_training``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import WaiterError

from sagelift.domain.plan import Plan
from sagelift.domain.sagemaker import build_training_job_request, expected_model_artifact
from sagelift.domain.training_settings import render_training_facts, training_facts
from sagelift.steps import jobs
from sagelift.steps.endpoint import attempts
from sagelift.steps.errors import StepFailed, stop_on_sigterm

log = logging.getLogger(__name__)

RUNNING = jobs.RUNNING
STOPPABLE = jobs.STOPPABLE


def training_request(
    plan: Plan, tags: list[dict[str, str]], images: Mapping[str, Any] | None
) -> dict[str, Any]:
    return build_training_job_request(
        plan.params,
        plan.names,
        region=plan.region,
        role_arn=plan.platform.training_role_arn(plan.account_id),
        tags=tags,
        settings=plan.platform.sagemaker,
        copied_images=images,
        network=plan.platform.account(plan.account_id).network,
    )


def start_training(client: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """Create the job, or adopt the run's job when it exists; returns its description."""
    return jobs.start_or_adopt(client, jobs.TRAINING_JOB, request)


def stop_training(client: Any, name: str) -> bool:
    """Stop the job if it is still training; True when a stop was requested."""
    return jobs.stop_if_running(client, jobs.TRAINING_JOB, name)


def ended_message(description: Mapping[str, Any]) -> str:
    name = description.get("TrainingJobName", "?")
    status = description.get("TrainingJobStatus", "in an unknown state")
    if status == "Stopped":
        detail = "it was stopped before it completed (StopTrainingJob, or the run was stopped)"
    else:
        detail = description.get("FailureReason") or "SageMaker gave no reason"
    return (
        f"Training job {name} ended {status}: {detail}. "
        f"Its name is fixed for this run, so trigger a new run to train again."
    )


def training_outcome(description: Mapping[str, Any]) -> Mapping[str, Any]:
    """The description of a Completed job; any other end is final (``StepFailed``)."""
    if description.get("TrainingJobStatus") != "Completed":
        raise StepFailed(ended_message(description))
    return description


def report_training(description: Mapping[str, Any], say: Callable[[str], None] = log.info) -> dict[str, Any]:
    """Tell (``say``: the log by default) what a finished job shows: spot interruptions, billable against
    training seconds, final metrics; returns them as JSON-able facts."""
    facts = training_facts(description)
    for line in render_training_facts(str(description.get("TrainingJobName", "?")), facts):
        say(line)
    return facts


def wait_for_training(client: Any, name: str, delay: int, max_attempts: int) -> dict[str, Any]:
    """Wait (botocore's waiter) until the job has ended, however it ended; returns its description."""
    try:
        client.get_waiter("training_job_completed_or_stopped").wait(
            TrainingJobName=name, WaiterConfig={"Delay": delay, "MaxAttempts": max_attempts}
        )
    except WaiterError as err:
        description = dict(client.describe_training_job(TrainingJobName=name))
        if description["TrainingJobStatus"] in RUNNING:
            raise StepFailed(f"Training job {name} did not end within the wait budget: {err}") from None
        return description
    return dict(client.describe_training_job(TrainingJobName=name))


def model_artifact(plan: Plan, description: Mapping[str, Any] | None) -> str:
    """The artifact to deploy: the given one, the trained job's, or where SageMaker writes it."""
    if plan.params.model_artifact_s3_path:
        return plan.params.model_artifact_s3_path
    artifact = ((description or {}).get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if artifact:
        return str(artifact)
    return expected_model_artifact(str(plan.params.training_s3_output_path), plan.names.training_job)


def train_here(
    client: Any,
    plan: Plan,
    tags: list[dict[str, str]],
    images: Mapping[str, Any] | None,
    say: Callable[[str], None] = log.info,
) -> tuple[str, dict[str, Any]]:
    """Train in this process, for an engine that waits where Airflow defers (KFP): start this run's job
    or follow it, wait with botocore's waiter, stop it if the process is told to end (SIGTERM), tell
    (``say``) what the ended job shows, and return the artifact to deploy with those facts (spot,
    billable seconds, final metrics; ``training_facts``), empty when nothing was trained."""
    if not plan.params.trains:
        return model_artifact(plan, None), {}
    if plan.params.tuning.enabled:  # the tuning job trains instead; its best job's artifact is deployed
        from sagelift.steps.tuning import tune_here  # tuning builds on this module

        return tune_here(client, plan, tags, images, say)
    request = training_request(plan, tags, images)
    name = str(request["TrainingJobName"])
    start_training(client, request)
    wait = plan.platform.sagemaker
    with stop_on_sigterm(lambda: stop_training(client, name)):
        description = wait_for_training(
            client,
            name,
            wait.check_interval_seconds,
            attempts(wait.training_wait_budget_seconds, wait.check_interval_seconds),
        )
    training_outcome(description)
    facts = report_training(description, say)
    return model_artifact(plan, description), facts
