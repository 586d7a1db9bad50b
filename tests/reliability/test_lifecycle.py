"""The SageMaker lifecycle emulation and fault injection themselves (tests/support/sagemaker_lifecycle.py)."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import DATA_BUCKET, role_arn


@pytest.fixture
def product_client(local_aws):
    """A client as the product makes them (no admin account header), without retries."""
    key, secret = local_aws.create_access_key(SCIENTIST_ACCOUNT, user="lifecycle-test")

    def make(service: str):
        return boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION
        ).client(
            service,
            endpoint_url=local_aws.url,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )

    return make


def _create_job(sm, name: str) -> None:
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-training-execution"),
        OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/out/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )


def test_training_runs_for_its_emulated_time_then_fails_with_its_reason(local_aws):
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    life = SageMakerLifecycle(time_scale=100).training(seconds=100, outcome="Failed", failure_reason="OOM")
    with life.installed(local_aws):
        _create_job(sm, "job-a")
        first = sm.describe_training_job(TrainingJobName="job-a")
        time.sleep(1.1)
        last = sm.describe_training_job(TrainingJobName="job-a")

    assert (first["TrainingJobStatus"], first["SecondaryStatus"]) == ("InProgress", "Starting")
    assert (last["TrainingJobStatus"], last["FailureReason"]) == ("Failed", "OOM")
    assert [t["Status"] for t in last["SecondaryStatusTransitions"]][:1] == ["Starting"]


def test_stop_training_job_goes_through_stopping(local_aws):
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    with SageMakerLifecycle(time_scale=100).training(seconds=10**6, stop_seconds=100).installed(local_aws):
        _create_job(sm, "job-b")
        sm.stop_training_job(TrainingJobName="job-b")
        stopping = sm.describe_training_job(TrainingJobName="job-b")["TrainingJobStatus"]
        time.sleep(1.1)
        stopped = sm.describe_training_job(TrainingJobName="job-b")["TrainingJobStatus"]
        with pytest.raises(ClientError, match="status Stopped"):
            sm.stop_training_job(TrainingJobName="job-b")

    assert (stopping, stopped) == ("Stopping", "Stopped")


@pytest.mark.parametrize(
    ("service", "operation", "call"),
    [
        ("sagemaker", "ListModels", lambda c: c.list_models()),
        ("sts", "GetCallerIdentity", lambda c: c.get_caller_identity()),
        ("s3", "ListObjectsV2", lambda c: c.list_objects_v2(Bucket=DATA_BUCKET)),
    ],
    ids=["json", "query", "rest-xml"],
)
@pytest.mark.parametrize(
    ("fault", "code"), [("throttle", "ThrottlingException"), ("internal", "InternalFailure")]
)
def test_faults_hit_the_named_operation_once(
    local_aws, product_client, service, operation, call, fault, code
):
    local_aws.client("s3", SCIENTIST_ACCOUNT).create_bucket(Bucket=DATA_BUCKET)
    client = product_client(service)
    with SageMakerLifecycle().fault(f"{service}:{operation}", fault, count=1).installed(local_aws) as life:
        with pytest.raises(ClientError) as raised:
            call(client)
        call(client)  # the count is spent: the next call is answered

    expected = "SlowDown" if (service, fault) == ("s3", "throttle") else code  # S3's own throttle
    assert raised.value.response["Error"]["Code"] == expected
    assert life.injected == [(f"{service}:{operation}", fault)]


def test_a_reset_connection_and_added_latency(local_aws, product_client):
    sm = product_client("sagemaker")
    life = (
        SageMakerLifecycle()
        .fault("sagemaker:ListModels", "reset")
        .fault("sagemaker:ListEndpoints", "latency", latency_seconds=0.5)
    )
    with life.installed(local_aws):
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            sm.list_models()
        started = time.monotonic()
        sm.list_endpoints()
        assert time.monotonic() - started >= 0.5
