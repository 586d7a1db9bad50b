"""Runs of one model take turns: take, wait for, check and give back the model's lock (an S3 object).

The rules (what the lock is, where it lives, how long it lasts) are in sagelift.domain.lock; this module
makes the S3 calls, each of them atomic on S3's side:

- take: ``PutObject`` with ``If-None-Match: *`` creates the lock only if no run holds it. When one does,
  the lock is read: a lock this run wrote (a retried or cleared task) is rewritten, and so is a lapsed
  one, with ``If-Match: <its ETag>`` so that of two runs taking over the same lapsed lock only one
  succeeds; otherwise the holder is returned and the caller waits (Airflow: deferred, on
  ``sagelift.triggers.lock``; KFP: ``acquire_waiting`` polls in the component);
- give back: ``DeleteObject`` with ``If-Match: <ETag>``, only while the lock still names this run;
- renew: ``renew`` rewrites the lock (``If-Match: <ETag>``) while it names this run, so its lease starts
  again by S3's clock; a run whose lock another run has taken meanwhile stops (StepFailed naming it);
- check: before the deploy changes the endpoint, ``verify_held`` renews; ``runs_in_progress`` names the
  runs pruning must spare.

Why renew: the lease is as long as the run's own budgets (copy, training, endpoint, batch transform,
approval; sagelift.domain.lock.lease_seconds_for) unless the platform sets one, but a run also spends
time no budget bounds: tasks queued for a free worker slot or pod, retries and their back-off, a task
cleared hours later. Past the lease another run of the model may take the lock over and prune this
run's model mid-run. So each step that starts a long wait renews when it starts (on both engines:
train_model and tune_model, label_data, recommend_instance's job, monitor_endpoint's baseline,
batch_transform, deploy_endpoint): the lease
then only has to outlast the longest stretch from one renewal to the next, which the derived lease
does (it covers every budgeted wait together). A wait itself (deferred in the triggerer, or polled in
the KFP component) does not renew: it ends within its own budget, which the lease exceeds; only a
platform ``locks.lease_seconds`` shorter than one wait can lapse during it (deploy_endpoint then stops
the run). Every engine still releases the lock at the end of the run whatever its outcome (Airflow: a
teardown task; KFP: an exit handler); the wait message says when a lock lapses and how to release it
by hand.

Contention (a 412 or 409 answer to a conditional write) is retried at once a few times, then reported
as a transient state; S3's own throttling and 5xx answers are retried by botocore, then classified as
everywhere else (sagelift.steps.errors).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.lock import (
    LOCK_RECORD_LIMITS,
    LockHolder,
    LockRecordError,
    ModelLock,
    foreign_lock_message,
    lock_outcome,
    lost_lock_message,
    plan_lock,
    run_holder,
    wait_expired_message,
)
from sagelift.domain.plan import Plan
from sagelift.steps.errors import StepFailed, StepRetry, classify, error_code, is_not_found

log = logging.getLogger(__name__)

CONTENTION_ATTEMPTS = 5
# What S3 answers a conditional write that lost: 412 PreconditionFailed, or 409 ConditionalRequestConflict
# while another conditional write on the key is in flight.
CONTENTION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})


# The resolution of S3's Last-Modified and Date headers.
CLOCK_GRANULARITY_SECONDS = 1


@dataclass(frozen=True)
class LockState:
    """The model's lock as read from S3: its holder (None: free), ETag and age by S3's clock."""

    lock: ModelLock
    holder: LockHolder | None
    now: datetime
    etag: str | None = None
    since: datetime | None = None

    @property
    def until(self) -> datetime | None:
        """When the lease lapses. S3 gives both ``since`` (Last-Modified) and ``now`` (Date) in whole
        seconds, cut down, so the lease runs one second longer than written: it never lapses early (a
        1 s lease taken at 04.993 would otherwise lapse at 05.0, 7 ms later), at most 2 s late."""
        if self.holder is None or self.since is None:
            return None
        return self.since + timedelta(seconds=self.holder.lease_seconds + CLOCK_GRANULARITY_SECONDS)

    @property
    def lapsed(self) -> bool:
        return self.until is not None and self.now >= self.until

    def free_for(self, run_key: str) -> bool:
        """This run may take the lock: nobody holds it, it lapsed, or it is this run's own."""
        return self.holder is None or self.lapsed or self.holder.run_key == run_key


