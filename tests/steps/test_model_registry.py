"""The model registry against the local AWS (issue 17 items 6 and 7): the run's version in the group named
after the model, what it carries, its status from the quality gate and the account, one version per run
whatever is retried or lost, and every request body valid for botocore."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.sagemaker.models import sagemaker_backends

from sagelift.domain.model_package import RUN_KEY_PROPERTY
from sagelift.domain.ownership import OWNER_TAG_KEY
from sagelift.domain.plan import Plan, build_plan
from sagelift.steps.errors import StepFailed
from sagelift.steps.model import model_request, replace_model
from sagelift.steps.model_registry import (
    gate_outcome,
    register_run,
    register_version,
    run_metrics,
    set_approval,
)
from sagelift.steps.teardown import _Repository, delete_sagemaker_resources, images_in_use
from tests.support.botocore_validation import recording_aws_calls
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import demo_conf

METRICS = [{"name": "validation:auc", "regex": "auc=([0-9.]+)"}, {"name": "train:loss", "regex": "loss=(.+)"}]
TAGS = [{"Key": "team", "Value": "churn"}]
PINNED = f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving@sha256:" + "a" * 64
IMAGES = {"model_docker_image": {"image": PINNED}}
ARTIFACT = "s3://sagelift-data/churn/output/model.tar.gz"


def _plan(run_id: str, gate: list[str] | None = None, *, approval: bool = False, **conf: Any) -> Plan:
    account: dict[str, Any] = {"deployers": {"users": ["admin"]}}
    if approval:
        account["requires_approval"] = True
    platform = {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: account}}
    raw = demo_conf(training={"metric_definitions": METRICS}, quality_gate=gate or [], **conf)
    return Plan.from_xcom(build_plan(raw, platform, "sagemaker_deploy", run_id))


@pytest.fixture
def sm(local_aws: LocalAws) -> Any:
    """SageMaker as the product calls it: the scientist's keys (so faults apply), standard retries."""
    key, secret = local_aws.create_access_key(SCIENTIST_ACCOUNT, user="registry")
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)
    retries = Config(retries={"mode": "standard", "max_attempts": 3})
    return session.client("sagemaker", endpoint_url=local_aws.url, config=retries)


def _register(sm: Any, plan: Plan, metrics: dict[str, float]) -> dict[str, Any]:
    return register_version(sm, plan, TAGS, IMAGES, ARTIFACT, metrics)


def _versions(aws: LocalAws, group: str) -> list[dict[str, Any]]:
    sm = aws.client("sagemaker")
    listed = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    return [sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in listed]


