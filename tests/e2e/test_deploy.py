"""Whole runs of sagemaker_deploy against the local AWS, asserted from the scientist account's side."""

from __future__ import annotations

import json

import pytest

from sagelift.domain.plan import derive_run_key
from tests.support.local_aws import MASTER_ACCOUNT, REGION, RUNNER_ACCOUNT, SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, STANDARD_TAGS, demo_conf

pytestmark = pytest.mark.e2e

ECR = f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


def _per_run_name(result, model_name: str) -> str:
    return f"{model_name}-{derive_run_key('sagemaker_deploy', result.dag_run.run_id)}"


def _pinned(aws, repository: str, tag: str) -> str:
    """The digest-pinned reference of an image in the scientist account's ECR, as step 4 resolves it."""
    ecr = aws.client("ecr", SCIENTIST_ACCOUNT)
    digest = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"][0]
    return f"{ECR}/{repository}@{digest['imageDigest']}"


def _only_api(aws, account: str = SCIENTIST_ACCOUNT) -> dict:
    apis = aws.client("apigateway", account).get_rest_apis()["items"]
    assert len(apis) == 1, apis
    return apis[0]


def _tags(sm, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}


def _assert_run_tags(tags: dict[str, str], result, model_name: str) -> None:
    for key, value in STANDARD_TAGS.items():
        assert tags[key] == value
    assert tags["sagelift:model-name"] == model_name
    assert tags["sagelift:dag-id"] == "sagemaker_deploy"
    assert tags["sagelift:run-id"] == result.dag_run.run_id
    assert tags["sagelift:account-id"] == SCIENTIST_ACCOUNT


def _serving(sm, name: str) -> dict:
    """What the model serves: built from the run's registered version, it names the version, whose
    container holds the image digest and the artifact; the model adds the environment."""
    container = sm.describe_model(ModelName=name)["PrimaryContainer"]
    package = sm.describe_model_package(ModelPackageName=container["ModelPackageName"])
    return {**package["InferenceSpecification"]["Containers"][0], **container}


def _assert_no_invalid_requests(result) -> None:
    invalid = [(c.service, c.operation, c.errors) for c in result.calls if c.errors]
    assert invalid == []


