"""Wait for any of the run's SageMaker jobs without holding a worker slot (``sagelift.steps.jobs`` kinds).

The provider has waiters for training, tuning, transform and processing jobs only; labeling and
inference recommendations jobs have none. ``SageMakerJobTrigger`` waits for any ``JobKind`` the same way
for all: it describes the job once per ``waiter_delay`` on the triggerer's shared client
(sagelift.triggers.clients: one client per loop, connection, region and service, however many waits),
logs the status when it changes, and fires once:

- ``{"status": "success" | "failed" | "stopped", "job_name", "message"}`` when the job has ended (the
  message is the job's FailureReason, or why it stopped); the operator describes the job again and judges
  it, so the event carries no result;
- ``{"status": "timeout", ...}`` after ``waiter_max_attempts`` polls (the job keeps running);
- ``{"status": "error", ...}`` when the job cannot be read (e.g. it vanished).

A transient AWS error (throttling, 5xx, a dropped connection) is retried at the next poll within the
attempts. ``on_kill``: when a user marks the deferred task failed (or clears it, or marks it succeeded),
Airflow 3.3 cancels the trigger and calls it, which stops the job so it stops billing; triggerer restarts
and redistribution do not call it.

The trigger carries only the job's kind and name, the connection id, the region and the wait settings;
the triggerer builds the same role-chained session from the connection as the worker does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.exceptions import BotoCoreError, ClientError

from sagelift.steps.errors import classify
from sagelift.steps.jobs import KINDS, JobKind, job_state, stop_if_running
from sagelift.triggers.clients import aws_client


class SageMakerJobTrigger(BaseTrigger):
    """Fires once when the job has ended (or the wait gave up); see the module docstring."""

    def __init__(
        self,
        operation: str,
        job_name: str,
        waiter_delay: float = 30,
        waiter_max_attempts: int = 480,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if operation not in KINDS:
            raise ValueError(f"operation must be one of {sorted(KINDS)}, not {operation!r}")
        self.operation = operation
        self.job_name = job_name
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    @property
    def kind(self) -> JobKind:
        return KINDS[self.operation]

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "operation": self.operation,
                "job_name": self.job_name,
                "waiter_delay": self.waiter_delay,
                "waiter_max_attempts": self.waiter_max_attempts,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
            },
        )

    def _event(self, status: str, message: str) -> TriggerEvent:
        return TriggerEvent({"status": status, "job_name": self.job_name, "message": message})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        kind, told, last_error = self.kind, "", ""
        async with aws_client(
            "sagemaker",
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
        ) as shared:
            describe = getattr(shared.client, f"describe_{kind.operation}")
            for attempt in range(max(1, self.waiter_max_attempts)):
                try:
                    description = await describe(**{kind.name_key: self.job_name})
                except (ClientError, BotoCoreError) as err:
                    if classify(err) != "transient":
                        yield self._event("error", f"{kind.label.capitalize()} {self.job_name}: {err}")
                        return
                    last_error = str(err)
                    self.log.warning("Reading %s %s failed (retried): %s", kind.label, self.job_name, err)
                else:
                    status = kind.status(description)
                    if status != told:
                        self.log.info("%s %s: %s", kind.label.capitalize(), self.job_name, status)
                        told = status
                    state = job_state(kind, description)
                    if state != "running":
                        reason = str(description.get("FailureReason") or "")
                        yield self._event(state, reason or f"{kind.label} {self.job_name} ended {status}")
                        return
                if attempt + 1 < self.waiter_max_attempts:
                    await asyncio.sleep(self.waiter_delay)
        yield self._event(
            "timeout",
            f"{kind.label.capitalize()} {self.job_name} did not end within {self.waiter_max_attempts} polls "
            f"(last status {told or 'unknown'}{'; last error ' + last_error if last_error else ''})",
        )

    async def on_kill(self) -> None:
        """The user acted on the deferred task: stop the job so it stops spending in the account."""
        await stop_job(self, self.kind, self.job_name)


async def stop_job(trigger: Any, kind: JobKind, name: str) -> None:
    """Stop a trigger's job if it still runs (a trigger's ``on_kill``), on the trigger's connection; the
    call is synchronous (the stop of a killed task), so it runs in a thread off the event loop."""
    from sagelift.hooks.sagemaker import SageMakerHook

    hook = SageMakerHook(
        aws_conn_id=trigger.aws_conn_id,
        region_name=trigger.region_name,
        verify=trigger.verify,
        config=trigger.botocore_config,
    )
    await asyncio.to_thread(stop_if_running, hook.client, kind, name)
