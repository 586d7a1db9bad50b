"""sagemaker_deploy on a real Airflow (scheduler, triggerer, dag-processor, API server as processes):
long deferred waits, clearing tasks, submission from code over the REST API, asset-triggered retrains.

One Airflow for the module (it takes a while to start), driven over its REST API as a user would; the
SageMaker lifecycle runs 10 emulated seconds per real second in the moto server of this process, which
the Airflow processes reach over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sagelift.domain.plan import derive_run_key
from tests.conftest import ROOT
from tests.support.airflow_standalone import AirflowStandalone
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle, count_resources
from tests.support.scenario import Scenario, demo_conf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "sagemaker_deploy"


class World:
    def __init__(self, aws, af: AirflowStandalone, life: SageMakerLifecycle) -> None:
        self.aws, self.af, self.life = aws, af, life

    def training_job(self, run_id: str) -> dict:
        sm = self.aws.client("sagemaker", SCIENTIST_ACCOUNT)
        return sm.describe_training_job(TrainingJobName=f"churn-predictor-{derive_run_key(DAG_ID, run_id)}")


@pytest.fixture(scope="module")
def world(local_aws_server, kubernetes_api, airflow_db):
    from tests.e2e.conftest import K8S_CONN_ID

    local_aws_server.reset()
    scenario = Scenario(local_aws_server)
    scenario.platform_overrides["sagemaker"] = {"check_interval_seconds": 1}
    env: dict[str, str] = {}
    if kubernetes_api is not None:
        scenario.platform_overrides["kubernetes"] = {
            "enabled": True,
            "namespace": "sagelift",
            "kubernetes_conn_id": K8S_CONN_ID,
        }
        env.update(kubernetes_api.airflow_connection_env(K8S_CONN_ID))
    scenario.build()
    env.update(scenario.airflow_env())
    with (
        SageMakerLifecycle(time_scale=10).installed(local_aws_server) as life,
        AirflowStandalone(env=env, keep_home=bool(os.environ.get("SAGELIFT_KEEP_AIRFLOW_HOME"))) as af,
    ):
        yield World(local_aws_server, af, life)


def test_a_two_minute_training_defers_then_succeeds(world):
    world.life.training(seconds=120)
    run_id = world.af.trigger(DAG_ID, demo_conf())

    world.af.wait_for_task_state(DAG_ID, run_id, "train_model", "deferred", timeout=300)
    assert world.training_job(run_id)["TrainingJobStatus"] == "InProgress"
    run = world.af.wait_for_run(DAG_ID, run_id, timeout=600)

    assert run["state"] == "success", world.af.task_states(DAG_ID, run_id)
    assert world.training_job(run_id)["TrainingJobStatus"] == "Completed"


def test_clearing_each_task_in_turn_converges(world):
    world.life.training(seconds=10)
    run_id = world.af.trigger(DAG_ID, demo_conf())
    assert world.af.wait_for_run(DAG_ID, run_id, timeout=600)["state"] == "success"
    before = count_resources(world.aws, SCIENTIST_ACCOUNT)

    tasks = world.af.api.get(f"/api/v2/dags/{DAG_ID}/tasks").json()["tasks"]
    for task_id in [t["task_id"] for t in tasks]:
        response = world.af.api.post(
            f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
            json={"dry_run": False, "dag_run_id": run_id, "task_ids": [task_id], "only_failed": False},
        )
        response.raise_for_status()
        run = world.af.wait_for_run(DAG_ID, run_id, timeout=300)
        assert run["state"] == "success", (task_id, world.af.task_states(DAG_ID, run_id))
        assert count_resources(world.aws, SCIENTIST_ACCOUNT) == before, task_id

    again = world.af.trigger(DAG_ID, demo_conf())  # the same conf once more: a new run, same endpoint
    assert world.af.wait_for_run(DAG_ID, again, timeout=600)["state"] == "success"
    after = count_resources(world.aws, SCIENTIST_ACCOUNT)
    assert after["endpoints"] == before["endpoints"] == 1
    assert after["rest_apis"] == before["rest_apis"]
    # Old configs and models beyond the two kept for rollback are gone.
    assert after["endpoint_configs"] <= 2 and after["models"] <= 2


# --- submission from code and data-triggered retraining, on the same running Airflow -------------------
DEMAND = json.loads((ROOT / "include/retrain/demand-forecast.json").read_text())


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
