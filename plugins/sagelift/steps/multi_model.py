"""A run's model on its team's shared multi-model endpoint (issue 20 item 1), for both engines.

- ``place_model`` (create_model): copies the run's artifact to ``<prefix><model_name>/<run key>.tar.gz``
  (a retry copies the same object again) and ensures the shared SageMaker model, one MultiModel
  container over the prefix. The registered version is still registered (register_model); no model of
  the run's own is created.
- ``ensure_shared_endpoint`` (deploy_endpoint): the shared endpoint config and endpoint, created when
  absent and adopted as they are otherwise. Two runs that both find nothing both create: the loser's
  "already exists" (or ResourceInUse) is the winner's resource, adopted, so they converge on one endpoint.
  The answer says whether to wait (the endpoint is not InService yet); ``shared_endpoint_outcome`` judges
  the end (Failed is final). A run never updates the shared endpoint: its settings are the platform's,
  and a change there is the ML engineer's (delete the endpoint, and the next run creates it anew).
- ``prune_versions``: after expose_api moved the route, the model's older keys are deleted, so the prefix
  holds one artifact per model (the one the route names).
- ``remove_model`` (teardown): deletes every key of one model under the prefix; the shared endpoint and
  model stay while any other model's artifact is there. When the last model leaves, they are deleted too
  (an endpoint serving nothing still bills its instances); ``shared_endpoint_users`` tells who is left.

The shared resources carry the team's tag (domain.multi_model.SHARED_TAG_KEY), never a model's owner
tag: no model's teardown of "its own" resources matches them.

Joining and leaving take turns (``team_turn``, the team's lock next to the models' locks): a teardown
that finds no other model and deletes the endpoint, and a first run of another model that adopts the
endpoint, would otherwise cross: the teardown lists the prefix, the run places its artifact and adopts
the serving endpoint, then the teardown deletes it under the run, which ends "successful" with nothing
serving. So ``place_model`` copies the artifact first, then ensures the shared model holding the lock;
``remove_model`` lists the users and deletes holding it. Whichever goes second sees the other: the
teardown sees the new artifact and keeps the endpoint, or the run finds the model gone and creates it
again, and its deploy creates the endpoint again (once a deletion in progress has ended). The lock is
held for a few calls, never for a wait; without ``locks_s3_uri`` nothing is serialized (a warning says
so) and the window stays open.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

from botocore.exceptions import ClientError, WaiterError

from sagelift.domain.lock import run_holder, shared_endpoint_lock
from sagelift.domain.multi_model import (
    MultiModelPlacement,
    SharedEndpoint,
    artifact_uri,
    build_shared_endpoint_config_request,
    build_shared_endpoint_request,
    build_shared_model_request,
    derive_target_model,
    model_artifacts_prefix,
)
from sagelift.domain.plan import Plan
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.teardown import TeardownPlan
from sagelift.steps import lock as locks
from sagelift.steps.errors import StepFailed, StepRetry, delete_if_exists, describe_or_none, error_code

log = logging.getLogger(__name__)
FAILED = ("Failed",)
MAX_KEYS_LISTED = 10_000  # a model's versions under the prefix: a handful; bound what one listing reads
# The team's lock is held for a few calls: a holder whose worker died frees it after this lease, and a
# run waits for it at most twice as long (then the step is retried).
TEAM_LEASE_SECONDS = 300
TEAM_WAIT_SECONDS = 2 * TEAM_LEASE_SECONDS
TEAM_POLL_SECONDS = 2.0


@contextmanager
def team_turn(
    s3: Any,
    plan: Plan | TeardownPlan,
    endpoint: SharedEndpoint,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """Hold the team's shared-endpoint lock for the calls inside (see the module's docstring)."""
    lock = shared_endpoint_lock(plan.platform, plan.account_id, endpoint.team, endpoint.name)
    if lock is None:
        log.warning(
            "platform.locks_s3_uri is not set: joining and leaving shared endpoint %s are not serialized.",
            endpoint.name,
        )
        yield
        return
    me = replace(run_holder(plan), lease_seconds=TEAM_LEASE_SECONDS)
    started = clock()
    while not (attempt := locks.try_acquire(s3, lock, me)).acquired:
        holder = attempt.state.holder
        if clock() - started >= TEAM_WAIT_SECONDS:
            raise StepRetry(
                f"Shared endpoint {endpoint.name} stayed locked by "
                f"{holder.describe() if holder else 'another run'} for {TEAM_WAIT_SECONDS} s "
                f"({lock.uri}); the step is retried."
            )
        log.info("Shared endpoint %s is locked by %s; waiting.", endpoint.name, holder and holder.describe())
        sleep(TEAM_POLL_SECONDS)
    try:
        yield
    finally:
        try:
            locks.release(s3, lock, me.run_key)
        except Exception as err:  # the work is done; an unreleased lock lapses after its short lease
            log.warning("Releasing %s failed (%s); it lapses in %d s.", lock.uri, err, TEAM_LEASE_SECONDS)


def shared_endpoint(plan: Plan) -> SharedEndpoint:
    team = str(plan.params.multi_model.endpoint)
    return plan.platform.account(plan.account_id).multi_model_endpoints[team]


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _created_already(err: ClientError) -> bool:
    """A create answered "exists": another run (or this one's lost answer) created it; adopt it."""
    return error_code(err) == "ResourceInUse" or (
        error_code(err) == "ValidationException" and "already exist" in str(err)
    )


def _create_or_adopt(create: Callable[..., Any], request: Mapping[str, Any], what: str) -> bool:
    """True when this call created it, False when it existed."""
    try:
        create(**request)
    except ClientError as err:
        if not _created_already(err):
            raise
        log.info("%s exists already (another run created it): adopted as it is.", what)
        return False
    log.info("Created %s.", what)
    return True


def place_model(s3: Any, sagemaker: Any, plan: Plan, source_s3_uri: str) -> MultiModelPlacement:
    """create_model on a shared endpoint: the artifact at this run's key, and the shared model."""
    endpoint = shared_endpoint(plan)
    target = derive_target_model(plan.model_name, plan.names.run_key)
    destination = artifact_uri(endpoint, target)
    source_bucket, source_key = _split(source_s3_uri)
    bucket, key = _split(destination)
    s3.copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)  # multipart above 8 MB
    log.info("Copied the model's artifact %s to %s.", source_s3_uri, destination)
    with team_turn(s3, plan, endpoint):  # the artifact is listed now: a teardown keeps the endpoint
        ensure_shared_model(sagemaker, plan, endpoint)
    return MultiModelPlacement(
        team=endpoint.team,
        endpoint_name=endpoint.name,
        target_model=target,
        artifact_s3_uri=destination,
        source_s3_uri=source_s3_uri,
    )


