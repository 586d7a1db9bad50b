"""Step 7, deploy_endpoint: reconcile the model's endpoint with this run's config, and judge the outcome.

The endpoint's name is stable per model (``<model_name>``), so a new run updates it in place.
``reconcile_endpoint`` does every write the step needs and returns what it did; the engine then waits
(Airflow: deferred or in the worker; KFP: ``wait_for_endpoint``) unless nothing changed, and calls
``endpoint_outcome`` and ``prune_revisions``:

- the run's endpoint config is created once (a retry, a lost answer, finds it);
- an endpoint not tagged as this model's (another team's of the same name) is refused, never updated;
- a ``Failed`` endpoint is deleted (waiting until it is gone) and created again;
- an endpoint another deploy is changing (Creating, Updating, ...) is a transient state: retried later;
  one already moving to this run's config (an earlier try, or a request whose answer was lost, got that
  far; ``PendingDeploymentSummary`` names the config an update deploys) is waited for instead;
- a create or update sent again by botocore after its answer was lost meets what the first one did
  (``Cannot create already existing ...``, ``Cannot update in-progress endpoint``), which counts as done;
- an endpoint already serving this run's config is left as it is (nothing to wait for);
- otherwise it is updated (UpdateEndpoint, its tags refreshed first) or created;
- a guarded deploy (``endpoint.deployment``: canary, linear, or alarms named) first puts its alarms in
  place (sagelift.steps.alarms: the conf's must exist, sagelift's per-model defaults are created or
  updated), then updates with a blue/green DeploymentConfig whose AutoRollbackConfiguration names them
  (sagelift.domain.deployment); the wait's budget grows by the strategy's baking time;
- after the wait, ``Failed`` is final with SageMaker's reason; an endpoint found on another config is
  final too: the config of another run of the model that changed the endpoint after this one (its
  tags name that run) is reported as such, anything else means SageMaker rolled the update back, and
  for a guarded deploy the message names the deployment's alarms in ALARM;
- after a successful deploy, the model's endpoint configs and models beyond ``keep_endpoint_configs``
  are deleted, only those named and tagged as this model's, never one newer than the config in
  service and never one of a run in progress (the runs holding the model's lock, sagelift.steps.lock).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError, WaiterError

from sagelift.domain.deployment import (
    build_guarded_update_endpoint_request,
    deployment_alarm_names,
    deployment_seconds,
    is_guarded,
)
from sagelift.domain.endpoint_settings import EndpointSettings
from sagelift.domain.ownership import TAG_PREFIX, is_owned, owner_of, per_run_name_re
from sagelift.domain.plan import Plan
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.sagemaker import (
    VARIANT_NAME,
    build_endpoint_config_request,
    build_endpoint_request,
)
from sagelift.steps.alarms import alarms_in_alarm, ensure_deployment_alarms
from sagelift.steps.clients import Clients
from sagelift.steps.errors import StepFailed, StepRetry, delete_if_exists, describe_or_none, error_code

log = logging.getLogger(__name__)

CHANGING = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
# Final states a wait ends in besides InService: the endpoint failed, or its rollback did.
FAILED = ("Failed", "UpdateRollbackFailed")

Operation = Literal["create", "update", "unchanged"]


@dataclass(frozen=True)
class Reconciled:
    """What ``reconcile_endpoint`` did; ``wait`` is False when the endpoint already serves the config."""

    operation: Operation
    endpoint_name: str
    endpoint_config_name: str

    @property
    def wait(self) -> bool:
        return self.operation != "unchanged"


def endpoint_settings(plan: Plan) -> EndpointSettings:
    """The run's ``endpoint`` settings (the defaults when the conf gives none)."""
    return plan.params.endpoint


def rollback_alarms(plan: Plan) -> tuple[str, ...]:
    """The alarms that roll this run's update back (none for an unguarded deploy)."""
    return deployment_alarm_names(plan.model_name, endpoint_settings(plan).deployment)


def cloudwatch_for(plan: Plan, clients: Clients) -> Any:
    """The account's CloudWatch client when the run's update is guarded by alarms, else None."""
    return clients("cloudwatch") if rollback_alarms(plan) else None


