"""Runs of one model take turns, on Airflow: take the model's lock after assume_role_chain, give it back
at the end of the run whatever its outcome (README "Runs of one model take turns").

- ``acquire_model_lock`` (a setup task) takes the lock with the core's ``steps.lock.try_acquire``; when
  another run of the same model in the same account holds it, the task defers to
  ``S3ModelLockAvailableTrigger`` and takes it when it is free, within the platform's
  ``locks.wait_budget_seconds``; past that it fails, naming the model, the account and the holding run.
  Without ``platform.locks_s3_uri`` it succeeds with a warning that runs of the model are not
  serialized (it is the setup task of the run, and Airflow runs the task after a setup only when the
  setup succeeded).
- ``release_model_lock`` is the run's teardown task: it runs once everything after the lock is done,
  whether it succeeded, failed or was marked failed, as long as the lock was taken, and Airflow leaves
  it out of the run's own state. It deletes the lock only while the lock still names this run. Clearing
  a task of a finished run clears both, so the cleared task runs under the lock again.

Both read the lock's place from the plan and the AWS connection from assume_role_chain's session facts,
so their calls run in the scientist account.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sagelift.domain.lock import (
    LockHolder,
    ModelLock,
    lock_outcome,
    plan_lock,
    run_holder,
    wait_expired_message,
)
from sagelift.domain.plan import Plan
from sagelift.domain.teardown import TeardownPlan, read_any_plan
from sagelift.operators.base import StepInputs, connection_clients, step_errors
from sagelift.steps import lock as locks

# The trigger is imported when the task defers: the DAG file's parse and other tasks' processes skip it.


def renew_model_lock(plan: Plan, session: Any) -> None:
    """At the start of a step that begins a long wait: this run's lease starts again (steps.lock.renew),
    and a run whose lock another run took stops here, before it starts its job. Call within
    step_errors; no call is made when runs are not serialized."""
    if plan_lock(plan) is not None:
        locks.renew(connection_clients(session)("s3"), plan)


def _unserialized(plan: Plan | TeardownPlan) -> str:
    return (
        f"platform.locks_s3_uri is not set: runs of model {plan.model_name} in account {plan.account_id} "
        "are not serialized, and two at once can fail each other (README 'Runs of one model take turns')."
    )


class _LockStep(StepInputs):
    def _read_plan(self) -> Plan | TeardownPlan:
        """A deploy's or a teardown's plan: both take the model's lock."""
        with step_errors():
            return read_any_plan(self.plan)


class S3AcquireModelLockOperator(_LockStep, BaseOperator):
    """Take the model's lock, waiting (deferred) for the run that holds it; returns ``lock_outcome``."""

    template_fields: Sequence[str] = ("plan", "session")
    ui_color = "#ede7f6"

    def __init__(self, *, plan: Any = None, session: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session)

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self._read_plan()
        lock = plan_lock(plan)
        if lock is None:
            self.log.warning("%s", _unserialized(plan))
            return {"lock_uri": None}
        return self._take(plan, lock, datetime.datetime.now(UTC), [])

    def _take(
        self, plan: Plan | TeardownPlan, lock: ModelLock, started: datetime.datetime, waited_for: list[str]
    ) -> dict[str, Any]:
        session = self.read_session()
        me = run_holder(plan)
        with step_errors():
            attempt = locks.try_acquire(connection_clients(session)("s3"), lock, me)
        now = datetime.datetime.now(UTC)
        waited = (now - started).total_seconds()
        if attempt.acquired:
            took_over = attempt.took_over.describe() if attempt.took_over else None
            self.log.info(
                "Took the lock of model %s in account %s (%s) after waiting %d s.",
                lock.model_name,
                lock.account_id,
                lock.uri,
                waited,
            )
            return lock_outcome(lock, me, waited_for, waited, took_over)
        state = attempt.state
        if state.holder is not None and state.holder.run_id not in waited_for:
            waited_for.append(state.holder.run_id)
        settings = plan.platform.locks
        deadline = started + datetime.timedelta(seconds=settings.wait_budget_seconds)
        if now >= deadline:
            raise AirflowFailException(
                wait_expired_message(lock, state.holder, state.since, state.until, waited)
            )
        self.log.info(
            "Model %s in account %s is locked by %s (lease until %s); waiting for its turn until %s.",
            lock.model_name,
            lock.account_id,
            state.holder.describe() if state.holder else "another run",
            state.until,
            deadline,
        )
        from sagelift.triggers.lock import S3ModelLockAvailableTrigger

        self.defer(
            trigger=S3ModelLockAvailableTrigger(
                bucket=lock.bucket,
                key=lock.key,
                model_name=lock.model_name,
                account_id=lock.account_id,
                run_key=me.run_key,
                timeout_at=deadline.isoformat(),
                started_at=started.isoformat(),
                waited_for=waited_for,
                poll_interval=settings.check_interval_seconds,
                aws_conn_id=session.aws_conn_id,
                region_name=session.region,
            ),
            method_name="execute_complete",
            # The trigger fires its own timeout event with the holder; this only backs it up.
            timeout=deadline - now + datetime.timedelta(seconds=2 * settings.check_interval_seconds + 60),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        plan = self._read_plan()
        lock = plan_lock(plan)
        event = event or {}
        if lock is None:  # the platform changed while this run waited: its plan still names a lock
            raise AirflowFailException(_unserialized(plan))
        started = datetime.datetime.fromisoformat(str(event.get("started_at")))
        waited_for = [str(run_id) for run_id in event.get("waited_for") or []]
        if event.get("status") == "free":
            return self._take(plan, lock, started, waited_for)
        if event.get("status") == "timeout":
            holder = LockHolder(**event["holder"]) if event.get("holder") else None
            since, until = (
                datetime.datetime.fromisoformat(event[k]) if event.get(k) else None
                for k in ("since", "until")
            )
            waited = (datetime.datetime.now(UTC) - started).total_seconds()
            raise AirflowFailException(wait_expired_message(lock, holder, since, until, waited))
        raise AirflowException(
            f"Waiting for the lock of model {lock.model_name} ({lock.uri}) ended with "
            f"{event.get('status')}: {event.get('message', '')}"
        )


class S3ReleaseModelLockOperator(_LockStep, BaseOperator):
    """Give the model's lock back if it still names this run (the run's teardown task)."""

    template_fields: Sequence[str] = ("plan", "session")
    ui_color = "#ede7f6"

    def __init__(self, *, plan: Any = None, session: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session)

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self._read_plan()
        lock = plan_lock(plan)
        if lock is None:
            return {"lock_uri": None, "released": False}
        with step_errors():
            released = locks.release(
                connection_clients(self.read_session())("s3"), lock, run_holder(plan).run_key
            )
        return {"lock_uri": lock.uri, "released": released}
