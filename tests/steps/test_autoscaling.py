"""Autoscaling of the endpoint variant against the local AWS (issue 16 item 1): register, update in
place, nothing written when current, removal, deregistration before an update that changes the variant
(SageMaker refuses the update otherwise), and convergence after lost answers."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sagelift.domain.endpoint_settings import Autoscaling
from sagelift.steps.autoscaling import apply_scaling, release_for_update, remove_scaling
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle

ENDPOINT, VARIANT = "churn-predictor", "AllTraffic"
RESOURCE = f"endpoint/{ENDPOINT}/variant/{VARIANT}"
SCALING = Autoscaling(min_capacity=1, max_capacity=4, target_invocations_per_instance=70)


def product_client(aws: LocalAws, service: str) -> Any:
    """A client as the product makes one (no administrator header), so the lifecycle's faults hit it."""
    key, secret = aws.create_access_key(SCIENTIST_ACCOUNT)
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)
    return session.client(service, endpoint_url=aws.url, config=Config(retries={"mode": "standard"}))


def endpoint(aws: LocalAws, config: str = "cfg-1", instance_type: str = "ml.m5.large") -> Any:
    sm = aws.client("sagemaker")
    sm.create_model(
        ModelName=config,
        ExecutionRoleArn=f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-model-execution",
        PrimaryContainer={"Image": "123.dkr.ecr.us-east-1.amazonaws.com/serve:1"},
    )
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": config,
                "InitialInstanceCount": 1,
                "InstanceType": instance_type,
            }
        ],
    )
    if config == "cfg-1":
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=config)
    return sm


def scaling_state(aws: LocalAws) -> tuple[list[dict], list[dict]]:
    client = aws.client("application-autoscaling")
    targets = client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    return targets, policies


def writes(aws: LocalAws) -> list[str]:
    return [
        r.target.split(".")[-1]
        for r in aws.requests
        if r.target and not r.target.split(".")[-1].startswith("Describe")
    ]


def test_register_then_update_in_place_then_nothing_then_remove(local_aws: LocalAws) -> None:
    endpoint(local_aws)
    client = local_aws.client("application-autoscaling")
    assert apply_scaling(client, ENDPOINT, VARIANT, SCALING) == "registered"
    targets, policies = scaling_state(local_aws)
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(RESOURCE, 1, 4)]
    (policy,) = policies
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert (
        config["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "SageMakerVariantInvocationsPerInstance"
    )
    assert (config["TargetValue"], config["ScaleInCooldown"], config["ScaleOutCooldown"]) == (70.0, 300, 60)

    local_aws.requests.clear()
    assert apply_scaling(client, ENDPOINT, VARIANT, SCALING) == "unchanged"
    assert writes(local_aws) == []

    wider = Autoscaling(
        min_capacity=2, max_capacity=8, target_invocations_per_instance=100, scale_out_cooldown_seconds=30
    )
    assert apply_scaling(client, ENDPOINT, VARIANT, wider) == "updated"
    targets, policies = scaling_state(local_aws)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(2, 8)]
    assert [p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] for p in policies] == [100.0]
    assert len(policies) == 1  # the same policy, updated in place

    assert apply_scaling(client, ENDPOINT, VARIANT, None) == "removed"
    assert scaling_state(local_aws) == ([], [])
    assert apply_scaling(client, ENDPOINT, VARIANT, None) == "none"
    assert remove_scaling(client, ENDPOINT, VARIANT) is False


def test_an_update_that_changes_the_instance_type_deregisters_first(local_aws: LocalAws) -> None:
    sm = endpoint(local_aws)
    client = local_aws.client("application-autoscaling")
    apply_scaling(client, ENDPOINT, VARIANT, SCALING)
    endpoint(local_aws, "cfg-2", "ml.m5.xlarge")
    # What the emulation holds SageMaker to: no instance type change under a registered target (with
    # the lifecycle emulation installed too, as in the scenarios).
    with SageMakerLifecycle().installed(local_aws), pytest.raises(ClientError, match="deregister the"):
        sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="cfg-2")
    current = sm.describe_endpoint_config(EndpointConfigName="cfg-1")["ProductionVariants"]
    new = sm.describe_endpoint_config(EndpointConfigName="cfg-2")["ProductionVariants"]
    assert release_for_update(client, ENDPOINT, VARIANT, current, new) is True
    assert scaling_state(local_aws) == ([], [])
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="cfg-2")
    assert apply_scaling(client, ENDPOINT, VARIANT, SCALING) == "registered"
    assert len(scaling_state(local_aws)[0]) == 1