def ensure_alarms(cloudwatch: Any, plan: Plan, tags: list[dict[str, str]]) -> tuple[str, ...]:
    """Put the guarded deploy's alarms in place (see sagelift.steps.alarms); returns their names."""
    strategy = endpoint_settings(plan).deployment
    names = rollback_alarms(plan)
    if not names:
        return ()
    if cloudwatch is None:
        raise StepFailed(f"deploy_endpoint: a {strategy.type} deploy with alarms needs a CloudWatch client")
    ensure_deployment_alarms(
        cloudwatch,
        model_name=plan.model_name,
        endpoint_name=plan.names.endpoint,
        variant_name=VARIANT_NAME,
        alarm_names=names,
        conf_named=bool(strategy.alarms),
        tags=tags,
        account_id=plan.account_id,
        region=plan.region,
    )
    return names


def list_tags(client: Any, arn: str) -> list[dict[str, str]]:
    tags: list[dict[str, str]] = []
    for page in client.get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.extend(page.get("Tags", []))
    return tags


def _refuse_unowned(client: Any, kind: str, name: str, arn: str, model_name: str) -> None:
    tags = list_tags(client, arn)
    if not is_owned(tags, model_name):
        owner = owner_of(tags)
        whose = f"it belongs to sagelift model {owner!r}" if owner else "it was not created by sagelift"
        raise StepFailed(
            f"{kind} {name} exists and {whose}; sagelift will not change it. "
            f"Choose another model_name, or delete or re-tag that {kind}."
        )


def ensure_endpoint_config(client: Any, plan: Plan, tags: list[dict[str, str]]) -> None:
    """Create the run's endpoint config unless an earlier try did."""
    names = plan.names
    existing = describe_or_none(client.describe_endpoint_config, EndpointConfigName=names.endpoint_config)
    if existing is not None:
        _refuse_unowned(
            client, "Endpoint config", names.endpoint_config, existing["EndpointConfigArn"], plan.model_name
        )
        return
    request = build_endpoint_config_request(
        plan.params,
        names,
        tags=tags,
        settings=plan.platform.sagemaker,
        network=plan.platform.account(plan.account_id).network,
    )
    try:
        client.create_endpoint_config(**request)
    except ClientError as err:
        if error_code(err) != "ValidationException" or "already exist" not in str(err):
            raise
    log.info("Created endpoint config %s.", names.endpoint_config)


def reconcile_endpoint(
    client: Any, plan: Plan, tags: list[dict[str, str]], cloudwatch: Any = None
) -> Reconciled:
    """Make the model's endpoint serve this run's config (see the module docstring); no waiting.
    ``cloudwatch`` (the account's CloudWatch client) is needed by guarded deploys only."""
    names = plan.names
    ensure_endpoint_config(client, plan, tags)
    current = describe_or_none(client.describe_endpoint, EndpointName=names.endpoint)
    if current is not None:
        _refuse_unowned(client, "Endpoint", names.endpoint, current["EndpointArn"], plan.model_name)
    if current is not None and current["EndpointStatus"] == "Failed":
        log.info("Endpoint %s is Failed; deleting it to create it again.", names.endpoint)
        delete_if_exists(client.delete_endpoint, EndpointName=names.endpoint)
        settings = plan.platform.sagemaker
        client.get_waiter("endpoint_deleted").wait(
            EndpointName=names.endpoint,
            WaiterConfig={
                "Delay": settings.check_interval_seconds,
                "MaxAttempts": attempts(
                    settings.endpoint_wait_budget_seconds, settings.check_interval_seconds
                ),
            },
        )
        current = None
    if current is not None and current["EndpointStatus"] in CHANGING:
        if changing_to(current) == names.endpoint_config:
            # This run's own create or update, from an earlier try or a request whose answer was lost.
            log.info(
                "Endpoint %s is already %s to this run's %s; waiting for it.",
                names.endpoint,
                current["EndpointStatus"],
                names.endpoint_config,
            )
            operation: Operation = "create" if current["EndpointStatus"] == "Creating" else "update"
            return Reconciled(operation, names.endpoint, names.endpoint_config)
        raise StepRetry(
            f"Endpoint {names.endpoint} is {current['EndpointStatus']} (another deploy is changing it); "
            "this step is retried and deploys once it is settled."
        )
    done = Reconciled("unchanged", names.endpoint, names.endpoint_config)
    if current is not None and current["EndpointConfigName"] == names.endpoint_config:
        log.info("Endpoint %s already serves %s.", names.endpoint, names.endpoint_config)
        return done
    alarms = ensure_alarms(cloudwatch, plan, tags)
    if current is not None:
        if tags:  # UpdateEndpoint takes no tags: keep the endpoint's current
            client.add_tags(ResourceArn=current["EndpointArn"], Tags=tags)
        log.info(
            "Endpoint %s exists (on config %s); updating it to %s.",
            names.endpoint,
            current["EndpointConfigName"],
            names.endpoint_config,
        )
        strategy = endpoint_settings(plan).deployment
        if is_guarded(strategy):
            log.info("Guarded %s update; alarms that roll it back: %s.", strategy.type, ", ".join(alarms))
        _update_endpoint(client, build_guarded_update_endpoint_request(names, strategy, alarms))
        return Reconciled("update", names.endpoint, names.endpoint_config)
    log.info("Creating endpoint %s on config %s.", names.endpoint, names.endpoint_config)
    try:
        client.create_endpoint(**build_endpoint_request(names, tags=tags))
    except ClientError as err:
        if error_code(err) != "ValidationException" or "already exist" not in str(err):
            raise
    return Reconciled("create", names.endpoint, names.endpoint_config)


