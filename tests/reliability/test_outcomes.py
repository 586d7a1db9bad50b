"""Honest outcomes: what SageMaker really ended with is what the task reports.

Each test scripts the emulated SageMaker (tests/support/sagemaker_lifecycle.py), runs sagemaker_deploy
once, and checks the task's state and the failure message the user reads in the task log.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from sagelift.domain.plan import derive_run_key
from sagelift.operators.sagemaker import SageMakerTrainModelOperator
from sagelift.triggers.sagemaker import SageMakerTrainingCompleteTrigger
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, demo_conf, role_arn

pytestmark = pytest.mark.e2e

CONN_ID = f"sagelift_aws_{SCIENTIST_ACCOUNT}"


def _use_platform(monkeypatch, scenario, **sagemaker) -> None:
    scenario.platform_overrides["sagemaker"] = {"check_interval_seconds": 1, **sagemaker}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(scenario.platform()))


def _name(result) -> str:
    return f"churn-predictor-{derive_run_key('sagemaker_deploy', result.dag_run.run_id)}"


def test_failed_training_fails_the_task_with_the_failure_reason(run_deploy, lifecycle, local_aws, capfd):
    lifecycle.training(
        seconds=120, outcome="Failed", failure_reason="AlgorithmError: out of memory (exit 137)"
    )

    result = run_deploy(demo_conf())

    assert result.states["train_model"] == "failed"
    assert result.states["create_model"] == "upstream_failed"
    assert result.state == "failed", result.states
    assert f"Training job {_name(result)} ended Failed: AlgorithmError: out of memory (exit 137)" in (
        capfd.readouterr().out
    )
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    assert [j["TrainingJobName"] for j in sm.list_training_jobs()["TrainingJobSummaries"]] == [_name(result)]


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "in-worker"])
def test_stopped_training_fails_the_task(run_deploy, lifecycle, scenario, monkeypatch, capfd, deferrable):
    # The provider's in-worker wait counts Stopped as done; both waits must fail.
    _use_platform(monkeypatch, scenario, deferrable=deferrable)
    lifecycle.training(seconds=90, outcome="Stopped")

    result = run_deploy(demo_conf())

    assert result.states["train_model"] == "failed"
    assert result.state == "failed"
    assert f"Training job {_name(result)} ended Stopped" in capfd.readouterr().out


def test_failed_endpoint_fails_the_task_with_the_failure_reason(run_deploy, lifecycle, capfd):
    lifecycle.endpoint_create(
        seconds=300,
        outcome="Failed",
        failure_reason="The primary container did not pass the ping health check.",
    )

    result = run_deploy(demo_conf())

    assert result.states["train_model"] == "success"
    assert result.states["deploy_endpoint"] == "failed"
    assert result.states["expose_api"] == "upstream_failed"
    assert (
        "Endpoint churn-predictor failed: The primary container did not pass the ping health check."
        in capfd.readouterr().out
    )


def _existing_endpoint(local_aws) -> str:
    """The model's endpoint as an earlier run left it: InService on that run's config."""
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    old = "churn-predictor-0badc0de"
    tags = [{"Key": "sagelift:model-name", "Value": "churn-predictor"}]
    sm.create_model(
        ModelName=old,
        ExecutionRoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-model-execution"),
        PrimaryContainer={
            "Image": f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving:1.3",
            "ModelDataUrl": f"s3://{DATA_BUCKET}/models/churn/model.tar.gz",
        },
        Tags=tags,
    )
    sm.create_endpoint_config(
        EndpointConfigName=old,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": old,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        Tags=tags,
    )
    sm.create_endpoint(EndpointName="churn-predictor", EndpointConfigName=old, Tags=tags)
    return old


def test_rolled_back_update_fails_the_task(run_deploy, lifecycle, local_aws, capfd):
    old = _existing_endpoint(local_aws)
    lifecycle.endpoint_update(
        seconds=300, outcome="RolledBack", failure_reason="Instance ping health check failed; rolled back."
    )

    result = run_deploy(demo_conf())

    assert result.states["deploy_endpoint"] == "failed"
    assert result.states["expose_api"] == "upstream_failed"
    out = capfd.readouterr().out
    assert f"is serving config {old}, not this run's {_name(result)}: SageMaker rolled the update back" in out
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    endpoint = sm.describe_endpoint(EndpointName="churn-predictor")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", old)
    # The config kept for rollback is still there: nothing is cleaned up after a failed deploy.
    assert sm.describe_endpoint_config(EndpointConfigName=old)["EndpointConfigName"] == old


# --- cancel ----------------------------------------------------------------------------------------
def _training_job(local_aws, name: str) -> None:
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-train:1.4",
            "TrainingInputMode": "File",
        },
        RoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-training-execution"),
        OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/churn/output/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 86400},
    )


def _status(local_aws, name: str) -> str:
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    return sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"]


def test_killing_the_training_task_in_the_worker_stops_its_job(scenario, lifecycle, local_aws):
    lifecycle.training(seconds=4 * 3600)
    _training_job(local_aws, "churn-predictor-1234abcd")
    operator = SageMakerTrainModelOperator(task_id="train_model", aws_conn_id=CONN_ID, region_name=REGION)
    operator.job_name = "churn-predictor-1234abcd"  # what execute() records before it waits

    operator.on_kill()  # what the task runner calls when the task is killed or marked failed

    assert _status(local_aws, "churn-predictor-1234abcd") in ("Stopping", "Stopped")


def test_stopping_the_deferred_training_task_stops_its_job(scenario, lifecycle, local_aws):
    lifecycle.training(seconds=4 * 3600, stop_seconds=60)
    _training_job(local_aws, "churn-predictor-5678abcd")
    trigger = SageMakerTrainingCompleteTrigger(
        job_name="churn-predictor-5678abcd", aws_conn_id=CONN_ID, region_name=REGION
    )
    # The trigger carries no credential: the triggerer builds the role-chained session itself.
    assert "password" not in json.dumps(trigger.serialize()[1])

    asyncio.run(trigger.on_kill())  # what the triggerer runs when the deferred task is marked failed

    assert _status(local_aws, "churn-predictor-5678abcd") in ("Stopping", "Stopped")
