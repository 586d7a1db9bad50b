"""KubeflowPipelinesRunOperator end to end against the KFP API double: execute until it defers, run the
trigger as the triggerer would (rebuilt from its serialized form), then execute_complete."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from sagelift.domain.kfp import build_run_parameters, derive_run_display_name, derive_run_url
from sagelift.hooks.kfp import KubeflowPipelinesError
from sagelift.links.kfp import KubeflowPipelinesRunLink
from sagelift.operators.kfp import KubeflowPipelinesRunOperator
from sagelift.triggers.kfp import KubeflowPipelinesRunCompleteTrigger
from tests.support.kfp_api import KfpApiDouble
from tests.support.task_context import FakeTaskInstance, step_plan

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "kfp_pipeline.yaml"
CONN_ID = "kfp_test"
DAG_ID = "sagemaker_deploy"
RUN_ID = "manual__2026-03-01T10:00:00+00:00"

PARAMS: dict[str, Any] = {
    "model_name": "churn-model",
    "account_id": "333333333333",
    "model_docker_image": "333333333333.dkr.ecr.us-east-1.amazonaws.com/churn:1",
    "model_artifact_s3_path": "s3://churn/model/",
    "environment": {"SAGEMAKER_TFS_NGINX_LOGLEVEL": "info"},
    "training_algorithm_name": "",
    "training_docker_image": "333333333333.dkr.ecr.us-east-1.amazonaws.com/churn-train:1",
    "training_hyperparameters": {"model_dir": "/opt/ml/model", "sagemaker_region": "us-east-1"},
    "training_instance_count": 2,
    "training_instance_type": "ml.m5.xlarge",
    "endpoint_instance_type": "ml.m5.large",
    "training_channels": [
        {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://churn/train"}}}
    ],
    "training_s3_output_path": "s3://churn/output/",
}


@pytest.fixture
def kfp(monkeypatch):
    with KfpApiDouble() as double:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            double.connection_json(ui_url="https://kfp.example.com/pipeline"),
        )
        yield double


def make_operator(**overrides: Any) -> KubeflowPipelinesRunOperator:
    arguments: dict[str, Any] = {
        "task_id": "run_kfp_pipeline",
        "kfp_conn_id": CONN_ID,
        "pipeline_name": "sagemaker-deploy",
        "pipeline_package_path": str(FIXTURE),
        "experiment_name": "sagelift",
        "parameters": PARAMS,
        "poll_interval": 0.01,
    }
    arguments.update(overrides)
    return KubeflowPipelinesRunOperator(**arguments)


def make_context() -> dict[str, Any]:
    ti = FakeTaskInstance({}, dag_id=DAG_ID, task_id="run_kfp_pipeline")
    return {"ti": ti, "run_id": RUN_ID}


def defer(operator: KubeflowPipelinesRunOperator, context: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    return deferred.value


def in_triggerer(trigger: Any) -> KubeflowPipelinesRunCompleteTrigger:
    """Rebuild the trigger from what Airflow stores, as the triggerer does."""
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**kwargs)


async def first_event(trigger: KubeflowPipelinesRunCompleteTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("trigger ended without an event")


def run_to_completion(operator: KubeflowPipelinesRunOperator, context: dict[str, Any]) -> Any:
    deferred = defer(operator, context)
    event = asyncio.run(first_event(in_triggerer(deferred.trigger)))
    return getattr(operator, deferred.method_name)(context, event)


def test_run_succeeds_with_the_parameters_as_v2_runtime_config(kfp):
    kfp.set_run_outcome("SUCCEEDED", after_polls=3)
    context = make_context()

    result = run_to_completion(make_operator(), context)

    (create,) = kfp.calls_to("POST", "/runs")
    body = create.body
    assert body["runtime_config"]["parameters"] == PARAMS
    assert "pipeline_spec" not in body and "resource_references" not in body
    assert body["display_name"] == derive_run_display_name(DAG_ID, RUN_ID)
    version = kfp.versions("sagemaker-deploy")[0]
    assert body["pipeline_version_reference"] == {
        "pipeline_id": version["pipeline_id"],
        "pipeline_version_id": version["pipeline_version_id"],
    }
    assert body["experiment_id"] == kfp.experiments[0]["experiment_id"]
    (run_id,) = kfp.runs
    assert result == run_id
    assert context["ti"].pushed["run_id"] == run_id
    assert context["ti"].pushed[KubeflowPipelinesRunLink().xcom_key] == (
        f"https://kfp.example.com/pipeline/#/runs/details/{run_id}"
    )
    assert len(kfp.calls_to("GET", f"/runs/{run_id}")) == 3


def test_trigger_carries_only_ids_and_no_secret(kfp):
    deferred = defer(make_operator(), make_context())

    _, kwargs = deferred.trigger.serialize()

    assert set(kwargs) == {"run_id", "kfp_conn_id", "poll_interval", "timeout_at"}
    assert kwargs["kfp_conn_id"] == CONN_ID
    assert kfp.token not in json.dumps(kwargs)


def test_parameters_default_to_the_validated_plan(kfp):
    plan = step_plan()
    run_to_completion(make_operator(parameters=None, plan=plan), make_context())

    (create,) = kfp.calls_to("POST", "/runs")
    assert create.body["runtime_config"]["parameters"] == build_run_parameters(plan["params"])
    assert create.body["runtime_config"]["parameters"]["model_name"] == "churn-predictor"
    assert "service_account" not in create.body or create.body["service_account"] is None


def test_the_runs_pods_use_the_platforms_pipeline_service_account(kfp):
    """ensure_pvc's claim is made with the same identity on both engines (plugins/sagelift/assets/k8s/rbac.yaml)."""
    platform = {
        "region": "us-east-1",
        "accounts": {"333333333333": {}},
        "kubernetes": {"enabled": True, "service_account_name": "sagelift-pipeline"},
    }
    run_to_completion(make_operator(parameters=None, plan=step_plan(platform=platform)), make_context())

    (create,) = kfp.calls_to("POST", "/runs")
    assert create.body["service_account"] == "sagelift-pipeline"


