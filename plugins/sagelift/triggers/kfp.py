"""Wait for a Kubeflow Pipelines run to finish without holding a worker slot.

The trigger carries the run id, the connection id, the poll interval and a deadline; the hook (and so
any token) is built inside the triggerer from the connection. The sync kfp-server-api client runs in a
thread so the triggerer's event loop never blocks. Every wait of a connection on the triggerer's loop
shares one hook, so one client and one connection pool (and one OAuth token) serve them all
(sagelift.triggers.clients).

When a user marks the deferred task failed (or clears or marks it succeeded), Airflow 3.3 cancels the
trigger and calls ``on_kill()``, which terminates the KFP run. Triggerer restarts and redistribution
do not call it, so a run keeps going while the triggerer is replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from sagelift.domain.kfp import FAILED_STATES, SUCCEEDED
from sagelift.hooks.kfp import KubeflowPipelinesError, KubeflowPipelinesHook, run_error_message
from sagelift.triggers.clients import kfp_hook

# Transient API errors tolerated in a row before the wait gives up (about 5 poll intervals).
MAX_CONSECUTIVE_ERRORS = 5


class KubeflowPipelinesRunCompleteTrigger(BaseTrigger):
    """Fires once: ``status`` is success, failed, timeout or error; ``message`` says why for the last three.

    :param run_id: the KFP run to watch.
    :param kfp_conn_id: Airflow connection of the KFP API.
    :param poll_interval: seconds between reads of the run.
    :param timeout_at: ISO 8601 UTC deadline; past it the trigger fires ``timeout`` (an absolute time,
        so a trigger moved to another triggerer keeps the original budget).
    """

    def __init__(
        self,
        *,
        run_id: str,
        kfp_conn_id: str,
        poll_interval: float = 30.0,
        timeout_at: str | None = None,
    ) -> None:
        super().__init__()
        self.run_id = run_id
        self.kfp_conn_id = kfp_conn_id
        self.poll_interval = poll_interval
        self.timeout_at = timeout_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "run_id": self.run_id,
                "kfp_conn_id": self.kfp_conn_id,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
            },
        )

    @cached_property
    def hook(self) -> KubeflowPipelinesHook:
        return KubeflowPipelinesHook(kfp_conn_id=self.kfp_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with kfp_hook(self.kfp_conn_id) as hook:
            async for event in self._wait(hook):
                yield event

    async def _wait(self, hook: KubeflowPipelinesHook) -> AsyncIterator[TriggerEvent]:
        deadline = datetime.fromisoformat(self.timeout_at) if self.timeout_at else None
        errors = 0
        while True:
            try:
                run = await asyncio.to_thread(hook.get_run, self.run_id)
            except KubeflowPipelinesError as err:
                errors += 1
                if not err.retryable or errors >= MAX_CONSECUTIVE_ERRORS:
                    yield self._event("error", None, str(err))
                    return
                self.log.warning("Reading KFP run %s failed (%d in a row): %s", self.run_id, errors, err)
            else:
                errors = 0
                state = str(run.state) if run.state else None
                if state == SUCCEEDED:
                    yield self._event("success", state, "")
                    return
                if state in FAILED_STATES:
                    yield self._event("failed", state, run_error_message(run))
                    return
                self.log.info("KFP run %s is %s", self.run_id, state)
            if deadline is not None and datetime.now(UTC) >= deadline:
                yield self._event("timeout", None, f"run did not finish by {self.timeout_at}")
                return
            await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """The user acted on the deferred task: stop the run so it stops spending in the AWS account."""
        self.log.info("Terminating KFP run %s because the Airflow task was stopped", self.run_id)
        await asyncio.to_thread(self.hook.terminate_run, self.run_id)

    def _event(self, status: str, state: str | None, message: str) -> TriggerEvent:
        return TriggerEvent({"status": status, "run_id": self.run_id, "state": state, "message": message})
