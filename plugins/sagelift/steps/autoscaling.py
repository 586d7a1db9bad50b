"""Autoscaling of the model's endpoint variant through Application Auto Scaling (issue 16 item 1).

Both engines call these around deploy_endpoint's reconcile, on the chain's session:

- ``release_for_update`` before the endpoint is updated: when the update changes the scaled variant
  (its instance type, or it goes away), SageMaker refuses the update while the variant is a scalable
  target, so the target (and its policy) is deregistered first; an update that keeps the variant keeps
  its scaling;
- ``apply_scaling`` after the endpoint is InService on the run's config: registers the variant (or
  updates its capacities in place) and puts the target-tracking policy (or updates it in place); a run
  without ``endpoint.autoscaling`` removes the scaling an earlier run of the model put there, so the
  endpoint scales as the latest conf says; nothing is written when everything already matches;
- ``remove_scaling`` at teardown, and for the two cases above.

Every call is idempotent, so a request whose answer was lost converges when botocore sends it again or
the task runs again: registering and putting again overwrite with the same values, and a delete or
deregister that meets "not found" (Application Auto Scaling answers ObjectNotFoundException or
ValidationException "No scalable target found") counts as done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from botocore.exceptions import ClientError

from sagelift.domain.autoscaling import (
    build_delete_scaling_policy_request,
    build_deregister_scalable_target_request,
    build_put_scaling_policy_request,
    build_register_scalable_target_request,
    derive_policy_name,
    policy_is_current,
    target_is_current,
    target_key,
    variant_changes,
)
from sagelift.domain.endpoint_settings import Autoscaling
from sagelift.steps.errors import error_code

log = logging.getLogger(__name__)

Applied = Literal["registered", "updated", "unchanged", "removed", "none"]


def _gone(err: ClientError) -> bool:
    code = error_code(err)
    return code == "ObjectNotFoundException" or (code == "ValidationException" and "No scal" in str(err))


def describe_target(autoscaling: Any, endpoint_name: str, variant_name: str) -> dict[str, Any] | None:
    key = target_key(endpoint_name, variant_name)
    found = autoscaling.describe_scalable_targets(
        ServiceNamespace=key["ServiceNamespace"],
        ResourceIds=[key["ResourceId"]],
        ScalableDimension=key["ScalableDimension"],
    ).get("ScalableTargets", [])
    return dict(found[0]) if found else None


def describe_policy(autoscaling: Any, endpoint_name: str, variant_name: str) -> dict[str, Any] | None:
    found = autoscaling.describe_scaling_policies(
        PolicyNames=[derive_policy_name(endpoint_name)], **target_key(endpoint_name, variant_name)
    ).get("ScalingPolicies", [])
    return dict(found[0]) if found else None


def remove_scaling(autoscaling: Any, endpoint_name: str, variant_name: str) -> bool:
    """Delete the policy and deregister the target; False when neither was there."""
    removed = False
    try:
        autoscaling.delete_scaling_policy(**build_delete_scaling_policy_request(endpoint_name, variant_name))
        removed = True
    except ClientError as err:
        if not _gone(err):
            raise
    try:
        autoscaling.deregister_scalable_target(
            **build_deregister_scalable_target_request(endpoint_name, variant_name)
        )
        removed = True
    except ClientError as err:
        if not _gone(err):
            raise
    if removed:
        log.info("Removed the autoscaling of endpoint %s variant %s.", endpoint_name, variant_name)
    return removed


def release_for_update(
    autoscaling: Any,
    endpoint_name: str,
    variant_name: str,
    current_variants: Iterable[Mapping[str, Any]],
    new_variants: Iterable[Mapping[str, Any]],
) -> bool:
    """Before UpdateEndpoint: deregister the variant when the update changes it; True when it did."""
    if not variant_changes(current_variants, new_variants, variant_name):
        return False
    if describe_target(autoscaling, endpoint_name, variant_name) is None:
        return False
    log.info(
        "The update changes variant %s of endpoint %s: deregistering its scalable target first "
        "(it is registered again once the endpoint is InService).",
        variant_name,
        endpoint_name,
    )
    return remove_scaling(autoscaling, endpoint_name, variant_name)


def apply_scaling(
    autoscaling: Any, endpoint_name: str, variant_name: str, scaling: Autoscaling | None
) -> Applied:
    """Make the variant's scaling what ``scaling`` says (see the module docstring)."""
    target = describe_target(autoscaling, endpoint_name, variant_name)
    if scaling is None:
        if target is None and describe_policy(autoscaling, endpoint_name, variant_name) is None:
            return "none"
        return "removed" if remove_scaling(autoscaling, endpoint_name, variant_name) else "none"
    register = build_register_scalable_target_request(endpoint_name, variant_name, scaling)
    policy = build_put_scaling_policy_request(endpoint_name, variant_name, scaling)
    wrote = False
    if not target_is_current(target, register):
        autoscaling.register_scalable_target(**register)
        wrote = True
    if target is None or not policy_is_current(
        describe_policy(autoscaling, endpoint_name, variant_name), policy
    ):
        autoscaling.put_scaling_policy(**policy)
        wrote = True
    if target is None:
        outcome: Applied = "registered"
    else:
        outcome = "updated" if wrote else "unchanged"
    log.info(
        "Autoscaling of endpoint %s variant %s %s: %d-%d instances, %s invocations per instance.",
        endpoint_name,
        variant_name,
        outcome,
        scaling.min_capacity,
        scaling.max_capacity,
        scaling.target_invocations_per_instance,
    )
    return outcome
