"""Pure builders of the SageMaker request bodies for steps 5-7.

Plain functions from validated inputs to the exact dicts sent to CreateTrainingJob, CreateModel,
CreateEndpointConfig and CreateEndpoint/UpdateEndpoint. Both engines (the Airflow DAG and the KFP
pipeline) call these, so they send identical requests. Tests hold golden bodies and check them against
botocore's service model.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from sagelift.domain.endpoint_settings import SERVERLESS_DEFAULTS, AsyncInference, Serverless
from sagelift.domain.images import pinned_image
from sagelift.domain.overrides import merge_overrides
from sagelift.domain.params import RunParams, builtin_algorithm_image
from sagelift.domain.plan import RunNames
from sagelift.domain.platform import SageMakerSettings
from sagelift.domain.security import (
    NetworkSettings,
    endpoint_config_security,
    model_security,
    training_security,
)
from sagelift.domain.training_settings import training_job_fields

VARIANT_NAME = "AllTraffic"
MODEL_ARTIFACT_NAME = "model.tar.gz"

Tags = Sequence[Mapping[str, str]]


def resolve_training_image(params: RunParams, region: str, copied: Mapping[str, Any] | None = None) -> str:
    """The image the training job runs: step 4's digest-pinned ECR reference, else the given or built-in one."""
    pinned = pinned_image(copied, "training_docker_image")
    if pinned:
        return pinned
    if params.training_docker_image:
        return params.training_docker_image
    image = builtin_algorithm_image(str(params.training_algorithm_name), region)
    if image is None:  # validate refuses this before any step runs
        raise ValueError(
            f"training_algorithm_name: no image for {params.training_algorithm_name!r} in {region}"
        )
    return image


def resolve_model_image(params: RunParams, region: str, copied: Mapping[str, Any] | None = None) -> str:
    """The serving image: step 4's digest-pinned ECR reference, the given image, or the algorithm's own."""
    pinned = pinned_image(copied, "model_docker_image")
    if pinned:
        return pinned
    if params.model_docker_image:
        return params.model_docker_image
    return resolve_training_image(params, region, None)


def expected_model_artifact(output_path: str, training_job_name: str) -> str:
    """Where SageMaker writes the artifact of a training job: <output>/<job>/output/model.tar.gz."""
    return f"{output_path.rstrip('/')}/{training_job_name}/output/{MODEL_ARTIFACT_NAME}"


def _channel(channel: Mapping[str, Any]) -> dict[str, Any]:
    """A channel with SageMaker's defaults made explicit and empty optional strings dropped."""
    out = copy.deepcopy(dict(channel))
    s3 = out["DataSource"]["S3DataSource"]
    s3.setdefault("S3DataType", "S3Prefix")
    s3.setdefault("S3DataDistributionType", "FullyReplicated")
    for key in ("ContentType", "CompressionType", "RecordWrapperType", "InputMode"):
        if out.get(key) in ("", None):
            out.pop(key, None)
    return out


def build_training_job_request(
    params: RunParams,
    names: RunNames,
    *,
    region: str,
    role_arn: str,
    tags: Tags,
    settings: SageMakerSettings,
    copied_images: Mapping[str, Any] | None = None,
    network: NetworkSettings | None = None,
) -> dict[str, Any]:
    """CreateTrainingJob's body; ``network`` (the account's, from the platform) adds VPC, KMS and isolation."""
    if params.training_s3_output_path is None:
        raise ValueError("training_s3_output_path: required when training")
    request: dict[str, Any] = {
        "TrainingJobName": names.training_job,
        "AlgorithmSpecification": {
            "TrainingImage": resolve_training_image(params, region, copied_images),
            "TrainingInputMode": "File",
        },
        "RoleArn": role_arn,
        "OutputDataConfig": {"S3OutputPath": params.training_s3_output_path},
        "ResourceConfig": {
            "InstanceCount": params.training_instance_count,
            "InstanceType": params.training_instance_type,
            "VolumeSizeInGB": settings.training_volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.training_max_runtime_seconds},
        "Tags": [dict(tag) for tag in tags],
    }
    if params.training_hyperparameters:
        request["HyperParameters"] = dict(params.training_hyperparameters)
    if params.training_channels:
        request["InputDataConfig"] = [_channel(channel) for channel in params.training_channels]
    # Spot capacity with checkpoints and metric definitions (the conf's training settings).
    added = training_job_fields(
        params.training,
        algorithm=None if params.training_docker_image else params.training_algorithm_name,
        output_path=params.training_s3_output_path,
        training_job=names.training_job,
        max_runtime_seconds=settings.training_max_runtime_seconds,
    )
    if "MetricDefinitions" in added:
        request["AlgorithmSpecification"]["MetricDefinitions"] = added.pop("MetricDefinitions")
    request.update(added)
    if network is not None:
        secured = training_security(network, params.training_instance_type)
        for section in ("ResourceConfig", "OutputDataConfig"):
            request[section].update(secured.pop(section, {}))
        request.update(secured)
    # last: the run's allowed extra fields (validate refused any the platform does not list)
    return merge_overrides(request, params.request_overrides.get("CreateTrainingJob"))


