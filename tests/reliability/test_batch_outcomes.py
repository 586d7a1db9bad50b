"""Batch scoring's outcomes on Airflow (issue 17 item 10): a Failed transform job fails batch_transform
with SageMaker's reason while the model stays created and the endpoint steps skip; cancelling the task,
in the worker or deferred, stops the job."""

from __future__ import annotations

import asyncio
import json

import pytest

from sagelift.domain.plan import derive_run_key
from sagelift.operators.batch import SageMakerBatchTransformOperator
from sagelift.triggers.sagemaker import SageMakerTransformCompleteTrigger
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, demo_conf

pytestmark = pytest.mark.e2e

CONN_ID = f"sagelift_aws_{SCIENTIST_ACCOUNT}"
INPUT = f"s3://{DATA_BUCKET}/trials/2026/"


def _inputs(local_aws) -> None:
    s3 = local_aws.client("s3", SCIENTIST_ACCOUNT)
    s3.put_object(Bucket=DATA_BUCKET, Key="trials/2026/plot-a.csv", Body=b"1,2\n3,4\n")


def _transform_job(local_aws, name: str) -> None:
    local_aws.client("sagemaker", SCIENTIST_ACCOUNT).create_transform_job(
        TransformJobName=name,
        ModelName=name,
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": INPUT}}},
        TransformOutput={"S3OutputPath": f"s3://{DATA_BUCKET}/scores/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )


def _status(local_aws, name: str) -> str:
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    return sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"]


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "in-worker"])
def test_a_failed_transform_fails_the_task_and_leaves_the_model(
    run_deploy, lifecycle, local_aws, scenario, monkeypatch, capfd, deferrable
):
    scenario.platform_overrides["sagemaker"] = {"check_interval_seconds": 1, "deferrable": deferrable}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(scenario.platform()))
    _inputs(local_aws)
    lifecycle.transform(
        seconds=60, outcome="Failed", failure_reason="ClientError: 400 from the model container"
    )
    result = run_deploy(demo_conf(batch={"input_s3_uri": INPUT, "split_type": "Line"}))
    name = f"churn-predictor-{derive_run_key('sagemaker_deploy', result.dag_run.run_id)}"
    assert result.states["create_model"] == "success"
    assert result.states["deploy_endpoint"] == "skipped" and result.states["expose_api"] == "skipped"
    assert result.states["batch_transform"] == "failed" and result.state == "failed"
    assert (
        f"Transform job {name} ended Failed: ClientError: 400 from the model container"
        in capfd.readouterr().out
    )
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    assert sm.describe_model(ModelName=name)["ModelName"] == name
    assert sm.list_endpoints()["Endpoints"] == []
    sent = [c for c in result.calls if c.operation == "CreateTransformJob"]
    assert len(sent) == 1 and sent[0].params["ModelName"] == name


def test_killing_the_batch_task_in_the_worker_stops_its_job(scenario, lifecycle, local_aws):
    _inputs(local_aws)
    lifecycle.transform(seconds=4 * 3600)
    _transform_job(local_aws, "churn-predictor-1234abcd")
    operator = SageMakerBatchTransformOperator(
        task_id="batch_transform", aws_conn_id=CONN_ID, region_name=REGION
    )
    operator.job_name = "churn-predictor-1234abcd"  # what execute() records before it waits

    operator.on_kill()  # what the task runner calls when the task is killed or marked failed

    assert _status(local_aws, "churn-predictor-1234abcd") in ("Stopping", "Stopped")


def test_marking_the_deferred_batch_task_failed_stops_its_job(scenario, lifecycle, local_aws):
    _inputs(local_aws)
    lifecycle.transform(seconds=4 * 3600, stop_seconds=60)
    _transform_job(local_aws, "churn-predictor-5678abcd")
    trigger = SageMakerTransformCompleteTrigger(
        job_name="churn-predictor-5678abcd", aws_conn_id=CONN_ID, region_name=REGION
    )
    assert "password" not in json.dumps(trigger.serialize()[1])

    asyncio.run(trigger.on_kill())  # what the triggerer runs when the deferred task is marked failed

    assert _status(local_aws, "churn-predictor-5678abcd") in ("Stopping", "Stopped")
