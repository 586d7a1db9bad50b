"""How long Airflow's own DAG processor takes to parse each DAG file, against an empty DAG's file.

Runs the real ``airflow dag-processor`` (one pass, ``--num-runs 1``, one parsing process so files do not
share the 2 cores) over a folder holding copies of the package's DAG files (``plugins/sagelift/dags/
sagemaker_*.py``, the DAG folder the Helm image uses; the repository's one-line ``dags/*.py`` re-export
them and lose the pre-import, about 2x slower, see the README) and an empty DAG, and reads the parse
time the processor itself records for each DAG (``dag.last_parse_duration``: from the fork of the
parsing process to its result, i.e. what each parse costs once the manager has pre-imported the
``airflow.*`` modules the file names at its top, ``[dag_processor] parsing_pre_import_modules``).
Each pass is a fresh processor; the median of ``RUNS`` passes is printed per file with its ratio to the
empty DAG, with bytecode (every module compiled once, sagelift's too, into a pycache folder of the
benchmark: ``PYTHONPYCACHEPREFIX``) and without (``PYTHONPYCACHEPREFIX`` pointed at an empty folder and
nothing written, so nothing compiled is found). The venv is left as it is.

"CPU s" is the CPU time of the same parse, measured apart: one interpreter imports what the manager
has (``airflow.dag_processing.manager``), pre-imports each file's ``airflow.*`` imports and forks a child
that loads the file and serializes its DAGs with the processor's own functions (``BundleDagBag``,
``_serialize_dags``); on a shared machine the wall time grows with the load, the CPU time much less.

Usage: ``.venv/bin/python benchmarks/dag_parse.py`` (``RUNS=3``, ``MODES=pyc,nopyc``). Target: every
file at most 0.35 s in both modes.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("RUNS", "3"))
MODES = os.environ.get("MODES", "pyc,nopyc").split(",")
TARGET = 0.35

EMPTY_DAG = '''"""An empty DAG: the floor of a parse."""

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="empty_floor", schedule=None, catchup=False):
    EmptyOperator(task_id="nothing")
'''


def environment(home: Path, dags: Path, bytecode: bool) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_VAR_", "AIRFLOW_CONN_"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES="1",
        AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT="300",
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="300",
        AIRFLOW__SAGELIFT__RETRAIN_REGISTRY=str(ROOT / "include" / "examples" / "retrain"),
        AIRFLOW__AWS__SESSION_FACTORY="sagelift.hooks.session_factory.RoleChainSessionFactory",
        PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
        PYTHONDONTWRITEBYTECODE="1",
    )
    if bytecode:
        # sagelift too, as an installed wheel has it: dags/ and plugins/ get their .pyc in a folder of
        # the benchmark's own (written by the first pass, which is not counted).
        env.update(PYTHONPYCACHEPREFIX=str(home / "pycache"), PYTHONDONTWRITEBYTECODE="")
    else:
        env["PYTHONPYCACHEPREFIX"] = str(home / "no-pycache")
    return env


def parse_once(home: Path, dags: Path, bytecode: bool) -> dict[str, float]:
    """One pass of a fresh DAG processor; seconds per DAG file (the file of each dag_id)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = environment(home, dags, bytecode)
    with (home / "dag-processor.log").open("ab") as log:
        subprocess.run(
            [airflow, "dag-processor", "--num-runs", "1"],
            env=env,
            cwd=home,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=900,
        )
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT fileloc, last_parse_duration FROM dag").fetchall()
    return {Path(fileloc).name: float(duration) for fileloc, duration in rows if duration is not None}


CPU_PROBE = r"""
import ast, importlib, json, os, sys
from pathlib import Path

import airflow.sdk
import structlog
from airflow.dag_processing import manager  # what the processor's manager has imported
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.dag_processing.processor import _serialize_dags


def airflow_imports(path):
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("airflow."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("airflow."):
            yield node.module


cpu, tasks = {}, {}
for path in sys.argv[1:]:
    for module in airflow_imports(path):  # the manager's pre-import, before the fork
        importlib.import_module(module)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # what the parsing process does: load the file, serialize its DAGs
        bag = BundleDagBag(dag_folder=path, bundle_path=Path(path).parent, bundle_name="dags-folder", load_op_links=False)
        _serialize_dags(bag, structlog.get_logger())
        counts = [len(dag.tasks) for dag in bag.dags.values()]
        os.write(write_end, json.dumps(counts).encode())
        os._exit(0 if bag.dags and not bag.import_errors else 1)
    os.close(write_end)
    _, status, usage = os.wait4(pid, 0)
    name = os.path.basename(path)
    cpu[name] = usage.ru_utime + usage.ru_stime if status == 0 else float("nan")
    tasks[name] = json.loads(os.read(read_end, 4096) or b"[]")
    os.close(read_end)
print(json.dumps({"cpu": cpu, "tasks": tasks}))
"""


def parse_cpu(home: Path, dags: Path, bytecode: bool) -> tuple[dict[str, float], dict[str, list[int]]]:
    """CPU seconds of each file's parse in a forked child, as the processor forks it (load-independent),
    and the task count of each DAG the file defines."""
    env = environment(home, dags, bytecode)
    files = [str(p) for p in sorted(dags.glob("*.py"))]
    out = subprocess.run(
        [sys.executable, "-c", CPU_PROBE, *files], env=env, cwd=home, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"the CPU probe failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(result["cpu"]), dict(result["tasks"])


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="sagelift-parse-"))
    dags = home / "dags"
    dags.mkdir()
    for path in sorted((ROOT / "plugins" / "sagelift" / "dags").glob("sagemaker_*.py")):
        shutil.copy(path, dags / path.name)
    (dags / "empty_floor.py").write_text(EMPTY_DAG)
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run(
        [airflow, "db", "migrate"],
        env=environment(home, dags, True),
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    try:
        for mode in MODES:
            bytecode = mode == "pyc"
            if bytecode:
                parse_once(home, dags, bytecode)  # compiles what has no .pyc yet into the pycache folder
            passes = [parse_once(home, dags, bytecode) for _ in range(RUNS)]
            probes = [parse_cpu(home, dags, bytecode) for _ in range(RUNS)]
            cpu_passes = [cpu for cpu, _ in probes]
            tasks = probes[0][1]
            files = sorted({name for result in passes for name in result})
            median = {name: statistics.median(p[name] for p in passes if name in p) for name in files}
            cpu = {name: statistics.median(p.get(name, float("nan")) for p in cpu_passes) for name in files}
            floor = median.get("empty_floor.py", float("nan"))
            cpu_floor = cpu.get("empty_floor.py", float("nan"))
            label = "with bytecode" if bytecode else "without bytecode"
            load = os.getloadavg()[0]
            print(f"\nDAG processor parse time per file, {label} (median of {RUNS} passes, load {load:.1f})")
            print(
                f"  {'file':28} {'seconds':>8} {'x empty':>8} {'target':>8} {'CPU s':>7} {'x empty':>8}  tasks"
            )
            for name in files:
                verdict = "" if name == "empty_floor.py" else ("ok" if median[name] <= TARGET else "OVER")
                print(
                    f"  {name:28} {median[name]:8.3f} {median[name] / floor:8.1f} {verdict:>8} "
                    f"{cpu[name]:7.3f} {cpu[name] / cpu_floor:8.1f}  {'+'.join(map(str, tasks.get(name, [])))}"
                )
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
