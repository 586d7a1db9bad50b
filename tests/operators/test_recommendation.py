"""recommend_instance on Airflow (issue 20 item 2): without a job it answers from the table at once; with an
Inference Recommender job it defers like training (the trigger carries no credential), its end is judged on
resume, cancelling stops the job; a run without an endpoint of its own skips; deploy_endpoint deploys the
pick for "auto"."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred

from sagelift.domain.plan import Plan
from sagelift.operators.recommendation import SageMakerRecommendInstanceOperator
from sagelift.operators.sagemaker import SageMakerDeployEndpointOperator
from sagelift.triggers.jobs import SageMakerJobTrigger
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.sagemaker_recommender import script_recommender
from tests.support.scenario import DATA_BUCKET
from tests.support.task_context import step_plan, step_session, use_scientist_keys

PAYLOAD = f"s3://{DATA_BUCKET}/churn/payload.tar.gz"
ARTIFACT = f"s3://{DATA_BUCKET}/churn/output/model.tar.gz"


def _platform(deferrable: bool = True, job: bool = True) -> dict[str, Any]:
    return {
        "region": REGION,
        "sagemaker": {"deferrable": deferrable, "check_interval_seconds": 1},
        "accounts": {SCIENTIST_ACCOUNT: {"inference_recommender": job}},
    }


def _registered(aws: LocalAws) -> dict[str, Any]:
    s3, sm = aws.client("s3"), aws.client("sagemaker")
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="churn/output/model.tar.gz", Body=b"\0" * 4096)
    sm.create_model_package_group(ModelPackageGroupName="churn-predictor")
    arn = sm.create_model_package(
        ModelPackageGroupName="churn-predictor",
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": ARTIFACT}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    return {"model_package_arn": arn, "model_data_url": ARTIFACT}


def _task(
    conn_id: str, registered: dict[str, Any], run_id: str, platform: dict[str, Any], **conf: Any
) -> SageMakerRecommendInstanceOperator:
    return SageMakerRecommendInstanceOperator(
        task_id="recommend_instance",
        plan=step_plan({"endpoint_instance_type": "auto", **conf}, platform, run_id=run_id),
        session=step_session(conn_id),
        registered=registered,
    )


JOB = {"instance_recommendation": {"job": "default", "sample_payload_s3_uri": PAYLOAD}}


def test_without_a_job_the_task_answers_from_the_table(local_aws: LocalAws, monkeypatch: Any) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    registered = _registered(local_aws)
    answer = _task(conn_id, registered, "rec-op-1", _platform(job=False)).execute({})
    assert answer["artifact_bytes"] == 4096 and answer["job"] == {}
    assert answer["endpoint_instance_type"] == answer["pick"] == answer["fits"][0]["instance_type"]
    json.dumps(answer)  # the XCom is JSON-able


def test_a_job_defers_and_its_answer_is_judged_on_resume(local_aws: LocalAws, monkeypatch: Any) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    registered = _registered(local_aws)
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life:
        script_recommender(life, seconds=200, metrics={"ml.c5.large": {"CostPerHour": 0.001}})
        task = _task(conn_id, registered, "rec-op-2", _platform(), **JOB)
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({})
        trigger = deferred.value.trigger
        assert isinstance(trigger, SageMakerJobTrigger)
        _, kwargs = trigger.serialize()
        secret = json.loads(os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"])["password"]
        assert secret not in json.dumps(kwargs) and kwargs["operation"] == "inference_recommendations_job"
        event = asyncio.run(_first_event(SageMakerJobTrigger(**{**kwargs, "waiter_delay": 0.2})))
        assert event["status"] == "success"
        resumed = _task(conn_id, registered, "rec-op-2", _platform(), **JOB)
        answer = resumed.execute_complete({}, event)
    assert answer["pick"] == "ml.c5.large" and answer["endpoint_instance_type"] == "ml.c5.large"
    assert answer["job"]["name"] == event["job_name"]


def test_a_failed_job_fails_the_task_and_cancel_stops_a_running_one(
    local_aws: LocalAws, monkeypatch: Any
) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    registered = _registered(local_aws)
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    with SageMakerLifecycle(time_scale=100).installed(local_aws) as life:
        script_recommender(life, seconds=100, outcome="FAILED", failure_reason="payload unreadable")
        with pytest.raises(AirflowFailException) as failed:
            _task(conn_id, registered, "rec-op-3", _platform(deferrable=False), **JOB).execute({})
        first_line = str(failed.value).splitlines()[0]
        assert "ended FAILED: payload unreadable" in first_line and len(first_line) < 200

        script_recommender(life, seconds=36000, stop_seconds=1000)
        task = _task(conn_id, registered, "rec-op-4", _platform(), **JOB)
        with pytest.raises(TaskDeferred) as deferred:
            task.execute({})
        trigger = deferred.value.trigger
        asyncio.run(trigger.on_kill())  # the deferred task was marked failed
        name = trigger.serialize()[1]["job_name"]
        assert sm.describe_inference_recommendations_job(JobName=name)["Status"] == "STOPPING"


def test_a_run_without_an_endpoint_of_its_own_skips(local_aws: LocalAws, monkeypatch: Any) -> None:
    conn_id = use_scientist_keys(local_aws, monkeypatch)
    task = SageMakerRecommendInstanceOperator(
        task_id="recommend_instance",
        plan=step_plan(
            {"batch": {"input_s3_uri": f"s3://{DATA_BUCKET}/in/"}}, _platform(), run_id="rec-op-5"
        ),
        session=step_session(conn_id),
        registered={},
    )
    with pytest.raises(AirflowSkipException, match="recommend_instance skipped"):
        task.execute({})


def test_deploy_endpoint_reads_the_pick_for_auto() -> None:
    deploy = SageMakerDeployEndpointOperator(
        task_id="deploy_endpoint",
        plan=step_plan({"endpoint_instance_type": "auto"}, _platform(), run_id="rec-op-6"),
        recommendation={"pick": "ml.c5.large", "why": "cheapest"},
    )
    plan: Plan = deploy.read_plan()
    assert plan.params.endpoint_instance_type == "ml.c5.large"
    nothing = SageMakerDeployEndpointOperator(
        task_id="deploy_endpoint",
        plan=step_plan({"endpoint_instance_type": "auto"}, _platform(), run_id="rec-op-6"),
        recommendation={"pick": None, "why": "no hosting type fits"},
    )
    with pytest.raises(
        AirflowFailException, match='"auto" has no instance type to deploy: no hosting type fits'
    ):
        nothing.read_plan()


async def _first_event(trigger: SageMakerJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger fired nothing")
