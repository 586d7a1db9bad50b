"""approve_deploy's calls (issue 17 item 8): what the approver is shown, and the answer recorded.

``approval_changes`` reads the account with plan_changes' own planners (Describe/List/Get only) for the
resources the run is about to deploy (images, model, endpoint config, endpoint, alarms, scaling,
pruning, API), with the artifact the registered version holds, so the approver sees the same change
set a ``plan_only`` run prints. ``record_decision`` sets the version's status (Approved or Rejected)
through the model registry's ``set_approval``. Airflow-free: the operator (sagelift.operators.approval)
does the asking and waiting, with the standard provider's ApprovalOperator.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sagelift.domain.approval import Decision
from sagelift.domain.changes import Change, ChangeSet
from sagelift.domain.plan import Plan
from sagelift.steps import model_registry
from sagelift.steps.clients import Clients
from sagelift.steps.errors import retry_transient
from sagelift.steps.plan_changes import (
    PLANNERS,
    PlanContext,
    Planner,
    plan_changes,
    plan_model_lock,
    plan_training_job,
)

log = logging.getLogger(__name__)


def _artifact_planner(registered: Mapping[str, Any]) -> Planner:
    """Puts the registered version's artifact where plan_model reads it (a tuned run's best job's too)."""

    def plan_artifact(ctx: PlanContext) -> list[Change]:
        url = registered.get("model_data_url")
        if url:
            ctx.artifact = str(url)
        else:
            plan_training_job(ctx)  # the trained job's artifact; the job itself is done, not shown
        return []

    return plan_artifact


def _promoted_images_planner(registered: Mapping[str, Any]) -> Planner:
    """A promoted run's serving image is the registered version's, copied by digest by copy_images (the
    conf names no image to plan from)."""

    def plan_promoted_image(ctx: PlanContext) -> list[Change]:
        image = str(registered["image"])
        digest = image.partition("@")[2] or None
        source = str(registered["promoted_from"])
        ctx.images["model_docker_image"] = {
            "image": image,
            "digest": digest,
            "source": source,
            "action": "promoted",
        }
        ctx.images.setdefault("training_docker_image", None)
        return [Change("image", image, "unchanged", note=f"promoted by digest from {source}")]

    return plan_promoted_image


def approval_changes(
    plan: Plan, clients: Clients, tags: list[dict[str, str]], registered: Mapping[str, Any]
) -> ChangeSet:
    """What the run will change after approval: plan_changes' deploy planners, read-only."""
    deploy = tuple(p for p in PLANNERS if p not in (plan_model_lock, plan_training_job))
    images, rest = deploy[:1], deploy[1:]
    if registered.get("promoted_from") and registered.get("image"):
        images = (_promoted_images_planner(registered),)
    planners = (*images, _artifact_planner(registered), *rest)
    return plan_changes(plan, clients, tags=tags, planners=planners)


@retry_transient(tries=3, first_delay=5.0)
def record_decision(client: Any, registered: Mapping[str, Any], decision: Decision, run_id: str) -> str:
    """Set the version's status to the decision's; returns the status SageMaker now reports."""
    described = model_registry.set_approval(
        client, str(registered["model_package_arn"]), decision.status, decision.description(run_id)
    )
    return str(described.get("ModelApprovalStatus") or decision.status)
