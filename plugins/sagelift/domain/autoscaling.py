"""Pure builders of the Application Auto Scaling requests that scale a run's endpoint variant.

A run whose ``endpoint.autoscaling`` is set gets, after its endpoint is InService, the variant
registered as a scalable target (``endpoint/<endpoint>/variant/<variant>``, dimension
``sagemaker:variant:DesiredInstanceCount``) and one target-tracking policy on the predefined metric
``SageMakerVariantInvocationsPerInstance``. The policy's name is a function of the endpoint's name, so a
re-run (or a later run of the model) puts the same policy again, which updates it in place.

SageMaker refuses an UpdateEndpoint that changes the instance type of a variant registered for scaling
("If the update would change the instance type for any model that is a target for auto scaling, the
update fails", SageMaker's guide, Update endpoints that use auto scaling); ``variant_changes`` says when
the target must be deregistered before an update and registered again after it. Tests hold golden
bodies and check them against botocore's service model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sagelift.domain.endpoint_settings import Autoscaling

SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
POLICY_TYPE = "TargetTrackingScaling"


def derive_resource_id(endpoint_name: str, variant_name: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


def derive_policy_name(endpoint_name: str) -> str:
    return f"sagelift-{endpoint_name}-invocations-per-instance"


def target_key(endpoint_name: str, variant_name: str) -> dict[str, str]:
    """The three members that name a scalable target in every Application Auto Scaling call."""
    return {
        "ServiceNamespace": SERVICE_NAMESPACE,
        "ResourceId": derive_resource_id(endpoint_name, variant_name),
        "ScalableDimension": SCALABLE_DIMENSION,
    }


def build_register_scalable_target_request(
    endpoint_name: str, variant_name: str, scaling: Autoscaling
) -> dict[str, Any]:
    return {
        **target_key(endpoint_name, variant_name),
        "MinCapacity": scaling.min_capacity,
        "MaxCapacity": scaling.max_capacity,
    }


def build_put_scaling_policy_request(
    endpoint_name: str, variant_name: str, scaling: Autoscaling
) -> dict[str, Any]:
    return {
        "PolicyName": derive_policy_name(endpoint_name),
        **target_key(endpoint_name, variant_name),
        "PolicyType": POLICY_TYPE,
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(scaling.target_invocations_per_instance),
            "PredefinedMetricSpecification": {"PredefinedMetricType": METRIC},
            "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
            "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
            "DisableScaleIn": False,
        },
    }


def build_deregister_scalable_target_request(endpoint_name: str, variant_name: str) -> dict[str, Any]:
    return target_key(endpoint_name, variant_name)


def build_delete_scaling_policy_request(endpoint_name: str, variant_name: str) -> dict[str, Any]:
    return {"PolicyName": derive_policy_name(endpoint_name), **target_key(endpoint_name, variant_name)}


def target_is_current(described: Mapping[str, Any] | None, request: Mapping[str, Any]) -> bool:
    """Whether a DescribeScalableTargets entry already has the capacities ``request`` registers."""
    return described is not None and all(
        described.get(key) == request[key] for key in ("MinCapacity", "MaxCapacity")
    )


def policy_is_current(described: Mapping[str, Any] | None, request: Mapping[str, Any]) -> bool:
    """Whether a DescribeScalingPolicies entry already is the policy ``request`` puts."""
    if described is None or described.get("PolicyType") != request["PolicyType"]:
        return False
    have = described.get("TargetTrackingScalingPolicyConfiguration") or {}
    want = request["TargetTrackingScalingPolicyConfiguration"]
    return all(have.get(key, False if key == "DisableScaleIn" else None) == want[key] for key in want)


def _by_name(variants: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(v.get("VariantName")): v for v in variants}


def variant_changes(
    current: Iterable[Mapping[str, Any]], new: Iterable[Mapping[str, Any]], variant_name: str
) -> bool:
    """Whether moving from the ``current`` config's ProductionVariants to ``new`` changes the scaled
    variant: it goes away, or its instance type (or serverless setting) changes."""
    old_variant, new_variant = _by_name(current).get(variant_name), _by_name(new).get(variant_name)
    if old_variant is None:
        return False  # nothing of this name is scaled on the current config
    if new_variant is None:
        return True
    return any(old_variant.get(key) != new_variant.get(key) for key in ("InstanceType", "ServerlessConfig"))
