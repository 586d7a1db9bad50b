"""Wait for a SageMaker training job, batch transform job or endpoint without holding a worker slot.

The provider's ``SageMakerTrigger`` (its waiter JSON treats ``Failed`` and ``Stopped`` as terminal
failures and reports the job's ``FailureReason``; its events and messages are kept) with what it lacks:

- shared clients: the provider's ``run`` makes an aiobotocore client per trigger; these triggers lease
  the triggerer's one client per (event loop, connection, region, service) from
  sagelift.triggers.clients and wait with the provider's waiter and its ``async_wait`` loop, so 1,000
  waits hold one SageMaker and one CloudWatch Logs client, not 2,000 and more;
- a wait whose attempt count is the caller's, derived from a wall-clock budget (the provider's
  endpoint wait is fixed at 480 attempts);
- ``on_kill``: when a user marks the deferred training task failed (or clears it or marks it
  succeeded), Airflow 3.3 cancels the trigger and calls ``on_kill()``, which stops the training job so it
  stops billing (the core's ``steps.training.stop_training``). Triggerer restarts and redistribution do
  not call it, so a job keeps training while the triggerer is replaced;
- the job's training log (``print_log``): while it waits, the training trigger tails the job's
  CloudWatch Logs streams (sagelift.triggers.logs) and logs every new line, so it lands in the task's
  log. The tail learns from the waiter's own DescribeTrainingJob answers whether the job's container
  has started and how many instances it has, so the job is described once per poll interval and no
  more, and a job still launching costs no log call (the tail starts with its container). When the waiter reaches its outcome, the log is read to its end (within
  ``FINAL_DRAIN_TIMEOUT_SECONDS``) before the event fires; the events fired are the waiter's, unchanged.

The trigger carries only the job name, the connection id, the region, the wait settings, whether to
stream the log and the job's instance count; the triggerer builds the same role-chained session from the
connection as the worker does.

A trigger keeps nothing between two runs but its arguments, so a wait resumed on another triggerer
(restart, redistribution) prints the log again from its beginning, after a line saying so: a repeat is
better than a gap, and the new triggerer's section of the task log is then complete on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.providers.amazon.aws.utils.waiter_with_logging import async_wait
from airflow.providers.common.compat.sdk import AirflowException
from airflow.triggers.base import TriggerEvent
from botocore.exceptions import WaiterError

from sagelift.domain.tuning import render_tuning_progress, tuning_facts
from sagelift.steps.jobs import TRAINING_JOB, TRANSFORM_JOB, TUNING_JOB
from sagelift.triggers.clients import Abandoned, SharedAwsClient, aws_client
from sagelift.triggers.jobs import stop_job
from sagelift.triggers.logs import TRAINING_LOG_GROUP, PacedLogsClient, TrainingLogTail

FINAL_DRAIN_TIMEOUT_SECONDS = 120
LOG_SETTLE_SECONDS = 5


class _ObservedWaiter:
    """A waiter that shows each answer it gets to ``observe`` (async_wait only logs them): the answers
    that end an attempt still waiting or failed (WaiterError's last response), and the final successful
    one (aiobotocore's waiter returns it), which may be the only one to show what happened since the
    previous poll (a spot job interrupted and resumed, then completed in between)."""

    def __init__(self, waiter: Any, observe: Callable[[dict[str, Any]], None]) -> None:
        self._waiter = waiter
        self._observe = observe

    def _show(self, response: Any) -> None:
        if isinstance(response, dict) and "Error" not in response:
            self._observe(response)

    async def wait(self, **kwargs: Any) -> Any:
        try:
            response = await self._waiter.wait(**kwargs)
        except WaiterError as error:
            self._show(error.last_response)
            raise
        self._show(response)
        return response


class _SharedClientWaitTrigger(SageMakerTrigger):
    """The provider's wait (same waiter, loop, events and messages) on the loop's shared client."""

    def _client(self, service: str) -> contextlib.AbstractAsyncContextManager[SharedAwsClient]:
        return aws_client(
            service,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with self._client("sagemaker") as sagemaker:
            async for event in self._wait(sagemaker):
                yield event

    async def _wait(
        self, sagemaker: SharedAwsClient, observe: Callable[[dict[str, Any]], None] | None = None
    ) -> AsyncIterator[TriggerEvent]:
        waiter = sagemaker.waiter(self.waiter_name, self.waiter_config_overrides)
        if observe is not None:
            waiter = _ObservedWaiter(waiter, observe)
        try:
            await async_wait(
                waiter,
                self.waiter_delay,
                self.attempts,
                self.waiter_args,
                self.failure_message,
                self.status_message,
                self.status_queries,
            )
        except AirflowException as error:
            yield self._event_from_exception(error)
        else:
            yield TriggerEvent({"status": "success", self.return_key: self.return_value})


class SageMakerTrainingCompleteTrigger(_SharedClientWaitTrigger):
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
        async with self._client("sagemaker") as sagemaker:
            if not self.print_log:
                async for event in self._wait(sagemaker):
                    yield event
                return
            tail = TrainingLogTail(
                self.job_name,
                self.log,
                self.instance_count,
                wait_for_start=True,
                list_backoff=float(self.waiter_delay),
            )
            finished = asyncio.Event()
            streaming: list[asyncio.Task[None]] = []

            def stream() -> None:
                if not streaming:
                    streaming.append(asyncio.create_task(self._stream_training_log(tail, finished)))

            def observe(description: dict[str, Any]) -> None:
                tail.observe(description)
                if tail.started:  # no log to read before the container starts: no task until then
                    stream()

            try:
                async for event in self._wait(sagemaker, observe=observe):
                    stream()  # a job that ended before it was seen started: its log is read now
                    finished.set()
                    await asyncio.wait(streaming, timeout=FINAL_DRAIN_TIMEOUT_SECONDS)
                    self._report_streaming_end(streaming[0])
                    yield event
            finally:
                for task in streaming:
                    task.cancel()

    async def _stream_training_log(self, tail: TrainingLogTail, finished: asyncio.Event) -> None:
        async with self._client("logs") as logs:
            # A routine read still waiting for its turn when the wait ends is given up: the final read
            # goes first instead.
            routine = PacedLogsClient(logs, unless=finished)
            while not finished.is_set():
                try:
                    await tail.poll(routine)
                except Abandoned:
                    break
                if tail.stopped:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), timeout=self.waiter_delay)
            # The last lines can reach CloudWatch shortly after the job's status changes.
            await asyncio.sleep(min(self.waiter_delay, LOG_SETTLE_SECONDS))
            await tail.drain(PacedLogsClient(logs, urgent=True))

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
        await stop_job(self, TRAINING_JOB, self.job_name)


class SageMakerEndpointCompleteTrigger(_SharedClientWaitTrigger):
    """The provider's endpoint wait, with the attempt count the caller derives from its budget."""

    def __init__(self, job_name: str, job_type: str = "endpoint", **kwargs: Any) -> None:
        super().__init__(job_name=job_name, job_type="endpoint", **kwargs)


class SageMakerTransformCompleteTrigger(_SharedClientWaitTrigger):
    """The provider's transform wait (``Failed`` and ``Stopped`` end it with the reason), with the attempt
    count the caller derives from its budget; ``on_kill`` stops the job, as for training. The provider
    streams no transform log, so neither does this wait: the task's link opens the job, whose page links
    its CloudWatch logs (/aws/sagemaker/TransformJobs)."""

    def __init__(self, job_name: str, job_type: str = "Transform", **kwargs: Any) -> None:
        super().__init__(job_name=job_name, job_type="Transform", **kwargs)

    async def on_kill(self) -> None:
        """The user acted on the deferred task: stop the job so it stops spending in the account."""
        await stop_job(self, TRANSFORM_JOB, self.job_name)


class SageMakerTuningCompleteTrigger(_SharedClientWaitTrigger):
    """The provider's tuning wait (``Failed`` and ``Stopped`` end it with the reason) on the shared client,
    with the attempt count the caller derives from its budget. While it waits it logs the tuning's progress
    whenever it changes (training jobs completed, running and failed, the best so far), read off the
    waiter's own DescribeHyperParameterTuningJob answers, so it costs no extra call; ``on_kill`` stops the
    tuning job (and so its training jobs), as for training."""

    def __init__(self, job_name: str, job_type: str = "tuning", **kwargs: Any) -> None:
        super().__init__(job_name=job_name, job_type="tuning", **kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        told: list[str] = []

        def observe(description: dict[str, Any]) -> None:
            line = render_tuning_progress(tuning_facts(description))
            if not told or told[-1] != line:
                told.append(line)
                self.log.info("%s", line)

        async with self._client("sagemaker") as sagemaker:
            async for event in self._wait(sagemaker, observe=observe):
                yield event

    async def on_kill(self) -> None:
        """The user acted on the deferred task: stop the tuning job so it stops spending in the account."""
        await stop_job(self, TUNING_JOB, self.job_name)
