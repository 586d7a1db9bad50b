"""What the run's SageMaker jobs (training, tuning, batch transform) share: start or adopt, and stop.

Each job's name is fixed for the run, so a retry, a resumed deferral or a create whose answer was lost
finds the job that exists and follows it instead of starting a second one; a stop is asked only of a
job still running, and a failed stop is logged, never raised (it runs while a task is being killed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from sagelift.steps.errors import describe_or_none, error_code

log = logging.getLogger(__name__)

RUNNING = ("InProgress", "Stopping")
STOPPABLE = ("InProgress",)


@dataclass(frozen=True)
class JobKind:
    """One kind of SageMaker job: ``operation`` names its calls (describe_<operation>, create_..., stop_...)."""

    label: str
    operation: str
    name_key: str
    status_key: str

    def describe(self, client: Any, name: str) -> dict[str, Any]:
        return dict(getattr(client, f"describe_{self.operation}")(**{self.name_key: name}))


TRAINING_JOB = JobKind("training job", "training_job", "TrainingJobName", "TrainingJobStatus")
TUNING_JOB = JobKind(
    "tuning job", "hyper_parameter_tuning_job", "HyperParameterTuningJobName", "HyperParameterTuningJobStatus"
)
TRANSFORM_JOB = JobKind("transform job", "transform_job", "TransformJobName", "TransformJobStatus")


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
    if status not in STOPPABLE:
        return False
    log.info("Stopping %s %s because the run was stopped", kind.label, name)
    try:
        getattr(client, f"stop_{kind.operation}")(**{kind.name_key: name})
    except ClientError as err:
        log.warning("Stopping %s %s failed: %s", kind.label, name, err)
        return False
    return True