@dataclass(frozen=True)
class Attempt:
    """One try to take the lock: taken, or the state of the lock held by another run."""

    acquired: bool
    state: LockState
    took_over: LockHolder | None = None  # a lapsed holder this run replaced


def _server_time(response: Any) -> datetime:
    """S3's clock, from the Date header of its answer (this machine's clock if it has none)."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        try:
            return parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC)


def read_lock(s3: Any, lock: ModelLock) -> LockState:
    """The lock as it is now; a body sagelift did not write is refused (StepFailed) naming the object."""
    try:
        response = s3.get_object(Bucket=lock.bucket, Key=lock.key)
    except ClientError as err:
        if is_not_found(err):
            return LockState(lock=lock, holder=None, now=_server_time(err.response))
        raise
    with response["Body"] as body:
        data = body.read(LOCK_RECORD_LIMITS.max_chars + 1)
    try:
        holder = LockHolder.parse(data)
    except LockRecordError as err:
        raise StepFailed(foreign_lock_message(lock, str(err))) from None
    return LockState(
        lock=lock,
        holder=holder,
        now=_server_time(response),
        etag=response.get("ETag"),
        since=response["LastModified"].astimezone(UTC),
    )


def _conditional(call: Callable[..., Any], **kwargs: Any) -> bool:
    """A conditional write; False when its condition failed (another run got there first)."""
    try:
        call(**kwargs)
    except ClientError as err:
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error_code(err) in CONTENTION_CODES or status in (409, 412) or is_not_found(err):
            return False
        raise
    return True


def try_acquire(s3: Any, lock: ModelLock, me: LockHolder) -> Attempt:
    """Take the lock if it is free, lapsed or already this run's; never waits."""
    body = me.to_body(lock)
    put = {"Bucket": lock.bucket, "Key": lock.key, "Body": body, "ContentType": "application/json"}
    for _ in range(CONTENTION_ATTEMPTS):
        if _conditional(s3.put_object, IfNoneMatch="*", **put):
            log.info("Took the lock of %s (%s).", lock.label, lock.uri)
            return Attempt(True, LockState(lock=lock, holder=me, now=datetime.now(UTC)))
        state = read_lock(s3, lock)
        if state.holder is None:
            continue  # released between the two calls: try to create it again
        if not state.free_for(me.run_key):
            return Attempt(False, state)
        if _conditional(s3.put_object, IfMatch=str(state.etag), **put):
            previous = state.holder if state.holder.run_key != me.run_key else None
            if previous is not None:
                log.warning(
                    "Took over the lock of %s from %s, whose lease lapsed at %s.",
                    lock.label,
                    previous.describe(),
                    state.until,
                )
            return Attempt(True, LockState(lock=lock, holder=me, now=state.now), took_over=previous)
    raise StepRetry(
        f"The lock of {lock.label} ({lock.uri}) changed hands {CONTENTION_ATTEMPTS} times "
        "while this run tried to take it; the step is retried."
    )


