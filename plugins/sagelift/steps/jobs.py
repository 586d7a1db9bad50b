"""What the run's SageMaker jobs (training, tuning, batch transform, labeling, processing, inference
recommendations) share: start or adopt, follow to the end, judge the end, and stop.

Each job's name is fixed for the run, so a retry, a resumed deferral or a create whose answer was lost
finds the job that exists and follows it instead of starting a second one; a stop is asked only of a
job still running, and a failed stop is logged, never raised (it runs while a task is being killed).

``job_state`` maps each kind's own status words onto four states (running, success, failed, stopped), so
one wait serves every kind: ``wait_for_job`` polls in the process (KFP, and Airflow when not deferring),
and sagelift.triggers.jobs polls on the triggerer. ``follow_here`` is the KFP engine's whole wait: follow,
stop on SIGTERM, judge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from sagelift.steps.errors import StepFailed, describe_or_none, error_code, stop_on_sigterm

log = logging.getLogger(__name__)

RUNNING = ("InProgress", "Stopping")
STOPPABLE = ("InProgress",)

State = Literal["running", "success", "failed", "stopped"]


@dataclass(frozen=True)
class JobKind:
    """One kind of SageMaker job: ``operation`` names its calls (describe_<operation>, create_..., stop_...);
    the status words are that kind's own (the inference recommendations job's are upper case)."""

    label: str
    operation: str
    name_key: str
    status_key: str
    running: tuple[str, ...] = RUNNING
    stoppable: tuple[str, ...] = STOPPABLE
    succeeded: str = "Completed"
    stopped: str = "Stopped"

    def describe(self, client: Any, name: str) -> dict[str, Any]:
        return dict(getattr(client, f"describe_{self.operation}")(**{self.name_key: name}))

    def status(self, description: Mapping[str, Any]) -> str:
        return str(description.get(self.status_key, ""))


TRAINING_JOB = JobKind("training job", "training_job", "TrainingJobName", "TrainingJobStatus")
TUNING_JOB = JobKind(
    "tuning job", "hyper_parameter_tuning_job", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus"
)
TRANSFORM_JOB = JobKind("transform job", "transform_job", "TransformJobName", "TransformJobStatus")
LABELING_JOB = JobKind(
    "labeling job",
    "labeling_job",
    "LabelingJobName",
    "LabelingJobStatus",
    running=("Initializing", "InProgress", "Stopping"),
    stoppable=("Initializing", "InProgress"),
)
PROCESSING_JOB = JobKind("processing job", "processing_job", "ProcessingJobName", "ProcessingJobStatus")
RECOMMENDATION_JOB = JobKind(
    "inference recommendations job",
    "inference_recommendations_job",
    "JobName",
    "Status",
    running=("PENDING", "IN_PROGRESS", "STOPPING"),
    stoppable=("PENDING", "IN_PROGRESS"),
    succeeded="COMPLETED",
    stopped="STOPPED",
)
KINDS = {
    kind.operation: kind
    for kind in (TRAINING_JOB, TUNING_JOB, TRANSFORM_JOB, LABELING_JOB, PROCESSING_JOB, RECOMMENDATION_JOB)
}


def job_state(kind: JobKind, description: Mapping[str, Any]) -> State:
    """Where the job is: still running, or how it ended (any unknown end counts as failed)."""
    status = kind.status(description)
    if status in kind.running:
        return "running"
    if status == kind.succeeded:
        return "success"
    if status == kind.stopped:
        return "stopped"
    return "failed"


def ended_message(kind: JobKind, description: Mapping[str, Any]) -> str:
    """Why a job that did not succeed is over, for the task's failure (first line under 200 characters)."""
    name = str(description.get(kind.name_key, "?"))
    status = kind.status(description) or "in an unknown state"
    if job_state(kind, description) == "stopped":
        detail = "it was stopped before it completed (a Stop call, or the run was stopped)"
    else:
        detail = str(description.get("FailureReason") or "SageMaker gave no reason")[:120]
    return (
        f"{kind.label.capitalize()} {name} ended {status}: {detail}. "
        "Its name is fixed for this run, so trigger a new run to run it again."
    )


def job_outcome(kind: JobKind, description: Mapping[str, Any]) -> dict[str, Any]:
    """The description of a job that succeeded; any other end is final (``StepFailed``)."""
    if job_state(kind, description) != "success":
        raise StepFailed(ended_message(kind, description))
    return dict(description)


def wait_for_job(
    client: Any,
    kind: JobKind,
    name: str,
    delay: float,
    max_attempts: int,
    say: Callable[[str], None] = log.info,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the job has ended, however it ended; returns its description. The status is told when
    it changes; a job still running after ``max_attempts`` polls fails the step (it keeps running)."""
    told = ""
    for attempt in range(max(1, max_attempts)):
        description = kind.describe(client, name)
        status = kind.status(description)
        if status != told:
            say(f"{kind.label.capitalize()} {name}: {status}")
            told = status
        if job_state(kind, description) != "running":
            return description
        if attempt + 1 < max_attempts:
            sleep(delay)
    raise StepFailed(
        f"{kind.label.capitalize()} {name} did not end within the wait budget ({max_attempts} polls of "
        f"{delay} s); it is still {told}. Clear the task to follow it again."
    )


def follow_here(
    client: Any,
    kind: JobKind,
    request: Mapping[str, Any],
    delay: float,
    max_attempts: int,
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """Start or adopt the job and follow it in this process (an engine that waits where Airflow defers:
    KFP), stopping it when the process is told to end (SIGTERM); returns the description of a job that
    succeeded, else fails the step with why."""
    name = str(request[kind.name_key])
    description = start_or_adopt(client, kind, request)
    if job_state(kind, description) == "running":
        with stop_on_sigterm(lambda: stop_if_running(client, kind, name)):
            description = wait_for_job(client, kind, name, delay, max_attempts, say)
    return job_outcome(kind, description)


def start_or_adopt(
    client: Any, kind: JobKind, request: Mapping[str, Any], started: str = ""
) -> dict[str, Any]:
    """Create the job, or adopt the run's job when it exists; returns its description. ``started``: what
    the log says after "Started <job>" (e.g. its input and output)."""
    name = str(request[kind.name_key])
    describe = getattr(client, f"describe_{kind.operation}")
    existing = describe_or_none(describe, **{kind.name_key: name})
    if existing is not None:
        log.info(
            "%s %s of this run already exists (%s); following it instead of starting another.",
            kind.label.capitalize(),
            name,
            existing.get(kind.status_key),
        )
        return dict(existing)
    try:
        getattr(client, f"create_{kind.operation}")(**request)
    except ClientError as err:
        # A create SageMaker processed but whose answer was lost: botocore's retry meets the job.
        if error_code(err) != "ResourceInUse":
            raise
        log.info("%s %s was created by an earlier attempt; following it.", kind.label.capitalize(), name)
    else:
        log.info("Started %s %s%s.", kind.label, name, started)
    return kind.describe(client, name)


def stop_if_running(client: Any, kind: JobKind, name: str) -> bool:
    """Stop the job if it is still running; True when a stop was requested."""
    try:
        status = kind.describe(client, name)[kind.status_key]
    except ClientError as err:
        log.warning("Could not read %s %s to stop it: %s", kind.label, name, err)
        return False
    if status not in kind.stoppable:
        return False
    log.info("Stopping %s %s because the run was stopped", kind.label, name)
    try:
        getattr(client, f"stop_{kind.operation}")(**{kind.name_key: name})
    except ClientError as err:
        log.warning("Stopping %s %s failed: %s", kind.label, name, err)
        return False
    return True
