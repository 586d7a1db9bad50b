"""What deploy_endpoint does around reconcile for the conf's ``endpoint`` object: autoscaling and the
smoke test (issue 16 items 1 and 8). Both engines call ``prepare_deploy`` before
``sagelift.steps.endpoint.reconcile_endpoint`` and ``finish_deploy`` after the wait, before
``conclude_deploy`` (so a smoke test that reverts the endpoint runs before anything is pruned):

1. before: record the config to revert to (only with a smoke test; sagelift.steps.smoke), and deregister
   the variant's scalable target when the update changes the variant (sagelift.steps.autoscaling);
2. after the wait, only when the endpoint is InService on the run's config (anything else is judged by
   conclude_deploy, as before): run the smoke test (a failure reverts and is final), then make the
   variant's scaling what the conf says (register, update in place, or remove what an earlier run put
   there).

``begin_deploy`` and ``end_deploy`` are the whole step around the engine's own wait, in the order both
engines must keep: the lock still held, prepare, alarms and reconcile; then finish, and conclude with the
runs in progress. Clients come from the engine's factory (sagelift.steps.clients), made only when a call
needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelift.domain.autoscaling import variant_changes
from sagelift.domain.plan import Plan
from sagelift.domain.sagemaker import VARIANT_NAME, build_endpoint_config_request
from sagelift.steps import autoscaling as scaling
from sagelift.steps import endpoint, lock, smoke
from sagelift.steps.clients import Clients, autoscaling_client, runtime_client
from sagelift.steps.errors import describe_or_none


def prepare_deploy(sagemaker: Any, clients: Clients, plan: Plan) -> None:
    names, settings = plan.names, plan.params.endpoint
    if settings.smoke_test is not None:
        smoke.remember_previous(sagemaker, names.endpoint, names.endpoint_config)
    current = describe_or_none(sagemaker.describe_endpoint, EndpointName=names.endpoint)
    if current is None or current.get("EndpointStatus") != "InService":
        return
    serving = str(current.get("EndpointConfigName") or "")
    if serving == names.endpoint_config:
        return
    config = describe_or_none(sagemaker.describe_endpoint_config, EndpointConfigName=serving) or {}
    variants = list(config.get("ProductionVariants") or [])
    new = build_endpoint_config_request(plan.params, names, tags=[], settings=plan.platform.sagemaker)
    if variant_changes(variants, new["ProductionVariants"], VARIANT_NAME):  # else no client is made
        scaling.release_for_update(
            autoscaling_client(clients), names.endpoint, VARIANT_NAME, variants, new["ProductionVariants"]
        )


def finish_deploy(sagemaker: Any, clients: Clients, plan: Plan, described: Mapping[str, Any]) -> None:
    names, settings = plan.names, plan.params.endpoint
    if described.get("EndpointStatus") != "InService" or described.get("EndpointConfigName") != (
        names.endpoint_config
    ):
        return  # Failed, rolled back or replaced: conclude_deploy judges it (naming a guard's alarm)
    autoscaling = autoscaling_client(clients)
    if settings.smoke_test is not None:
        wait = plan.platform.sagemaker
        smoke.smoke_test(
            sagemaker,
            runtime_client(clients),
            autoscaling,
            names.endpoint,
            names.endpoint_config,
            settings.smoke_test,
            variant_name=VARIANT_NAME,
            interval_seconds=wait.check_interval_seconds,
            budget_seconds=wait.endpoint_wait_budget_seconds,
        )
    if settings.mode != "serverless":
        scaling.apply_scaling(autoscaling, names.endpoint, VARIANT_NAME, settings.autoscaling)


def begin_deploy(
    sagemaker: Any, clients: Clients, plan: Plan, tags: list[dict[str, str]]
) -> endpoint.Reconciled:
    """Everything deploy_endpoint does before its wait; the result says whether to wait."""
    lock.verify_held(clients("s3"), plan)
    prepare_deploy(sagemaker, clients, plan)
    return endpoint.reconcile_endpoint(sagemaker, plan, tags, endpoint.cloudwatch_for(plan, clients))


def end_deploy(sagemaker: Any, clients: Clients, plan: Plan, described: Mapping[str, Any]) -> None:
    """Everything deploy_endpoint does after its wait, given the endpoint's description: the smoke test
    and scaling, then the outcome (failing on a rollback or another run's config) and pruning."""
    finish_deploy(sagemaker, clients, plan, described)
    in_progress = lock.runs_in_progress(clients("s3"), plan)
    endpoint.conclude_deploy(sagemaker, plan, described, in_progress, endpoint.cloudwatch_for(plan, clients))