def ensure_shared_model(sagemaker: Any, plan: Plan, endpoint: SharedEndpoint) -> None:
    if describe_or_none(sagemaker.describe_model, ModelName=endpoint.name) is not None:
        return
    request = build_shared_model_request(
        endpoint,
        region=plan.region,
        role_arn=plan.platform.model_role_arn(plan.account_id),
        network=plan.platform.account(plan.account_id).network,
    )
    _create_or_adopt(sagemaker.create_model, request, f"shared model {endpoint.name}")


@dataclass(frozen=True)
class SharedDeploy:
    endpoint_name: str
    created: bool  # this run created the endpoint
    wait: bool  # not InService yet: wait for it (deferred on Airflow)


def ensure_shared_endpoint(sagemaker: Any, plan: Plan) -> SharedDeploy:
    """deploy_endpoint on a shared endpoint: create the config and the endpoint when absent, else adopt."""
    endpoint = shared_endpoint(plan)
    network = plan.platform.account(plan.account_id).network
    config = describe_or_none(sagemaker.describe_endpoint_config, EndpointConfigName=endpoint.name)
    if config is None:
        request = build_shared_endpoint_config_request(endpoint, network)
        _create_or_adopt(sagemaker.create_endpoint_config, request, f"shared endpoint config {endpoint.name}")
    elif drift := settings_drift(config, endpoint):
        log.warning(
            "Shared endpoint %s runs %s, but the platform now says %s: a run never changes it; an ML "
            "engineer deletes the endpoint, its config and model %s, and the next run creates them anew.",
            endpoint.name,
            drift[0],
            drift[1],
            endpoint.name,
        )
    current = describe_or_none(sagemaker.describe_endpoint, EndpointName=endpoint.name)
    if current is not None and current.get("EndpointStatus") == "Deleting":
        log.info(
            "Shared endpoint %s is being deleted (its last model left); creating it again after.",
            endpoint.name,
        )
        from sagelift.steps.endpoint import wait_deleted

        wait_deleted(sagemaker, endpoint.name, plan.platform.sagemaker)
        current = None
    created = False
    if current is None:
        created = _create_or_adopt(
            sagemaker.create_endpoint,
            build_shared_endpoint_request(endpoint),
            f"shared endpoint {endpoint.name}",
        )
        current = describe_or_none(sagemaker.describe_endpoint, EndpointName=endpoint.name) or {}
    status = current.get("EndpointStatus")
    if status in FAILED:
        shared_endpoint_outcome(current)
    return SharedDeploy(endpoint.name, created, wait=status != "InService")


