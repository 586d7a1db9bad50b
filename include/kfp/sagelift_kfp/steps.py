"""The bodies of the pipeline's eight steps, as plain functions of JSON-able inputs.

Each KFP component (include/kfp/pipeline.py) is a thin wrapper that imports and calls one of these,
so the code that runs in a component is ordinary, importable, tested Python. They mirror the Airflow
operators step by step and send the requests built by ``sagelift.domain``: the same conf gives the
same SageMaker request bodies on both engines. What one step hands the next is the run's plan and
non-secret facts (names, ARNs, digests, tags); every AWS step builds its own chained session.

``dag_id`` on this engine is the pipeline's name and ``run_id`` the KFP run id, so resource names,
run tags and STS session names follow the same rules as on Airflow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from sagelift.domain.images import IMAGE_PARAMS, plan_image_steps
from sagelift.domain.params import default_conf
from sagelift.domain.plan import build_plan, plan_names, plan_params
from sagelift.domain.platform import VARIABLE_KEY, PlatformConfig
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_endpoint_request,
    build_model_request,
    build_training_job_request,
    expected_model_artifact,
)
from sagelift.domain.tags import derive_run_tags, merge_tags, parse_tag_document
from sagelift_kfp.aws import chained_session, derive_session_name

# The platform configuration reaches a component as this environment variable (JSON), the same
# document the Airflow Variable sagelift_platform holds; the compiled pipeline maps it from a ConfigMap.
PLATFORM_ENV = "SAGELIFT_PLATFORM"


class StepError(RuntimeError):
    """A step cannot go on; the message says what is wrong and what to do."""


def load_platform_raw() -> dict[str, Any] | None:
    text = os.environ.get(PLATFORM_ENV)
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise StepError(f"{PLATFORM_ENV} ({VARIABLE_KEY}) is not valid JSON: {err.msg}") from None
    return value if isinstance(value, dict) else {"": value}


def _platform(plan: Mapping[str, Any]) -> PlatformConfig:
    return PlatformConfig.from_dict(plan["platform"])


def _session(plan: Mapping[str, Any]) -> boto3.session.Session:
    platform = _platform(plan)
    return chained_session(
        platform,
        plan_params(plan).account_id,
        derive_session_name(str(plan["dag_id"]), str(plan["run_id"])),
    )


def _not_found(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound")


# --- 1. ensure_pvc (validates the run first, as Airflow's validate) --------------------------------
# KFP hands STRUCT and LIST parameters over as protobuf Struct values, where every number is a double:
# {"max_depth": 5} arrives as {"max_depth": 5.0}. Whole numbers are turned back into integers, so the
# conf a user sent gives the request it gives on Airflow (a hyperparameter 5 is sent as "5", not "5.0").
STRUCT_PARAMETERS = ("environment", "training_hyperparameters", "training_channels")


def _whole_numbers_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_ints(v) for v in value]
    return value


def plan_run(conf: Mapping[str, Any], dag_id: str, run_id: str) -> dict[str, Any]:
    """Validate the conf against the platform configuration; the run's plan, as on Airflow."""
    raw = default_conf()
    raw.update(conf)
    for name in STRUCT_PARAMETERS:
        raw[name] = _whole_numbers_as_ints(raw[name])
    return build_plan(raw, load_platform_raw(), dag_id, run_id)


