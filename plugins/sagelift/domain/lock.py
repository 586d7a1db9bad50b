"""Runs of one model take turns: where a model's lock lives, what it records, how long it lasts.

Two runs of the same model in the same account must not work at once: the later run's deploy was judged
against the earlier run's endpoint update ("rolled back" when nothing was), and the earlier run's pruning
deleted the later run's model mid-run. So a run holds its model's lock from right after
assume_role_chain (before it creates anything for the model) to its end, and a run that finds the lock
held waits its turn; different models never wait for each other.

The lock is one S3 object in the scientist account, ``<locks_s3_uri><account_id>/<model_name>.json``:
the account is the only ground that both engines (the Airflow DAG and the KFP pipeline) and every
Airflow deployment share. Its body names the holding run; it lapses ``lease_seconds`` after it was
written, by S3's own clock (the object's LastModified against the Date of S3's answer), so a run whose
every release path is gone blocks its model for a bounded time and no worker's clock matters.
sagelift.steps.lock makes the S3 calls; this module is pure.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, parse_json_text
from sagelift.domain.deployment import deployment_seconds
from sagelift.domain.errors import clip, kind
from sagelift.domain.ownership import RUN_KEY_LEN
from sagelift.domain.plan import Plan, derive_run_key
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.teardown import TeardownPlan

# A lock body is a flat object of a few short strings and one number.
LOCK_RECORD_LIMITS = JsonLimits(max_chars=4096, max_depth=2, max_nodes=32, max_string=512)
RECORD_KIND = "sagelift-model-lock"
RECORD_VERSION = 1
_RUN_KEY_RE = re.compile(rf"^[0-9a-f]{{{RUN_KEY_LEN}}}\Z")
# Slack added to the run's own budgets in the derived lease: task retries and their back-off.
LEASE_SLACK_SECONDS = 3600


@dataclass(frozen=True)
class ModelLock:
    """Where one model's lock lives (or, ``subject`` "shared endpoint", a team's shared endpoint's:
    ``shared_endpoint_lock``; ``model_name`` is then the endpoint's name)."""

    bucket: str
    key: str
    model_name: str
    account_id: str
    subject: str = "model"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def label(self) -> str:
        """What the lock serializes, for messages: "model churn", "shared endpoint sagelift-mme-fraud"."""
        return f"{self.subject} {self.model_name}"


def account_locks(platform: PlatformConfig, account_id: str) -> tuple[str, str] | None:
    """(bucket, key prefix) of the account's model locks, or None when runs are not serialized."""
    base = platform.locks_uri(account_id)
    if base is None:
        return None
    bucket, _, prefix = base.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/{account_id}/" if prefix else f"{account_id}/"


def model_lock(platform: PlatformConfig, account_id: str, model_name: str) -> ModelLock | None:
    """The model's lock in the account, or None when the platform does not serialize runs."""
    where = account_locks(platform, account_id)
    if where is None:
        return None
    bucket, prefix = where
    return ModelLock(
        bucket=bucket, key=f"{prefix}{model_name}.json", model_name=model_name, account_id=account_id
    )


def shared_endpoint_lock(platform: PlatformConfig, account_id: str, team: str, name: str) -> ModelLock | None:
    """The lock of a team's shared multi-model endpoint (sagelift.steps.multi_model.team_turn):
    ``<locks_s3_uri><account_id>/multi-model/<team>.json`` (a model's name holds no '/', so no model's
    lock is there). None when the platform does not serialize runs."""
    where = account_locks(platform, account_id)
    if where is None:
        return None
    bucket, prefix = where
    return ModelLock(
        bucket=bucket,
        key=f"{prefix}multi-model/{team}.json",
        model_name=name,
        account_id=account_id,
        subject="shared endpoint",
    )


def plan_lock(plan: Plan | TeardownPlan) -> ModelLock | None:
    return model_lock(plan.platform, plan.account_id, plan.model_name)


class LockRecordError(ValueError):
    """A lock object whose body sagelift did not write; the message says what is wrong with it."""


@dataclass(frozen=True)
class LockHolder:
    """The run a lock names: its DAG (or KFP pipeline), run id and run key, and the lease it took."""

    dag_id: str
    run_id: str
    run_key: str
    lease_seconds: int

    def describe(self) -> str:
        return f"run {clip(self.run_id, 80)} of {clip(self.dag_id, 60)}"

    def to_body(self, lock: ModelLock) -> bytes:
        record = {
            "kind": RECORD_KIND,
            "version": RECORD_VERSION,
            "model_name": lock.model_name,
            "account_id": lock.account_id,
            **asdict(self),
        }
        return json.dumps(record, sort_keys=True).encode()

    @classmethod
    def parse(cls, body: bytes) -> LockHolder:
        """The holder a lock body names; LockRecordError (saying what is wrong) for anything else."""
        value, problem = parse_json_text(body, LOCK_RECORD_LIMITS)
        if problem is None and not isinstance(value, dict):
            problem = f"must be a JSON object, got {kind(value)}"
        if problem is None and (value.get("kind") != RECORD_KIND or value.get("version") != RECORD_VERSION):
            problem = f"is not a {RECORD_KIND} record of version {RECORD_VERSION}"
        if problem is None:
            strings = [value.get(k) for k in ("dag_id", "run_id", "run_key")]
            lease = value.get("lease_seconds")
            if not all(isinstance(s, str) and 0 < len(s) <= 512 for s in strings):
                problem = "dag_id, run_id and run_key must be non-empty strings"
            elif not _RUN_KEY_RE.match(str(value["run_key"])):
                problem = f"run_key must be {RUN_KEY_LEN} hex characters"
            elif isinstance(lease, bool) or not isinstance(lease, int) or lease < 1:
                problem = "lease_seconds must be a positive whole number"
        if problem is not None:
            raise LockRecordError(problem)
        return cls(
            dag_id=value["dag_id"],
            run_id=value["run_id"],
            run_key=value["run_key"],
            lease_seconds=value["lease_seconds"],
        )