def settings_drift(config: Mapping[str, Any], endpoint: SharedEndpoint) -> tuple[str, str] | None:
    """(what the endpoint config runs, what the platform says) when its instances differ, else None."""
    variants = config.get("ProductionVariants") or [{}]
    running = (variants[0].get("InstanceType"), variants[0].get("InitialInstanceCount"))
    wanted = (endpoint.instance_type, endpoint.instance_count)
    if running == wanted:
        return None
    return f"{running[1]} x {running[0]}", f"{wanted[1]} x {wanted[0]}"


def shared_endpoint_outcome(described: Mapping[str, Any]) -> Mapping[str, Any]:
    """The shared endpoint's description when it serves; Failed is final (the platform's to repair)."""
    status = described.get("EndpointStatus")
    if status in FAILED:
        raise StepFailed(
            f"Shared multi-model endpoint {described.get('EndpointName')} failed: "
            f"{described.get('FailureReason') or 'SageMaker gave no reason'}; an ML engineer deletes it "
            "and the next run creates it again"
        )
    if status != "InService":
        raise StepFailed(
            f"Shared multi-model endpoint {described.get('EndpointName')} is {status}, not InService"
        )
    return described


def wait_for_shared_endpoint(sagemaker: Any, name: str, settings: SageMakerSettings) -> dict[str, Any]:
    """In-process wait (the KFP engine, and Airflow without deferral): botocore's waiter, then the outcome."""
    from sagelift.steps.endpoint import attempts

    try:
        sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName=name,
            WaiterConfig={
                "Delay": settings.check_interval_seconds,
                "MaxAttempts": attempts(
                    settings.endpoint_wait_budget_seconds, settings.check_interval_seconds
                ),
            },
        )
    except WaiterError as err:  # Failed, or the budget spent: judged below
        log.info("Waiting for %s ended: %s", name, err)
    described = dict(sagemaker.describe_endpoint(EndpointName=name))
    shared_endpoint_outcome(described)
    return described


def _keys(s3: Any, uri: str) -> list[str]:
    bucket, prefix = _split(uri)
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(str(o["Key"]) for o in page.get("Contents") or [])
        if len(keys) >= MAX_KEYS_LISTED:
            break
    return keys


def prune_versions(s3: Any, plan: Plan, placement: MultiModelPlacement) -> list[str]:
    """Delete the model's keys other than the one the route now names; returns the deleted URIs."""
    endpoint = shared_endpoint(plan)
    bucket, keep = _split(placement.artifact_s3_uri)
    deleted = []
    for key in _keys(s3, model_artifacts_prefix(endpoint, plan.model_name)):
        if key != keep:
            s3.delete_object(Bucket=bucket, Key=key)
            deleted.append(f"s3://{bucket}/{key}")
    if deleted:
        log.info("Deleted the model's earlier versions on the shared endpoint: %s", ", ".join(deleted))
    return deleted


def shared_endpoint_users(s3: Any, endpoint: SharedEndpoint) -> list[str]:
    """The models with an artifact under the endpoint's prefix."""
    _bucket, prefix = _split(endpoint.prefix)
    users = {key[len(prefix) :].split("/", 1)[0] for key in _keys(s3, endpoint.prefix)}
    return sorted(u for u in users if u)


@dataclass(frozen=True)
class SharedRemoval:
    artifacts: list[str]  # the model's deleted artifact URIs
    endpoint_deleted: bool  # it was the last model: the shared endpoint, config and model went too
    others: list[str]  # the models still served


