"""DAG integrity: every DAG imports cleanly, without network or database access, and wires what it should."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import ROOT

EXPECTED_TASKS = [
    "validate",
    "ensure_pvc",
    "assume_role_chain",
    "plan_changes",
    "acquire_model_lock",
    "resolve_tags",
    "copy_images",
    "label_data",
    "train_model",
    "tune_model",
    "register_model",
    "approve_deploy",
    "recommend_instance",
    "create_model",
    "deploy_endpoint",
    "expose_api",
    "monitor_endpoint",
    "batch_transform",
    "summarize_run",
    "release_model_lock",
]


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "sagemaker_deploy" in dagbag.dag_ids


def test_sagemaker_deploy_runs_the_nine_steps_in_order(dagbag):
    dag = dagbag.get_dag("sagemaker_deploy")
    order = [t.task_id for t in dag.topological_sort()]
    assert order == EXPECTED_TASKS
    for index, (upstream, downstream) in enumerate(itertools.pairwise(EXPECTED_TASKS)):
        # Each step follows the one before it; its data edges (.output) come only from earlier steps.
        upstream_ids = dag.get_task(downstream).upstream_task_ids
        assert upstream in upstream_ids
        assert upstream_ids <= set(EXPECTED_TASKS[: index + 1]), downstream
    # Every step after validate reads the plan validate returned, through its templated inputs.
    for task in dag.tasks[1:]:
        assert "validate" in task.upstream_task_ids, task.task_id
    assert dag.schedule is None
    assert dag.catchup is False
    assert dag.doc_md and "validate" in dag.doc_md
    assert all(t.retries >= 1 for t in dag.tasks)


def test_dag_files_do_no_io_at_import(tmp_path):
    """Import every DAG file in a fresh interpreter where sockets and the metadata DB are unusable."""
    probe = textwrap.dedent(f"""
        import socket, sys, runpy, os
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = "sqlite:////nonexistent/dir/never.db"
        def refuse(*a, **k):
            raise RuntimeError("network access at DAG import")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        import sqlalchemy.engine
        def no_db(*a, **k):
            raise RuntimeError("database access at DAG import")
        sqlalchemy.engine.Engine.connect = no_db
        sys.path[:0] = [{str(ROOT / "plugins")!r}, {str(ROOT)!r}]
        for name in {[p.name for p in (ROOT / "dags").glob("*.py")]!r}:
            runpy.run_path({str(ROOT / "dags")!r} + "/" + name)
        print("ok")
    """)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


def test_sockets_are_real_in_this_process():
    # Guard for the test above: the probe's patching is local to its own interpreter.
    assert socket.socket.connect is not None


def test_each_dag_file_is_one_line_naming_the_package_s_dag_module():
    """A deployment's dags/ holds one line per DAG (dag_id == file stem); the definitions are the
    package's, importable as sagelift.dags.<dag file>."""
    for path in (ROOT / "dags").glob("*.py"):
        (line,) = path.read_text().splitlines()
        assert line.startswith(f"from sagelift.dags.{path.stem} import "), path.name
        assert (ROOT / "plugins/sagelift/dags" / path.name).is_file()


def test_the_package_s_own_dag_folder_holds_the_same_dags(dagbag):
    from airflow.dag_processing.dagbag import DagBag

    package = DagBag(dag_folder=str(ROOT / "plugins/sagelift/dags"))
    assert package.import_errors == {}
    assert set(package.dag_ids) == set(dagbag.dag_ids)
    for dag_id in package.dag_ids:
        assert package.get_dag(dag_id).task_ids == dagbag.get_dag(dag_id).task_ids


def test_approve_deploy_tells_the_deployers_that_a_run_waits(dagbag):
    from sagelift.notifications import SageliftNotifier

    task = dagbag.get_dag("sagemaker_deploy").get_task("approve_deploy")
    assert [(type(n), n.event) for n in task.notifiers] == [(SageliftNotifier, "approval")]
