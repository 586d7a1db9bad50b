"""Runs of one model take turns on KFP too, with the lock the Airflow DAG uses (sagelift.steps.lock).

The pipeline runs under ``kfp.local`` (its components as subprocesses of this environment) against the
local AWS of tests/support, with the platform's lock location set: a model locked by an Airflow run
makes the KFP run wait, give up within the platform's budget and leave that run's lock alone; a free
model's lock is taken after assume_role_chain and given back by the exit handler.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kfp import local
from pipeline import build_pipeline

from sagelift.domain.lock import plan_lock, run_holder
from sagelift.domain.plan import Plan, build_plan
from sagelift.steps import lock as locks
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws
from tests.support.scenario import LOCKS_BUCKET, Scenario, demo_conf

pytestmark = pytest.mark.slow  # a pipeline run of component subprocesses: tens of seconds

KFP_DIR = Path(__file__).resolve().parents[1]
ROOT = KFP_DIR.parents[1]
LOCK_KEY = f"locks/{SCIENTIST_ACCOUNT}/churn-predictor.json"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with LocalAws() as server:
        yield server


@pytest.fixture
def world(aws: LocalAws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """A fresh scientist account; the environment the component subprocesses inherit points at it."""
    aws.reset()
    scenario = Scenario(aws).build()
    scenario.platform_overrides["locks"] = {"wait_budget_seconds": 2, "check_interval_seconds": 1}
    key, secret = scenario.runner_key
    paths = [str(ROOT / "plugins"), str(KFP_DIR), str(ROOT)]
    for name, value in {
        "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]),
        "SAGELIFT_PLATFORM": json.dumps(scenario.platform()),
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": aws.url,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    return scenario


def _lock_object(aws: LocalAws) -> dict | None:
    s3 = aws.client("s3", SCIENTIST_ACCOUNT)
    try:
        return json.loads(s3.get_object(Bucket=LOCKS_BUCKET, Key=LOCK_KEY)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def test_a_model_locked_by_an_airflow_run_makes_the_kfp_run_give_up(world, aws, capfd) -> None:
    airflow_run = Plan.from_xcom(
        build_plan(demo_conf(), world.platform(), "sagemaker_deploy", "manual__2026-12-01T09:00:00+00:00")
    )
    s3 = aws.client("s3", SCIENTIST_ACCOUNT)
    assert locks.try_acquire(s3, plan_lock(airflow_run), run_holder(airflow_run)).acquired

    with pytest.raises(RuntimeError):
        build_pipeline()(**demo_conf())

    out = capfd.readouterr().out
    assert (
        f"Model churn-predictor in account {SCIENTIST_ACCOUNT} is locked by run {airflow_run.run_id} "
        "of sagemaker_deploy"
    ) in out
    assert "this run waited 2 s (platform.locks.wait_budget_seconds) and gave up." in out
    sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    assert _lock_object(aws)["run_id"] == airflow_run.run_id  # the exit handler left it alone


def test_the_kfp_run_takes_the_lock_and_its_exit_handler_gives_it_back(world, aws) -> None:
    build_pipeline()(**demo_conf())

    lock_calls = [(r.method, r.account_header) for r in aws.requests if r.path.endswith(LOCK_KEY)]
    assert ("PUT", None) in lock_calls and ("DELETE", None) in lock_calls  # the product's own calls
    # taken after assume_role_chain, renewed by train_model and by deploy_endpoint, as on Airflow
    assert [m for m, _ in lock_calls if m in ("PUT", "DELETE")] == ["PUT", "PUT", "PUT", "DELETE"]
    assert _lock_object(aws) is None
    sm = aws.client("sagemaker", SCIENTIST_ACCOUNT)
    endpoint = sm.describe_endpoint(EndpointName="churn-predictor")
    assert endpoint["EndpointStatus"] == "InService"