def changing_to(endpoint: Mapping[str, Any]) -> str | None:
    """The config a Creating or Updating endpoint is being moved to (Updating still reports the old one
    as ``EndpointConfigName`` and the new one in ``PendingDeploymentSummary``); None otherwise."""
    if endpoint.get("EndpointStatus") == "Creating":
        return str(endpoint.get("EndpointConfigName") or "") or None
    if endpoint.get("EndpointStatus") in ("Updating", "SystemUpdating"):
        pending = endpoint.get("PendingDeploymentSummary") or {}
        return str(pending.get("EndpointConfigName") or "") or None
    return None


def _update_endpoint(client: Any, request: Mapping[str, Any]) -> None:
    """UpdateEndpoint; sent again after its answer was lost, SageMaker refuses it ("Cannot update
    in-progress endpoint"): that refusal is this update itself when the endpoint is Updating to the
    requested config."""
    endpoint_name, config_name = request["EndpointName"], request["EndpointConfigName"]
    try:
        client.update_endpoint(**request)
    except ClientError as err:
        if error_code(err) != "ValidationException":
            raise
        now = describe_or_none(client.describe_endpoint, EndpointName=endpoint_name)
        if now is None or changing_to(now) != config_name:
            raise
        log.info(
            "Endpoint %s was already being updated to %s by the retried request.", endpoint_name, config_name
        )


def delete_endpoint(client: Any, name: str, settings: SageMakerSettings) -> bool:
    """Delete the endpoint and wait until it is gone; False when it already was."""
    if not delete_if_exists(client.delete_endpoint, EndpointName=name):
        return False
    wait_deleted(client, name, settings)
    return True


def wait_deleted(client: Any, name: str, settings: SageMakerSettings) -> None:
    """Wait, within the endpoint budget, until the endpoint is gone (botocore's endpoint_deleted waiter)."""
    client.get_waiter("endpoint_deleted").wait(
        EndpointName=name,
        WaiterConfig={
            "Delay": settings.check_interval_seconds,
            "MaxAttempts": attempts(settings.endpoint_wait_budget_seconds, settings.check_interval_seconds),
        },
    )


def endpoint_outcome(
    endpoint: Mapping[str, Any], expected_config: str, client: Any = None, cloudwatch: Any = None
) -> Mapping[str, Any]:
    """The endpoint's description when it serves ``expected_config``; Failed, rolled back or replaced by
    another run's config is final. ``client`` reads the config in service to tell the last two apart;
    ``cloudwatch``, when given, tells which of a guarded update's alarms are in ALARM."""
    if endpoint.get("EndpointStatus") in FAILED:
        raise StepFailed(
            f"Endpoint {endpoint['EndpointName']} failed: "
            f"{endpoint.get('FailureReason') or 'SageMaker gave no reason'}"
        )
    serving = endpoint.get("EndpointConfigName")
    if serving == expected_config:
        return endpoint
    other_run = _replacing_run(client, endpoint, expected_config) if client is not None else None
    if other_run is not None:
        raise StepFailed(
            f"Endpoint {endpoint['EndpointName']} is serving config {serving} of {other_run}, not this "
            f"run's {expected_config}: that run changed the endpoint after this one (not a rollback), so "
            "this run's model is not in service (runs of a model take turns only with platform.locks_s3_uri)."
        )
    raise StepFailed(
        f"Endpoint {endpoint['EndpointName']} is serving config {serving}, "
        f"not this run's {expected_config}: SageMaker rolled the update back"
        f"{_tripped_alarms(endpoint, cloudwatch)}. {endpoint.get('FailureReason') or ''}".strip()
    )


