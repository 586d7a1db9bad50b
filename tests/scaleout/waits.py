"""The deferred waits of the triggerer failover test: sagelift's SageMaker training trigger, started by the
scheduler and ended by the triggerer, so that 100 waits cost no worker process at all.

``WaitForTrainingOperator`` starts from the trigger (``start_from_trigger``: the scheduler creates the
trigger row itself instead of a worker running ``execute``), and ``TrainingEndsTaskTrigger`` turns the
training trigger's event into the task's end (``TaskSuccessEvent`` / ``TaskFailedEvent``), so no worker
resumes the task either. What is left is exactly what the test is about: triggers, the triggerers that run
them, and their re-assignment when one triggerer dies. The trigger's class path is this module, which the
Airflow processes import from the repository root on their PYTHONPATH.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import StartTriggerArgs, TaskFailedEvent, TaskSuccessEvent, TriggerEvent

from sagelift.triggers.sagemaker import SageMakerTrainingCompleteTrigger


class TrainingEndsTaskTrigger(SageMakerTrainingCompleteTrigger):
    """sagelift's training wait; its success ends the task in success, anything else in failure."""

    async def run(self) -> AsyncIterator[TriggerEvent]:  # type: ignore[override]
        async for event in super().run():
            if event.payload.get("status") == "success":
                yield TaskSuccessEvent()
            else:
                yield TaskFailedEvent()
            return


class WaitForTrainingOperator(BaseOperator):
    """Waits, deferred from the start, until the training job ``job_name`` has completed."""

    start_from_trigger = True

    def __init__(self, *, job_name: str, aws_conn_id: str, region_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{__name__}.TrainingEndsTaskTrigger",
            trigger_kwargs={
                "job_name": job_name,
                "aws_conn_id": aws_conn_id,
                "region_name": region_name,
                "print_log": False,
                "waiter_delay": 2,
                "waiter_max_attempts": 300,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )

    def execute(self, context: Any) -> None:
        raise RuntimeError("starts from the trigger: a worker never runs it")

    def execute_complete(self, context: Any, event: Any = None) -> None:
        raise RuntimeError("ends in the trigger: a worker never resumes it")
