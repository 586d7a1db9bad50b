"""Scale-out on a real Airflow (issue 18 item 3): the CeleryExecutor with two Celery workers and a Redis
broker from Debian, on loopback, and two triggerers.

- A worker dies (SIGKILL, with the task processes it runs, as when its container or node goes) while
  train_model waits in it with deferral off: the scheduler finds the task's heartbeat gone, the retry runs
  on the surviving worker, adopts the training job the first try created, and the run ends as an
  undisturbed run does: one training job, the endpoint serving this run's config, the API in front.
- A second triggerer dies while it holds half of 100 deferred waits: the survivor takes them over once
  the dead one misses ``[triggerer] triggerer_health_check_threshold`` (5 s here), and every wait
  completes. The waits are sagelift's SageMaker training trigger on 100 emulated training jobs, started
  by the scheduler and ended by the triggerer (tests/scaleout/waits.py), so they cost no worker.

One Airflow (tests/support/airflow_standalone.py, with ``spawn`` for the workers and the second
triggerer) serves both tests; its DAG folder holds the deploy DAG (retried after 2 s
instead of 30 s) and the waits' DAG (tests/scaleout/dags/). It runs on SQLite, which the scheduler, the API server and the Celery result
backend share; production uses Postgres (docker-compose.yaml's celery profile).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sagelift.domain.plan import derive_run_key
from tests.conftest import ROOT
from tests.support.airflow_standalone import ADMIN, AirflowStandalone, free_port
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import Scenario, demo_conf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEPLOY = "sagemaker_deploy"
WAITS_DAG = "wait_for_training"
WAITS = 100
MODEL = "churn-scaled"
HERE = Path(__file__).parent


def celery_importable() -> str:
    """Why the Celery executor cannot load here ('' when it can)."""
    try:
        import airflow.providers.celery.executors.celery_executor  # noqa: F401
    except ImportError as error:
        # celery 5.7 dropped celery.backends.database.retry, which the Celery provider (3.26) imports
        return f"the Celery executor does not import (celery<5.7 needed?): {error}"
    return ""


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Debian's redis-server on a free loopback port, nothing persisted; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not on PATH: python3 scripts/system_deps.py installs it")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.2)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


class Cluster:
    def __init__(self, aws, af: AirflowStandalone, life: SageMakerLifecycle) -> None:
        self.aws, self.af, self.life = aws, af, life
        self.workers = {name: af.spawn(*worker_command(name)) for name in ("w1", "w2")}

    def worker_running(self, pid: int) -> str:
        """The worker whose process tree holds ``pid``."""
        for name, worker in self.workers.items():
            tree = [worker.pid, *(child.pid for child in psutil.Process(worker.pid).children(recursive=True))]
            if pid in tree:
                return name
        raise AssertionError(f"no worker runs pid {pid}")

    def triggerers(self) -> dict[str | None, int]:
        """Trigger rows per triggerer job id, read from the metadata database."""
        with contextlib.closing(sqlite3.connect(self.af.home / "airflow.db", timeout=30)) as db:
            rows = db.execute("SELECT triggerer_id, count(*) FROM trigger GROUP BY triggerer_id").fetchall()
        return {row[0]: row[1] for row in rows}


def worker_command(name: str) -> list[str]:
    return [
        "celery",
        "worker",
        "--concurrency",
        "1",
        "--celery-hostname",
        f"{name}@sagelift",
        "--skip-serve-logs",
    ]


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything under it, children first seen, all at once (a node's death)."""
    root = psutil.Process(pid)
    for process in [*root.children(recursive=True), root]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster(local_aws_server, airflow_db, tmp_path_factory) -> Iterator[Cluster]:
    if reason := celery_importable():
        pytest.skip(reason)
    dags = tmp_path_factory.mktemp("scaleout-dags")
    (dags / f"{DEPLOY}.py").symlink_to(HERE / "dags" / f"{DEPLOY}.py")  # retried after 2 s, not 30 s
    (dags / f"{WAITS_DAG}.py").symlink_to(HERE / "dags" / f"{WAITS_DAG}.py")
    local_aws_server.reset()
    scenario = Scenario(local_aws_server)
    # deferral off: train_model waits in the worker, so a worker's death is the death of the wait
    scenario.platform_overrides["sagemaker"] = {"check_interval_seconds": 1, "deferrable": False}
    scenario.platform_overrides["accounts"] = {SCIENTIST_ACCOUNT: {"deployers": {"users": [ADMIN]}}}
    scenario.build()
    with redis_server() as broker:
        env = {
            **scenario.airflow_env(),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": broker,
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            # the workers' tasks start with the DAG files' imports loaded (tests/scaleout/celery_preload.py)
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "tests.scaleout.celery_preload.CELERY_CONFIG",
            # a dead worker's task is failed (and retried) 12 s after its last heartbeat; a live task
            # heartbeats every second here (AirflowStandalone: [workers] min_heartbeat_interval 1)
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "12",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            # a dead triggerer's triggers go to the survivor 5 s after its last heartbeat
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
            # the Airflow processes see what this one sees first (a site folder given by PYTHONPATH)
            "PYTHONPATH": os.pathsep.join(
                [*filter(None, [os.environ.get("PYTHONPATH")]), str(ROOT / "plugins"), str(ROOT)]
            ),
        }
        with (
            SageMakerLifecycle(time_scale=10).installed(local_aws_server) as life,
            AirflowStandalone(env=env, keep_home=bool(os.environ.get("SAGELIFT_KEEP_AIRFLOW_HOME"))) as af,
        ):
            yield Cluster(local_aws_server, af, life)


