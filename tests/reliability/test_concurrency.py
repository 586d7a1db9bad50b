"""Two runs of one model at once (issue 14 item 7): they take turns; two models still run side by side.

Reproduced before the lock: with instant endpoints the later run failed with a false "SageMaker rolled
the update back"; with two-minute endpoint creation the earlier run's pruning deleted the later run's
model mid-run. Here each of two runs is a ``dag.test`` in its own process (Airflow's in-process task
runner keeps module-wide state, so two runs cannot share a process), each with its own copy of the
metadata database: the runs share nothing but the scientist account, as the lock is meant to work
(Airflow and KFP runs, or two Airflow deployments, share only that). The two processes serve the
module's tests one after another, as a worker runs one task after another, so the DAG is parsed twice, not
twice per test. The SageMaker lifecycle is scripted in this process's local AWS, which both reach over
HTTP (60 emulated seconds per real second).

Then, in this process: a wait that runs out, a lapsed lock left by a killed run, the release after a
failed deploy, the platform without a lock location; and the two step functions the race broke,
``endpoint_outcome`` and ``prune_revisions``, against the local AWS.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sagelift.domain.lock import plan_lock, run_holder
from sagelift.domain.plan import Plan, derive_run_key
from sagelift.steps import lock as locks
from sagelift.steps.endpoint import endpoint_outcome, prune_revisions
from sagelift.steps.errors import StepFailed
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.scenario import DATA_BUCKET, LOCKS_BUCKET, demo_conf, role_arn
from tests.support.task_context import step_plan

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
DAG_ID = "sagemaker_deploy"
LOCK_TASKS = ("acquire_model_lock", "release_model_lock")


def _lock_key(model: str) -> str:
    return f"locks/{SCIENTIST_ACCOUNT}/{model}.json"


def _lock_object(local_aws, model: str = "churn-predictor") -> dict | None:
    s3 = local_aws.client("s3", SCIENTIST_ACCOUNT)
    try:
        return json.loads(s3.get_object(Bucket=LOCKS_BUCKET, Key=_lock_key(model))["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _use_platform(scenario, monkeypatch, **locks_settings) -> None:
    scenario.platform_overrides["locks"] = {"check_interval_seconds": 1, **locks_settings}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(scenario.platform()))


def _name(run_id: str, model: str = "churn-predictor") -> str:
    return f"{model}-{derive_run_key(DAG_ID, run_id)}"


# --- two runs, each a dag.test in its own process ----------------------------------------------------
def _task_results(dag_run: Any, task_ids: tuple[str, ...]) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    results = {}
    with create_session() as session:
        for task_id in task_ids:
            row = session.scalars(
                XComModel.get_many(
                    run_id=dag_run.run_id, dag_ids=DAG_ID, task_ids=task_id, key="return_value"
                )
            ).first()
            results[task_id] = None if row is None else XComModel.deserialize_value(row)
    return results


# What a run reads from the environment: the platform Variable and the account connections of the test's
# scenario (rebuilt for each test, with new runner keys), and the AWS settings.
RUN_ENV_PREFIXES = ("AIRFLOW_VAR_", "AIRFLOW_CONN_", "AWS_")


def _runner(db: str, directory: str, name: str, log: str) -> None:
    """A spawned process: parse the DAG once, say it is ready, then run it once per job it is given
    (``<name>.<n>.job``: the conf and the environment the run reads), writing ``<name>.<n>.json``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{db}"
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags" / "sagemaker_deploy.py")).get_dag(DAG_ID)
    Path(directory, f"{name}.ready").touch()
    for n in itertools.count():
        job = Path(directory, f"{name}.{n}.job")
        while not job.exists():
            time.sleep(0.05)
        conf, env = json.loads(job.read_text())
        for key in [k for k in os.environ if k.startswith(RUN_ENV_PREFIXES)]:
            del os.environ[key]
        os.environ.update(env)
        dag_run = dag.test(run_conf=conf)
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        result = {"run_id": dag_run.run_id, "state": str(dag_run.state), "states": states}
        result.update(_task_results(dag_run, LOCK_TASKS))
        Path(directory, f"{name}.{n}.json.part").write_text(json.dumps(result, default=str))
        Path(directory, f"{name}.{n}.json.part").rename(Path(directory, f"{name}.{n}.json"))


