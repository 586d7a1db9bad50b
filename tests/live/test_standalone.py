"""sagemaker_deploy on a real Airflow, driven over its REST API as a user would: long deferred waits,
marking a deferred task failed, clearing tasks, submission from code, asset-triggered retrains.

The Airflow is the live tier's shared one (tests/live/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import count_resources
from tests.support.scenario import demo_conf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "sagemaker_deploy"


def test_a_two_minute_training_defers_then_succeeds(world):
    world.life.training(seconds=120)
    run_id = world.af.trigger(DAG_ID, demo_conf())

    world.af.wait_for_task_state(DAG_ID, run_id, "train_model", "deferred", timeout=300)
    assert world.training_job(run_id)["TrainingJobStatus"] == "InProgress"
    run = world.af.wait_for_run(DAG_ID, run_id, timeout=600)

    assert run["state"] == "success", world.af.task_states(DAG_ID, run_id)
    job = world.training_job(run_id)
    assert job["TrainingJobStatus"] == "Completed"
    # The triggerer streamed the job's CloudWatch log into train_model's log, each line once.
    logged = world.af.task_log(DAG_ID, run_id, "train_model")
    expected = world.life.task_log_lines(job["TrainingJobName"])
    assert expected and all(logged.count(line) == 1 for line in expected), logged


def test_clearing_each_task_in_turn_converges(world):
    world.life.training(seconds=10)
    run_id = world.af.trigger(DAG_ID, demo_conf())
    assert world.af.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    before = count_resources(world.aws, SCIENTIST_ACCOUNT)

    # Each task that ran is cleared alone, with everything else done. The tasks this conf skips (features
    # it does not use) are cleared together, once: each must skip again and change nothing, and a clear
    # costs seconds of scheduling whatever it re-runs.
    states = world.af.task_states(DAG_ID, run_id)
    tasks = [t["task_id"] for t in world.af.api.get(f"/api/v2/dags/{DAG_ID}/tasks").json()["tasks"]]
    skipped = [task_id for task_id in tasks if states.get(task_id) == "skipped"]
    batches = [[task_id] for task_id in tasks if task_id not in skipped] + ([skipped] if skipped else [])
    for task_ids in batches:
        response = world.af.api.post(
            f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
            json={"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": False},
        )
        response.raise_for_status()
        run = world.af.wait_for_run(DAG_ID, run_id, timeout=300)
        assert run["state"] == "success", (task_ids, world.af.task_states(DAG_ID, run_id))
        assert count_resources(world.aws, SCIENTIST_ACCOUNT) == before, task_ids
    assert world.af.task_states(DAG_ID, run_id) == states  # what was skipped skipped again

    again = world.af.trigger(DAG_ID, demo_conf())  # the same conf once more: a new run, same endpoint
    assert world.af.wait_for_run(DAG_ID, again, timeout=600)["state"] == "success"
    after = count_resources(world.aws, SCIENTIST_ACCOUNT)
    assert after["endpoints"] == before["endpoints"] == 1
    assert after["rest_apis"] == before["rest_apis"]
    # Old configs and models beyond the two kept for rollback are gone.
    assert after["endpoint_configs"] <= 2 and after["models"] <= 2


# --- submission from code and data-triggered retraining, on the same running Airflow -------------------
DEMAND = json.loads((ROOT / "include/examples/retrain/demand-forecast.json").read_text())


def test_submit_script_sends_a_conf_file_waits_and_prints_the_summary(world, tmp_path: Path):
    airflow = world.af
    conf_file = tmp_path / "conf.json"
    conf_file.write_text(json.dumps(demo_conf(model_name="churn-rest")))
    airflow.wait_for_dag("sagemaker_deploy")

    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/submit_run.py"),
            str(conf_file),
            "--poll",
            "2",
            "--timeout",
            "400",
        ],
        env={"AIRFLOW_URL": airflow.url, "AIRFLOW_TOKEN": airflow.token(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=450,
    )

    assert done.returncode == 0, done.stderr + done.stdout
    summary = json.loads(done.stdout)
    assert summary["model_name"] == "churn-rest"
    assert summary["invoke_url"].endswith("/invocations")
    kinds = {item["kind"]: item["action"] for item in summary["resources"]}
    assert kinds["training job"] == "created"
    assert kinds["API Gateway API"] == "created"


def test_submit_script_reports_an_invalid_conf_as_a_failed_run(world, tmp_path: Path):
    airflow = world.af
    conf_file = tmp_path / "conf.json"
    conf_file.write_text(json.dumps(demo_conf(model_name="bad_name!")))
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/submit_run.py"),
            str(conf_file),
            "--poll",
            "1",
            "--timeout",
            "200",
        ],
        env={"AIRFLOW_URL": airflow.url, "AIRFLOW_TOKEN": airflow.token(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=250,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["failed_tasks"] == ["validate"]


def test_an_asset_event_for_a_data_prefix_retrains_that_model_with_its_conf(world):
    airflow = world.af
    prefix = DEMAND["training_data_prefix"].rstrip("/")  # as the Amazon provider normalizes S3 asset URIs
    airflow.wait_for_dag("sagemaker_retrain_demand_forecast")
    assets: list[dict] = []
    deadline = time.monotonic() + 60
    while not assets and time.monotonic() < deadline:
        assets = airflow.api.get("/api/v2/assets", params={"uri_pattern": prefix}).json()["assets"]
        time.sleep(1)
    (asset,) = [a for a in assets if a["uri"] == prefix]

    posted = airflow.api.post("/api/v2/assets/events", json={"asset_id": asset["id"], "extra": {"files": 3}})
    assert posted.status_code == 200, posted.text

    deploy_runs: list[dict] = []
    deadline = time.monotonic() + 180
    while not deploy_runs and time.monotonic() < deadline:
        runs = airflow.api.get("/api/v2/dags/sagemaker_deploy/dagRuns").json()["dag_runs"]
        deploy_runs = [
            r for r in runs if r["dag_run_id"].startswith("retrain__sagemaker_retrain_demand_forecast")
        ]
        time.sleep(2)
    assert deploy_runs, airflow.api.get("/api/v2/dags/sagemaker_retrain_demand_forecast/dagRuns").json()
    assert deploy_runs[0]["conf"] == DEMAND["conf"]
    # The retrain run follows the deploy run it started (deferred while it waits).
    retrain_run = _retrain_run_id(airflow)
    deadline = time.monotonic() + 120
    state = None
    while state not in ("deferred", "success") and time.monotonic() < deadline:
        state = airflow.task_states("sagemaker_retrain_demand_forecast", retrain_run).get("start_deploy")
        time.sleep(2)
    assert state in ("deferred", "success")


def _retrain_run_id(airflow) -> str:
    runs = airflow.api.get("/api/v2/dags/sagemaker_retrain_demand_forecast/dagRuns").json()["dag_runs"]
    (run,) = runs
    assert run["run_type"] == "asset_triggered"
    return str(run["dag_run_id"])


# --- acting on a deferred task in the UI -------------------------------------------------------------
def test_marking_the_deferred_training_failed_stops_the_training_job(world):
    # Last in the module: it leaves a stopped training job behind, which the resource counts above
    # would otherwise see.
    world.life.training(seconds=6000)  # ten real minutes: far longer than the test waits
    conf = demo_conf(model_name="churn-cancelled")
    run_id = world.af.trigger(DAG_ID, conf)
    world.af.wait_for_task_state(DAG_ID, run_id, "train_model", "deferred", timeout=300)
    assert world.training_job(run_id, "churn-cancelled")["TrainingJobStatus"] == "InProgress"
    # The user acts on a wait that is running: its first poll is in the log. (Marked failed before the
    # triggerer starts the trigger, Airflow calls no on_kill and the job would go on.)
    world.af.wait_for_task_log(DAG_ID, run_id, "train_model", "Training job not done yet: InProgress")

    world.af.set_task_state(DAG_ID, run_id, "train_model", "failed")  # "Mark as failed" in the UI

    # The triggerer cancels the trigger as a user action and its on_kill stops the job.
    status = "InProgress"
    deadline = time.monotonic() + 120
    while status == "InProgress" and time.monotonic() < deadline:
        time.sleep(2)
        status = world.training_job(run_id, "churn-cancelled")["TrainingJobStatus"]
    assert status in ("Stopping", "Stopped"), world.af.log_tail()
    run = world.af.wait_for_run(DAG_ID, run_id, timeout=120)
    assert run["state"] == "failed"
    states = world.af.task_states(DAG_ID, run_id)
    assert states["train_model"] == "failed" and states["deploy_endpoint"] == "upstream_failed", states
