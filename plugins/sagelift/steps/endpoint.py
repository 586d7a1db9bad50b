"""Step 7, deploy_endpoint: reconcile the model's endpoint with this run's config, and judge the outcome.

The endpoint's name is stable per model (``<model_name>``), so a new run updates it in place.
``reconcile_endpoint`` does every write the step needs and returns what it did; the engine then waits
(Airflow: deferred or in the worker; KFP: ``wait_for_endpoint``) unless nothing changed, and calls
``endpoint_outcome`` and ``prune_revisions``:

- the run's endpoint config is created once (a retry, a lost answer, finds it);
- an endpoint not tagged as this model's (another team's of the same name) is refused, never updated;
- a ``Failed`` endpoint is deleted (waiting until it is gone) and created again;
- an endpoint another deploy is changing (Creating, Updating, ...) is a transient state: retried later;
- an endpoint already serving this run's config is left as it is (nothing to wait for);
- otherwise it is updated (UpdateEndpoint, its tags refreshed first) or created;
- after the wait, ``Failed`` is final with SageMaker's reason, and an endpoint found on another config
  means SageMaker rolled the update back: final too;
- after a successful deploy, the model's endpoint configs and models beyond ``keep_endpoint_configs``
  are deleted, only those named and tagged as this model's and never one newer than the config in
  service (it belongs to a run still deploying).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError, WaiterError

from sagelift.domain.ownership import is_owned, owner_of, per_run_name_re
from sagelift.domain.plan import Plan
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_endpoint_request,
    build_update_endpoint_request,
)
from sagelift.steps.errors import StepFailed, StepRetry, delete_if_exists, describe_or_none, error_code

log = logging.getLogger(__name__)

CHANGING = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")

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
    request = build_endpoint_config_request(plan.params, names, tags=tags, settings=plan.platform.sagemaker)
    try:
        client.create_endpoint_config(**request)
    except ClientError as err:
        if error_code(err) != "ValidationException" or "already exist" not in str(err):
            raise
    log.info("Created endpoint config %s.", names.endpoint_config)


def reconcile_endpoint(client: Any, plan: Plan, tags: list[dict[str, str]]) -> Reconciled:
    """Make the model's endpoint serve this run's config (see the module docstring); no waiting."""
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
        raise StepRetry(
            f"Endpoint {names.endpoint} is {current['EndpointStatus']} (another deploy is changing it); "
            "this step is retried and deploys once it is settled."
        )
    done = Reconciled("unchanged", names.endpoint, names.endpoint_config)
    if current is not None and current["EndpointConfigName"] == names.endpoint_config:
        log.info("Endpoint %s already serves %s.", names.endpoint, names.endpoint_config)
        return done
    if current is not None:
        if tags:  # UpdateEndpoint takes no tags: keep the endpoint's current
            client.add_tags(ResourceArn=current["EndpointArn"], Tags=tags)
        log.info(
            "Endpoint %s exists (on config %s); updating it to %s.",
            names.endpoint,
            current["EndpointConfigName"],
            names.endpoint_config,
        )
        client.update_endpoint(**build_update_endpoint_request(names))
        return Reconciled("update", names.endpoint, names.endpoint_config)
    log.info("Creating endpoint %s on config %s.", names.endpoint, names.endpoint_config)
    try:
        client.create_endpoint(**build_endpoint_request(names, tags=tags))
    except ClientError as err:
        if error_code(err) != "ValidationException" or "already exist" not in str(err):
            raise
    return Reconciled("create", names.endpoint, names.endpoint_config)


def delete_endpoint(client: Any, name: str, settings: SageMakerSettings) -> bool:
    """Delete the endpoint and wait until it is gone; False when it already was."""
    if not delete_if_exists(client.delete_endpoint, EndpointName=name):
        return False
    client.get_waiter("endpoint_deleted").wait(
        EndpointName=name,
        WaiterConfig={
            "Delay": settings.check_interval_seconds,
            "MaxAttempts": attempts(settings.endpoint_wait_budget_seconds, settings.check_interval_seconds),
        },
    )
    return True


def endpoint_outcome(endpoint: Mapping[str, Any], expected_config: str) -> Mapping[str, Any]:
    """The endpoint's description when it serves ``expected_config``; Failed or rolled back is final."""
    if endpoint.get("EndpointStatus") == "Failed":
        raise StepFailed(
            f"Endpoint {endpoint['EndpointName']} failed: "
            f"{endpoint.get('FailureReason') or 'SageMaker gave no reason'}"
        )
    if endpoint.get("EndpointConfigName") != expected_config:
        raise StepFailed(
            f"Endpoint {endpoint['EndpointName']} is serving config {endpoint.get('EndpointConfigName')}, "
            f"not this run's {expected_config}: SageMaker rolled the update back. "
            f"{endpoint.get('FailureReason') or ''}".strip()
        )
    return endpoint


def attempts(budget_seconds: int, interval_seconds: int) -> int:
    """How many polls of ``interval_seconds`` fit a wall-clock budget (at least one)."""
    return max(1, -(-budget_seconds // interval_seconds))


def wait_for_endpoint(client: Any, plan: Plan) -> dict[str, Any]:
    """Wait (botocore's waiter) until the endpoint is InService or Failed; returns its description."""
    settings = plan.platform.sagemaker
    name = plan.names.endpoint
    try:
        client.get_waiter("endpoint_in_service").wait(
            EndpointName=name,
            WaiterConfig={
                "Delay": settings.check_interval_seconds,
                "MaxAttempts": attempts(
                    settings.endpoint_wait_budget_seconds, settings.check_interval_seconds
                ),
            },
        )
    except WaiterError as err:
        described = dict(client.describe_endpoint(EndpointName=name))
        if described.get("EndpointStatus") != "Failed":
            raise StepFailed(
                f"Endpoint {name} did not become InService within the wait budget: {err}"
            ) from None
        return described
    return dict(client.describe_endpoint(EndpointName=name))


def prune_revisions(client: Any, model_name: str, in_service: str, keep: int) -> list[str]:
    """Delete this model's endpoint configs (and same-named models) beyond the newest ``keep``.

    Only resources named ``<model_name>-<run key>`` and tagged as this model's are touched; the config
    in service is always kept, and so is any model newer than it (a run still deploying).
    """
    own = per_run_name_re(model_name)
    configs = [
        c
        for page in client.get_paginator("list_endpoint_configs").paginate(NameContains=model_name)
        for c in page["EndpointConfigs"]
        if own.fullmatch(c["EndpointConfigName"])
        and is_owned(list_tags(client, c["EndpointConfigArn"]), model_name)
    ]
    configs.sort(key=lambda c: (c["EndpointConfigName"] == in_service, c["CreationTime"]), reverse=True)
    kept = {c["EndpointConfigName"] for c in configs[:keep]} | {in_service}
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
            if not own.fullmatch(m["ModelName"]) or m["ModelName"] in kept:
                continue
            if newest_kept is not None and m["CreationTime"] > newest_kept:
                continue
            if not is_owned(list_tags(client, m["ModelArn"]), model_name):
                continue
            log.info("Deleting model %s (its endpoint config is no longer kept)", m["ModelName"])
            if delete_if_exists(client.delete_model, ModelName=m["ModelName"]):
                deleted.append(m["ModelName"])
    return deleted