@dataclass
class Child:
    """A spawned process that runs sagemaker_deploy, one run after another, each with its own conf; it
    parses the DAG once, for every test of the module (the imports and the parse are most of a short
    process's CPU time). ``give(conf)`` then ``go()`` starts a run, ``result()`` waits for it."""

    name: str
    directory: Path
    process: Any = None
    jobs: int = 0
    conf: Any = None

    def path(self, suffix: str) -> Path:
        return self.directory / f"{self.name}.{suffix}"

    def spawn(self, metadata_db: Path) -> Child:
        db = self.path("db")
        with sqlite3.connect(metadata_db) as source, sqlite3.connect(db) as copy:
            source.backup(copy)
        args = (str(db), str(self.directory), self.name, str(self.path("log")))
        self.process = multiprocessing.get_context("spawn").Process(target=_runner, args=args)
        self.process.start()
        return self

    def wait_ready(self, deadline: float) -> None:
        while not self.path("ready").exists():
            assert self.process.is_alive(), self.log()
            assert time.monotonic() < deadline, f"{self.name} did not parse the DAG in time"
            time.sleep(0.2)

    def give(self, conf: dict) -> None:
        self.conf = conf

    def go(self) -> None:
        """Start the run: the conf and this process's environment as the test has set it."""
        env = {k: v for k, v in os.environ.items() if k.startswith(RUN_ENV_PREFIXES)}
        job = self.path(f"{self.jobs}.job")
        job.with_suffix(".part").write_text(json.dumps([self.conf, env]))
        job.with_suffix(".part").rename(job)

    def result(self, timeout: float = 900) -> dict[str, Any]:
        out = self.path(f"{self.jobs}.json")
        deadline = time.monotonic() + timeout
        while not out.exists():
            assert self.process.is_alive(), self.log()
            assert time.monotonic() < deadline, f"{self.name}'s run did not end in {timeout} s:\n{self.log()}"
            time.sleep(0.2)
        self.jobs += 1
        return dict(json.loads(out.read_text()))

    def busy(self) -> bool:
        return self.path(f"{self.jobs}.job").exists()

    def log(self) -> str:
        return self.path("log").read_text()[-5000:] if self.path("log").exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(10)


@pytest.fixture(scope="module")
def _runners(tmp_path_factory, airflow_db):
    """Two run processes for the module's tests (started on first use); a test that leaves one with a
    run unfinished has it replaced."""
    directory = tmp_path_factory.mktemp("runs")
    runners: list[Child] = []
    yield directory, runners, itertools.count()
    for child in runners:
        child.stop()


@pytest.fixture
def children(_runners, airflow_db):
    directory, runners, spawned = _runners

    def give(*confs: dict) -> list[Child]:
        for index, conf in enumerate(confs):
            if index == len(runners) or not runners[index].process.is_alive():
                child = Child(f"run{next(spawned)}", directory).spawn(airflow_db / "airflow.db")
                runners[index : index + 1] = [child]
            runners[index].give(conf)
        deadline = time.monotonic() + 600
        for child in runners[: len(confs)]:
            child.wait_ready(deadline)
        return runners[: len(confs)]

    yield give
    for child in runners:
        if child.busy():  # a run the test did not wait for: no later test may see it
            child.stop()


def _run_one_model_twice(children) -> tuple[dict, dict]:
    """Two runs of the model started together: (the one that took the lock first, the other)."""
    runs = children(demo_conf(), demo_conf())
    for child in runs:
        child.go()
    first, second = sorted(
        (child.result() for child in runs), key=lambda r: len(r["acquire_model_lock"]["waited_for"])
    )
    waited = second["acquire_model_lock"]["waited_seconds"]
    print(f"figure: the later run waited {waited} s for {first['run_id']}")  # shown with pytest -s
    return first, second


