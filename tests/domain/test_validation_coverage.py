"""validate refuses first: every rule a later step enforces is refused by build_plan, before anything runs.

Three proofs:
- RULES: for each rule a later builder, hook, operator, step or the AWS service model enforces, a conf or
  platform that breaks it; build_plan refuses it naming the field, and (where the later enforcement is
  code we have) the later stage is shown to refuse the same input too, so the case is real.
- test_every_input_error_raised_later_is_classified: every ``raise ValueError`` / ``SageliftValidationError``
  in the product code after validate is either covered by a RULES case or says why validate cannot know
  (a registry's answer, a document read at run time). A new one fails this test until it is classified.
- The seeded fuzz: hostile confs and platforms give SageliftValidationError or a plan, never another
  exception; every message is short and names a field; and every plan build_plan accepts produces request
  bodies that botocore's service model accepts (checked strictly by tests/support/botocore_validation).
"""

from __future__ import annotations

import ast
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from sagelift.domain import apigateway as api
from sagelift.domain.batch_settings import BatchSettings, build_transform_job_request
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.images import (
    check_source_registry,
    derive_ecr_repository_name,
    ecr_registry_host,
    parse_image_reference,
    plan_image_steps,
)
from sagelift.domain.params import RunParams, parse_params
from sagelift.domain.plan import Plan, RunNames, build_plan, derive_names
from sagelift.domain.platform import ApiSettings, EcrSettings, PlatformConfig, SageMakerSettings
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_endpoint_request,
    build_model_request,
    build_training_job_request,
    expected_model_artifact,
    resolve_training_image,
)
from sagelift.domain.tags import derive_run_tags
from sagelift.pod import ensure_pvc as pod
from sagelift.steps.errors import StepFailed
from sagelift.steps.tags import resolve_tags
from tests.conftest import ROOT
from tests.support.botocore_validation import validate_request
from tests.support.scenario import demo_conf

ACCOUNT = "333333333333"
REGION = "us-east-1"
DAG_ID, RUN_ID = "sagemaker_deploy", "manual__2026-01-01T00:00:00+00:00"
PLATFORM: dict[str, Any] = {
    "region": REGION,
    "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline",
    "accounts": {ACCOUNT: {}},
    "kubernetes": {"enabled": True},
}
DIGEST = "sha256:" + "a" * 64


# --- the request bodies a plan leads to ---------------------------------------------------------------
def copied_images(params: RunParams, platform: PlatformConfig) -> dict[str, Any]:
    """What copy_images publishes: each image pinned by digest in the account's ECR."""
    host = ecr_registry_host(params.account_id, platform.region)
    steps = plan_image_steps(
        params.to_dict(), params.account_id, platform.region, platform.ecr.repository_prefix
    )
    return {
        s.param: {"image": f"{host}/{s.target_repository}@{DIGEST}" if s.copy else s.source.pinned(DIGEST)}
        for s in steps
    }


def request_bodies(
    params: RunParams, platform: PlatformConfig, names: RunNames
) -> list[tuple[str, str, dict]]:
    """Every body steps 5-8 send for this plan, as (service, operation, body)."""
    tags = derive_run_tags(
        model_name=params.model_name, dag_id=DAG_ID, run_id=RUN_ID, account_id=params.account_id
    )
    copied = copied_images(params, platform)
    bodies: list[tuple[str, str, dict]] = []
    if params.trains:
        training = build_training_job_request(
            params,
            names,
            region=platform.region,
            role_arn=platform.training_role_arn(params.account_id),
            tags=tags,
            settings=platform.sagemaker,
            copied_images=copied,
        )
        bodies.append(("sagemaker", "CreateTrainingJob", training))
    artifact = params.model_artifact_s3_path or expected_model_artifact(
        str(params.training_s3_output_path), names.training_job
    )
    model = build_model_request(
        params,
        names,
        region=platform.region,
        role_arn=platform.model_role_arn(params.account_id),
        model_data_url=artifact,
        tags=tags,
        copied_images=copied,
    )
    bodies.append(("sagemaker", "CreateModel", model))
    bodies.append(
        (
            "sagemaker",
            "CreateEndpointConfig",
            build_endpoint_config_request(params, names, tags=tags, settings=platform.sagemaker),
        )
    )
    bodies.append(("sagemaker", "CreateEndpoint", build_endpoint_request(names, tags=tags)))
    return bodies + api_bodies(params, platform, names, platform.api)


def api_bodies(params: RunParams, platform: PlatformConfig, names: RunNames, settings: ApiSettings) -> list:
    spec = api.derive_api_spec(
        api_name=names.api,
        model_name=params.model_name,
        account_id=params.account_id,
        region=platform.region,
        endpoint_name=names.endpoint,
        invoke_role_arn=platform.api_invoke_role_arn(params.account_id),
        settings=settings,
        tags=[],
        dag_id=DAG_ID,
        run_id=RUN_ID,
    )
    bodies = [
        ("apigateway", "CreateRestApi", api.build_create_rest_api_request(spec)),
        ("apigateway", "PutMethod", api.build_put_method_request("a1", "r1", spec)),
        ("apigateway", "PutIntegration", api.build_put_integration_request("a1", "r1", spec)),
        ("apigateway", "CreateStage", api.build_create_stage_request("a1", "d1", spec)),
        (
            "apigateway",
            "UpdateStage",
            {
                "restApiId": "a1",
                "stageName": spec.stage_name,
                "patchOperations": api.build_stage_patch_operations(spec, deployment_id="d1"),
            },
        ),
    ]
    if spec.uses_api_key:
        bodies.append(("apigateway", "CreateUsagePlan", api.build_create_usage_plan_request("a1", spec)))
        bodies.append(("apigateway", "CreateApiKey", api.build_create_api_key_request(spec)))
    return bodies


