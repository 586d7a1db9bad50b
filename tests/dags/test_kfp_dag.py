"""sagemaker_deploy_kfp: the sibling DAG that runs the same conf on Kubeflow Pipelines."""

from __future__ import annotations

import pytest

from sagelift.operators.kfp import DEFAULT_PACKAGE
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def dags(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag("sagemaker_deploy"), bag.get_dag("sagemaker_deploy_kfp")


def _param_definitions(dag):
    return {name: (param.value, param.schema) for name, param in dag.params.items()}


def test_kfp_dag_takes_the_parameters_of_sagemaker_deploy(dags):
    airflow_dag, kfp_dag = dags
    assert _param_definitions(kfp_dag) == _param_definitions(airflow_dag)


def test_kfp_dag_validates_then_runs_the_compiled_pipeline(dags):
    _, dag = dags
    assert [t.task_id for t in dag.topological_sort()] == ["validate", "run_kfp_pipeline"]
    assert dag.get_task("run_kfp_pipeline").upstream_task_ids == {"validate"}
    run = dag.get_task("run_kfp_pipeline")
    assert run.pipeline_package_path is None  # the compiled pipeline shipped in the package
    assert DEFAULT_PACKAGE.is_file()
    assert dag.schedule is None and dag.catchup is False
    assert all(t.retries >= 1 for t in dag.tasks)
