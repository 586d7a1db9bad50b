"""Batch scoring against the local AWS (issue 17 item 10), through the core's in-process transform
(``steps.batch.transform_here``, what the KFP glue runs) and its pieces (start or adopt, stop, outcome):
the job SageMaker holds, the result objects under the output prefix, a failure's and a stop's message."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from sagelift.domain.plan import Plan, build_plan
from sagelift.steps import batch
from sagelift.steps.errors import StepFailed
from tests.support.local_aws import SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import DATA_BUCKET, demo_conf

PLATFORM = {
    "region": "us-east-1",
    "sagemaker": {"check_interval_seconds": 1},
    "accounts": {SCIENTIST_ACCOUNT: {"deployers": {"users": ["admin"]}}},
}
INPUT = f"s3://{DATA_BUCKET}/trials/2026/"


def _plan(run_id: str, **settings: Any) -> Plan:
    conf = demo_conf(batch={"input_s3_uri": INPUT, "split_type": "Line", **settings})
    return Plan.from_xcom(build_plan(conf, PLATFORM, "sagemaker_deploy", run_id))


def _inputs(aws: LocalAws) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="trials/2026/plot-a.csv", Body=b"1,2\n3,4\n5,6\n")
    s3.put_object(Bucket=DATA_BUCKET, Key="trials/2026/north/plot-b.csv", Body=b"7,8\n")


def _results(aws: LocalAws, output: str) -> dict[str, bytes]:
    s3 = aws.client("s3")
    bucket, _, prefix = output.removeprefix("s3://").partition("/")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {
        o["Key"][len(prefix) :]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed
    }


def test_a_run_scores_every_input_object_and_reports_where_the_results_are(local_aws: LocalAws) -> None:
    plan = _plan("batch-ok", instance_count=2)
    _inputs(local_aws)
    sm = local_aws.client("sagemaker")
    said: list[str] = []
    with SageMakerLifecycle(time_scale=100).transform(seconds=200).installed(local_aws):
        facts = batch.transform_here(sm, plan, [{"Key": "team", "Value": "agronomy"}], say=said.append)
        job = sm.describe_transform_job(TransformJobName=plan.names.model)
    output = f"s3://{DATA_BUCKET}/churn/output/{plan.names.model}/batch/"
    assert job["TransformJobStatus"] == "Completed" and job["ModelName"] == plan.names.model
    assert (
        job["TransformOutput"]["S3OutputPath"] == output and job["TransformResources"]["InstanceCount"] == 2
    )
    assert facts["output_s3_uri"] == output and facts["status"] == "Completed"
    assert _results(local_aws, output) == {
        "plot-a.csv.out": b"3 records scored\n",
        "north/plot-b.csv.out": b"1 records scored\n",
    }
    assert len(said) == 1 and output in said[0] and plan.names.model in said[0]
    tags = sm.list_tags(ResourceArn=job["TransformJobArn"])["Tags"]
    assert {"Key": "team", "Value": "agronomy"} in tags


def test_a_retry_follows_the_runs_job_instead_of_starting_another(local_aws: LocalAws) -> None:
    plan = _plan("batch-adopt")
    _inputs(local_aws)
    sm = local_aws.client("sagemaker")
    with SageMakerLifecycle(time_scale=1).transform(seconds=60).installed(local_aws):
        request = batch.transform_request(plan, [])
        first = batch.start_transform(sm, request)
        again = batch.start_transform(sm, request)
        assert (
            first["TransformJobArn"] == again["TransformJobArn"]
            and again["TransformJobStatus"] == "InProgress"
        )
        assert len(sm.list_transform_jobs()["TransformJobSummaries"]) == 1
        assert batch.stop_transform(sm, plan.names.model)


def test_a_failed_job_fails_the_step_naming_the_job_and_the_reason(local_aws: LocalAws) -> None:
    plan = _plan("batch-failed")
    _inputs(local_aws)
    sm = local_aws.client("sagemaker")
    life = SageMakerLifecycle(time_scale=100).transform(
        seconds=100, outcome="Failed", failure_reason="ClientError: See job logs for more information"
    )
    with life.installed(local_aws), pytest.raises(StepFailed) as err:
        batch.transform_here(sm, plan, [])
    assert f"Transform job {plan.names.model} ended Failed: ClientError: See job logs" in str(err.value)


def test_an_empty_input_prefix_fails_as_sagemaker_does(local_aws: LocalAws) -> None:
    plan = _plan("batch-empty")
    local_aws.client("s3").create_bucket(Bucket=DATA_BUCKET)
    with (
        SageMakerLifecycle(time_scale=100).installed(local_aws),
        pytest.raises(StepFailed, match="No S3 objects"),
    ):
        batch.transform_here(local_aws.client("sagemaker"), plan, [])


def test_sigterm_stops_the_job(local_aws: LocalAws) -> None:
    """KFP terminating the run: the pod gets SIGTERM, the job is stopped and ends Stopped."""
    plan = _plan("batch-stop")
    _inputs(local_aws)
    sm = local_aws.client("sagemaker")
    life = SageMakerLifecycle(time_scale=10).transform(seconds=600, stop_seconds=10)
    with life.installed(local_aws):
        threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(SystemExit):
            batch.transform_here(sm, plan, [])
        deadline = time.monotonic() + 10
        while sm.describe_transform_job(TransformJobName=plan.names.model)["TransformJobStatus"] != "Stopped":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with pytest.raises(StepFailed, match="ended Stopped: it was stopped"):
            batch.transform_outcome(sm.describe_transform_job(TransformJobName=plan.names.model))
    assert _results(local_aws, f"s3://{DATA_BUCKET}/churn/output/{plan.names.model}/batch/") == {}


def test_a_serving_run_scores_nothing(local_aws: LocalAws) -> None:
    plan = Plan.from_xcom(build_plan(demo_conf(), PLATFORM, "sagemaker_deploy", "serving"))
    assert batch.transform_here(local_aws.client("sagemaker"), plan, []) == {}


def test_onboarding_grants_exactly_the_transform_calls_and_the_batch_prefixes(local_aws: LocalAws) -> None:
    """The execution role may make the calls batch_transform makes (each body valid for botocore), on the
    account's transform jobs; the model role, which the job runs as, reads and writes the batch prefixes."""
    from sagelift.domain.onboarding import render_policies
    from sagelift.domain.platform import PlatformConfig
    from tests.support.botocore_validation import recording_aws_calls

    scoring = f"s3://{DATA_BUCKET}/scoring/"
    account = {"deployers": {"users": ["admin"]}, "batch_prefixes": [scoring]}
    platform = {**PLATFORM, "accounts": {SCIENTIST_ACCOUNT: account}}
    policies = render_policies(
        PlatformConfig.from_dict(
            {**platform, "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master"}
        ),
        SCIENTIST_ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:root",
        data_uris=[f"s3://{DATA_BUCKET}/churn/"],
        output_uris=[f"s3://{DATA_BUCKET}/churn/output/"],
    )

    def granted(policy: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for statement in policies[policy]["Statement"]:
            actions, resources = statement["Action"], statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                found.setdefault(action, []).extend([resources] if isinstance(resources, str) else resources)
        return found

    execution, model_role = granted("execution-permissions"), granted("training-and-model-permissions")
    plan = Plan.from_xcom(
        build_plan(
            demo_conf(batch={"input_s3_uri": scoring + "in/", "output_s3_uri": scoring + "out/"}),
            platform,
            "sagemaker_deploy",
            "iam",
        )
    )
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="scoring/in/a.csv", Body=b"1\n")
    sm = local_aws.client("sagemaker")
    with (
        SageMakerLifecycle(time_scale=1).transform(seconds=600).installed(local_aws),
        recording_aws_calls() as calls,
    ):
        batch.start_transform(sm, batch.transform_request(plan, []))
        batch.stop_transform(sm, plan.names.model)
    assert all(c.errors == [] for c in calls), [c.errors for c in calls if c.errors]
    made = {f"sagemaker:{c.operation}" for c in calls if "Transform" in c.operation}
    assert made == {a for a in execution if "TransformJob" in a}
    jobs = f"arn:aws:sagemaker:us-east-1:{SCIENTIST_ACCOUNT}:transform-job/*"
    assert all(jobs in execution[action] for action in made)
    assert jobs in execution["sagemaker:AddTags"]  # the job's tags are set on create
    assert f"arn:aws:s3:::{DATA_BUCKET}/scoring/*" in model_role["s3:GetObject"]
    assert f"arn:aws:s3:::{DATA_BUCKET}/scoring/*" in model_role["s3:PutObject"]


def test_a_plan_lists_the_transform_job_and_no_endpoint_or_api(local_aws: LocalAws) -> None:
    from sagelift.steps import plan_changes as planning

    planners = (
        planning.plan_model,
        planning.plan_batch_transform,
        planning.plan_endpoint_config,
        planning.plan_endpoint,
        planning.plan_alarms,
        planning.plan_autoscaling,
        planning.plan_pruning,
        planning.plan_api,
    )
    plan = _plan("batch-plan")
    changes = planning.plan_changes(
        plan, lambda service, region=None: local_aws.client(service), tags=[], planners=planners
    )
    found = [(c.kind, c.name, c.action) for c in changes.changes]
    assert found == [
        ("SageMaker model", plan.names.model, "create"),
        ("SageMaker transform job", plan.names.model, "create"),
    ]
    note = changes.changes[1].note
    assert INPUT in note and f"churn/output/{plan.names.model}/batch/" in note and "1 x ml.m5.large" in note
