"""Wait for a model's lock without holding a worker slot (sagelift.steps.lock, README "Runs of one model
take turns").

The trigger reads the lock object every ``poll_interval`` seconds and fires once: ``free`` when the lock
is gone, lapsed or this run's own (the task then takes it in the worker, and defers again if another
waiting run took it first), ``timeout`` with the holder when the run's wait budget is spent, or ``error``
when S3 refuses the read. Throttling, 5xx answers and dropped connections are logged and the wait goes
on. It carries identifiers only (the lock's bucket and key, the run's key, the connection id, the
deadline, and the ids of the runs it waited for, echoed in its event so that the wait's story survives
deferrals); the triggerer builds the role-chained session from the connection as the worker does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.triggers.base import BaseTrigger, TriggerEvent
from botocore.exceptions import BotoCoreError, ClientError

from sagelift.domain.lock import ModelLock
from sagelift.steps.errors import StepFailed, classify
from sagelift.steps.lock import LockState, read_lock


class S3ModelLockAvailableTrigger(BaseTrigger):
    """Fires ``free``, ``timeout`` (with ``holder``, ``since``, ``until``) or ``error`` (with ``message``).

    :param timeout_at: ISO 8601 UTC end of the run's wait budget (absolute, so a trigger moved to another
        triggerer, or deferred again after losing a race, keeps the original budget).
    :param started_at: ISO 8601 UTC start of the wait, echoed in the event.
    :param waited_for: run ids seen holding the lock so far, echoed in the event.
    """

    def __init__(
        self,
        *,
        bucket: str,
        key: str,
        model_name: str,
        account_id: str,
        run_key: str,
        timeout_at: str,
        started_at: str,
        waited_for: list[str] | None = None,
        poll_interval: float = 30.0,
        aws_conn_id: str | None = None,
        region_name: str | None = None,
    ) -> None:
        super().__init__()
        self.bucket, self.key = bucket, key
        self.model_name, self.account_id = model_name, account_id
        self.run_key = run_key
        self.timeout_at, self.started_at = timeout_at, started_at
        self.waited_for = list(waited_for or [])
        self.poll_interval = poll_interval
        self.aws_conn_id, self.region_name = aws_conn_id, region_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "bucket": self.bucket,
                "key": self.key,
                "model_name": self.model_name,
                "account_id": self.account_id,
                "run_key": self.run_key,
                "timeout_at": self.timeout_at,
                "started_at": self.started_at,
                "waited_for": self.waited_for,
                "poll_interval": self.poll_interval,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
            },
        )

    @cached_property
    def lock(self) -> ModelLock:
        return ModelLock(self.bucket, self.key, self.model_name, self.account_id)

    @cached_property
    def hook(self) -> S3Hook:
        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    def _read(self) -> LockState:
        return read_lock(self.hook.conn, self.lock)  # the hook's client is made once, in this thread

    async def run(self) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.timeout_at)
        state: LockState | None = None
        while True:
            try:
                state = await asyncio.to_thread(self._read)
            except (ClientError, BotoCoreError) as err:
                if classify(err) != "transient":
                    yield self._event("error", message=f"reading the lock {self.lock.uri} failed: {err}")
                    return
                self.log.warning("Reading the lock %s failed, reading it again: %s", self.lock.uri, err)
            except StepFailed as err:
                yield self._event("error", message=str(err))
                return
            else:
                if state.free_for(self.run_key):
                    yield self._event("free")
                    return
                if state.holder is not None and state.holder.run_id not in self.waited_for:
                    self.waited_for.append(state.holder.run_id)
                holder = state.holder.describe() if state.holder else "another run"
                self.log.info("Model %s is locked by %s; waiting.", self.model_name, holder)
            remaining = (deadline - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                yield self._event("timeout", state=state)
                return
            await asyncio.sleep(min(self.poll_interval, remaining))

    def _event(self, status: str, *, state: LockState | None = None, message: str = "") -> TriggerEvent:
        payload: dict[str, Any] = {
            "status": status,
            "started_at": self.started_at,
            "waited_for": self.waited_for,
            "message": message,
        }
        if state is not None:
            payload["holder"] = asdict(state.holder) if state.holder else None
            payload["since"] = state.since.isoformat() if state.since else None
            payload["until"] = state.until.isoformat() if state.until else None
        return TriggerEvent(payload)