def test_a_run_registers_one_approved_version_carrying_image_artifact_metrics_and_tags(
    local_aws: LocalAws, sm: Any
) -> None:
    plan = _plan("reg-1", ["validation:auc >= 0.8"])
    with SageMakerLifecycle().installed(local_aws), recording_aws_calls() as calls:
        registered = _register(sm, plan, {"validation:auc": 0.91, "train:loss": 0.2})
    assert [c.errors for c in calls if c.errors] == []
    admin = local_aws.client("sagemaker")
    group = admin.describe_model_package_group(ModelPackageGroupName="churn-predictor")
    assert {"Key": "team", "Value": "churn"} in admin.list_tags(ResourceArn=group["ModelPackageGroupArn"])[
        "Tags"
    ]
    [version] = _versions(local_aws, "churn-predictor")
    assert version["ModelApprovalStatus"] == "Approved"
    assert version["InferenceSpecification"]["Containers"] == [
        {"Image": PINNED, "ModelDataUrl": ARTIFACT, "Environment": {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"}}
    ]
    props = version["CustomerMetadataProperties"]
    assert props[RUN_KEY_PROPERTY] == plan.names.run_key
    assert props["metric:validation:auc"] == "0.91" and props["sagelift:quality_gate"] == "passed"
    # moto's ListTags cannot read a versioned package's ARN: its stored tags, in the in-process server
    stored = sagemaker_backends[SCIENTIST_ACCOUNT][REGION].model_packages[version["ModelPackageArn"]]
    assert {"Key": "team", "Value": "churn"} in stored.tags
    assert registered == {
        "model_package_group": "churn-predictor",
        "model_package_arn": version["ModelPackageArn"],
        "version": 1,
        "status": "Approved",
        "metrics": {"validation:auc": 0.91, "train:loss": 0.2},
        "model_data_url": ARTIFACT,
        "image": PINNED,
        "gate": {
            "passed": True,
            "checks": [
                {
                    "rule": "validation:auc >= 0.8",
                    "metric": "validation:auc",
                    "threshold": 0.8,
                    "value": 0.91,
                    "passed": True,
                }
            ],
            "message": "",
        },
        "adopted": False,
    }
    assert gate_outcome(registered) is registered


def test_a_retry_and_a_lost_answer_adopt_the_runs_version_and_other_runs_add_versions(
    local_aws: LocalAws, sm: Any
) -> None:
    plan = _plan("reg-2")
    life = SageMakerLifecycle().fault("sagemaker:CreateModelPackage", "lost", count=1)
    with life.installed(local_aws):
        first = _register(sm, plan, {})
        again = _register(sm, plan, {})
        other = _register(sm, _plan("reg-3"), {})
    assert [f for f in life.injected if "CreateModelPackage" in str(f)]  # the answer was lost once
    assert again["model_package_arn"] == first["model_package_arn"] and again["adopted"] is True
    assert (first["version"], other["version"]) == (1, 2)
    assert len(_versions(local_aws, "churn-predictor")) == 2


def test_a_metric_below_its_threshold_rejects_the_version_and_stops_the_run(
    local_aws: LocalAws, sm: Any
) -> None:
    plan = _plan("reg-4", ["validation:auc >= 0.8", "train:loss < 0.5"])
    with SageMakerLifecycle().installed(local_aws):
        registered = _register(sm, plan, {"validation:auc": 0.71, "train:loss": 0.2})
    [version] = _versions(local_aws, "churn-predictor")
    assert version["ModelApprovalStatus"] == registered["status"] == "Rejected"
    assert version["CustomerMetadataProperties"]["sagelift:quality_gate"] == "failed"
    with pytest.raises(StepFailed) as failed:
        gate_outcome(registered)
    first = str(failed.value).splitlines()[0]
    assert len(first) < 200
    assert "validation:auc" in first and "0.71" in first and "0.8" in first and "Rejected" in first


def test_a_metric_the_job_did_not_report_fails_the_gate_naming_it(local_aws: LocalAws, sm: Any) -> None:
    plan = _plan("reg-5", ["validation:auc >= 0.8"])
    with SageMakerLifecycle().installed(local_aws):
        registered = _register(sm, plan, {"train:loss": 0.2})
    assert registered["status"] == "Rejected"
    with pytest.raises(StepFailed, match=r"no final value for validation:auc"):
        gate_outcome(registered)


def test_an_account_that_requires_approval_gets_a_pending_version_and_a_decision_is_recorded(
    local_aws: LocalAws, sm: Any
) -> None:
    plan = _plan("reg-6", ["validation:auc >= 0.8"], approval=True)
    with SageMakerLifecycle().installed(local_aws), recording_aws_calls() as calls:
        registered = _register(sm, plan, {"validation:auc": 0.9})
        assert registered["status"] == "PendingManualApproval"
        decided = set_approval(sm, registered["model_package_arn"], "Approved", "approved by admin")
        again = _register(sm, plan, {"validation:auc": 0.9})  # a retry after the decision
    assert [c.errors for c in calls if c.errors] == []
    assert (
        decided["ModelApprovalStatus"] == "Approved" and decided["ApprovalDescription"] == "approved by admin"
    )
    assert again["adopted"] is True and again["status"] == "Approved"
    with pytest.raises(ValueError, match="status"):
        set_approval(sm, registered["model_package_arn"], "PendingManualApproval", "")


def test_a_train_only_run_registers_nothing(local_aws: LocalAws, sm: Any) -> None:
    plan = _plan("reg-7", model_docker_image=None)
    with SageMakerLifecycle().installed(local_aws):
        registered = _register(sm, plan, {})
    assert registered["skipped"] is True and "train-only" in registered["reason"]
    assert local_aws.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_the_metrics_come_from_the_training_jobs_final_values() -> None:
    job = {"Training": {"FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.9}, {"X": 1}]}}
    assert run_metrics(job) == {"validation:auc": 0.9}
    assert run_metrics(None) == {}


def test_teardown_leaves_the_group_and_its_versions_and_a_models_package_image_counts_as_used(
    local_aws: LocalAws, sm: Any
) -> None:
    plan = _plan("reg-8")
    with SageMakerLifecycle().installed(local_aws):
        registered = _register(sm, plan, {})
        tags = [{"Key": OWNER_TAG_KEY, "Value": plan.model_name}]
        request = model_request(plan, tags, IMAGES, ARTIFACT, registered["model_package_arn"])
        model = replace_model(sm, request)
        assert model["PrimaryContainer"]["ModelPackageName"] == registered["model_package_arn"]
        host = f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
        ecr_repository = _Repository("churn-serving", digest_of={})
        users = images_in_use(sm, host, {"churn-serving": ecr_repository})
        assert users == {("churn-serving", "sha256:" + "a" * 64): {plan.names.model}}
        deleted = delete_sagemaker_resources(sm, plan.model_name, plan.platform.sagemaker)
    assert deleted["models"] == [plan.names.model]
    admin = local_aws.client("sagemaker")
    assert admin.describe_model_package_group(ModelPackageGroupName="churn-predictor")
    assert [v["ModelPackageArn"] for v in _versions(local_aws, "churn-predictor")] == [
        registered["model_package_arn"]
    ]


def test_a_promoted_run_registers_the_source_versions_image_and_artifact_naming_it_without_a_gate(
    local_aws: LocalAws, sm: Any
) -> None:
    plan = _plan("reg-9", ["validation:auc >= 0.8"])  # a gate in the conf: the source passed its own
    source = {
        "model_package_arn": "arn:aws:sagemaker:us-east-1:444444444444:model-package/churn-predictor/3",
        "model_data_url": "s3://staging-bucket/churn/output/job/output/model.tar.gz",
    }
    images = {"model_docker_image": {"image": PINNED, "promote_from": source}}
    with SageMakerLifecycle().installed(local_aws):
        registered = register_run(sm, plan, TAGS, images)
    [version] = _versions(local_aws, "churn-predictor")
    assert version["ModelApprovalStatus"] == registered["status"] == "Approved"
    assert version["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == source["model_data_url"]
    assert version["InferenceSpecification"]["Containers"][0]["Image"] == PINNED
    props = version["CustomerMetadataProperties"]
    assert props["sagelift:promoted_from"] == registered["promoted_from"] == source["model_package_arn"]
    assert props["sagelift:quality_gate"] == "none" and registered["gate"]["checks"] == []