def test_failed_run_fails_the_task_with_the_runs_error(kfp):
    kfp.set_run_outcome("FAILED", "ResourceLimitExceeded: ml.p3.16xlarge quota is 0", after_polls=2)

    with pytest.raises(KubeflowPipelinesError) as raised:
        run_to_completion(make_operator(), make_context())

    assert "ended FAILED" in str(raised.value)
    assert "ResourceLimitExceeded: ml.p3.16xlarge quota is 0" in str(raised.value)


@pytest.mark.parametrize("state", ["CANCELED", "SKIPPED"])
def test_canceled_or_skipped_run_fails_the_task(kfp, state):
    kfp.set_run_outcome(state, f"run was {state.lower()}")

    with pytest.raises(KubeflowPipelinesError, match=f"ended {state}: run was {state.lower()}"):
        run_to_completion(make_operator(), make_context())


def test_rejected_token_fails_the_task_with_a_clear_error(kfp, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", kfp.connection_json(password="expired-token"))

    with pytest.raises(KubeflowPipelinesError) as raised:
        make_operator().execute(make_context())

    assert f"rejected the credentials of connection '{CONN_ID}' (HTTP 401" in str(raised.value)
    assert "expired-token" not in str(raised.value)
    assert kfp.runs == {}


def test_a_login_page_fails_the_task_before_anything_is_uploaded_or_submitted(kfp):
    kfp.misbehave("login_page")

    with pytest.raises(KubeflowPipelinesError, match=r"content type 'text/html; charset=utf-8', not JSON"):
        make_operator().execute(make_context())

    assert kfp.pipelines == [] and kfp.experiments == [] and kfp.runs == {}


def test_a_login_page_while_deferred_fails_the_wait_at_once_naming_the_run_url(kfp):
    kfp.set_run_outcome("SUCCEEDED", after_polls=10_000)
    operator, context = make_operator(), make_context()
    deferred = defer(operator, context)
    run_id = next(iter(kfp.runs))
    kfp.misbehave("login_page")

    event = asyncio.run(first_event(in_triggerer(deferred.trigger)))

    assert event["status"] == "error"
    assert f"GET {kfp.url}/apis/v2beta1/runs/{run_id} with content type 'text/html" in event["message"]
    assert len(kfp.calls_to("GET", f"/runs/{run_id}")) == 1  # refused, not retried
    with pytest.raises(KubeflowPipelinesError, match=f"Waiting for Kubeflow Pipelines run {run_id} failed"):
        getattr(operator, deferred.method_name)(context, event)


def test_task_marked_failed_while_deferred_terminates_the_run(kfp):
    kfp.set_run_outcome("SUCCEEDED", after_polls=10_000)
    deferred = defer(make_operator(), make_context())
    trigger = in_triggerer(deferred.trigger)

    async def user_marks_task_failed() -> None:
        waiting = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(0.1)
        waiting.cancel()  # the triggerer cancels the trigger, then calls on_kill()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await trigger.on_kill()

    asyncio.run(user_marks_task_failed())

    run_id = next(iter(kfp.runs))
    assert kfp.terminated == [run_id]
    assert kfp.calls_to("POST", f"/runs/{run_id}:terminate")[0].status == 200


def test_task_killed_on_the_worker_terminates_the_run(kfp):
    kfp.set_run_outcome("SUCCEEDED", after_polls=10_000)
    operator = make_operator()
    defer(operator, make_context())

    operator.on_kill()

    assert kfp.terminated == [next(iter(kfp.runs))]


def test_retry_picks_up_the_unfinished_run_of_an_earlier_try(kfp):
    kfp.set_run_outcome("SUCCEEDED", after_polls=10_000)
    first = defer(make_operator(), make_context())

    second = defer(make_operator(), make_context())

    assert len(kfp.runs) == 1
    assert first.trigger.run_id == second.trigger.run_id


def test_rerun_after_a_failed_run_submits_a_new_run(kfp):
    kfp.set_run_outcome("FAILED", "boom")
    with pytest.raises(KubeflowPipelinesError):
        run_to_completion(make_operator(), make_context())
    kfp.set_run_outcome("SUCCEEDED")

    result = run_to_completion(make_operator(), make_context())

    assert len(kfp.runs) == 2
    assert result == list(kfp.runs)[1]


def test_run_past_its_deadline_is_terminated_and_fails_the_task(kfp):
    kfp.set_run_outcome("SUCCEEDED", after_polls=10_000)
    operator = make_operator(wait_timeout=timedelta(seconds=-1))

    with pytest.raises(KubeflowPipelinesError, match="was terminated"):
        run_to_completion(operator, make_context())

    assert kfp.terminated == [next(iter(kfp.runs))]


def test_without_deferral_the_task_waits_in_the_worker(kfp):
    kfp.set_run_outcome("SUCCEEDED", after_polls=2)

    result = make_operator(deferrable=False).execute(make_context())

    assert result == next(iter(kfp.runs))


def test_changed_package_runs_the_new_version(kfp, tmp_path):
    run_to_completion(make_operator(), make_context())
    changed = tmp_path / "changed.yaml"
    changed.write_text(FIXTURE.read_text().replace("busybox:1.36", "busybox:1.37"))

    run_to_completion(make_operator(pipeline_package_path=str(changed)), make_context())

    versions = kfp.versions("sagemaker-deploy")
    bodies = [call.body for call in kfp.calls_to("POST", "/runs")]
    assert [b["pipeline_version_reference"]["pipeline_version_id"] for b in bodies] == [
        v["pipeline_version_id"] for v in versions
    ]


def test_parameters_that_are_not_a_mapping_are_rejected_before_any_call(kfp):
    with pytest.raises(ValueError, match="parameters: must be a mapping"):
        make_operator(parameters="{{ not rendered as a dict }}").execute(make_context())

    assert kfp.calls == []


def test_link_points_at_the_run_in_the_kfp_ui():
    assert derive_run_url("https://kfp.example.com/pipeline/", "run-1") == (
        "https://kfp.example.com/pipeline/#/runs/details/run-1"
    )


def test_deadline_survives_serialization(kfp):
    deferred = defer(make_operator(wait_timeout=timedelta(hours=2)), make_context())

    deadline = datetime.fromisoformat(in_triggerer(deferred.trigger).timeout_at or "")

    assert timedelta(hours=1, minutes=59) < deadline - datetime.now(UTC) <= timedelta(hours=2)


def test_without_the_kfp_extra_the_task_says_what_to_install(kfp, monkeypatch):
    """sagemaker_deploy_kfp parses without kfp-server-api (sagelift[kfp]); its task names the extra."""
    monkeypatch.setitem(sys.modules, "kfp_server_api", None)  # what an installation without it finds
    with pytest.raises(KubeflowPipelinesError, match=r"install sagelift\[kfp\]"):
        make_operator().execute(make_context())
    assert kfp.pipelines == [] and kfp.runs == {}
