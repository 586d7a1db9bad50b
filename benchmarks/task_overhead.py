"""What each task of a sagemaker_deploy run costs beyond its own work, against a no-op task's floor.

    .venv/bin/python benchmarks/task_overhead.py [--runs 3] [--modes pyc nopyc]

A real Airflow (``tests.support.airflow_standalone``: scheduler with the LocalExecutor, triggerer,
dag-processor, API server as processes, the default task start, no forkserver preload) runs, from a
folder holding a copy of ``dags/sagemaker_deploy.py`` and a floor DAG, alternately:

- ``task_floor``: a chain of no-op tasks (a BaseOperator whose ``execute`` returns) in a DAG file that
  imports only ``airflow.sdk``: what any task costs on this machine. (EmptyOperator itself is never run
  by a worker: the scheduler marks it done, so it has no start or parse to compare with.)
- ``sagemaker_deploy`` with the demo conf (a new model name each run) against the local AWS (moto on
  loopback, in this process) with SageMaker's lifecycle emulated as instant: training completes and
  endpoints are InService at once, so the run's time is Airflow's and sagelift's, not AWS's.

Per task, from the task instance and its log (medians over ``--runs`` runs):

- queued: scheduled -> queued (the scheduler); start: queued -> start_date (the executor hands the
  task to a worker, which starts the task's supervisor);
- parse: start_date -> the task runner has loaded the DAG file (its log line "Filling up the DagBag"
  opens it, the first line after it closes it): the task process imports the DAG file;
- execute: the rest, to end_date (the operator's own work, deferrals included).

overhead = queued + start + parse, and the ratio/excess is printed against the floor's per-task median
of the same. Also printed: seconds from the trigger (POST dagRuns) to the first AWS request the local
AWS received, and the run's wall time. ``--modes nopyc`` runs every Airflow process with
``PYTHONPYCACHEPREFIX`` at an empty folder (and PYTHONDONTWRITEBYTECODE=1): nothing compiled is found,
as in a venv without .pyc; ``pyc`` gives them a pycache folder of the benchmark's own, so that sagelift
(dags/ and plugins/, which the repository never holds .pyc for) is compiled too, as an installed wheel
is, by a warm-up run that is not counted. The venv itself is not touched. Targets (issue 19): overhead at most 0.5 s
per task over the floor with bytecode, 1.5 s without; first AWS call at most 5 s after the trigger.

Not measured: AWS latency (the local AWS answers at once), a loaded worker pool (one run at a time),
the Celery or Kubernetes executors.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

FLOOR_TASKS = 6
FLOOR_DAG = f'''"""No-op tasks: the floor of a task's cost (benchmarks/task_overhead.py)."""

from airflow.sdk import DAG, BaseOperator, chain


class NoOp(BaseOperator):
    def execute(self, context):
        return None


with DAG(dag_id="task_floor", schedule=None, catchup=False):
    chain(*[NoOp(task_id=f"noop_{{i}}") for i in range({FLOOR_TASKS})])