def build_model_request(
    params: RunParams,
    names: RunNames,
    *,
    region: str,
    role_arn: str,
    model_data_url: str,
    tags: Tags,
    copied_images: Mapping[str, Any] | None = None,
    network: NetworkSettings | None = None,
    model_package_arn: str | None = None,
) -> dict[str, Any]:
    """CreateModel's body: from the run's registered version (``model_package_arn``: its image and
    artifact are the version's), else from the image and the artifact themselves."""
    container: dict[str, Any]
    if model_package_arn:
        container = {"ModelPackageName": model_package_arn}
    else:
        container = {
            "Image": resolve_model_image(params, region, copied_images),
            "ModelDataUrl": model_data_url,
        }
    if params.environment:
        container["Environment"] = dict(params.environment)
    request: dict[str, Any] = {
        "ModelName": names.model,
        "PrimaryContainer": container,
        "ExecutionRoleArn": role_arn,
        "Tags": [dict(tag) for tag in tags],
    }
    if network is not None:
        request.update(model_security(network))
    return merge_overrides(request, params.request_overrides.get("CreateModel"))


def build_endpoint_config_request(
    params: RunParams,
    names: RunNames,
    *,
    tags: Tags,
    settings: SageMakerSettings,
    network: NetworkSettings | None = None,
) -> dict[str, Any]:
    """CreateEndpointConfig's body from the run's serving settings (``params.endpoint``).

    Every run builds a new config from its plan, so data capture is on every config of a run that asks
    for it (an update never drops it). Serverless variants name no instances; async configs add where
    results go and whom SNS tells.
    """
    serving = params.endpoint
    variant: dict[str, Any] = {"VariantName": VARIANT_NAME, "ModelName": names.model}
    if serving.mode == "serverless":
        sizes = serving.serverless or Serverless(**SERVERLESS_DEFAULTS)
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": sizes.memory_size_mb,
            "MaxConcurrency": sizes.max_concurrency,
        }
    else:
        variant["InitialInstanceCount"] = (
            serving.instance_count
            if serving.instance_count is not None
            else settings.endpoint_initial_instance_count
        )
        variant["InstanceType"] = params.endpoint_instance_type
    variant["InitialVariantWeight"] = 1.0
    request: dict[str, Any] = {"EndpointConfigName": names.endpoint_config, "ProductionVariants": [variant]}
    capture = serving.data_capture
    if capture.enabled and capture.destination_s3_uri:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": capture.sampling_percent,
            "DestinationS3Uri": capture.destination_s3_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    if serving.mode == "async" and serving.async_inference is not None:
        request["AsyncInferenceConfig"] = build_async_inference_config(serving.async_inference)
        if network is not None and network.output_kms_key:
            request["AsyncInferenceConfig"]["OutputConfig"]["KmsKeyId"] = network.output_kms_key
    if network is not None:
        request.update(endpoint_config_security(network, serving.mode))
    request["Tags"] = [dict(tag) for tag in tags]
    return merge_overrides(request, params.request_overrides.get("CreateEndpointConfig"))


def build_async_inference_config(settings: AsyncInference) -> dict[str, Any]:
    output: dict[str, Any] = {"S3OutputPath": settings.output_s3_uri}
    notify = {
        key: value
        for key, value in (
            ("SuccessTopic", settings.success_topic_arn),
            ("ErrorTopic", settings.error_topic_arn),
        )
        if value
    }
    if notify:
        output["NotificationConfig"] = notify
    config: dict[str, Any] = {"OutputConfig": output}
    if settings.max_concurrent_invocations_per_instance is not None:
        config["ClientConfig"] = {
            "MaxConcurrentInvocationsPerInstance": settings.max_concurrent_invocations_per_instance
        }
    return config


def build_endpoint_request(names: RunNames, *, tags: Tags) -> dict[str, Any]:
    """CreateEndpoint's body; UpdateEndpoint takes the same minus Tags (see build_update_endpoint_request)."""
    return {
        "EndpointName": names.endpoint,
        "EndpointConfigName": names.endpoint_config,
        "Tags": [dict(tag) for tag in tags],
    }


def build_update_endpoint_request(names: RunNames) -> dict[str, Any]:
    return {"EndpointName": names.endpoint, "EndpointConfigName": names.endpoint_config}