def test_an_update_that_keeps_the_variant_keeps_its_scaling(local_aws: LocalAws) -> None:
    sm = endpoint(local_aws)
    client = local_aws.client("application-autoscaling")
    apply_scaling(client, ENDPOINT, VARIANT, SCALING)
    endpoint(local_aws, "cfg-2", "ml.m5.large")
    current = sm.describe_endpoint_config(EndpointConfigName="cfg-1")["ProductionVariants"]
    new = sm.describe_endpoint_config(EndpointConfigName="cfg-2")["ProductionVariants"]
    assert release_for_update(client, ENDPOINT, VARIANT, current, new) is False
    sm.update_endpoint(EndpointName=ENDPOINT, EndpointConfigName="cfg-2")
    targets, policies = scaling_state(local_aws)
    assert (len(targets), len(policies)) == (1, 1)


def test_registering_a_missing_endpoint_is_refused(local_aws: LocalAws) -> None:
    with pytest.raises(ClientError, match="does not exist"):
        apply_scaling(local_aws.client("application-autoscaling"), "no-such", VARIANT, SCALING)


@pytest.mark.parametrize(
    "operation",
    [
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeleteScalingPolicy",
        "application-autoscaling:DeregisterScalableTarget",
    ],
)
def test_lost_answers_converge(local_aws: LocalAws, operation: str) -> None:
    endpoint(local_aws)
    client = product_client(local_aws, "application-autoscaling")
    life = SageMakerLifecycle().fault(operation, "lost", count=1)
    with life.installed(local_aws):
        apply_scaling(client, ENDPOINT, VARIANT, SCALING)
        assert len(scaling_state(local_aws)[1]) == 1
        apply_scaling(client, ENDPOINT, VARIANT, None)
    assert life.injected == [(operation, "lost")]
    assert scaling_state(local_aws) == ([], [])


def test_teardown_removes_the_scaling_of_the_models_endpoint_only(local_aws: LocalAws) -> None:
    from sagelift.domain.platform import SageMakerSettings
    from sagelift.steps.teardown import delete_sagemaker_resources

    sm = endpoint(local_aws)
    client = local_aws.client("application-autoscaling")
    apply_scaling(client, ENDPOINT, VARIANT, SCALING)
    settings = SageMakerSettings(check_interval_seconds=1)
    # Not tagged as the model's: someone else's endpoint of that name keeps its scaling.
    kept = delete_sagemaker_resources(sm, ENDPOINT, settings, autoscaling=client)
    assert kept["scalable_targets"] == [] and len(scaling_state(local_aws)[0]) == 1
    arn = sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "sagelift:model-name", "Value": ENDPOINT}])
    deleted = delete_sagemaker_resources(sm, ENDPOINT, settings, autoscaling=client)
    assert deleted["scalable_targets"] == [RESOURCE] and deleted["endpoint"] == [ENDPOINT]
    assert scaling_state(local_aws) == ([], [])
    assert delete_sagemaker_resources(sm, ENDPOINT, settings, autoscaling=client)["scalable_targets"] == []


def test_the_execution_roles_autoscaling_grant_is_the_calls_the_steps_make(local_aws: LocalAws) -> None:
    from sagelift.domain.onboarding import render_policies
    from sagelift.domain.platform import PlatformConfig
    from tests.support.botocore_validation import recording_aws_calls

    platform = PlatformConfig.from_dict(
        {
            "region": REGION,
            "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline",
            "accounts": {SCIENTIST_ACCOUNT: {}},
        }
    )
    policy = render_policies(
        platform,
        SCIENTIST_ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:root",
        data_uris=["s3://scientist-ml-data/churn/"],
        output_uris=["s3://scientist-ml-data/churn/output/"],
    )
    granted: dict[str, list[str]] = {}
    for statement in policy["execution-permissions"]["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            granted.setdefault(action, []).append(statement["Resource"])
    endpoint(local_aws)
    client = local_aws.client("application-autoscaling")
    with recording_aws_calls() as calls:
        apply_scaling(client, ENDPOINT, VARIANT, SCALING)
        apply_scaling(client, ENDPOINT, VARIANT, Autoscaling(2, 5, 10))
        apply_scaling(client, ENDPOINT, VARIANT, None)
    made = {f"application-autoscaling:{c.operation}" for c in calls if c.service == "application-autoscaling"}
    assert all(c.errors == [] for c in calls)
    assert made == {a for a in granted if a.startswith("application-autoscaling:")}
    endpoints = f"arn:aws:sagemaker:{REGION}:{SCIENTIST_ACCOUNT}:endpoint/*"
    assert endpoints in granted["sagemaker:InvokeEndpoint"]
    assert endpoints in granted["sagemaker:UpdateEndpointWeightsAndCapacities"]
    (role,) = granted["iam:CreateServiceLinkedRole"]
    assert role.endswith("/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")