def test_a_worker_killed_mid_task_has_the_task_retried_on_the_other(cluster: Cluster) -> None:
    af, sm = cluster.af, cluster.aws.client("sagemaker", SCIENTIST_ACCOUNT)
    # thirty real seconds: long enough to die in, and still running when the retry adopts it (the kill's
    # detection takes 12 s, the retry starts 2 s later)
    cluster.life.training(seconds=300)
    run_id = af.trigger(DEPLOY, demo_conf(model_name=MODEL))
    job = f"{MODEL}-{derive_run_key(DEPLOY, run_id)}"
    af.wait_for_task_state(DEPLOY, run_id, "train_model", "running", timeout=300)
    deadline = time.monotonic() + 60
    while not sm.list_training_jobs(NameContains=job)["TrainingJobSummaries"]:  # the wait has begun
        assert time.monotonic() < deadline, af.log_tail()
        time.sleep(0.5)
    ti = af.get(f"/api/v2/dags/{DEPLOY}/dagRuns/{run_id}/taskInstances/train_model").json()
    assert ti["state"] == "running" and ti["try_number"] == 1 and ti["pid"], ti
    victim = cluster.worker_running(ti["pid"])
    survivor = next(name for name in cluster.workers if name != victim)
    kill_tree(cluster.workers[victim].pid)
    killed_at = time.monotonic()

    run = af.wait_for_run(DEPLOY, run_id, timeout=600)

    assert run["state"] == "success", af.task_states(DEPLOY, run_id)
    retried = af.get(f"/api/v2/dags/{DEPLOY}/dagRuns/{run_id}/taskInstances/train_model").json()
    assert retried["try_number"] == 2, retried
    # the retry can only have run on the survivor: the victim's whole tree is gone
    assert cluster.workers[victim].poll() == -signal.SIGKILL and cluster.workers[survivor].poll() is None
    # the retry adopted the first try's job: one job, trained once, and the run's resources in place
    jobs = sm.list_training_jobs(NameContains=MODEL)["TrainingJobSummaries"]
    assert [(j["TrainingJobName"], j["TrainingJobStatus"]) for j in jobs] == [(job, "Completed")]
    endpoint = sm.describe_endpoint(EndpointName=MODEL)
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", job)
    apis = cluster.aws.client("apigateway", SCIENTIST_ACCOUNT).get_rest_apis()["items"]
    assert [api["name"] for api in apis] == [MODEL]
    print(f"\nworker {victim} killed; run converged {time.monotonic() - killed_at:.0f} s later on {survivor}")


def test_a_triggerer_killed_mid_wait_leaves_every_wait_to_the_survivor(cluster: Cluster) -> None:
    af, sm = cluster.af, cluster.aws.client("sagemaker", SCIENTIST_ACCOUNT)
    cluster.life.training(seconds=600)  # a minute of real time: the jobs outlive the second triggerer
    for index in range(WAITS):
        sm.create_training_job(**training_request(f"scaleout-wait-{index:03d}"))
    first = cluster.af.pid("triggerer")
    # the first triggerer sleeps while the second one takes its share: half of the waits
    os.kill(first, signal.SIGSTOP)
    try:
        second = af.spawn("triggerer", "--skip-serve-logs", "--capacity", str(WAITS // 2))
        run_id = af.trigger(WAITS_DAG)
        held: dict[str | None, int] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            held = cluster.triggerers()
            if sum(held.values()) == WAITS and WAITS // 2 in held.values():
                break
            time.sleep(1)
        assert WAITS // 2 in held.values(), held
        second_id = next(job for job, count in held.items() if job is not None)
    finally:
        os.kill(first, signal.SIGCONT)
    deadline = time.monotonic() + 60
    while None in cluster.triggerers() and time.monotonic() < deadline:
        time.sleep(1)
    held = cluster.triggerers()
    assert len(held) == 2 and sum(held.values()) == WAITS, held  # both hold waits, none has ended yet

    first_id = next(job for job in held if job != second_id)

    kill_tree(second.pid)
    killed_at = time.monotonic()
    deadline = killed_at + 60
    while second_id in held and time.monotonic() < deadline:
        time.sleep(1)
        held = cluster.triggerers()
    # the survivor took the dead one's waits over while they were all still waiting
    assert held == {first_id: WAITS}, held
    taken_over = time.monotonic() - killed_at
    run = af.wait_for_run(WAITS_DAG, run_id, timeout=300)

    answer = af.get(f"/api/v2/dags/{WAITS_DAG}/dagRuns/{run_id}/taskInstances", limit=WAITS).json()
    states = {ti["task_id"]: ti["state"] for ti in answer["task_instances"]}
    assert run["state"] == "success", {task: s for task, s in states.items() if s != "success"}
    assert len(states) == WAITS and set(states.values()) == {"success"}
    assert cluster.triggerers() == {}  # every trigger ran to its end and was cleaned up
    print(
        f"\ntriggerer killed with {WAITS // 2} waits; taken over {taken_over:.0f} s later, "
        f"all {WAITS} done {time.monotonic() - killed_at:.0f} s later"
    )


def training_request(name: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": f"{SCIENTIST_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/churn-train:1.4",
            "TrainingInputMode": "File",
        },
        "RoleArn": f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-pipeline-execution",
        "OutputDataConfig": {"S3OutputPath": "s3://scientist-ml-data/scaleout/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