'''
PARSE_START = "Filling up the DagBag"


def _when(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


class FirstRequest:
    """Records when the local AWS received its first request after ``arm()``."""

    def __init__(self, aws: Any) -> None:
        self._inner = aws.request_hook
        self._lock = threading.Lock()
        self.armed_at: float | None = None
        self.first: float | None = None
        aws.request_hook = self

    def arm(self) -> None:
        with self._lock:
            self.armed_at, self.first = time.time(), None

    def __call__(self, environ: dict[str, Any]) -> Any:
        with self._lock:
            if self.armed_at is not None and self.first is None:
                self.first = time.time()
        return self._inner(environ) if self._inner is not None else None


def task_phases(af: Any, dag_id: str, run_id: str) -> dict[str, dict[str, float]]:
    """task_id -> queued, start, parse, execute seconds (see the module docstring)."""
    response = af.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    response.raise_for_status()
    phases: dict[str, dict[str, float]] = {}
    for ti in response.json()["task_instances"]:
        if ti["state"] != "success" or not ti.get("start_date"):
            continue
        scheduled, queued = _when(ti.get("scheduled_when")), _when(ti.get("queued_when"))
        start, end = _when(ti["start_date"]), _when(ti["end_date"])
        assert start is not None and end is not None
        parsed = _parse_end(af, dag_id, run_id, ti["task_id"], ti.get("try_number") or 1)
        parse_end = min(max(parsed or start, start), end)
        # A task resumed after a deferral is queued again: its queued_when is then after its start_date,
        # and the first queueing is not recorded any more (its queued and start read 0 and its start).
        queued = min(queued, start) if queued else start
        scheduled = min(scheduled, queued) if scheduled else queued
        phases[ti["task_id"]] = {
            "began": start,
            "queued": (queued - scheduled) if scheduled else 0.0,
            "start": start - queued,
            "parse": parse_end - start,
            "execute": end - parse_end,
        }
    return phases


def _parse_end(af: Any, dag_id: str, run_id: str, task_id: str, try_number: int) -> float | None:
    """When the task runner had loaded the DAG file: the first log line after "Filling up the DagBag"."""
    response = af.get(
        f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
        full_content="true",
    )
    if response.status_code != 200:
        return None
    seen = False
    for entry in response.json().get("content", []):
        stamp = _when(entry.get("timestamp")) if isinstance(entry, dict) else None
        if stamp is None:
            continue
        if seen:
            return stamp
        seen = PARSE_START in str(entry.get("event", ""))
    return None


def run_dag(af: Any, dag_id: str, conf: dict[str, Any], probe: FirstRequest | None) -> dict[str, Any]:
    if probe is not None:
        probe.arm()
    triggered = time.time()
    run_id = af.trigger(dag_id, conf)
    run = af.wait_for_run(dag_id, run_id, timeout=600)
    if run["state"] != "success":
        states = af.task_states(dag_id, run_id)
        failed = [task for task, state in states.items() if state == "failed"]
        logs = {task: af.task_log(dag_id, run_id, task)[-8:] for task in failed}
        raise RuntimeError(f"{dag_id} {run_id}: {run['state']}: {states}\n{logs}")
    wall = (_when(run["end_date"]) or time.time()) - triggered
    first = (probe.first - triggered) if probe is not None and probe.first else None
    return {"phases": task_phases(af, dag_id, run_id), "wall": wall, "first_aws": first}


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(aws: Any, mode: str, runs: int) -> None:
    from tests.support.airflow_standalone import ADMIN, AirflowStandalone
    from tests.support.local_aws import SCIENTIST_ACCOUNT
    from tests.support.sagemaker_lifecycle import SageMakerLifecycle
    from tests.support.scenario import Scenario, demo_conf

    home = Path(tempfile.mkdtemp(prefix="sagelift-overhead-"))
    dags = home / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "sagemaker_deploy.py", dags / "sagemaker_deploy.py")
    (dags / "task_floor.py").write_text(FLOOR_DAG)
    aws.reset()  # moto keeps its accounts per process: each mode starts from an empty local AWS
    scenario = Scenario(aws)
    scenario.platform_overrides["sagemaker"] = {"check_interval_seconds": 1}
    # The runs are triggered through the REST API as the standalone's admin user.
    scenario.platform_overrides["accounts"] = {SCIENTIST_ACCOUNT: {"deployers": {"users": [ADMIN]}}}
    scenario.build()
    env = {**scenario.airflow_env(), "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    if mode == "nopyc":
        env.update(PYTHONPYCACHEPREFIX=str(home / "no-pycache"), PYTHONDONTWRITEBYTECODE="1")
    else:  # sagelift compiled too, as an installed wheel has it (a warm-up run writes its .pyc)
        env.update(PYTHONPYCACHEPREFIX=str(home / "pycache"), PYTHONDONTWRITEBYTECODE="")
    with (
        SageMakerLifecycle(time_scale=1).installed(aws),
        AirflowStandalone(env=env, start_timeout=600) as af,
    ):
        probe = FirstRequest(aws)
        af.wait_for_dag("task_floor", timeout=600)
        af.wait_for_dag("sagemaker_deploy", timeout=600)
        floors, deploys = [], []
        if mode == "pyc":
            run_dag(af, "task_floor", {}, None)
            run_dag(af, "sagemaker_deploy", demo_conf(model_name=f"overhead-{mode}-warm"), None)
        for i in range(runs):
            floors.append(run_dag(af, "task_floor", {}, None))
            conf = demo_conf(model_name=f"overhead-{mode}-{i}")
            deploys.append(run_dag(af, "sagemaker_deploy", conf, probe))
    report(mode, runs, floors, deploys)
    shutil.rmtree(home, ignore_errors=True)


def report(mode: str, runs: int, floors: list[dict[str, Any]], deploys: list[dict[str, Any]]) -> None:
    keys = ("queued", "start", "parse", "execute")
    floor = {k: median([p[k] for f in floors for p in f["phases"].values()]) for k in keys}
    floor_overhead = floor["queued"] + floor["start"] + floor["parse"]
    target = 0.5 if mode == "pyc" else 1.5
    label = "with bytecode" if mode == "pyc" else "without bytecode"
    print(f"\nPer-task time, {label}: median of {runs} runs (seconds)")
    print(
        f"  {'task':22} {'queued':>7} {'start':>7} {'parse':>7} {'execute':>8} {'overhead':>9} {'x floor':>8} {'excess':>7}"
    )
    print(
        f"  {'floor (no-op task)':22} {floor['queued']:7.2f} {floor['start']:7.2f} {floor['parse']:7.2f} "
        f"{floor['execute']:8.2f} {floor_overhead:9.2f} {1.0:8.1f} {0.0:7.2f}"
    )
    tasks = sorted(
        {t for d in deploys for t in d["phases"]},
        key=lambda t: deploys[0]["phases"].get(t, {}).get("began", 0),
    )
    excesses = []
    for task in tasks:
        m = {k: median([d["phases"][task][k] for d in deploys if task in d["phases"]]) for k in keys}
        overhead = m["queued"] + m["start"] + m["parse"]
        excess = overhead - floor_overhead
        excesses.append(excess)
        print(
            f"  {task:22} {m['queued']:7.2f} {m['start']:7.2f} {m['parse']:7.2f} {m['execute']:8.2f} "
            f"{overhead:9.2f} {overhead / floor_overhead:8.1f} {excess:7.2f}"
        )
    first = [d["first_aws"] for d in deploys if d["first_aws"] is not None]
    print(
        f"  median excess over the floor per task: {median(excesses):.2f} s, largest {max(excesses):.2f} s "
        f"(target <= {target} s)"
    )
    print(f"  trigger -> first AWS call: {median(first):.2f} s (target <= 5 s)")
    print(
        f"  run wall time: sagemaker_deploy {median([d['wall'] for d in deploys]):.1f} s, "
        f"task_floor ({FLOOR_TASKS} tasks) {median([f['wall'] for f in floors]):.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["pyc", "nopyc"], choices=["pyc", "nopyc"])
    args = parser.parse_args()
    from tests.support.local_aws import LocalAws

    with LocalAws() as aws:
        for mode in args.modes:
            measure(aws, mode, args.runs)


if __name__ == "__main__":
    main()