def acquire_waiting(
    s3: Any,
    plan: Plan,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Take the model's lock, waiting up to the platform's budget (for engines that cannot defer: KFP).

    Returns what ``lock_outcome`` reports; ``{"lock_uri": None}`` when the platform does not serialize
    runs. Raises StepFailed naming the model, the account and the holding run when the wait runs out.
    """
    lock = plan_lock(plan)
    if lock is None:
        log.warning("platform.locks_s3_uri is not set: runs of model %s are not serialized.", plan.model_name)
        return {"lock_uri": None}
    me, settings = run_holder(plan), plan.platform.locks
    started, waited_for = clock(), list[str]()
    while True:
        try:
            attempt = try_acquire(s3, lock, me)
        except (ClientError, StepRetry) as err:
            if isinstance(err, ClientError) and classify(err) != "transient":
                raise
            log.warning("Reading the lock of model %s failed (%s); trying again.", plan.model_name, err)
            attempt = None
        waited = clock() - started
        if attempt is not None and attempt.acquired:
            took_over = attempt.took_over.describe() if attempt.took_over else None
            return lock_outcome(lock, me, waited_for, waited, took_over)
        if attempt is not None and attempt.state.holder is not None:
            holder = attempt.state.holder
            if holder.run_id not in waited_for:
                waited_for.append(holder.run_id)
                log.info("Model %s is locked by %s; waiting for it.", plan.model_name, holder.describe())
        if waited >= settings.wait_budget_seconds:
            state = attempt.state if attempt is not None else read_lock(s3, lock)
            raise StepFailed(wait_expired_message(lock, state.holder, state.since, state.until, waited))
        sleep(min(settings.check_interval_seconds, settings.wait_budget_seconds - waited))


def release(s3: Any, lock: ModelLock, run_key: str) -> bool:
    """Give the lock back if it still names this run; False when it did not (nothing to give back)."""
    for _ in range(CONTENTION_ATTEMPTS):
        state = read_lock(s3, lock)
        if state.holder is None:
            log.info("The lock of %s was already released.", lock.label)
            return False
        if state.holder.run_key != run_key:
            log.warning(
                "The lock of %s is held by %s, not this run: left as it is.",
                lock.label,
                state.holder.describe(),
            )
            return False
        if _conditional(s3.delete_object, Bucket=lock.bucket, Key=lock.key, IfMatch=str(state.etag)):
            log.info("Released the lock of %s (%s).", lock.label, lock.uri)
            return True
    raise StepRetry(f"The lock of {lock.label} ({lock.uri}) kept changing; the step is retried.")


def release_run(s3: Any, plan: Plan) -> bool:
    """Give back this run's lock of its model (see ``release``); False when runs are not serialized."""
    lock = plan_lock(plan)
    return lock is not None and release(s3, lock, plan.names.run_key)


def renew(s3: Any, plan: Plan) -> LockState | None:
    """Start this run's lease again now (by S3's clock): rewrite the lock while it names this run.

    A lock found released (by hand) is taken again; StepFailed when another run holds it now, so the run
    goes on only while it holds it. None when runs are not serialized (no call is made).
    """
    lock = plan_lock(plan)
    if lock is None:
        return None
    me = run_holder(plan)
    put = {
        "Bucket": lock.bucket,
        "Key": lock.key,
        "Body": me.to_body(lock),
        "ContentType": "application/json",
    }
    for _ in range(CONTENTION_ATTEMPTS):
        state = read_lock(s3, lock)
        if state.holder is None:
            attempt = try_acquire(s3, lock, me)
            if attempt.acquired:
                return attempt.state
            state = attempt.state
        if state.holder is not None and state.holder.run_key != me.run_key:
            raise StepFailed(lost_lock_message(lock, state.holder, state.since))
        if _conditional(s3.put_object, IfMatch=str(state.etag), **put):
            renewed = LockState(lock=lock, holder=me, now=state.now, since=state.now)
            log.info(
                "Renewed the lock of %s: its lease of %d s runs until %s.",
                lock.label,
                me.lease_seconds,
                renewed.until,
            )
            return renewed
    raise StepRetry(f"The lock of {lock.label} ({lock.uri}) kept changing; the step is retried.")


def verify_held(s3: Any, plan: Plan) -> None:
    """Before changing the endpoint: renew the lease; StepFailed when another run holds the lock now."""
    renew(s3, plan)


def runs_in_progress(s3: Any, plan: Plan) -> frozenset[str] | None:
    """Run keys of other runs of the model that hold its lock now (pruning spares their resources);
    None when runs are not serialized, so nobody can tell which runs are in progress."""
    lock = plan_lock(plan)
    if lock is None:
        return None
    holder = read_lock(s3, lock).holder
    return frozenset({holder.run_key}) if holder and holder.run_key != plan.names.run_key else frozenset()