def _assert_took_turns(local_aws, a: dict, b: dict) -> None:
    assert (a["state"], b["state"]) == ("success", "success"), (a["states"], b["states"])
    for run in (a, b):
        assert set(run["states"].values()) <= {"success", "skipped"}, run["states"]
        assert run["states"]["acquire_model_lock"] == run["states"]["release_model_lock"] == "success"
    assert a["acquire_model_lock"]["waited_for"] == []
    assert b["acquire_model_lock"]["waited_for"] == [a["run_id"]]
    assert b["acquire_model_lock"]["waited_seconds"] > 0
    assert a["release_model_lock"]["released"] and b["release_model_lock"]["released"]
    assert _lock_object(local_aws) is None
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    # The later run created its first resource only after the earlier run had deployed.
    a_config = sm.describe_endpoint_config(EndpointConfigName=_name(a["run_id"]))
    b_job = sm.describe_training_job(TrainingJobName=_name(b["run_id"]))
    assert b_job["CreationTime"] > a_config["CreationTime"]
    endpoint = sm.describe_endpoint(EndpointName="churn-predictor")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", _name(b["run_id"]))
    # Both runs' models and configs are there: the two kept for rollback, nothing pruned mid-run.
    for run in (a, b):
        assert sm.describe_model(ModelName=_name(run["run_id"]))["ModelName"] == _name(run["run_id"])
        sm.describe_endpoint_config(EndpointConfigName=_name(run["run_id"]))


@pytest.mark.slow
def test_two_runs_of_one_model_with_instant_endpoints_take_turns(scenario, lifecycle, local_aws, children):
    lifecycle.training(seconds=600)  # ten real seconds: the later run arrives while the first trains

    a, b = _run_one_model_twice(children)

    _assert_took_turns(local_aws, a, b)


@pytest.mark.slow
def test_two_runs_of_one_model_with_two_minute_endpoints_take_turns(scenario, lifecycle, local_aws, children):
    lifecycle.training(seconds=600).endpoint_create(seconds=120).endpoint_update(seconds=120)

    a, b = _run_one_model_twice(children)

    _assert_took_turns(local_aws, a, b)


@pytest.mark.slow
def test_two_models_still_run_side_by_side(scenario, lifecycle, local_aws, children):
    lifecycle.training(seconds=600)
    churn, fraud = children(demo_conf(), demo_conf(model_name="fraud-scorer"))

    churn.go()
    fraud.go()
    a, b = churn.result(), fraud.result()

    assert (a["state"], b["state"]) == ("success", "success"), (a["states"], b["states"])
    assert a["acquire_model_lock"]["waited_for"] == b["acquire_model_lock"]["waited_for"] == []
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    jobs = [sm.describe_training_job(TrainingJobName=_name(a["run_id"]))]
    jobs.append(sm.describe_training_job(TrainingJobName=_name(b["run_id"], "fraud-scorer")))
    configs = [sm.describe_endpoint_config(EndpointConfigName=_name(a["run_id"]))]
    configs.append(sm.describe_endpoint_config(EndpointConfigName=_name(b["run_id"], "fraud-scorer")))
    # Both trained at the same time: each job started before either run reached its endpoint.
    assert max(j["CreationTime"] for j in jobs) < min(c["CreationTime"] for c in configs)
    assert {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]} == {
        "churn-predictor",
        "fraud-scorer",
    }


# --- one run, in this process --------------------------------------------------------------------------
def _hold_lock(scenario, run_id: str, **locks_settings) -> Plan:
    """The model's lock as another run of it left it (that run's own call, through the same core)."""
    platform = {**scenario.platform(), "locks": {"check_interval_seconds": 1, **locks_settings}}
    other = Plan.from_xcom(step_plan(None, platform, run_id=run_id))
    s3 = scenario.aws.client("s3", SCIENTIST_ACCOUNT)
    assert locks.try_acquire(s3, plan_lock(other), run_holder(other)).acquired
    return other


