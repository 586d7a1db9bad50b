"""Golden request bodies of steps 5-7, each also checked against botocore's service model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sagelift.domain.params import parse_params
from sagelift.domain.plan import derive_names
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_endpoint_request,
    build_model_request,
    build_training_job_request,
    build_update_endpoint_request,
    expected_model_artifact,
)
from tests.support.botocore_validation import validate_request
from tests.support.scenario import demo_conf

GOLDEN = Path(__file__).parent / "golden"
TAGS = [{"Key": "CostCenter", "Value": "cc-4711"}, {"Key": "sagelift:model-name", "Value": "churn-predictor"}]
ROLE = "arn:aws:iam::333333333333:role/sagelift-training-execution"
MODEL_ROLE = "arn:aws:iam::333333333333:role/sagelift-model-execution"


def _bodies(conf: dict) -> dict[str, dict]:
    params = parse_params(conf)
    names = derive_names(params.model_name, "sagemaker_deploy", "manual__2026-11-29T10:00:00+00:00")
    settings = SageMakerSettings()
    bodies: dict[str, dict] = {}
    if params.trains:
        bodies["CreateTrainingJob"] = build_training_job_request(
            params, names, region="us-east-1", role_arn=ROLE, tags=TAGS, settings=settings
        )
    artifact = params.model_artifact_s3_path or expected_model_artifact(
        str(params.training_s3_output_path), names.training_job
    )
    bodies["CreateModel"] = build_model_request(
        params, names, region="us-east-1", role_arn=MODEL_ROLE, model_data_url=artifact, tags=TAGS
    )
    bodies["CreateEndpointConfig"] = build_endpoint_config_request(
        params, names, tags=TAGS, settings=settings
    )
    bodies["CreateEndpoint"] = build_endpoint_request(names, tags=TAGS)
    bodies["UpdateEndpoint"] = build_update_endpoint_request(names)
    return bodies


CASES = {
    "byo_image": demo_conf(),
    "builtin_algorithm": demo_conf(
        training_docker_image="", training_algorithm_name="xgboost", model_docker_image=""
    ),
    "existing_artifact": demo_conf(
        training_docker_image="",
        training_channels="",
        training_s3_output_path="",
        training_hyperparameters={},
        model_artifact_s3_path="s3://scientist-ml-data/models/churn/model.tar.gz",
    ),
    # issue 16: the serving settings shape the endpoint config
    "realtime_capture": demo_conf(
        endpoint={
            "instance_count": 3,
            "data_capture": {"sampling_percent": 25, "destination_s3_uri": "s3://captures-1/churn/"},
        }
    ),
    "serverless": demo_conf(
        endpoint={"mode": "serverless", "serverless": {"memory_size_mb": 3072, "max_concurrency": 12}}
    ),
    "async": demo_conf(
        endpoint={
            "mode": "async",
            "instance_count": 2,
            "async_inference": {
                "output_s3_uri": "s3://captures-1/async/churn/",
                "success_topic_arn": "arn:aws:sns:us-east-1:333333333333:churn-ok",
                "error_topic_arn": "arn:aws:sns:us-east-1:333333333333:churn-failed",
                "max_concurrent_invocations_per_instance": 4,
            },
            "data_capture": {"destination_s3_uri": "s3://captures-1/churn/"},
        }
    ),
    # issue 17: spot with checkpoints and the conf's metric definitions (the built-in algorithm case
    # above carries the table's definitions for xgboost)
    "spot_metrics": demo_conf(
        training={
            "use_spot": True,
            "max_wait_seconds": 172800,
            "metric_definitions": [
                {"name": "validation:auc", "regex": "validation-auc=([0-9.]+)"},
                {"name": "train:loss", "regex": "train-loss=([0-9.]+)"},
            ],
        }
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bodies_match_golden_and_botocore_model(case):
    bodies = _bodies(CASES[case])
    for operation, body in bodies.items():
        assert validate_request("sagemaker", operation, body) == [], operation
    golden = GOLDEN / f"sagemaker_{case}.json"
    if os.environ.get("SAGELIFT_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(bodies, indent=2, sort_keys=True) + "\n")
    assert bodies == json.loads(golden.read_text())


def test_strict_validation_catches_what_moto_accepts():
    body = _bodies(CASES["byo_image"])["CreateTrainingJob"]
    body["ResourceConfig"]["InstanceType"] = "ml.bogus.large"
    body["TrainingJobName"] = "x" * 70
    errors = validate_request("sagemaker", "CreateTrainingJob", body)
    assert any("InstanceType" in e for e in errors)
    assert any("TrainingJobName" in e and "maximum 63" in e for e in errors)


def test_copied_images_replace_the_given_ones():
    params = parse_params(demo_conf())
    names = derive_names(params.model_name, "d", "r")
    train = "333333333333.dkr.ecr.us-east-1.amazonaws.com/sagelift/train@sha256:" + "a" * 64
    serve = "333333333333.dkr.ecr.us-east-1.amazonaws.com/sagelift/serve@sha256:" + "b" * 64
    copied = {
        "training_docker_image": {"image": train, "action": "copied"},
        "model_docker_image": {"image": serve, "action": "copied"},
    }
    training = build_training_job_request(
        params,
        names,
        region="us-east-1",
        role_arn=ROLE,
        tags=[],
        settings=SageMakerSettings(),
        copied_images=copied,
    )
    model = build_model_request(
        params,
        names,
        region="us-east-1",
        role_arn=MODEL_ROLE,
        model_data_url="s3://b/m",
        tags=[],
        copied_images=copied,
    )
    assert training["AlgorithmSpecification"]["TrainingImage"] == train
    assert model["PrimaryContainer"]["Image"] == serve


def test_the_endpoint_config_carries_the_run_s_serving_settings():
    """What each mode means for CreateEndpointConfig, read off the golden bodies above."""
    default = _bodies(CASES["byo_image"])["CreateEndpointConfig"]
    [variant] = default["ProductionVariants"]
    assert variant["InitialInstanceCount"] == SageMakerSettings().endpoint_initial_instance_count
    assert "DataCaptureConfig" not in default and "AsyncInferenceConfig" not in default

    capture = _bodies(CASES["realtime_capture"])["CreateEndpointConfig"]
    assert capture["ProductionVariants"][0]["InitialInstanceCount"] == 3  # the run's, not the platform's
    assert capture["DataCaptureConfig"]["DestinationS3Uri"] == "s3://captures-1/churn/"
    assert capture["DataCaptureConfig"]["InitialSamplingPercentage"] == 25

    [serverless] = _bodies(CASES["serverless"])["CreateEndpointConfig"]["ProductionVariants"]
    assert serverless["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 12}
    assert "InstanceType" not in serverless and "InitialInstanceCount" not in serverless

    asynchronous = _bodies(CASES["async"])["CreateEndpointConfig"]
    output = asynchronous["AsyncInferenceConfig"]["OutputConfig"]
    assert output["S3OutputPath"] == "s3://captures-1/async/churn/"
    assert set(output["NotificationConfig"]) == {"SuccessTopic", "ErrorTopic"}
    assert asynchronous["ProductionVariants"][0]["InitialInstanceCount"] == 2