def test_byo_image_trains_registers_and_deploys_in_the_scientist_account(run_deploy, local_aws):
    result = run_deploy(demo_conf())

    assert result.state == "success", result.states
    assert result.states["train_model"] == "success"
    _assert_no_invalid_requests(result)
    name = _per_run_name(result, "churn-predictor")
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)

    job = sm.describe_training_job(TrainingJobName=name)
    # Images already in the account's ECR are used as they are, pinned by digest.
    assert job["AlgorithmSpecification"]["TrainingImage"] == _pinned(local_aws, "churn-train", "1.4")
    assert job["RoleArn"] == f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-training-execution"
    assert job["HyperParameters"] == {"max_depth": "5", "eta": "0.2"}
    assert [c["ChannelName"] for c in job["InputDataConfig"]] == ["train", "validation"]
    assert (
        job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{DATA_BUCKET}/churn/train/"
    )
    assert job["OutputDataConfig"]["S3OutputPath"] == f"s3://{DATA_BUCKET}/churn/output/"
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    _assert_run_tags(_tags(sm, job["TrainingJobArn"]), result, "churn-predictor")

    model = sm.describe_model(ModelName=name)
    serving = _serving(sm, name)
    assert serving["ModelPackageName"].endswith(":model-package/churn-predictor/1")
    assert serving["Image"] == _pinned(local_aws, "churn-serving", "1.4")
    assert serving["ModelDataUrl"] == job["ModelArtifacts"]["S3ModelArtifacts"]
    assert serving["Environment"] == {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"}
    assert model["ExecutionRoleArn"] == f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-model-execution"
    _assert_run_tags(_tags(sm, model["ModelArn"]), result, "churn-predictor")

    config = sm.describe_endpoint_config(EndpointConfigName=name)
    variant = config["ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        name,
        "ml.m5.large",
        1,
    )
    _assert_run_tags(_tags(sm, config["EndpointConfigArn"]), result, "churn-predictor")

    endpoint = sm.describe_endpoint(EndpointName="churn-predictor")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == name
    _assert_run_tags(_tags(sm, endpoint["EndpointArn"]), result, "churn-predictor")

    # Nothing was created in the runner's or the master role's account.
    for account in (RUNNER_ACCOUNT, MASTER_ACCOUNT):
        other = local_aws.client("sagemaker", account)
        assert other.list_training_jobs()["TrainingJobSummaries"] == []
        assert other.list_models()["Models"] == []
        assert other.list_endpoint_configs()["EndpointConfigs"] == []
        assert other.list_endpoints()["Endpoints"] == []


def test_builtin_algorithm_uses_the_regional_algorithm_image(run_deploy, local_aws):
    result = run_deploy(
        demo_conf(
            model_name="churn-xgb",
            training_docker_image="",
            training_algorithm_name="xgboost",
            model_docker_image="",
        )
    )

    assert result.state == "success", result.states
    _assert_no_invalid_requests(result)
    name = _per_run_name(result, "churn-xgb")
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    assert sm.describe_training_job(TrainingJobName=name)["AlgorithmSpecification"]["TrainingImage"] == image
    # A built-in algorithm serves with its own image when no model image is given.
    assert _serving(sm, name)["Image"] == image
    assert sm.describe_endpoint(EndpointName="churn-xgb")["EndpointConfigName"] == name


def test_existing_artifact_is_deployed_without_training(run_deploy, local_aws):
    artifact = f"s3://{DATA_BUCKET}/models/churn/model.tar.gz"
    result = run_deploy(
        demo_conf(
            model_name="churn-pretrained",
            training_docker_image="",
            training_channels="",
            training_s3_output_path="",
            training_hyperparameters="{}",
            model_artifact_s3_path=artifact,
        )
    )

    assert result.state == "success", result.states
    assert result.states["train_model"] == "skipped"
    _assert_no_invalid_requests(result)
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    name = _per_run_name(result, "churn-pretrained")
    assert _serving(sm, name)["ModelDataUrl"] == artifact
    assert sm.describe_endpoint(EndpointName="churn-pretrained")["EndpointStatus"] == "InService"
    assert not any(c.operation == "CreateTrainingJob" for c in result.calls)


def test_original_kfp_payload_with_json_strings_and_string_counts(run_deploy, local_aws):
    """The payload of the original notebook: every JSON value a string, counts as strings."""
    conf = demo_conf(model_name="your-model-name")
    payload = {
        "model_name": "your-model-name",
        "account_id": SCIENTIST_ACCOUNT,
        "model_docker_image": conf["model_docker_image"],
        "environment": json.dumps({"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"}),
        "training_docker_image": conf["training_docker_image"],
        "training_hyperparameters": json.dumps(
            {
                "model_dir": "/opt/ml/model",
                "sagemaker_container_log_level": "20",
                "sagemaker_mpi_custom_mpi_options": "-verbose --NCCL_DEBUG=INFO -x OMPI_MCA_btl_vader_single_copy_mechanism=none",
                "sagemaker_mpi_enabled": "true",
                "sagemaker_region": "us-east-1",
            }
        ),
        "training_instance_count": "2",
        "training_channels": json.dumps(
            [
                {
                    "ChannelName": "train",
                    "DataSource": {
                        "S3DataSource": {
                            "S3Uri": f"s3://{DATA_BUCKET}/churn/train/",
                            "S3DataType": "S3Prefix",
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                    "ContentType": "",
                    "CompressionType": "None",
                    "RecordWrapperType": "None",
                    "InputMode": "File",
                },
            ]
        ),
        "training_s3_output_path": f"s3://{DATA_BUCKET}/churn/output/",
    }
    result = run_deploy(payload)

    assert result.state == "success", result.states
    _assert_no_invalid_requests(result)
    job = local_aws.client("sagemaker", SCIENTIST_ACCOUNT).describe_training_job(
        TrainingJobName=_per_run_name(result, "your-model-name")
    )
    assert job["ResourceConfig"]["InstanceCount"] == 2
    assert job["HyperParameters"]["sagemaker_mpi_enabled"] == "true"
    channel = job["InputDataConfig"][0]
    assert channel["ChannelName"] == "train"
    assert "ContentType" not in channel  # the original's empty ContentType is not sent


def test_second_run_of_the_same_conf_updates_the_endpoint(run_deploy, local_aws):
    first = run_deploy(demo_conf())
    second = run_deploy(demo_conf())

    assert (first.state, second.state) == ("success", "success"), (first.states, second.states)
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    first_name, second_name = (
        _per_run_name(first, "churn-predictor"),
        _per_run_name(second, "churn-predictor"),
    )
    assert first_name != second_name
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == 2
    assert sm.describe_endpoint(EndpointName="churn-predictor")["EndpointConfigName"] == second_name
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == ["churn-predictor"]
    assert any(c.operation == "UpdateEndpoint" for c in second.calls)
    _assert_no_invalid_requests(second)

    # Step 8: one stable API per model, a new deployment per run, the run's tags, the current endpoint.
    api = _only_api(local_aws)
    apigw = local_aws.client("apigateway", SCIENTIST_ACCOUNT)
    assert len(apigw.get_deployments(restApiId=api["id"])["items"]) == 2
    tags = apigw.get_tags(resourceArn=f"arn:aws:apigateway:{REGION}::/restapis/{api['id']}")["tags"]
    for key, value in STANDARD_TAGS.items():
        assert tags[key] == value
    assert tags["sagelift:run-id"] == second.dag_run.run_id
    resource = next(
        r for r in apigw.get_resources(restApiId=api["id"])["items"] if r["path"] == "/invocations"
    )
    integration = apigw.get_integration(restApiId=api["id"], resourceId=resource["id"], httpMethod="POST")
    assert integration["uri"] == (
        f"arn:aws:apigateway:{REGION}:runtime.sagemaker:path//endpoints/churn-predictor/invocations"
    )
    assert integration["credentials"] == f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-apigateway-invoke"
    for account in (RUNNER_ACCOUNT, MASTER_ACCOUNT):
        assert local_aws.client("apigateway", account).get_rest_apis()["items"] == []