def model_errors(params: RunParams, platform: PlatformConfig | None = None) -> list[str]:
    """What botocore's model says about the bodies of unvalidated ``params`` (the later failure)."""
    platform = platform or PlatformConfig.from_dict(PLATFORM)
    names = derive_names(params.model_name, DAG_ID, RUN_ID)
    return [
        e
        for service, op, body in request_bodies(params, platform, names)
        for e in validate_request(service, op, body)
    ]


VALID = parse_params(demo_conf())


def unvalidated(**changes: Any) -> RunParams:
    """The valid params with ``changes`` that validate would refuse (as if it had not run)."""
    return dataclasses.replace(VALID, **changes)


def channel(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3Uri": "s3://bkt/train/", "S3DataType": "S3Prefix"}},
    }
    base.update(changes)
    return base


def raises(exc: type[BaseException], call: Callable[[], Any]) -> Callable[[], None]:
    def later() -> None:
        with pytest.raises(exc):
            call()

    return later


def refused_by_model(**changes: Any) -> Callable[[], None]:
    def later() -> None:
        try:
            errors = model_errors(unvalidated(**changes))
        except (ValueError, KeyError) as err:  # a builder or derive_api_spec refuses before botocore does
            errors = [str(err)]
        assert errors, f"botocore's model accepts {changes}"

    return later


def _tampered_plan(**params: Any) -> Plan:
    """A plan validate built, with parameters changed afterwards (what a step's own check sees)."""
    data = build_plan(demo_conf(), PLATFORM, DAG_ID, RUN_ID)
    data["params"].update(params)
    return Plan.from_xcom(data)


def api_refuses(**settings: Any) -> Callable[[], None]:
    platform = PlatformConfig.from_dict(PLATFORM)
    names = derive_names(VALID.model_name, DAG_ID, RUN_ID)
    return raises(
        SageliftValidationError, lambda: api_bodies(VALID, platform, names, ApiSettings(**settings))
    )


# --- the rules ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    id: str
    enforced_later_by: str
    field: str
    conf: dict[str, Any] = field(default_factory=dict)
    platform: dict[str, Any] = field(default_factory=dict)
    later: Callable[[], None] | None = None  # shows the later stage refusing the same input
    reason: str = ""  # why there is no ``later``: the rule protects against what AWS would accept


LONG_PATH = "public.ecr.aws/team/" + "t" * 150 + ":1"
AWS_IMAGE_ELSEWHERE = "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.1"


def _transform_request(settings: BatchSettings, *, training_output: str | None) -> dict[str, Any]:
    return build_transform_job_request(
        settings,
        job_name="churn-predictor-0123abcd",
        model_name="churn-predictor-0123abcd",
        training_output=training_output,
        tags=[],
    )


def _refused_transform(settings: BatchSettings, *, training_output: str | None) -> None:
    errors = validate_request(
        "sagemaker", "CreateTransformJob", _transform_request(settings, training_output=training_output)
    )
    assert errors, f"botocore's model accepts {settings}"


# issue 20 item 4: labeling before training, on an account with a workteam and a manifest prefix
LABELING = {
    "manifest_s3_uri": "s3://scientist-ml-data/to-label/x.manifest",
    "task_type": "text_classification",
    "labels": ["a", "b"],
    "channel": "labeled",
}
LABELING_ACCOUNT = {
    "labeling_workteam_arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:workteam/private-crowd/t",
    "labeling_prefixes": ["s3://scientist-ml-data/to-label/"],
}


def _labeling_request(account: dict[str, Any], **params: Any) -> None:
    """steps.labeling.labeling_request of a plan validate accepted, given another account or params."""
    from sagelift.steps.labeling import labeling_request

    platform = {**PLATFORM, "accounts": {ACCOUNT: LABELING_ACCOUNT}}
    plan = Plan.from_xcom(build_plan(demo_conf(labeling=LABELING), platform, DAG_ID, RUN_ID))
    changed = {**PLATFORM, "accounts": {ACCOUNT: account}}
    plan = dataclasses.replace(
        plan, platform=PlatformConfig.from_dict(changed), params=dataclasses.replace(plan.params, **params)
    )
    labeling_request(plan, [])