def guarding_alarms(endpoint: Mapping[str, Any]) -> list[str]:
    """The alarms of the endpoint's last deployment (DescribeEndpoint's LastDeploymentConfig)."""
    config = endpoint.get("LastDeploymentConfig") or {}
    alarms = (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    return [str(a["AlarmName"]) for a in alarms if a.get("AlarmName")]


def _tripped_alarms(endpoint: Mapping[str, Any], cloudwatch: Any) -> str:
    """`` after CloudWatch alarm X went into ALARM`` for a guarded update, naming what is known: the
    guarding alarms SageMaker's FailureReason names, and those CloudWatch shows in ALARM."""
    guards = guarding_alarms(endpoint)
    if not guards:
        return ""
    reason = str(endpoint.get("FailureReason") or "")
    in_alarm = set(alarms_in_alarm(cloudwatch, guards)) if cloudwatch is not None else set()
    tripped = [name for name in guards if name in in_alarm or _names(reason, name)]
    if tripped:
        return f" after CloudWatch alarm {', '.join(tripped)} went into ALARM"
    return f" (the update was guarded by CloudWatch alarm {', '.join(guards)})"


def _replacing_run(client: Any, endpoint: Mapping[str, Any], expected_config: str) -> str | None:
    """The run (as its tags name it) whose config replaced this run's in service, or None for a rollback.

    A rollback returns the endpoint to the config it served before this run's update, and SageMaker then
    reports a FailureReason; so the config in service is another run's when it is named and tagged as
    another run's config of this model and either no failure is reported or it is newer than this run's.
    """
    model_name, serving = str(endpoint["EndpointName"]), str(endpoint.get("EndpointConfigName") or "")
    if not per_run_name_re(model_name).fullmatch(serving):
        return None
    theirs = describe_or_none(client.describe_endpoint_config, EndpointConfigName=serving)
    if theirs is None:
        return None
    tags = list_tags(client, theirs["EndpointConfigArn"])
    if not is_owned(tags, model_name):
        return None
    if endpoint.get("FailureReason"):
        ours = describe_or_none(client.describe_endpoint_config, EndpointConfigName=expected_config)
        if ours is None or theirs["CreationTime"] <= ours["CreationTime"]:
            return None
    values = {t.get("Key"): t.get("Value") for t in tags}
    run_id, dag_id = values.get(f"{TAG_PREFIX}run-id"), values.get(f"{TAG_PREFIX}dag-id")
    return f"run {run_id} of {dag_id}" if run_id and dag_id else "another run of this model"


def _names(text: str, name: str) -> bool:
    """``text`` names ``name`` as a whole (not as part of a longer alarm name)."""
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", text) is not None


def conclude_deploy(
    client: Any,
    plan: Plan,
    described: Mapping[str, Any],
    in_progress: Collection[str] | None,
    cloudwatch: Any = None,
) -> None:
    """After the wait, on both engines: judge the outcome, then prune, sparing the runs in progress."""
    endpoint_outcome(described, plan.names.endpoint_config, client, cloudwatch)
    log.info(
        "Endpoint %s is %s, serving %s.",
        plan.names.endpoint,
        described.get("EndpointStatus"),
        plan.names.endpoint_config,
    )
    prune_revisions(
        client,
        plan.model_name,
        plan.names.endpoint_config,
        plan.platform.sagemaker.keep_endpoint_configs,
        in_progress,
    )


def attempts(budget_seconds: int, interval_seconds: int) -> int:
    """How many polls of ``interval_seconds`` fit a wall-clock budget (at least one)."""
    return max(1, -(-budget_seconds // interval_seconds))


def endpoint_wait_budget(plan: Plan) -> int:
    """Seconds to wait for the endpoint: the platform's budget, plus a guarded update's shifting and
    baking (canary or linear bakes, the wait before the old fleet goes)."""
    extra = deployment_seconds(endpoint_settings(plan).deployment)
    return plan.platform.sagemaker.endpoint_wait_budget_seconds + extra


def wait_for_endpoint(client: Any, plan: Plan) -> dict[str, Any]:
    """Wait (botocore's waiter) until the endpoint is InService or Failed; returns its description."""
    settings = plan.platform.sagemaker
    name = plan.names.endpoint
    try:
        client.get_waiter("endpoint_in_service").wait(
            EndpointName=name,
            WaiterConfig={
                "Delay": settings.check_interval_seconds,
                "MaxAttempts": attempts(endpoint_wait_budget(plan), settings.check_interval_seconds),
            },
        )
    except WaiterError as err:
        described = dict(client.describe_endpoint(EndpointName=name))
        if described.get("EndpointStatus") not in FAILED:
            raise StepFailed(
                f"Endpoint {name} did not become InService within the wait budget: {err}"
            ) from None
        return described
    return dict(client.describe_endpoint(EndpointName=name))


def prune_revisions(
    client: Any,
    model_name: str,
    in_service: str,
    keep: int,
    in_progress: Collection[str] | None = None,
) -> list[str]:
    """Delete this model's endpoint configs (and same-named models) beyond the newest ``keep``, never
    those of a run still in progress.

    Only resources named ``<model_name>-<run key>`` and tagged as this model's are touched. Kept besides
    the newest ``keep`` configs: the config in service, any config or model newer than it (a run that
    deploys after this one), and any resource of a run in ``in_progress`` (run keys: the runs holding the
    model's lock, sagelift.steps.lock.runs_in_progress). ``None`` says runs are not serialized, so a
    run in progress cannot be told from a finished one: a model without an endpoint config (a run between
    create_model and deploy_endpoint) is then never deleted, only the models of the configs deleted here.
    """
    own = per_run_name_re(model_name)
    spared_keys = set(in_progress or ())
    configs = [
        c
        for page in client.get_paginator("list_endpoint_configs").paginate(NameContains=model_name)
        for c in page["EndpointConfigs"]
        if own.fullmatch(c["EndpointConfigName"])
        and is_owned(list_tags(client, c["EndpointConfigArn"]), model_name)
    ]
    served_at = next((c["CreationTime"] for c in configs if c["EndpointConfigName"] == in_service), None)

    def in_progress_run(name: str, created: Any) -> bool:
        newer = served_at is not None and created > served_at
        return newer or name[len(model_name) + 1 :] in spared_keys

    configs.sort(key=lambda c: (c["EndpointConfigName"] == in_service, c["CreationTime"]), reverse=True)
    kept = {c["EndpointConfigName"] for c in configs[:keep]} | {in_service}
    kept |= {
        c["EndpointConfigName"]
        for c in configs
        if in_progress_run(c["EndpointConfigName"], c["CreationTime"])
    }
    deleted: list[str] = []
    for c in configs[keep:]:
        if c["EndpointConfigName"] in kept:
            continue
        log.info("Deleting endpoint config %s (older than the %d kept)", c["EndpointConfigName"], keep)
        if delete_if_exists(client.delete_endpoint_config, EndpointConfigName=c["EndpointConfigName"]):
            deleted.append(c["EndpointConfigName"])
    newest_kept = max((c["CreationTime"] for c in configs if c["EndpointConfigName"] in kept), default=None)
    for page in client.get_paginator("list_models").paginate(NameContains=model_name):
        for m in page["Models"]:
            name = m["ModelName"]
            if not own.fullmatch(name) or name in kept or in_progress_run(name, m["CreationTime"]):
                continue
            if newest_kept is not None and m["CreationTime"] > newest_kept:
                continue
            if in_progress is None and name not in deleted:
                continue  # perhaps a run between create_model and deploy_endpoint: nobody can tell
            if not is_owned(list_tags(client, m["ModelArn"]), model_name):
                continue
            log.info("Deleting model %s (its endpoint config is no longer kept)", m["ModelName"])
            if delete_if_exists(client.delete_model, ModelName=m["ModelName"]):
                deleted.append(m["ModelName"])
    return deleted
