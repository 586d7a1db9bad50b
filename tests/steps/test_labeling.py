"""Labeling before training against the local AWS (issue 20 item 4), through the core's in-process label
step (``steps.labeling.label_here``, what the KFP glue runs) and the stand-in's scripted lifecycles:
success writes the labeled manifest training reads, failure and stop fail the step naming why, a retry
adopts the run's job, SIGTERM stops it, and the documents the job reads are written first."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import pytest

from sagelift.domain.plan import Plan, build_plan
from sagelift.steps import jobs, labeling
from sagelift.steps.errors import StepFailed
from tests.support.botocore_validation import validate_request
from tests.support.local_aws import SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import DATA_BUCKET, demo_conf

WORKTEAM = f"arn:aws:sagemaker:us-east-1:{SCIENTIST_ACCOUNT}:workteam/private-crowd/agronomists"
PLATFORM = {
    "region": "us-east-1",
    "sagemaker": {"check_interval_seconds": 1},
    "accounts": {
        SCIENTIST_ACCOUNT: {
            "deployers": {"users": ["admin"]},
            "labeling_workteam_arn": WORKTEAM,
            "labeling_prefixes": [f"s3://{DATA_BUCKET}/to-label/"],
        }
    },
}
MANIFEST = f"s3://{DATA_BUCKET}/to-label/leaves.manifest"
LINES = [{"source-ref": f"s3://{DATA_BUCKET}/to-label/leaf-{i}.jpg"} for i in range(3)]
TAGS = [{"Key": "team", "Value": "agronomy"}]


def _plan(run_id: str, **settings: Any) -> Plan:
    labeling_conf = {
        "manifest_s3_uri": MANIFEST,
        "task_type": "image_classification",
        "labels": ["healthy", "rust"],
        "channel": "labeled",
        **settings,
    }
    return Plan.from_xcom(build_plan(demo_conf(labeling=labeling_conf), PLATFORM, "sagemaker_deploy", run_id))


def _manifest(aws: LocalAws, lines: list[dict[str, Any]] = LINES) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=DATA_BUCKET)
    body = "".join(json.dumps(line) + "\n" for line in lines)
    s3.put_object(Bucket=DATA_BUCKET, Key="to-label/leaves.manifest", Body=body.encode())


def _read(aws: LocalAws, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bytes(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def test_a_completed_job_writes_the_labeled_manifest_the_training_channel_reads(local_aws: LocalAws) -> None:
    plan = _plan("label-ok")
    _manifest(local_aws)
    sm, s3 = local_aws.client("sagemaker"), local_aws.client("s3")
    said: list[str] = []
    with SageMakerLifecycle(time_scale=100).labeling(seconds=100).installed(local_aws):
        facts = labeling.label_here(sm, s3, plan, TAGS, say=said.append)
        job = sm.describe_labeling_job(LabelingJobName=plan.names.training_job)
    channel = plan.params.training_channels[-1]["DataSource"]["S3DataSource"]
    assert job["LabelingJobStatus"] == "Completed" and facts["status"] == "Completed"
    assert facts["output_manifest_s3_uri"] == channel["S3Uri"] and facts["labeled"] == 3
    labeled = [json.loads(line) for line in _read(local_aws, channel["S3Uri"]).splitlines()]
    assert [line["source-ref"] for line in labeled] == [line["source-ref"] for line in LINES]
    assert {line["label-metadata"]["class-name"] for line in labeled} == {"healthy", "rust"}
    assert all(set(channel["AttributeNames"]) <= set(line) for line in labeled)
    assert any(channel["S3Uri"] in line for line in said)
    # the job read the documents the step wrote beside its output
    categories = json.loads(_read(local_aws, job["LabelCategoryConfigS3Uri"]))
    assert [c["label"] for c in categories["labels"]] == ["healthy", "rust"]
    assert b"crowd-image-classifier" in _read(
        local_aws, job["HumanTaskConfig"]["UiConfig"]["UiTemplateS3Uri"]
    )
    assert job["Tags"] == TAGS and job["HumanTaskConfig"]["WorkteamArn"] == WORKTEAM


def test_the_request_is_valid_for_botocore_and_runs_as_the_training_role() -> None:
    plan = _plan("label-request")
    request = labeling.labeling_request(plan, TAGS)
    assert validate_request("sagemaker", "CreateLabelingJob", request) == []
    assert request["RoleArn"] == plan.platform.training_role_arn(SCIENTIST_ACCOUNT)


def test_a_retry_follows_the_runs_job_instead_of_starting_another(local_aws: LocalAws) -> None:
    plan = _plan("label-adopt")
    _manifest(local_aws)
    sm, s3 = local_aws.client("sagemaker"), local_aws.client("s3")
    with SageMakerLifecycle(time_scale=1).labeling(seconds=600).installed(local_aws):
        request = labeling.prepare_labeling(s3, plan, [])
        first = jobs.start_or_adopt(sm, labeling.KIND, request)
        again = jobs.start_or_adopt(sm, labeling.KIND, labeling.prepare_labeling(s3, plan, []))
        assert first["LabelingJobArn"] == again["LabelingJobArn"]
        assert again["LabelingJobStatus"] in ("Initializing", "InProgress")
        assert jobs.stop_if_running(sm, labeling.KIND, plan.names.training_job)
        assert (
            sm.describe_labeling_job(LabelingJobName=plan.names.training_job)["LabelingJobStatus"]
            == "Stopping"
        )


def test_a_failed_job_fails_the_step_naming_the_job_and_the_reason(local_aws: LocalAws) -> None:
    plan = _plan("label-failed")
    _manifest(local_aws)
    life = SageMakerLifecycle(time_scale=100).labeling(
        seconds=100, outcome="Failed", failure_reason="ClientError: workteam has no workers"
    )
    with life.installed(local_aws), pytest.raises(StepFailed) as err:
        labeling.label_here(local_aws.client("sagemaker"), local_aws.client("s3"), plan, [])
    first = str(err.value).splitlines()[0]
    assert (
        f"Labeling job {plan.names.training_job} ended Failed: ClientError: workteam has no workers" in first
    )
    assert len(first) < 200


def test_an_empty_manifest_fails_as_ground_truth_does(local_aws: LocalAws) -> None:
    plan = _plan("label-empty")
    _manifest(local_aws, [])
    with (
        SageMakerLifecycle(time_scale=100).installed(local_aws),
        pytest.raises(StepFailed, match="no data objects"),
    ):
        labeling.label_here(local_aws.client("sagemaker"), local_aws.client("s3"), plan, [])


def test_a_stopped_job_fails_the_step_and_sigterm_stops_it(local_aws: LocalAws) -> None:
    """KFP terminating the run: the pod gets SIGTERM, the job is stopped and ends Stopped."""
    plan = _plan("label-stop")
    _manifest(local_aws)
    sm = local_aws.client("sagemaker")
    name = plan.names.training_job
    with SageMakerLifecycle(time_scale=10).labeling(seconds=6000, stop_seconds=10).installed(local_aws):
        threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with pytest.raises(SystemExit):
            labeling.label_here(sm, local_aws.client("s3"), plan, [])
        deadline = time.monotonic() + 10
        while sm.describe_labeling_job(LabelingJobName=name)["LabelingJobStatus"] != "Stopped":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        with pytest.raises(StepFailed, match="ended Stopped: it was stopped"):
            jobs.job_outcome(labeling.KIND, sm.describe_labeling_job(LabelingJobName=name))
    with pytest.raises(sm.exceptions.ClientError, match="status Stopped"):
        sm.stop_labeling_job(LabelingJobName=name)


def test_a_scripted_outcome_is_one_of_the_three_ends() -> None:
    with pytest.raises(ValueError, match="Completed"):
        SageMakerLifecycle().labeling(outcome="Done")


def test_a_run_without_labeling_labels_nothing(local_aws: LocalAws) -> None:
    plan = Plan.from_xcom(build_plan(demo_conf(), PLATFORM, "sagemaker_deploy", "no-label"))
    assert labeling.label_here(local_aws.client("sagemaker"), local_aws.client("s3"), plan, []) == {}


def test_plan_changes_lists_the_labeling_job_then_an_earlier_try_s_as_unchanged(local_aws: LocalAws) -> None:
    from sagelift.steps.plan_changes import plan_changes, plan_labeling_job

    plan = _plan("label-plan")
    _manifest(local_aws)

    def clients(service: str, region: str | None = None) -> Any:
        return local_aws.client(service)

    with SageMakerLifecycle(time_scale=1).labeling(seconds=600).installed(local_aws):
        (change,) = plan_changes(plan, clients, tags=[], planners=(plan_labeling_job,)).changes
        assert (change.kind, change.name, change.action) == (
            "SageMaker labeling job",
            plan.names.training_job,
            "create",
        )
        assert MANIFEST in change.note and "training channel labeled" in change.note
        s3, sm = local_aws.client("s3"), local_aws.client("sagemaker")
        jobs.start_or_adopt(sm, labeling.KIND, labeling.prepare_labeling(s3, plan, []))
        (again,) = plan_changes(plan, clients, tags=[], planners=(plan_labeling_job,)).changes
        assert again.action == "unchanged"
        jobs.stop_if_running(sm, labeling.KIND, plan.names.training_job)
    skipped = Plan.from_xcom(build_plan(demo_conf(), PLATFORM, "sagemaker_deploy", "no-label-plan"))
    assert plan_changes(skipped, clients, tags=[], planners=(plan_labeling_job,)).changes == ()