RULES: tuple[Rule, ...] = (
    # CreateTrainingJob (train_model), via botocore's model
    Rule(
        "channels_empty",
        "SageMaker: trains on no data",
        "training_channels",
        {"training_channels": []},
        reason="SageMaker accepts a job without InputDataConfig: the job trains on no data",
    ),
    Rule(
        "channel_shuffle_config_type",
        "CreateTrainingJob InputDataConfig",
        "training_channels[0].ShuffleConfig",
        {"training_channels": [channel(ShuffleConfig="yes please")]},
        later=refused_by_model(training_channels=[channel(ShuffleConfig="yes please")]),
    ),
    Rule(
        "channel_unknown_s3_key",
        "CreateTrainingJob InputDataConfig",
        "training_channels[0].DataSource.S3DataSource.Extra",
        {"training_channels": [channel(DataSource={"S3DataSource": {"S3Uri": "s3://b/k", "Extra": 1}})]},
        later=refused_by_model(
            training_channels=[channel(DataSource={"S3DataSource": {"S3Uri": "s3://b/k", "Extra": 1}})]
        ),
    ),
    Rule(
        "channel_enum",
        "CreateTrainingJob InputDataConfig",
        "training_channels[0].InputMode",
        {"training_channels": [channel(InputMode="Stream")]},
        later=refused_by_model(training_channels=[channel(InputMode="Stream")]),
    ),
    Rule(
        "channel_name_pattern",
        "CreateTrainingJob InputDataConfig",
        "training_channels[0].ChannelName",
        {"training_channels": [channel(ChannelName="train data")]},
        later=refused_by_model(training_channels=[channel(ChannelName="train data" * 10)]),
    ),
    Rule(
        "channel_count",
        "CreateTrainingJob InputDataConfig (max 20)",
        "training_channels",
        {"training_channels": [channel(ChannelName=f"c{i}") for i in range(21)]},
        later=refused_by_model(training_channels=[channel(ChannelName=f"c{i}") for i in range(21)]),
    ),
    Rule(
        "channel_content_type_length",
        "CreateTrainingJob InputDataConfig",
        "training_channels[0].ContentType",
        {"training_channels": [channel(ContentType="x" * 257)]},
        later=refused_by_model(training_channels=[channel(ContentType="x" * 257)]),
    ),
    Rule(
        "channel_s3_uri_length",
        "CreateTrainingJob InputDataConfig",
        "training_channels[0].DataSource.S3DataSource.S3Uri",
        {"training_channels": [channel(DataSource={"S3DataSource": {"S3Uri": "s3://bkt/" + "k" * 1100}})]},
        later=refused_by_model(
            training_channels=[channel(DataSource={"S3DataSource": {"S3Uri": "s3://bkt/" + "k" * 1100}})]
        ),
    ),
    Rule(
        "channel_not_s3",
        "the training request builder (S3DataSource only)",
        "training_channels[0].DataSource.S3DataSource",
        {
            "training_channels": [
                channel(
                    DataSource={
                        "FileSystemDataSource": {
                            "FileSystemId": "fs-01234567",
                            "FileSystemAccessMode": "ro",
                            "FileSystemType": "EFS",
                            "DirectoryPath": "/d",
                        }
                    }
                )
            ]
        },
        later=raises(
            KeyError,
            lambda: model_errors(
                unvalidated(training_channels=[channel(DataSource={"FileSystemDataSource": {}})])
            ),
        ),
    ),
    Rule(
        "hyperparameters_count",
        "CreateTrainingJob HyperParameters (max 100)",
        "training_hyperparameters",
        {"training_hyperparameters": {f"k{i}": "v" for i in range(101)}},
        later=refused_by_model(training_hyperparameters={f"k{i}": "v" for i in range(101)}),
    ),
    Rule(
        "hyperparameter_value_length",
        "CreateTrainingJob HyperParameters",
        "training_hyperparameters.blob",
        {"training_hyperparameters": {"blob": "x" * 2501}},
        later=refused_by_model(training_hyperparameters={"blob": "x" * 2501}),
    ),
    Rule(
        "hyperparameter_key_length",
        "CreateTrainingJob HyperParameters",
        "training_hyperparameters",
        {"training_hyperparameters": {"k" * 257: "v"}},
        later=refused_by_model(training_hyperparameters={"k" * 257: "v"}),
    ),
    Rule(
        "training_instance_type",
        "CreateTrainingJob ResourceConfig.InstanceType",
        "training_instance_type",
        {"training_instance_type": "ml.m5.huge"},
        later=refused_by_model(training_instance_type="ml.m5.huge"),
    ),
    Rule(
        "output_path_required",
        "build_training_job_request",
        "training_s3_output_path",
        {"training_s3_output_path": ""},
        later=refused_by_model(training_s3_output_path=None)
        if False
        else raises(ValueError, lambda: model_errors(unvalidated(training_s3_output_path=None))),
    ),
    Rule(
        "output_path_pattern",
        "CreateTrainingJob OutputDataConfig.S3OutputPath",
        "training_s3_output_path",
        {"training_s3_output_path": "bucket/output"},
        later=refused_by_model(training_s3_output_path="bucket/output"),
    ),
    Rule(
        "output_path_length",
        "CreateTrainingJob OutputDataConfig.S3OutputPath",
        "training_s3_output_path",
        {"training_s3_output_path": "s3://bkt/" + "o" * 1100},
        later=refused_by_model(training_s3_output_path="s3://bkt/" + "o" * 1100),
    ),
    Rule(
        "artifact_url_length",
        "CreateModel PrimaryContainer.ModelDataUrl, <output>/<job>/output/model.tar.gz after training",
        "training_s3_output_path",
        {"training_s3_output_path": "s3://bkt/" + "o" * 1000},
        later=refused_by_model(training_s3_output_path="s3://bkt/" + "o" * 1000),
    ),
    Rule(
        "model_name_pattern",
        "CreateTrainingJob TrainingJobName",
        "model_name",
        {"model_name": "churn_model"},
        later=refused_by_model(model_name="churn_model"),
    ),
    Rule(
        "model_name_length",
        "CreateTrainingJob TrainingJobName (63 with the run suffix)",
        "model_name",
        {"model_name": "m" * 60},
        later=refused_by_model(model_name="m" * 60),
    ),
    Rule(
        "training_image_length",
        "CreateTrainingJob AlgorithmSpecification.TrainingImage (255)",
        "training_docker_image",
        {"training_docker_image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/" + "a" * 250 + ":1"},
        later=refused_by_model(
            training_docker_image=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/" + "a" * 250 + ":1"
        ),
    ),
    Rule(
        "pinned_image_length",
        "CreateTrainingJob TrainingImage once pinned in ECR (255)",
        "training_docker_image",
        {"training_docker_image": LONG_PATH},
        later=refused_by_model(training_docker_image=LONG_PATH),
    ),
    Rule(
        "algorithm_unknown",
        "resolve_training_image",
        "training_algorithm_name",
        {"training_docker_image": "", "training_algorithm_name": "xgbost", "model_docker_image": ""},
        later=raises(
            ValueError,
            lambda: resolve_training_image(
                unvalidated(training_docker_image=None, training_algorithm_name="xgbost"), REGION
            ),
        ),
    ),
    Rule(
        "algorithm_region",
        "resolve_training_image",
        "training_algorithm_name",
        {"training_docker_image": "", "training_algorithm_name": "lda"},
        {"region": "sa-east-1"},
        later=raises(
            ValueError,
            lambda: resolve_training_image(
                unvalidated(training_docker_image=None, training_algorithm_name="lda"), "sa-east-1"
            ),
        ),
    ),
    # CreateModel (create_model)
    Rule(
        "environment_key_pattern",
        "CreateModel PrimaryContainer.Environment",
        "environment.1-2",
        {"environment": {"1-2": "x"}},
        later=refused_by_model(environment={"1-2": "x"}),
    ),
    Rule(
        "environment_value_length",
        "CreateModel PrimaryContainer.Environment",
        "environment.A",
        {"environment": {"A": "x" * 1025}},
        later=refused_by_model(environment={"A": "x" * 1025}),
    ),
    Rule(
        "environment_count",
        "CreateModel PrimaryContainer.Environment (max 100)",
        "environment",
        {"environment": {f"K{i}": "v" for i in range(101)}},
        later=refused_by_model(environment={f"K{i}": "v" for i in range(101)}),
    ),
    Rule(
        "artifact_pattern",
        "CreateModel PrimaryContainer.ModelDataUrl",
        "model_artifact_s3_path",
        {"model_artifact_s3_path": "bucket/model.tar.gz", "training_docker_image": ""},
        later=refused_by_model(model_artifact_s3_path="bucket/model.tar.gz", training_docker_image=None),
    ),
    Rule(
        "model_image_length",
        "CreateModel PrimaryContainer.Image (255)",
        "model_docker_image",
        {"model_docker_image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/" + "s" * 250 + ":1"},
        later=refused_by_model(
            model_docker_image=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/" + "s" * 250 + ":1"
        ),
    ),
    # CreateEndpointConfig (deploy_endpoint)
    Rule(
        "endpoint_instance_type",
        "CreateEndpointConfig ProductionVariants.InstanceType",
        "endpoint_instance_type",
        {"endpoint_instance_type": "ml.bogus.large"},
        later=refused_by_model(endpoint_instance_type="ml.bogus.large"),
    ),
    Rule(
        "endpoint_initial_count",
        "CreateEndpointConfig InitialInstanceCount (min 1)",
        "platform.sagemaker.endpoint_initial_instance_count",
        platform={"sagemaker": {"endpoint_initial_instance_count": 0}},
        later=lambda: _assert_platform_model_errors(
            sagemaker=SageMakerSettings(endpoint_initial_instance_count=0)
        ),
    ),
    Rule(
        "training_max_runtime",
        "CreateTrainingJob StoppingCondition (min 1)",
        "platform.sagemaker.training_max_runtime_seconds",
        platform={"sagemaker": {"training_max_runtime_seconds": 0}},
        later=lambda: _assert_platform_model_errors(
            sagemaker=SageMakerSettings(training_max_runtime_seconds=0)
        ),
    ),
    # copy_images
    Rule(
        "image_reference",
        "parse_image_reference (copy_images)",
        "model_docker_image",
        {"model_docker_image": "Not An Image"},
        later=raises(SageliftValidationError, lambda: parse_image_reference("Not An Image", "f")),
    ),
    Rule(
        "image_digest",
        "parse_image_reference (copy_images)",
        "training_docker_image",
        {"training_docker_image": "registry.example.com/t@sha256:abc"},
        later=raises(
            SageliftValidationError, lambda: parse_image_reference("registry.example.com/t@sha256:abc", "f")
        ),
    ),
    Rule(
        "ecr_repository_name",
        "derive_ecr_repository_name (copy_images)",
        "training_docker_image",
        {"training_docker_image": "public.ecr.aws/team/" + "t" * 60 + ":1"},
        {"ecr": {"repository_prefix": "p" * 200 + "/"}},
        later=raises(
            SageliftValidationError,
            lambda: derive_ecr_repository_name(
                parse_image_reference("public.ecr.aws/team/" + "t" * 60 + ":1", "f"), "p" * 200 + "/", "f"
            ),
        ),
    ),
    Rule(
        "image_source",
        "check_source_registry (copy_images)",
        "training_docker_image",
        {"training_docker_image": "10.0.0.5:5000/team/trainer:1"},
        later=raises(
            SageliftValidationError,
            lambda: check_source_registry(
                parse_image_reference("10.0.0.5:5000/team/trainer:1", "f"), EcrSettings(), [ACCOUNT], "f"
            ),
        ),
    ),
    Rule(
        "aws_image_region",
        "plan_image_steps (copy_images): SageMaker pulls AWS's images only from its own region",
        "model_docker_image",
        {"model_docker_image": AWS_IMAGE_ELSEWHERE},
        later=raises(
            SageliftValidationError,
            lambda: plan_image_steps(
                {"model_docker_image": AWS_IMAGE_ELSEWHERE}, ACCOUNT, REGION, "sagelift/"
            ),
        ),
    ),
    Rule(
        "tag_document_prefix",
        "resolve_tags: only tag documents the platform allows",
        "tags_s3_path",
        {"tags_s3_path": "s3://someone-elses-bucket/tags.json"},
        {"tags_s3_uri": "s3://platform-config/tags.json"},
        later=raises(
            StepFailed,
            lambda: resolve_tags(_tampered_plan(tags_s3_path="s3://someone-elses-bucket/tags.json"), None),
        ),
    ),
    # ensure_pvc (the in-pod program) and the platform's bounds on a run's claim
    Rule(
        "pvc_size_quantity",
        "ensure_pvc's parse_quantity",
        "pvc_size",
        {"pvc_size": "lots"},
        later=raises(ValueError, lambda: pod.parse_quantity("lots")),
    ),
    Rule(
        "platform_pvc_size_quantity",
        "ensure_pvc's parse_quantity",
        "platform.kubernetes.pvc_size",
        platform={"kubernetes": {"pvc_size": "1.5.5Gi"}},
        later=raises(ValueError, lambda: pod.parse_quantity("1.5.5Gi")),
    ),
    Rule(
        "wait_for_bound",
        "ensure_pvc's arguments",
        "platform.kubernetes.wait_for_bound_seconds",
        platform={"kubernetes": {"wait_for_bound_seconds": -1}},
        later=raises(
            SystemExit, lambda: pod.parse_args(["--claim-name", "c", "--wait-for-bound-seconds", "-1"])
        ),
    ),
    Rule(
        "pvc_size_max",
        "the platform's claim size bound",
        "pvc_size",
        {"pvc_size": "1Ti"},
        reason="Kubernetes would create the claim: the bound is the platform's policy",
    ),
    Rule(
        "pvc_storage_class",
        "the platform's storage class allow-list",
        "pvc_storage_class",
        {"pvc_storage_class": "premium"},
        reason="an unknown class leaves the claim Pending: the allow-list is policy",
    ),
    # assume_role_chain and every later step's role ARNs
    Rule(
        "account_onboarded",
        "PlatformConfig.account (assume_role_chain, role ARNs)",
        "account_id",
        {"account_id": "444444444444"},
        later=raises(
            SageliftValidationError,
            lambda: PlatformConfig.from_dict(PLATFORM).execution_role_arn("444444444444"),
        ),
    ),
    # expose_api (derive_api_spec)
    Rule(
        "api_quota_needs_api_key",
        "derive_api_spec (expose_api)",
        "platform.api.quota_limit",
        platform={"api": {"authorization": "AWS_IAM", "quota_limit": 100}},
        later=api_refuses(quota_limit=100),
    ),
    Rule(
        "api_private_needs_vpce",
        "derive_api_spec (expose_api)",
        "platform.api.allowed_vpc_endpoint_ids",
        platform={"api": {"endpoint_type": "PRIVATE"}},
        later=api_refuses(endpoint_type="PRIVATE"),
    ),
    Rule(
        "api_negative_throttle",
        "derive_api_spec (expose_api)",
        "platform.api.throttle_rate_limit",
        platform={"api": {"throttle_rate_limit": -1}},
        later=api_refuses(throttle_rate_limit=-1),
    ),
    Rule(
        "api_burst_whole",
        "derive_api_spec (expose_api)",
        "platform.api.throttle_burst_limit",
        platform={"api": {"throttle_burst_limit": 1.5}},
        later=api_refuses(throttle_burst_limit=1.5),
    ),
    Rule(
        "api_org_needs_iam",
        "derive_api_spec (expose_api)",
        "platform.api.allowed_org_id",
        platform={"api": {"authorization": "API_KEY", "allowed_org_id": "o-abcdefghij"}},
        later=api_refuses(authorization="API_KEY", allowed_org_id="o-abcdefghij"),
    ),
    Rule(
        "api_vpce_id",
        "derive_api_spec (expose_api)",
        "platform.api.allowed_vpc_endpoint_ids[0]",
        platform={"api": {"allowed_vpc_endpoint_ids": ["vpc-1"]}},
        later=api_refuses(allowed_vpc_endpoint_ids=("vpc-1",)),
    ),
    Rule(
        "api_access_log",
        "derive_api_spec (expose_api)",
        "platform.api.access_log_destination_arn",
        platform={"api": {"access_log_destination_arn": "arn:aws:logs:us-east-1:1:log-group:x:*"}},
        later=api_refuses(access_log_destination_arn="arn:aws:logs:us-east-1:1:log-group:x:*"),
    ),
    # CreateTransformJob (batch_transform, issue 17 item 10)
    Rule(
        "batch_input_required",
        "build_transform_job_request",
        "batch.input_s3_uri",
        {"batch": {"split_type": "Line"}},
        later=raises(ValueError, lambda: _transform_request(BatchSettings(), training_output="s3://b/out/")),
    ),
    Rule(
        "batch_output_required",
        "batch_output_s3_uri (build_transform_job_request)",
        "batch.output_s3_uri",
        {
            "batch": {"input_s3_uri": "s3://scientist-ml-data/trials/"},
            "model_artifact_s3_path": "s3://scientist-ml-data/models/churn/model.tar.gz",
            "training_docker_image": "",
            "training_channels": [],
            "training_s3_output_path": "",
        },
        later=raises(
            ValueError,
            lambda: _transform_request(BatchSettings(input_s3_uri="s3://b/in/"), training_output=None),
        ),
    ),
    Rule(
        "batch_instance_type",
        "CreateTransformJob TransformResources.InstanceType",
        "batch.instance_type",
        {"batch": {"input_s3_uri": "s3://scientist-ml-data/trials/", "instance_type": "ml.t2.medium"}},
        later=lambda: _refused_transform(
            BatchSettings(input_s3_uri="s3://b/in/", instance_type="ml.t2.medium"),
            training_output="s3://b/o/",
        ),
    ),
    # CreateLabelingJob (label_data, issue 20 item 4)
    Rule(
        "labeling_workteam_required",
        "labeling_request (HumanTaskConfig.WorkteamArn)",
        "labeling",
        {"labeling": LABELING},
        platform={"accounts": {ACCOUNT: {"labeling_prefixes": LABELING_ACCOUNT["labeling_prefixes"]}}},
        later=raises(ValueError, lambda: _labeling_request({})),
    ),
    Rule(
        "labeling_needs_training",
        "labeling_request (OutputConfig.S3OutputPath)",
        "labeling",
        {
            "labeling": LABELING,
            "model_artifact_s3_path": "s3://scientist-ml-data/models/churn/model.tar.gz",
            "training_docker_image": "",
            "training_channels": [],
            "training_s3_output_path": "",
        },
        platform={"accounts": {ACCOUNT: LABELING_ACCOUNT}},
        later=raises(ValueError, lambda: _labeling_request(LABELING_ACCOUNT, training_s3_output_path=None)),
    ),
)