def ensure_pvc(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Ensure the pipeline's claim with the in-pod program Airflow's pod runs; skipped when disabled."""
    settings = _platform(plan).kubernetes
    params = plan_params(plan)
    if not settings.enabled:
        return {"skipped": True, "reason": "platform kubernetes.enabled is false"}
    from sagelift.pod import ensure_pvc as program

    claim = params.pvc_name or settings.pvc_name
    argv = [
        "--claim-name",
        claim,
        "--size",
        params.pvc_size or settings.pvc_size,
        "--access-mode",
        settings.pvc_access_mode,
        "--namespace",
        settings.namespace,
        "--wait-for-bound-seconds",
        str(settings.wait_for_bound_seconds),
        "--label",
        "app.kubernetes.io/managed-by=sagelift",
    ]
    storage_class = params.pvc_storage_class or settings.pvc_storage_class
    if storage_class:
        argv += ["--storage-class", storage_class]
    code = program.main(argv)
    if code != 0:
        raise StepError(f"ensure_pvc: claim {claim} could not be ensured (exit code {code}; see the log)")
    return {"skipped": False, "claim_name": claim}


# --- 2. assume_role_chain --------------------------------------------------------------------------
def assume_role_chain(plan: Mapping[str, Any]) -> dict[str, Any]:
    """Exercise the chain once and check the final identity; only non-secret facts are returned."""
    platform = _platform(plan)
    account_id = plan_params(plan).account_id
    identity = _session(plan).client("sts").get_caller_identity()
    expected = platform.execution_role_arn(account_id)
    role_name = expected.split(":role/", 1)[1].split("/")[-1]
    arn = identity["Arn"]
    if identity["Account"] != account_id or f":assumed-role/{role_name}/" not in arn:
        raise StepError(f"assume_role_chain: expected to act as {expected}, but acting as {arn}")
    return {
        "region": platform.region,
        "account_id": account_id,
        "master_role_arn": platform.master_role_arn,
        "execution_role_arn": expected,
        "caller_arn": arn,
        "session_name": arn.rsplit("/", 1)[-1],
    }


# --- 3. resolve_tags -------------------------------------------------------------------------------
def resolve_tags(plan: Mapping[str, Any]) -> list[dict[str, str]]:
    params = plan_params(plan)
    run_tags = derive_run_tags(
        model_name=params.model_name,
        dag_id=str(plan["dag_id"]),
        run_id=str(plan["run_id"]),
        account_id=params.account_id,
    )
    uri = params.tags_s3_path or _platform(plan).tags_s3_uri
    standard: list[dict[str, str]] = []
    if uri is not None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            body = _session(plan).client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            raise StepError(f"tags: cannot read the tag document {uri} ({code})") from None
        standard = parse_tag_document(body, uri)
    return merge_tags(standard, run_tags)


# --- 4. copy_images --------------------------------------------------------------------------------
def copy_images(plan: Mapping[str, Any], tags: list[dict[str, str]]) -> dict[str, Any]:
    """Pin the run's images by digest, in copy_images' XCom shape.

    Images already in the account's ECR are resolved through the ECR API. Copying from another
    registry needs skopeo and registry credentials that the Airflow step takes from connections; on
    this engine such an image fails the step with what to do instead.
    """
    platform = _platform(plan)
    account_id, region = plan_params(plan).account_id, platform.region
    steps = plan_image_steps(plan["params"], account_id, region, platform.ecr.repository_prefix)
    results: dict[str, Any] = dict.fromkeys(IMAGE_PARAMS)
    ecr = None
    for step in steps:
        if step.copy:
            raise StepError(
                f"{step.param}: {step.source} is outside account {account_id}'s ECR; the KFP engine "
                "deploys images already in that ECR only. Run sagemaker_deploy on Airflow once to copy it, "
                "or push it there."
            )
        ecr = ecr or _session(plan).client("ecr")
        image_id = (
            {"imageDigest": step.source.digest} if step.source.digest else {"imageTag": str(step.source.tag)}
        )
        try:
            details = ecr.describe_images(
                registryId=account_id, repositoryName=step.source.repository, imageIds=[image_id]
            )["imageDetails"]
        except ClientError as err:
            raise StepError(f"{step.param}: image {step.source} not found in ECR ({err})") from None
        digest = str(details[0]["imageDigest"])
        results[step.param] = {
            "image": step.source.pinned(digest),
            "digest": digest,
            "source": str(step.source),
            "repository": step.target_repository,
            "tag": step.target_tag or step.source.tag,
            "action": "in_ecr",
        }
    return results


# --- 5. train_model --------------------------------------------------------------------------------
def train_model(plan: Mapping[str, Any], tags: list[dict[str, str]], images: Mapping[str, Any]) -> str:
    """Train (or follow this run's job on a retry) and return the model artifact's S3 URI."""
    params, names = plan_params(plan), plan_names(plan)
    if not params.trains:
        return str(params.model_artifact_s3_path)
    platform = _platform(plan)
    settings = platform.sagemaker
    sagemaker = _session(plan).client("sagemaker")
    try:
        sagemaker.describe_training_job(TrainingJobName=names.training_job)
    except ClientError as err:
        if not _not_found(err):
            raise
        sagemaker.create_training_job(
            **build_training_job_request(
                params,
                names,
                region=platform.region,
                role_arn=platform.training_role_arn(params.account_id),
                tags=tags,
                settings=settings,
                copied_images=images,
            )
        )
    delay = settings.check_interval_seconds
    sagemaker.get_waiter("training_job_completed_or_stopped").wait(
        TrainingJobName=names.training_job,
        WaiterConfig={"Delay": delay, "MaxAttempts": max(1, settings.training_wait_budget_seconds // delay)},
    )
    job = sagemaker.describe_training_job(TrainingJobName=names.training_job)
    if job["TrainingJobStatus"] != "Completed":
        raise StepError(
            f"Training job {names.training_job} ended {job['TrainingJobStatus']}: "
            f"{job.get('FailureReason', 'no reason given')}"
        )
    artifact = job.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    return str(artifact or expected_model_artifact(str(params.training_s3_output_path), names.training_job))


# --- 6. create_model -------------------------------------------------------------------------------
def create_model(
    plan: Mapping[str, Any], tags: list[dict[str, str]], images: Mapping[str, Any], model_data_url: str
) -> str:
    params, names = plan_params(plan), plan_names(plan)
    platform = _platform(plan)
    sagemaker = _session(plan).client("sagemaker")
    request = build_model_request(
        params,
        names,
        region=platform.region,
        role_arn=platform.model_role_arn(params.account_id),
        model_data_url=model_data_url,
        tags=tags,
        copied_images=images,
    )
    try:
        sagemaker.describe_model(ModelName=names.model)
    except ClientError as err:
        if not _not_found(err):
            raise
    else:  # as on Airflow (and in the original): an existing model of this run's name is replaced
        sagemaker.delete_model(ModelName=names.model)
    sagemaker.create_model(**request)
    return names.model


# --- 7. deploy_endpoint ----------------------------------------------------------------------------
def deploy_endpoint(plan: Mapping[str, Any], tags: list[dict[str, str]], model_name: str) -> dict[str, Any]:
    """Create the run's endpoint config, create or update the model's endpoint, wait for InService."""
    params, names = plan_params(plan), plan_names(plan)
    settings = _platform(plan).sagemaker
    sagemaker = _session(plan).client("sagemaker")
    try:
        sagemaker.describe_endpoint_config(EndpointConfigName=names.endpoint_config)
    except ClientError as err:
        if not _not_found(err):
            raise
        sagemaker.create_endpoint_config(
            **build_endpoint_config_request(params, names, tags=tags, settings=settings)
        )
    request = build_endpoint_request(names, tags=tags)
    try:
        current = sagemaker.describe_endpoint(EndpointName=names.endpoint)
    except ClientError as err:
        if not _not_found(err):
            raise
        sagemaker.create_endpoint(**request)
        operation = "create"
    else:
        request.pop("Tags")  # UpdateEndpoint takes no tags; keep the endpoint's tags current instead
        if tags:
            sagemaker.add_tags(ResourceArn=current["EndpointArn"], Tags=tags)
        sagemaker.update_endpoint(**request)
        operation = "update"
    delay = settings.check_interval_seconds
    sagemaker.get_waiter("endpoint_in_service").wait(
        EndpointName=names.endpoint,
        WaiterConfig={"Delay": delay, "MaxAttempts": max(1, settings.endpoint_wait_budget_seconds // delay)},
    )
    endpoint = sagemaker.describe_endpoint(EndpointName=names.endpoint)
    if endpoint.get("EndpointConfigName") != names.endpoint_config:
        raise StepError(
            f"Endpoint {names.endpoint} is serving config {endpoint.get('EndpointConfigName')}, not this "
            f"run's {names.endpoint_config}: SageMaker rolled the update back."
        )
    return {
        "endpoint_name": names.endpoint,
        "endpoint_arn": endpoint["EndpointArn"],
        "endpoint_config_name": names.endpoint_config,
        "model_name": model_name,
        "operation": operation,
    }


# --- 8. expose_api ---------------------------------------------------------------------------------
def expose_api(
    plan: Mapping[str, Any], tags: list[dict[str, str]], endpoint: Mapping[str, Any]
) -> dict[str, Any]:
    from sagelift.domain.apigateway import derive_api_spec
    from sagelift.hooks.apigateway_client import ApiGatewayClient, expose_model_api

    params, names = plan_params(plan), plan_names(plan)
    platform = _platform(plan)
    spec = derive_api_spec(
        api_name=names.api,
        model_name=params.model_name,
        account_id=params.account_id,
        region=platform.region,
        endpoint_name=str(endpoint["endpoint_name"]),
        invoke_role_arn=platform.api_invoke_role_arn(params.account_id),
        settings=platform.api,
        tags=tags,
        dag_id=str(plan["dag_id"]),
        run_id=str(plan["run_id"]),
    )
    return expose_model_api(ApiGatewayClient(_session(plan).client("apigateway")), spec).to_xcom()