def remove_model(
    s3: Any, sagemaker: Any, plan: Plan | TeardownPlan, endpoint: SharedEndpoint
) -> SharedRemoval:
    """Teardown of one model on a shared endpoint: its artifacts; the endpoint when nobody is left (also
    when this model's artifacts went in an earlier attempt: an endpoint serving nothing is deleted)."""
    bucket, _ = _split(endpoint.prefix)
    artifacts = []
    for key in _keys(s3, model_artifacts_prefix(endpoint, plan.model_name)):
        s3.delete_object(Bucket=bucket, Key=key)
        artifacts.append(f"s3://{bucket}/{key}")
    with team_turn(s3, plan, endpoint):
        others = shared_endpoint_users(s3, endpoint)
        if others:
            return SharedRemoval(artifacts, False, others)
        deleting = delete_if_exists(sagemaker.delete_endpoint, EndpointName=endpoint.name)
        config = delete_if_exists(sagemaker.delete_endpoint_config, EndpointConfigName=endpoint.name)
        model = delete_if_exists(sagemaker.delete_model, ModelName=endpoint.name)
    if deleting:  # after the turn: a run joining meanwhile waits for the deletion itself
        from sagelift.steps.endpoint import wait_deleted

        wait_deleted(sagemaker, endpoint.name, plan.platform.sagemaker)
    return SharedRemoval(artifacts, deleting or config or model, [])


def remove_from_shared_endpoints(s3: Any, sagemaker: Any, plan: Plan | TeardownPlan) -> list[dict[str, Any]]:
    """Teardown: the model leaves every shared endpoint of its account it has an artifact on, and an
    endpoint left serving nothing goes (JSON-able: one entry per endpoint changed)."""
    removed = []
    endpoints = plan.platform.account(plan.account_id).multi_model_endpoints
    for team, endpoint in sorted(endpoints.items()):
        removal = remove_model(s3, sagemaker, plan, endpoint)
        if removal.artifacts or removal.endpoint_deleted:
            log.info(
                "Removed %s from %s; %s",
                ", ".join(removal.artifacts) or "nothing",
                endpoint.name,
                "deleted the endpoint (no model left)"
                if removal.endpoint_deleted
                else f"it still serves {', '.join(removal.others)}",
            )
            removed.append({"team": team, "endpoint": endpoint.name, **asdict(removal)})
    return removed


# --- each engine's step, one call ------------------------------------------------------------------------
def create_model_here(s3: Any, sagemaker: Any, plan: Plan, source_s3_uri: str) -> dict[str, Any]:
    """create_model's result on a shared endpoint: the shared model's description and where this model's
    artifact lies (``MultiModel``, read by deploy_endpoint, expose_api and the summary)."""
    placement = place_model(s3, sagemaker, plan, source_s3_uri)
    model = dict(sagemaker.describe_model(ModelName=placement.endpoint_name))
    model.pop("ResponseMetadata", None)
    return {"Model": model, "MultiModel": placement.to_xcom()}


def deploy_result(sagemaker: Any, placement: MultiModelPlacement) -> dict[str, Any]:
    """deploy_endpoint's result once the shared endpoint serves: its description and the placement."""
    described = dict(sagemaker.describe_endpoint(EndpointName=placement.endpoint_name))
    described.pop("ResponseMetadata", None)
    shared_endpoint_outcome(described)
    return {"Endpoint": described, "MultiModel": placement.to_xcom()}


def begin_shared_deploy(sagemaker: Any, s3: Any, plan: Plan) -> SharedDeploy:
    """deploy_endpoint before its wait, as on an endpoint of the model's own: the model's lock is still
    this run's (a later run of the model would otherwise have its key routed over), then the endpoint."""
    from sagelift.steps import lock

    lock.verify_held(s3, plan)
    return ensure_shared_endpoint(sagemaker, plan)


def deploy_here(sagemaker: Any, s3: Any, plan: Plan, placement: MultiModelPlacement) -> dict[str, Any]:
    """deploy_endpoint waiting in-process (the KFP engine)."""
    change = begin_shared_deploy(sagemaker, s3, plan)
    if change.wait:
        wait_for_shared_endpoint(sagemaker, change.endpoint_name, plan.platform.sagemaker)
    return deploy_result(sagemaker, placement)


def placement_of(result: Mapping[str, Any] | None) -> MultiModelPlacement:
    """The placement a previous step's result carries; its absence is a wiring error, final."""
    placement = MultiModelPlacement.from_xcom(result)
    if placement is None:
        raise StepFailed("multi_model: create_model's result names no placement on the shared endpoint")
    return placement