def _lock_result(result) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=result.dag_run.run_id,
                dag_ids=DAG_ID,
                task_ids="acquire_model_lock",
                key="return_value",
            )
        ).first()
        return XComModel.deserialize_value(row)


def test_a_wait_that_runs_out_fails_naming_the_model_the_account_and_the_holding_run(
    run_deploy, scenario, monkeypatch, local_aws, capfd
):
    holder = _hold_lock(scenario, "manual__2026-12-01T09:00:00+00:00")
    _use_platform(scenario, monkeypatch, wait_budget_seconds=3)
    started = time.monotonic()

    result = run_deploy(demo_conf())

    assert result.states["acquire_model_lock"] == "failed"
    assert result.states["resolve_tags"] == "upstream_failed"
    assert result.states["release_model_lock"] == "upstream_failed"  # never took the lock: nothing to give
    assert result.state == "failed"
    out = capfd.readouterr().out
    assert (
        f"Model churn-predictor in account {SCIENTIST_ACCOUNT} is locked by run {holder.run_id} of "
        "sagemaker_deploy (since "
    ) in out
    # The budget or a little more: on a loaded machine the last check can end late (it said more than
    # 3 s once, at a load average of 12 on 2 cores).
    waited = re.search(r"this run waited (\d+) s \(platform\.locks\.wait_budget_seconds\) and gave up\.", out)
    assert waited and int(waited.group(1)) >= 3, out[-2000:]
    assert f"deleting s3://{LOCKS_BUCKET}/{_lock_key('churn-predictor')} releases it now" in out
    assert time.monotonic() - started < 120
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []  # nothing was created for the model
    assert _lock_object(local_aws)["run_id"] == holder.run_id  # the holder's lock is left alone


def test_the_lapsed_lock_of_a_killed_run_is_taken_over(run_deploy, scenario, monkeypatch, local_aws):
    killed = _hold_lock(scenario, "manual__2026-12-01T08:00:00+00:00", lease_seconds=1)
    time.sleep(2.2)  # S3's clock counts whole seconds

    result = run_deploy(demo_conf())

    assert result.state == "success", result.states
    taken = _lock_result(result)
    assert taken["took_over_from"] == f"run {killed.run_id} of sagemaker_deploy"
    assert taken["waited_for"] == []
    assert _lock_object(local_aws) is None  # given back at the end


def test_the_lock_is_given_back_after_a_failed_deploy(run_deploy, lifecycle, local_aws):
    lifecycle.endpoint_create(seconds=60, outcome="Failed", failure_reason="health check failed")

    result = run_deploy(demo_conf())

    assert result.states["deploy_endpoint"] == "failed"
    assert result.states["release_model_lock"] == "success"
    assert result.state == "failed"  # the teardown task does not make the run a success
    assert _lock_object(local_aws) is None


def test_without_a_lock_location_runs_go_on_unserialized_and_say_so(
    run_deploy, scenario, monkeypatch, local_aws, capfd
):
    scenario.platform_overrides["locks_s3_uri"] = None
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(scenario.platform()))

    result = run_deploy(demo_conf())

    assert result.state == "success", result.states
    assert _lock_result(result) == {"lock_uri": None}
    assert (
        "platform.locks_s3_uri is not set: runs of model churn-predictor in account" in capfd.readouterr().out
    )
    objects = local_aws.client("s3", SCIENTIST_ACCOUNT).list_objects_v2(Bucket=LOCKS_BUCKET)
    assert objects.get("KeyCount", 0) == 0


def test_the_release_is_the_run_s_teardown_and_the_lock_its_setup(deploy_dag):
    acquire, release = (deploy_dag.get_task(t) for t in LOCK_TASKS)
    assert acquire.is_setup and release.is_teardown
    assert {"assume_role_chain", "validate"} <= acquire.upstream_task_ids
    assert "resolve_tags" in acquire.downstream_task_ids
    assert {"summarize_run", "acquire_model_lock"} <= release.upstream_task_ids
    assert not release.on_failure_fail_dagrun


