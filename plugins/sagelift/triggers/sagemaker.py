"""Wait for a SageMaker training job or endpoint without holding a worker slot.

The provider's ``SageMakerTrigger`` (its waiter JSON treats ``Failed`` and ``Stopped`` as terminal
failures and reports the job's ``FailureReason``) with two things it lacks:

- a training wait whose attempt count is the caller's, derived from a wall-clock budget (the provider's
  endpoint wait is fixed at 480 attempts);
- ``on_kill``: when a user marks the deferred training task failed (or clears it or marks it
  succeeded), Airflow 3.3 cancels the trigger and calls ``on_kill()``, which stops the training job so it
  stops billing. Triggerer restarts and redistribution do not call it, so a job keeps training while the
  triggerer is replaced.

The trigger carries only the job name, the connection id, the region and the wait settings; the
triggerer builds the same role-chained session from the connection as the worker does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from botocore.exceptions import ClientError

TRAINING_STOPPABLE = ("InProgress",)


class SageMakerTrainingCompleteTrigger(SageMakerTrigger):
    """Fires once: ``success``, ``failed`` / ``stopped`` (with the reason), ``timeout`` or ``error``."""

    def __init__(self, job_name: str, job_type: str = "Training", **kwargs: Any) -> None:
        super().__init__(job_name=job_name, job_type="Training", **kwargs)

    async def on_kill(self) -> None:
        """The user acted on the deferred task: stop the job so it stops spending in the account."""
        hook = SageMakerHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )
        await asyncio.to_thread(stop_training_job_if_running, hook, self.job_name, self.log)


class SageMakerEndpointCompleteTrigger(SageMakerTrigger):
    """The provider's endpoint wait, with the attempt count the caller derives from its budget."""

    def __init__(self, job_name: str, job_type: str = "endpoint", **kwargs: Any) -> None:
        super().__init__(job_name=job_name, job_type="endpoint", **kwargs)


def stop_training_job_if_running(hook: SageMakerHook, job_name: str, log: Any) -> bool:
    """Stop ``job_name`` if it is still training; True when a stop was requested. Shared with on_kill."""
    client: Any = hook.conn
    try:
        status = client.describe_training_job(TrainingJobName=job_name)["TrainingJobStatus"]
    except ClientError as err:
        log.warning("Could not read training job %s to stop it: %s", job_name, err)
        return False
    if status not in TRAINING_STOPPABLE:
        return False
    log.info("Stopping training job %s because the Airflow task was stopped", job_name)
    try:
        client.stop_training_job(TrainingJobName=job_name)
    except ClientError as err:
        log.warning("Stopping training job %s failed: %s", job_name, err)
        return False
    return True