def lease_seconds_for(plan: Plan | TeardownPlan) -> int:
    """The platform's lease, or one as long as this run may take: its copies, its training (if it
    trains), the endpoint (a Failed one is deleted, then created: twice its budget; a guarded update's
    baking; a smoke test's revert), its batch transform (if it scores a prefix), its labeling, recommendation and baseline jobs (if
    set), plus slack. A
    teardown waits for at most one endpoint deletion. Steps that start a long wait renew the lease
    (sagelift.steps.lock.renew), so it must outlast the longest stretch between two renewals."""
    platform = plan.platform
    if platform.locks.lease_seconds is not None:
        return platform.locks.lease_seconds
    sagemaker = platform.sagemaker
    if isinstance(plan, TeardownPlan):
        return sagemaker.endpoint_wait_budget_seconds + LEASE_SLACK_SECONDS
    copying = 2 * int(platform.ecr.copy_timeout_max_minutes * 60)
    training = sagemaker.training_wait_budget_seconds if plan.params.trains else 0
    # batch_transform runs under the lock too, within the same wait budget as training
    training += sagemaker.training_wait_budget_seconds if plan.params.batch.enabled else 0
    # issue 20's jobs: an Inference Recommender job and the monitoring baseline wait within the same
    # budget each, labeling as long as its tasks may stay open (sagelift.operators.jobs); their tasks
    # renew the lease when they start
    jobs = (plan.params.instance_recommendation, plan.params.monitoring)
    training += sagemaker.training_wait_budget_seconds * sum(1 for job in jobs if job.enabled)
    training += plan.params.labeling.wait_seconds if plan.params.labeling.enabled else 0
    serving = plan.params.endpoint
    # A guarded update's shifting and baking; a smoke test that reverts waits for one more update.
    endpoint = 2 * sagemaker.endpoint_wait_budget_seconds + deployment_seconds(serving.deployment)
    endpoint += sagemaker.endpoint_wait_budget_seconds if serving.smoke_test is not None else 0
    # A run into an account that requires approval holds the lock while approve_deploy waits.
    approval = platform.approval_timeout_seconds if plan.needs_approval else 0
    return copying + training + endpoint + approval + LEASE_SLACK_SECONDS


def run_holder(plan: Plan | TeardownPlan) -> LockHolder:
    """This run (a deploy or a teardown of the model), as its lock names it."""
    return LockHolder(
        dag_id=plan.dag_id,
        run_id=plan.run_id,
        run_key=derive_run_key(plan.dag_id, plan.run_id),
        lease_seconds=lease_seconds_for(plan),
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else "an unknown time"


def wait_expired_message(
    lock: ModelLock,
    holder: LockHolder | None,
    since: datetime | None,
    until: datetime | None,
    waited_seconds: float,
    budget_field: str = "platform.locks.wait_budget_seconds",
) -> str:
    """Why a run gave up waiting for its model's lock, and what the user can do about it."""
    who = holder.describe() if holder is not None else "another run"
    return (
        f"Model {lock.model_name} in account {lock.account_id} is locked by {who} "
        f"(since {_when(since)}); this run waited {int(waited_seconds)} s ({budget_field}) "
        "and gave up.\n"
        f"Trigger this run again once that run has ended. The lock lapses at {_when(until)} by itself; "
        f"if that run is no longer running, deleting {lock.uri} releases it now."
    )


def foreign_lock_message(lock: ModelLock, problem: str) -> str:
    """Why a run stops at a lock object sagelift did not write."""
    return (
        f"The lock object {lock.uri} of {lock.label} was not written by sagelift: delete it "
        f"unless a run of the {lock.subject} is running.\nIts body {problem}."
    )


def lost_lock_message(lock: ModelLock, holder: LockHolder, since: datetime | None) -> str:
    """Why a run stops when another run took its model's lock (this run's lease lapsed)."""
    return (
        f"Model {lock.model_name} in account {lock.account_id} is now locked by {holder.describe()} "
        f"(since {_when(since)}): this run's lock lapsed or was released by hand, so it stops before "
        "changing the endpoint, to never change it together with that run."
    )


def lock_outcome(
    lock: ModelLock, holder: LockHolder, waited_for: list[str], waited_seconds: float, took_over: str | None
) -> dict[str, Any]:
    """What a run reports after taking its model's lock (identifiers only)."""
    return {
        "lock_uri": lock.uri,
        "run_key": holder.run_key,
        "lease_seconds": holder.lease_seconds,
        "waited_seconds": round(waited_seconds, 1),
        "waited_for": waited_for,
        "took_over_from": took_over,
    }