# --- the two step functions the race broke --------------------------------------------------------------
def _config(sm, name: str, run_id: str, model: str = "churn-predictor", with_model: bool = True) -> None:
    tags = [
        {"Key": "sagelift:model-name", "Value": model},
        {"Key": "sagelift:dag-id", "Value": DAG_ID},
        {"Key": "sagelift:run-id", "Value": run_id},
    ]
    if with_model:
        _model(sm, name, tags)
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
        Tags=tags,
    )
    time.sleep(0.01)  # distinct creation times


def _model(sm, name: str, tags: list | None = None) -> None:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=role_arn(SCIENTIST_ACCOUNT, "sagelift-model-execution"),
        PrimaryContainer={
            "Image": f"{SCIENTIST_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn-serving:1.4",
            "ModelDataUrl": f"s3://{DATA_BUCKET}/models/churn/model.tar.gz",
        },
        Tags=tags or [{"Key": "sagelift:model-name", "Value": "churn-predictor"}],
    )
    time.sleep(0.01)


def test_a_config_another_run_deployed_after_this_one_is_not_called_a_rollback(local_aws):
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    ours, theirs = "churn-predictor-0000aaaa", "churn-predictor-0000bbbb"
    _config(sm, ours, "manual__ours")
    _config(sm, theirs, "manual__theirs")
    endpoint = {
        "EndpointName": "churn-predictor",
        "EndpointStatus": "InService",
        "EndpointConfigName": theirs,
    }

    with pytest.raises(StepFailed) as replaced:
        endpoint_outcome(endpoint, ours, sm)
    rolled_back = {**endpoint, "FailureReason": "health check failed"}
    with pytest.raises(StepFailed) as not_ours:  # newer than ours, so not what a rollback returns to
        endpoint_outcome(rolled_back, ours, sm)
    with pytest.raises(StepFailed) as rollback:  # back on an older config, with SageMaker's reason
        endpoint_outcome({**rolled_back, "EndpointConfigName": ours}, theirs, sm)

    assert str(replaced.value).startswith(
        f"Endpoint churn-predictor is serving config {theirs} of run manual__theirs of sagemaker_deploy, "
        f"not this run's {ours}: that run changed the endpoint after this one (not a rollback)"
    )
    assert "not a rollback" in str(not_ours.value)
    assert "SageMaker rolled the update back. health check failed" in str(rollback.value)


def _names(sm) -> tuple[set[str], set[str]]:
    return (
        {m["ModelName"] for m in sm.list_models()["Models"]},
        {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]},
    )


@pytest.mark.parametrize(
    ("in_progress", "deleted_orphan"),
    [(None, False), (frozenset({"0000dddd"}), False), (frozenset(), True)],
    ids=["not-serialized", "holder-spared", "serialized-no-other-run"],
)
def test_pruning_spares_the_resources_of_runs_in_progress(local_aws, in_progress, deleted_orphan):
    sm = local_aws.client("sagemaker", SCIENTIST_ACCOUNT)
    old1, old2 = "churn-predictor-00001111", "churn-predictor-00002222"
    waiting, ours, later = "churn-predictor-0000dddd", "churn-predictor-0000aaaa", "churn-predictor-0000eeee"
    _config(sm, old1, "r1")
    _config(sm, old2, "r2")
    _model(sm, waiting)  # a run between create_model and deploy_endpoint: its model, no config yet
    _config(sm, ours, "ours")
    _config(sm, later, "later")  # a run that deploys after this one: newer than the config in service

    deleted = prune_revisions(sm, "churn-predictor", ours, keep=1, in_progress=in_progress)

    models, configs = _names(sm)
    assert configs == {ours, later}  # keep=1: the one in service, and the newer one of a run deploying
    assert old1 not in models and old2 not in models and {ours, later} <= models
    assert (waiting not in models) == deleted_orphan
    assert set(deleted) == {old1, old2} | ({waiting} if deleted_orphan else set())
