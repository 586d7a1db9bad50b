"""Application Auto Scaling of SageMaker variants as AWS does it, added to the local AWS (issue 16 item 1).

moto 5.2.5 registers any ``endpoint/<name>/variant/<variant>`` target and keeps a target's policies
after it is deregistered, and its SageMaker knows nothing of scaling. ``install()`` (called by
tests/support/local_aws.py once moto's SageMaker is patched) adds:

- RegisterScalableTarget of a SageMaker variant refuses an endpoint the account does not have, or a
  variant its current config lacks (``ValidationException``; AWS's wording is assumed);
- DeregisterScalableTarget deletes the target's scaling policies too, as AWS does ("Deregistering a
  scalable target deletes the scaling policies and the scheduled actions that are associated with it");
- UpdateEndpoint is refused (``ValidationException``, wording assumed) when it would change the instance
  type (or serverless setting) of a variant that is registered as a scalable target, as SageMaker's
  guide says ("If the update would change the instance type for any model that is a target for auto
  scaling, the update fails"), so a deploy that forgets to deregister first fails here as in AWS.

What it does not emulate: scaling itself (no metric, alarm or capacity change ever happens; the
variant's instance count stays what the config says), the service-linked role Application Auto Scaling
creates on first registration (and the iam:CreateServiceLinkedRole it needs), tags on scalable targets,
scaling activities, suspended states, and the delay after which AWS deregisters the target of a deleted
endpoint by itself.
"""

from __future__ import annotations

from typing import Any

SAGEMAKER_DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def _variant_of(resource_id: str) -> tuple[str, str] | None:
    parts = resource_id.split("/")
    if len(parts) == 4 and parts[0] == "endpoint" and parts[2] == "variant":
        return parts[1], parts[3]
    return None


def install() -> None:
    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.applicationautoscaling.models import (
        ApplicationAutoscalingBackend,
        applicationautoscaling_backends,
    )
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends

    if getattr(ApplicationAutoscalingBackend, "_sagelift_autoscaling_patched", False):
        return
    original_register = ApplicationAutoscalingBackend.register_scalable_target
    original_deregister = ApplicationAutoscalingBackend.deregister_scalable_target
    # The backend's, which the lifecycle emulation (tests/support/sagemaker_lifecycle.py) wraps in turn.
    original_update_endpoint = SageMakerModelBackend.update_endpoint

    def register_scalable_target(self: Any, namespace: str, r_id: str, *args: Any, **kwargs: Any) -> Any:
        variant = _variant_of(r_id)
        if namespace == "sagemaker" and variant is not None:
            sagemaker = sagemaker_backends[self.account_id][self.region_name]
            endpoint = sagemaker.endpoints.get(variant[0])
            if endpoint is None:
                raise AWSValidationException(f"The endpoint {variant[0]} does not exist.")
            config = sagemaker.endpoint_configs.get(endpoint.endpoint_config_name)
            names = {v.get("VariantName") for v in (config.production_variants if config else [])}
            if variant[1] not in names:
                raise AWSValidationException(
                    f"The variant {variant[1]} does not exist on endpoint {variant[0]}."
                )
        return original_register(self, namespace, r_id, *args, **kwargs)

    def deregister_scalable_target(self: Any, namespace: str, r_id: str, dimension: str) -> None:
        original_deregister(self, namespace, r_id, dimension)
        for key, policy in list(self.policies.items()):
            if (policy.service_namespace, policy.resource_id, policy.scalable_dimension) == (
                namespace,
                r_id,
                dimension,
            ):
                del self.policies[key]

    def update_endpoint(
        self: Any, endpoint_name: str, endpoint_config_name: str, *args: Any, **kw: Any
    ) -> Any:
        endpoint = self.endpoints.get(endpoint_name)
        scaling = applicationautoscaling_backends[self.account_id][self.region_name]
        new_config = self.endpoint_configs.get(endpoint_config_name)
        if endpoint is not None and new_config is not None:
            old_config = self.endpoint_configs.get(endpoint.endpoint_config_name)
            new_variants = {v.get("VariantName"): v for v in new_config.production_variants}
            for old in old_config.production_variants if old_config else []:
                r_id = f"endpoint/{endpoint_name}/variant/{old.get('VariantName')}"
                if r_id not in scaling.targets.get(SAGEMAKER_DIMENSION, {}):
                    continue
                new = new_variants.get(old.get("VariantName")) or {}
                if any(old.get(k) != new.get(k) for k in ("InstanceType", "ServerlessConfig")):
                    raise ValidationError(
                        message=f"Variant {old.get('VariantName')} of endpoint {endpoint_name} is registered "
                        "with Application Auto Scaling, and this update changes its instance type: "
                        "deregister the scalable target before the update."
                    )
        return original_update_endpoint(self, endpoint_name, endpoint_config_name, *args, **kw)

    ApplicationAutoscalingBackend.register_scalable_target = register_scalable_target  # type: ignore[method-assign]
    ApplicationAutoscalingBackend.deregister_scalable_target = deregister_scalable_target  # type: ignore[method-assign]
    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    ApplicationAutoscalingBackend._sagelift_autoscaling_patched = True  # type: ignore[attr-defined]
