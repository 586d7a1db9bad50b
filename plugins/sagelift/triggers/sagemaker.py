"""Wait for a SageMaker training job or endpoint without holding a worker slot.

The provider's ``SageMakerTrigger`` (its waiter JSON treats ``Failed`` and ``Stopped`` as terminal
failures and reports the job's ``FailureReason``) with what it lacks:

- a wait whose attempt count is the caller's, derived from a wall-clock budget (the provider's
  endpoint wait is fixed at 480 attempts);
- ``on_kill``: when a user marks the deferred training task failed (or clears it or marks it
  succeeded), Airflow 3.3 cancels the trigger and calls ``on_kill()``, which stops the training job so it
  stops billing (the core's ``steps.training.stop_training``). Triggerer restarts and redistribution do
  not call it, so a job keeps training while the triggerer is replaced;
- the job's training log (``print_log``): while it waits, the training trigger tails the job's
  CloudWatch Logs streams (sagelift.triggers.logs) and logs every new line, so it lands in the task's
  log. When the waiter reaches its outcome, the log is read to its end (within ``FINAL_DRAIN_TIMEOUT_SECONDS``)
  before the event fires; the events fired are the waiter's, unchanged.

The trigger carries only the job name, the connection id, the region, the wait settings, whether to
stream the log and the job's instance count (so the log tail knows how many streams to expect without
describing the job again); the triggerer builds the same role-chained session from the connection as the
worker does.

A trigger keeps nothing between two runs but its arguments, so a wait resumed on another triggerer
(restart, redistribution) prints the log again from its beginning, after a line saying so: a repeat is
better than a gap, and the new triggerer's section of the task log is then complete on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.triggers.base import TriggerEvent
from botocore.exceptions import BotoCoreError, ClientError

from sagelift.hooks.sagemaker import SageMakerHook
from sagelift.triggers.logs import TRAINING_LOG_GROUP, TrainingLogTail

FINAL_DRAIN_TIMEOUT_SECONDS = 120
LOG_SETTLE_SECONDS = 5


class SageMakerTrainingCompleteTrigger(SageMakerTrigger):
    """Fires once: ``success``, ``failed`` / ``stopped`` (with the reason), ``timeout`` or ``error``.

    With ``print_log``, the job's training log is streamed into the task log while it waits (see the
    module docstring).
    """

    def __init__(
        self,
        job_name: str,
        job_type: str = "Training",
        print_log: bool = True,
        instance_count: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(job_name=job_name, job_type="Training", **kwargs)
        self.print_log = print_log
        self.instance_count = instance_count
        self.serialized_fields["print_log"] = print_log
        self.serialized_fields["instance_count"] = instance_count

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if not self.print_log:
            async for event in super().run():
                yield event
            return
        finished = asyncio.Event()
        streaming = asyncio.create_task(self._stream_training_log(finished))
        try:
            async for event in super().run():
                finished.set()
                await asyncio.wait({streaming}, timeout=FINAL_DRAIN_TIMEOUT_SECONDS)
                self._report_streaming_end(streaming)
                yield event
        finally:
            streaming.cancel()

    async def _stream_training_log(self, finished: asyncio.Event) -> None:
        tail = TrainingLogTail(self.job_name, self.log, await self._instance_count())
        async with await AwsLogsHook(**self._hook_parameters).get_async_conn() as client:
            while not finished.is_set():
                await tail.poll(client)
                if tail.stopped:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), timeout=self.waiter_delay)
            # The last lines can reach CloudWatch shortly after the job's status changes.
            await asyncio.sleep(min(self.waiter_delay, LOG_SETTLE_SECONDS))
            await tail.drain(client)

    async def _instance_count(self) -> int:
        if self.instance_count:
            return self.instance_count
        hook = SageMakerHook(**self._hook_parameters)  # a trigger serialized before instance_count
        try:
            description = await hook.describe_training_job_async(self.job_name)
        except (ClientError, BotoCoreError) as err:
            self.log.warning("Could not read training job %s's instance count: %s", self.job_name, err)
            return 0
        return int(description.get("ResourceConfig", {}).get("InstanceCount", 0))

    def _report_streaming_end(self, streaming: asyncio.Task[None]) -> None:
        if not streaming.done():
            self.log.warning(
                "Stopped reading the training log of %s %ss after the wait ended; the rest is in "
                "CloudWatch Logs (%s).",
                self.job_name,
                FINAL_DRAIN_TIMEOUT_SECONDS,
                TRAINING_LOG_GROUP,
            )
        elif not streaming.cancelled() and streaming.exception() is not None:
            # The log is a convenience: its failure is reported, the wait's outcome still fires.
            self.log.error(
                "Streaming the training log of %s failed", self.job_name, exc_info=streaming.exception()
            )

    async def on_kill(self) -> None:
        """The user acted on the deferred task: stop the job so it stops spending in the account."""
        hook = SageMakerHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )
        await asyncio.to_thread(hook.stop_training_job_if_running, self.job_name)


class SageMakerEndpointCompleteTrigger(SageMakerTrigger):
    """The provider's endpoint wait, with the attempt count the caller derives from its budget."""

    def __init__(self, job_name: str, job_type: str = "endpoint", **kwargs: Any) -> None:
        super().__init__(job_name=job_name, job_type="endpoint", **kwargs)
