"""Safe request overrides (issue 17 item 5), the domain's half: the platform's allow-list, the conf's
``request_overrides`` and their merge into the request bodies (golden, checked against botocore's model).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.overrides import merge_overrides, merged_request_problems
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_model_request,
    build_training_job_request,
)
from tests.support.botocore_validation import validate_request
from tests.support.scenario import DAG_TEST_USER, demo_conf

GOLDEN = Path(__file__).parent / "golden" / "sagemaker_overrides.json"
ACCOUNT = "333333333333"
ALLOWED = {
    "CreateTrainingJob": ["StoppingCondition", "Environment", "RetryStrategy"],
    "CreateModel": ["PrimaryContainer.Environment"],
    "CreateEndpointConfig": ["DataCaptureConfig.InitialSamplingPercentage"],
}
OVERRIDES = {
    "CreateTrainingJob": {
        "StoppingCondition": {"MaxRuntimeInSeconds": 7200},
        "Environment": {"LOG_LEVEL": "debug"},
        "RetryStrategy": {"MaximumRetryAttempts": 2},
    },
    "CreateModel": {"PrimaryContainer": {"Environment": {"WORKERS": "4"}}},
}


def _platform(allowed: object = ALLOWED) -> dict:
    return {
        "region": "us-east-1",
        "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline",
        "accounts": {ACCOUNT: {"deployers": {"users": [DAG_TEST_USER]}}},
        "sagemaker": {"allowed_overrides": allowed},
    }


def _plan(overrides: object, allowed: object = ALLOWED, **conf: object) -> Plan:
    raw = build_plan(
        demo_conf(request_overrides=overrides, **conf),
        _platform(allowed),
        "sagemaker_deploy",
        "manual__2026-12-02T10:00:00+00:00",
        triggered_by=DAG_TEST_USER,
    )
    return Plan.from_xcom(raw)


def _refusals(overrides: object, allowed: object = ALLOWED, **conf: object) -> list[tuple[str, str]]:
    with pytest.raises(SageliftValidationError) as err:
        _plan(overrides, allowed, **conf)
    return err.value.problems


def _bodies(plan: Plan) -> dict[str, dict]:
    network = plan.platform.account(ACCOUNT).network
    return {
        "CreateTrainingJob": build_training_job_request(
            plan.params,
            plan.names,
            region="us-east-1",
            role_arn=plan.platform.training_role_arn(ACCOUNT),
            tags=[],
            settings=plan.platform.sagemaker,
            network=network,
        ),
        "CreateModel": build_model_request(
            plan.params,
            plan.names,
            region="us-east-1",
            role_arn=plan.platform.model_role_arn(ACCOUNT),
            model_data_url="s3://scientist-ml-data/churn/output/model.tar.gz",
            tags=[],
            network=network,
        ),
        "CreateEndpointConfig": build_endpoint_config_request(
            plan.params, plan.names, tags=[], settings=plan.platform.sagemaker, network=network
        ),
    }


def test_allowed_overrides_reach_the_requests_golden_and_botocore_valid():
    bodies = _bodies(_plan(OVERRIDES))
    for operation, body in bodies.items():
        assert validate_request("sagemaker", operation, body) == [], operation
    training = bodies["CreateTrainingJob"]
    assert training["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200
    assert training["Environment"] == {"LOG_LEVEL": "debug"}
    model = bodies["CreateModel"]["PrimaryContainer"]
    # merged key by key: the conf's own environment stays, the image is sagelift's
    assert model["Environment"] == {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info", "WORKERS": "4"}
    assert model["Image"] == demo_conf()["model_docker_image"]
    if os.environ.get("SAGELIFT_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(bodies, indent=2, sort_keys=True) + "\n")
    assert bodies == json.loads(GOLDEN.read_text())


def test_overrides_given_as_json_text_read_the_same():
    assert _plan(json.dumps(OVERRIDES)).params.request_overrides == OVERRIDES


def test_a_field_outside_the_list_is_refused_naming_it():
    problems = _refusals({"CreateTrainingJob": {"HyperParameters": {"eta": "0.3"}}})
    assert problems == [
        (
            "request_overrides.CreateTrainingJob.HyperParameters",
            "not allowed by the platform (platform.sagemaker.allowed_overrides.CreateTrainingJob: "
            "StoppingCondition, Environment, RetryStrategy)",
        )
    ]


def test_a_call_the_platform_allows_nothing_in_is_refused():
    problems = _refusals({"CreateEndpointConfig": {"KmsKeyId": "alias/mine"}}, allowed={})
    assert problems == [
        (
            "request_overrides.CreateEndpointConfig.KmsKeyId",
            "sagelift sets KmsKeyId; no override can replace it",
        )
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"CreateTrainingJob": {"RoleArn": "arn:aws:iam::333333333333:role/admin"}}, "RoleArn"),
        (
            {"CreateTrainingJob": {"AlgorithmSpecification": {"TrainingImage": "evil:1"}}},
            "AlgorithmSpecification.TrainingImage",
        ),
        ({"CreateTrainingJob": {"VpcConfig": {"Subnets": ["subnet-0123456789abcdef0"]}}}, "VpcConfig"),
        ({"CreateTrainingJob": {"EnableNetworkIsolation": False}}, "EnableNetworkIsolation"),
        ({"CreateModel": {"PrimaryContainer": {"Image": "evil:1"}}}, "PrimaryContainer.Image"),
        ({"CreateModel": {"Tags": []}}, "Tags"),
        # the account's capture_prefixes bound where captures land
        (
            {"CreateEndpointConfig": {"DataCaptureConfig": {"DestinationS3Uri": "s3://elsewhere/"}}},
            "DataCaptureConfig.DestinationS3Uri",
        ),
    ],
)
def test_what_sagelift_owns_is_never_overridable(overrides, field):
    operation = next(iter(overrides))
    problems = _refusals(overrides)
    assert [f for f, _ in problems] == [f"request_overrides.{operation}.{field}"]
    assert "no override can replace it" in problems[0][1]


def test_the_platform_cannot_list_what_sagelift_owns():
    problems = _refusals(
        {},
        allowed={
            "CreateTrainingJob": ["AlgorithmSpecification", "Environment"],
            "CreateModel": ["PrimaryContainer.Image"],
            "DeleteEndpoint": ["EndpointName"],
        },
    )
    assert problems == [
        (
            "platform.sagemaker.allowed_overrides.CreateTrainingJob[0]",
            "AlgorithmSpecification would replace AlgorithmSpecification.TrainingImage, which sagelift owns",
        ),
        (
            "platform.sagemaker.allowed_overrides.CreateModel[0]",
            "PrimaryContainer.Image would replace PrimaryContainer.Image, which sagelift owns",
        ),
        (
            "platform.sagemaker.allowed_overrides.DeleteEndpoint",
            "not a call runs may shape; one of CreateTrainingJob, CreateModel, CreateEndpointConfig, "
            "CreateTransformJob",
        ),
    ]


def test_conf_shape_and_calls_the_run_never_makes_are_refused():
    assert [f for f, _ in _refusals(["StoppingCondition"])] == ["request_overrides"]
    assert [f for f, _ in _refusals({"CreateTrainingJob": {}})] == ["request_overrides.CreateTrainingJob"]
    artifact_only = {
        "training_docker_image": "",
        "training_channels": "",
        "training_s3_output_path": "",
        "training_hyperparameters": {},
        "model_artifact_s3_path": "s3://scientist-ml-data/models/churn/model.tar.gz",
    }
    problems = _refusals({"CreateTrainingJob": {"Environment": {"A": "b"}}}, **artifact_only)
    assert problems == [
        ("request_overrides.CreateTrainingJob", "model_artifact_s3_path is set, so nothing is trained")
    ]


def test_merge_keeps_what_it_does_not_name_and_copies():
    request = {"StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120}, "Tags": []}
    fields = {"StoppingCondition": {"MaxRuntimeInSeconds": 90}, "Environment": {"A": "b"}}
    merged = merge_overrides(request, fields)
    assert merged == {
        "StoppingCondition": {"MaxRuntimeInSeconds": 90, "MaxWaitTimeInSeconds": 120},
        "Tags": [],
        "Environment": {"A": "b"},
    }
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 60
    fields["Environment"]["A"] = "changed"
    assert merged["Environment"] == {"A": "b"}


# --- the merged request as a whole (rules across fields, which botocore's model cannot express) ---------
SPOT = {
    "EnableManagedSpotTraining": True,
    "StoppingCondition": {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 172800},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
}
RUNTIME_FIELD = "request_overrides.CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds"
WAIT_FIELD = "request_overrides.CreateTrainingJob.StoppingCondition.MaxWaitTimeInSeconds"


def _merged(fields: dict, body: dict = SPOT, operation: str = "CreateTrainingJob") -> list[tuple[str, str]]:
    return merged_request_problems(operation, merge_overrides(body, fields), fields)


def test_a_spot_runtime_raised_above_the_max_wait_is_refused_naming_both_fields():
    assert _merged({"StoppingCondition": {"MaxRuntimeInSeconds": 200000}}) == [
        (
            RUNTIME_FIELD,
            "200000 exceeds spot MaxWaitTimeInSeconds 172800 (training.max_wait_seconds)",
        )
    ]
    # up to the max wait it holds
    assert _merged({"StoppingCondition": {"MaxRuntimeInSeconds": 172800}}) == []


def test_a_spot_max_wait_lowered_below_the_runtime_is_refused_naming_both_fields():
    assert _merged({"StoppingCondition": {"MaxWaitTimeInSeconds": 3600}}) == [
        (WAIT_FIELD, "3600 is below MaxRuntimeInSeconds 86400; a spot job's wait must cover it")
    ]
    both = {"StoppingCondition": {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 3600}}
    assert [f for f, _ in _merged(both)] == [WAIT_FIELD]
    assert _merged({"StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}}) == []


def test_a_max_wait_on_an_on_demand_job_is_refused():
    on_demand = {"StoppingCondition": {"MaxRuntimeInSeconds": 86400}, "ResourceConfig": {}}
    assert _merged({"StoppingCondition": {"MaxWaitTimeInSeconds": 172800}}, on_demand) == [
        (WAIT_FIELD, "applies to spot training only; set training.use_spot")
    ]
    assert _merged({"StoppingCondition": {"MaxRuntimeInSeconds": 999999}}, on_demand) == []


def test_instance_groups_beside_sagelift_s_instance_type_are_refused():
    groups = {
        "InstanceGroups": [{"InstanceType": "ml.m5.large", "InstanceCount": 1, "InstanceGroupName": "a"}]
    }
    (problem,) = _merged({"ResourceConfig": groups})
    assert problem[0] == "request_overrides.CreateTrainingJob.ResourceConfig.InstanceGroups"
    assert "training_instance_type" in problem[1]


def test_a_transform_payload_times_concurrency_above_100_mb_is_refused_naming_the_override():
    body = {"MaxPayloadInMB": 20, "MaxConcurrentTransforms": 2}
    assert _merged({"MaxConcurrentTransforms": 8}, body, "CreateTransformJob") == [
        (
            "request_overrides.CreateTransformJob.MaxConcurrentTransforms",
            "MaxPayloadInMB x MaxConcurrentTransforms is 20 x 8, above SageMaker's 100 MB",
        )
    ]
    assert _merged({"MaxConcurrentTransforms": 5}, body, "CreateTransformJob") == []


def test_rules_that_hold_or_were_not_overridden_refuse_nothing():
    # the conf's own settings broke it, not an override: validate's preflight names those
    broken = {**SPOT, "StoppingCondition": {"MaxRuntimeInSeconds": 86400, "MaxWaitTimeInSeconds": 60}}
    assert merged_request_problems("CreateTrainingJob", broken, {"Environment": {"A": "b"}}) == []
    assert merged_request_problems("CreateTrainingJob", broken, {}) == []
    assert merged_request_problems("CreateModel", {}, {"PrimaryContainer": {"Environment": {}}}) == []
