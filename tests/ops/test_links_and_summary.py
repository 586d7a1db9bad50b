"""Console links of the SageMaker steps and the run summary, from the values the steps push."""

from __future__ import annotations

from sagelift.domain.summary import build_run_summary, render_run_summary
from sagelift.links.sagemaker import (
    SageMakerEndpointLink,
    SageMakerEndpointLogsLink,
    SageMakerModelLink,
    SageMakerTrainingJobLink,
    SageMakerTrainingLogsLink,
    SageMakerTransformJobLink,
    SageMakerTuningJobLink,
)

ARN = "arn:aws:sagemaker:eu-west-1:333333333333"
TRAINING = {
    "Training": {
        "TrainingJobName": "churn-1a2b3c4d",
        "TrainingJobArn": f"{ARN}:training-job/churn-1a2b3c4d",
        "TrainingJobStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/out/churn-1a2b3c4d/output/model.tar.gz"},
    }
}
MODEL = {"Model": {"ModelName": "churn-1a2b3c4d", "ModelArn": f"{ARN}:model/churn-1a2b3c4d"}}
ENDPOINT = {
    "Endpoint": {
        "EndpointName": "churn",
        "EndpointArn": f"{ARN}:endpoint/churn",
        "EndpointStatus": "InService",
    }
}


def test_links_open_the_scientist_accounts_console_in_the_resources_region():
    assert SageMakerTrainingJobLink().format_result(TRAINING) == (
        "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/jobs/churn-1a2b3c4d"
    )
    assert SageMakerModelLink().format_result(MODEL).endswith("region=eu-west-1#/models/churn-1a2b3c4d")
    assert SageMakerEndpointLink().format_result(ENDPOINT).endswith("region=eu-west-1#/endpoints/churn")
    assert "log-group/%2Faws%2Fsagemaker%2FTrainingJobs" in SageMakerTrainingLogsLink().format_result(
        TRAINING
    )
    assert "churn-1a2b3c4d" in SageMakerTrainingLogsLink().format_result(TRAINING)
    assert "%2Faws%2Fsagemaker%2FEndpoints%2Fchurn" in SageMakerEndpointLogsLink().format_result(ENDPOINT)


def test_tune_model_links_its_tuning_job_and_its_best_training_job():
    tuned = {
        **TRAINING,
        "Tuning": {
            "HyperParameterTuningJobName": "churn-1a2b3c4d-hpo",
            "HyperParameterTuningJobArn": f"{ARN}:hyper-parameter-tuning-job/churn-1a2b3c4d-hpo",
        },
    }
    assert (
        SageMakerTuningJobLink()
        .format_result(tuned)
        .endswith("region=eu-west-1#/hyper-tuning-jobs/churn-1a2b3c4d-hpo")
    )
    assert SageMakerTrainingJobLink().format_result(tuned).endswith("#/jobs/churn-1a2b3c4d")
    transform = {
        "Transform": {"TransformJobName": "churn-b1", "TransformJobArn": f"{ARN}:transform-job/churn-b1"}
    }
    assert SageMakerTransformJobLink().format_result(transform).endswith("#/transform-jobs/churn-b1")


def test_a_skipped_step_shows_no_link():
    assert SageMakerTrainingJobLink().format_result(None) == ""
    assert SageMakerEndpointLink().format_result({"Endpoint": {"EndpointName": "x"}}) == ""


def test_a_try_that_did_not_succeed_gets_no_link_and_asks_for_no_return_value(monkeypatch):
    """Airflow computes links whenever a try ends, deferrals included; asking for a return value not
    pushed yet logs an error-level "XCom not found" in the task log (seen on every deploy_endpoint)."""
    from types import SimpleNamespace

    from airflow.sdk import TaskInstanceState

    import sagelift.links.sagemaker as links

    asked = []

    def get_value(*, ti_key, key):
        asked.append((ti_key.task_id, key))
        return ENDPOINT

    monkeypatch.setattr(links.XCom, "get_value", get_value)
    link = SageMakerEndpointLink()
    for state in ("deferred", "skipped", "failed", "up_for_retry"):
        ti = SimpleNamespace(task_id="deploy_endpoint", state=TaskInstanceState(state))
        assert link.get_link(None, ti_key=ti) == ""
    assert asked == []

    ti = SimpleNamespace(task_id="deploy_endpoint", state=TaskInstanceState.SUCCESS)
    assert link.get_link(None, ti_key=ti).endswith("region=eu-west-1#/endpoints/churn")
    assert asked == [("deploy_endpoint", "return_value")]


def test_the_summary_lists_what_the_run_created_and_the_invoke_url():
    plan = {
        "params": {
            "model_name": "churn",
            "account_id": "333333333333",
            "model_artifact_s3_path": None,
            "model_docker_image": "333333333333.dkr.ecr.eu-west-1.amazonaws.com/churn-serving:1",
        },
        "names": {
            "run_key": "1a2b3c4d",
            "training_job": "churn-1a2b3c4d",
            "model": "churn-1a2b3c4d",
            "endpoint_config": "churn-1a2b3c4d",
            "endpoint": "churn",
            "api": "churn",
        },
        "dag_id": "sagemaker_deploy",
        "run_id": "manual__1",
    }
    api = {
        "api_id": "a1",
        "api_name": "churn",
        "stage": "v1",
        "created": False,
        "invoke_url": "https://a1.execute-api.eu-west-1.amazonaws.com/v1/invocations",
        "authorization": "AWS_IAM",
    }
    summary = build_run_summary(plan, images=None, training=TRAINING, model=MODEL, endpoint=ENDPOINT, api=api)

    assert summary["invoke_url"] == api["invoke_url"]
    assert [(r["kind"], r["action"]) for r in summary["resources"]] == [
        ("training job", "created"),
        ("model", "created"),
        ("endpoint config", "created"),
        ("endpoint", "serving this run's config"),
        ("API Gateway API", "updated"),
    ]
    assert api["invoke_url"] in render_run_summary(summary)