def _assert_platform_model_errors(**platform_changes: Any) -> None:
    platform = dataclasses.replace(PlatformConfig.from_dict(PLATFORM), **platform_changes)
    assert model_errors(VALID, platform)


def _plan_inputs(rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
    platform = dict(PLATFORM)
    for key, value in rule.platform.items():
        platform[key] = {**platform.get(key, {}), **value} if isinstance(value, dict) else value
    return demo_conf(**rule.conf), platform


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_validate_refuses_first_naming_the_field(rule: Rule) -> None:
    conf, platform = _plan_inputs(rule)
    with pytest.raises(SageliftValidationError) as raised:
        build_plan(conf, platform, DAG_ID, RUN_ID)
    assert any(f.startswith(rule.field) for f in raised.value.fields), raised.value.problems
    assert_readable(raised.value)


@pytest.mark.parametrize("rule", [r for r in RULES if r.later], ids=[r.id for r in RULES if r.later])
def test_without_validate_the_later_stage_refuses_the_same_input(rule: Rule) -> None:
    assert rule.later is not None
    rule.later()


def test_every_rule_either_shows_the_later_refusal_or_says_why_not() -> None:
    assert all(bool(r.later) != bool(r.reason) for r in RULES)
    assert len({r.id for r in RULES}) == len(RULES)


# --- every input error raised after validate is classified -------------------------------------------
SCANNED = (
    "domain/sagemaker.py",
    "domain/batch_settings.py",
    "domain/apigateway.py",
    "domain/images.py",
    "domain/tags.py",
    "domain/kfp.py",
    "hooks/*.py",
    "operators/*.py",
    "steps/*.py",
    "triggers/*.py",
    "pod/*.py",
)
NOT_RUN_STEPS = ("teardown", "retrain", "summary")  # other DAGs and the run summary: not steps of a run
INPUT_ERRORS = {"ValueError", "SageliftValidationError", "SageliftValidationError.single", "raise_if_any"}
# (file, function) -> the RULES case that proves validate refuses it first, or why validate cannot.
CLASSIFIED: dict[tuple[str, str], str] = {
    ("domain/sagemaker.py", "resolve_training_image"): "rule:algorithm_region",
    ("domain/sagemaker.py", "build_training_job_request"): "rule:output_path_required",
    ("domain/batch_settings.py", "build_transform_job_request"): "rule:batch_input_required",
    ("domain/batch_settings.py", "batch_output_s3_uri"): "rule:batch_output_required",
    ("domain/images.py", "parse_image_reference"): "rule:image_reference",
    ("domain/images.py", "derive_ecr_repository_name"): "rule:ecr_repository_name",
    ("domain/images.py", "validate_image_host"): "rule:image_source",
    ("domain/images.py", "check_source_registry"): "rule:image_source",
    ("domain/images.py", "plan_image_steps"): "rule:aws_image_region",
    (
        "domain/images.py",
        "select_platforms",
    ): "runtime: the platforms a source image offers are read at copy time",
    ("domain/apigateway.py", "derive_api_spec"): "rule:api_quota_needs_api_key",
    ("domain/tags.py", "parse_tag_document"): "runtime: the tag document is read from S3 by resolve_tags",
    ("domain/tags.py", "check_tags"): "runtime: the standard tags come from the tag document",
    ("domain/kfp.py", "build_run_parameters"): (
        "engine: the platform overrides are refused on the KFP engine only, and build_plan is not told the "
        "engine; run_kfp_pipeline refuses them before any KFP call"
    ),
    ("operators/ecr.py", "_connection_credentials.credentials"): "runtime: the source registry connection",
    ("operators/kfp.py", "KubeflowPipelinesRunOperator.execute"): "operator argument, not a conf value",
    ("operators/validate.py", "acting_user"): "validate itself: who the run acts for, before build_plan",
    ("steps/overrides.py", "check_request_overrides"): (
        "validate itself: both engines' validate check the request overrides against botocore's model "
        "(checked_plan) right after build_plan"
    ),
    ("steps/images.py", "copy_image"): "runtime: an immutable tag already in ECR",
    ("steps/labeling.py", "labeling_request"): "rule:labeling_workteam_required",
    ("steps/labeling.py", "_training_output"): "rule:labeling_needs_training",
    ("steps/promotion.py", "check_source_deployer"): (
        "runtime: validate refuses it first (promote_from.account_id); checked again against the platform "
        "as it is when copy_images acts"
    ),
    ("steps/promotion.py", "read_source_version"): "runtime: the source version is read from its account",
    ("steps/promotion.py", "promote_images"): "runtime: where the source version's image is, read from it",
    ("steps/model_registry.py", "set_approval"): "code argument (an approval's decision), not a conf value",
    ("steps/registry.py", "_get_api_root"): "runtime: what a registry answers",
    ("steps/registry.py", "_read_head"): "runtime: what a registry answers",
    ("pod/ensure_pvc.py", "parse_quantity"): "rule:pvc_size_quantity",
    ("triggers/clients.py", "Pace.__init__"): "code argument (a request rate), not a conf value",
    (
        "triggers/jobs.py",
        "SageMakerJobTrigger.__init__",
    ): "code argument (the operator's job kind), not a conf value",
    ("triggers/logs.py", "calls_per_second"): "code argument (a request rate), not a conf value",
}


def input_error_sites() -> set[tuple[str, str]]:
    """(file, function) of every ``raise ValueError/SageliftValidationError`` and ``raise_if_any()`` call
    in the product code that runs after validate."""
    root = ROOT / "plugins/sagelift"
    files = sorted({p for pattern in SCANNED for p in root.glob(pattern)})
    sites: set[tuple[str, str]] = set()
    for path in files:
        rel = path.relative_to(root).as_posix()
        if any(word in rel for word in NOT_RUN_STEPS):
            continue
        _collect(ast.parse(path.read_text()), rel, [], sites)
    return sites


def _collect(node: ast.AST, rel: str, scope: list[str], sites: set[tuple[str, str]]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            _collect(child, rel, [*scope, child.name], sites)
            continue
        name = None
        if isinstance(child, ast.Raise) and child.exc is not None:
            exc = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
            name = ast.unparse(exc)
        elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
            name = child.func.attr
        if name in INPUT_ERRORS and scope:
            sites.add((rel, ".".join(scope)))
        _collect(child, rel, scope, sites)


def test_every_input_error_raised_later_is_classified() -> None:
    sites = input_error_sites()
    assert ("domain/sagemaker.py", "resolve_training_image") in sites  # the scan does find them
    unclassified = sorted(sites - set(CLASSIFIED))
    assert not unclassified, (
        "these raise an input error after validate; add a RULES case where build_plan refuses first "
        f"(and map it in CLASSIFIED), or say in CLASSIFIED why validate cannot know: {unclassified}"
    )
    rule_ids = {r.id for r in RULES}
    assert {v[5:] for v in CLASSIFIED.values() if v.startswith("rule:")} <= rule_ids


# --- messages -----------------------------------------------------------------------------------------
def assert_readable(error: SageliftValidationError) -> None:
    """What a person reads in the validate task's log: a first line of at most 200 characters that names
    the first field and its rule, and a bounded message."""
    message = f"Invalid run configuration. {error}"
    first = message.splitlines()[0]
    assert len(first) <= 200, first
    field_name = error.problems[0][0]
    assert first.startswith(f"Invalid run configuration. {field_name[:60]}"), first
    assert len(first) > len(f"Invalid run configuration. {field_name}: ") or len(field_name) > 77, first
    assert len(message) <= 40 * 1024


# --- fuzz ---------------------------------------------------------------------------------------------
def deep(depth: int, leaf: Any = "x", as_list: bool = False) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


HOSTILE: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    7,
    2**63,
    -(2**70),
    10**5000,
    0.5,
    1e308,
    float("nan"),
    float("inf"),
    "",
    " ",
    "x" * 300,
    "x" * 70_000,
    "\x00",
    "\ud800",
    "é" * 12,
    "٣" * 12,
    "ml.m5.large",
    "s3://",
    "s3://bkt",
    "9" * 5000,
    "[" * 50_000,
    '{"a": ' * 3000 + "1" + "}" * 3000,
    '{"a": 1e999}',
    '{"a": NaN}',
    "[1,",
    "[" + "1" * 5000 + "]",
    '{"A": "' + "v" * 2000 + '"}',
    "null",
    "[]",
    "{}",
    '[{"ChannelName": 1}]',
    deep(5000),
    deep(5000, as_list=True),
    deep(15),
    {"x" * 10_000: 1},
    {"": ""},
    {"A": None},
    {"A": [1, 2]},
    list(range(30_000)),
    [{}] * 25,
    [None],
    [[]],
    {"ChannelName": "t"},
    {1: "int key"},
    {"A": {"B": {"C": 1}}},
    ("tuple",),
    {"set"},
    b"bytes",
    object(),
)
FIELDS = (*demo_conf(), "pvc_name", "pvc_size", "pvc_storage_class", "tags_s3_path", "model_artifact_s3_path")
PLATFORM_KEYS = (
    ("api", "quota_limit"),
    ("api", "stage_name"),
    ("api", "throttle_rate_limit"),
    ("kubernetes", "pvc_size"),
    ("kubernetes", "resources"),
    ("ecr", "platforms"),
    ("ecr", "repository_prefix"),
    ("sagemaker", "keep_endpoint_configs"),
    (None, "region"),
    (None, "accounts"),
    (None, "session_duration_seconds"),
    (None, "kubernetes"),
)


def hostile_value(rng: random.Random) -> Any:
    value = rng.choice(HOSTILE)
    if rng.random() < 0.3:  # hide it inside a valid channel
        inner = channel()
        path = rng.choice(
            [
                ("ChannelName",),
                ("ShuffleConfig",),
                ("DataSource", "S3DataSource", "S3Uri"),
                ("DataSource", "S3DataSource", "AttributeNames"),
                ("ContentType",),
            ]
        )
        node = inner
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return [inner]
    return value


def hostile_inputs(seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = random.Random(seed)
    conf = demo_conf()
    for name in rng.sample(FIELDS, rng.randint(1, 3)):
        conf[name] = hostile_value(rng)
    # the platform allows the one S3 URI among the hostile values as a tag document (tags_s3_path)
    platform: dict[str, Any] = {
        **PLATFORM,
        "accounts": {ACCOUNT: {}},
        "allowed_tag_document_prefixes": ["s3://bkt"],
    }
    if rng.random() < 0.3:
        section, key = rng.choice(PLATFORM_KEYS)
        value = rng.choice(HOSTILE)
        if section is None:
            platform[key] = value
        else:
            platform[section] = {**platform.get(section, {}), key: value}
    return conf, platform


@pytest.mark.parametrize("seed", range(300))
def test_hostile_input_gets_a_field_error_or_a_plan_whose_requests_aws_accepts(seed: int) -> None:
    conf, platform_raw = hostile_inputs(seed)
    try:
        plan = build_plan(conf, platform_raw, DAG_ID, RUN_ID)
    except SageliftValidationError as error:
        assert_readable(error)
        return
    params = RunParams.from_dict(plan["params"])
    platform = PlatformConfig.from_dict(plan["platform"])
    names = RunNames(**plan["names"])
    errors = [
        e for s, op, body in request_bodies(params, platform, names) for e in validate_request(s, op, body)
    ]
    assert errors == [], (conf, errors)


def test_the_fuzz_reaches_both_outcomes() -> None:
    outcomes = set()
    for seed in range(300):
        conf, platform = hostile_inputs(seed)
        try:
            build_plan(conf, platform, DAG_ID, RUN_ID)
            outcomes.add("plan")
        except SageliftValidationError:
            outcomes.add("refused")
    assert outcomes == {"plan", "refused"}


# Values at the edges of the rules, valid and not: most confs built from them are accepted, so the
# requests of accepted plans meet botocore's model at its limits, not only at the demo's values.
def _s3_channel(uri: str = "s3://bkt/train/", **s3: Any) -> dict[str, Any]:
    return channel(DataSource={"S3DataSource": {"S3Uri": uri, **s3}})


ECR = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
EDGES: dict[str, tuple[Any, ...]] = {
    "model_name": ("m" * 54, "m" * 55, "a-b", "A1", "a--b", "-a"),
    "training_hyperparameters": (
        {"k" * 256: "v" * 2500},
        {f"k{i}": i for i in range(100)},
        {f"k{i}": i for i in range(101)},
        {"x": {"nested": [1, 2]}, "b": True, "f": 0.1},
        {"": "v"},
        {"x": "v" * 2501},
    ),
    "environment": (
        {"K" * 1024: "v" * 1024},
        {f"K{i}": i for i in range(100)},
        {"_A": "multi\nline", "B": 1.5},
        {"A": "v" * 1025},
    ),
    "training_channels": (
        [channel(ChannelName="c" * 64)],
        [channel(ChannelName=f"c{i}") for i in range(20)],
        [
            channel(
                ContentType="x" * 256,
                CompressionType="Gzip",
                RecordWrapperType="RecordIO",
                InputMode="Pipe",
                ShuffleConfig={"Seed": 2**63 - 1},
            )
        ],
        [channel(ShuffleConfig={"Seed": 2**63})],
        [_s3_channel("s3://bkt/" + "k" * 1015)],
        [_s3_channel("s3://bkt/" + "k" * 1016)],
        [
            _s3_channel(
                S3DataType="AugmentedManifestFile", AttributeNames=["a"] * 16, InstanceGroupNames=["g"] * 5
            )
        ],
        [_s3_channel(AttributeNames=["a"] * 17)],
        [_s3_channel(ModelAccessConfig={"AcceptEula": True}, HubAccessConfig={"HubContentArn": "arn"})],
        [channel(ContentType="", InputMode=None)],
    ),
    "training_instance_count": (1, 100, "100", 101, 2.0, " 3 "),
    "training_s3_output_path": ("s3://bkt/" + "o" * 1015, "s3://bkt/" + "o" * 1016, "s3://b.k-t/x"),
    "training_docker_image": tuple(f"{ECR}/" + "a" * n + ":1" for n in (100, 176, 177, 200))
    + tuple("public.ecr.aws/" + "b" * n + ":1" for n in (100, 121, 122))
    + (f"{ECR}/t@{DIGEST}", f"{ECR}/t:1@{DIGEST}"),
    "model_docker_image": (
        f"{ECR}/" + "s" * 176 + ":1",
        "public.ecr.aws/team/serve:2",
        "docker.io/library/nginx",
    ),
    "pvc_size": ("10Gi", "10240Mi", "10241Mi", "1e3"),
    "pvc_name": ("p" * 253, "p" * 254, "a.b"),
}


def edge_inputs(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    conf = demo_conf()
    for name in rng.sample(sorted(EDGES), rng.randint(1, 3)):
        conf[name] = rng.choice(EDGES[name])
    if rng.random() < 0.2:
        conf.update(
            training_docker_image="",
            model_docker_image="",
            training_algorithm_name=rng.choice(("xgboost", "linear-learner", "kmeans", "pca", "blazingtext")),
        )
    if rng.random() < 0.15:
        conf.update(
            training_docker_image="",
            training_s3_output_path="",
            training_channels="",
            model_artifact_s3_path=rng.choice(("s3://bkt/m.tar.gz", "s3://bkt/" + "m" * 1015)),
        )
    return conf


@pytest.mark.parametrize("seed", range(200))
def test_confs_at_the_edges_are_refused_readably_or_give_requests_aws_accepts(seed: int) -> None:
    conf = edge_inputs(seed)
    try:
        plan = build_plan(conf, PLATFORM, DAG_ID, RUN_ID)
    except SageliftValidationError as error:
        assert_readable(error)
        return
    params = RunParams.from_dict(plan["params"])
    platform = PlatformConfig.from_dict(plan["platform"])
    errors = [
        e
        for s, op, body in request_bodies(params, platform, RunNames(**plan["names"]))
        for e in validate_request(s, op, body)
    ]
    assert errors == [], errors


def test_the_edge_confs_are_mostly_accepted() -> None:
    accepted = 0
    for seed in range(200):
        try:
            build_plan(edge_inputs(seed), PLATFORM, DAG_ID, RUN_ID)
            accepted += 1
        except SageliftValidationError:
            pass
    assert 60 <= accepted <= 190, accepted
