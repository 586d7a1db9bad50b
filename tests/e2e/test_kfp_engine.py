"""The same conf on the KFP engine: sagemaker_deploy_kfp validates, submits one v2 run and follows it."""

from __future__ import annotations

import pytest

from sagelift.domain.kfp import PIPELINE_EXTRA_PARAMETERS
from sagelift.domain.params import ORIGINAL_PARAMETER_NAMES
from tests.conftest import ROOT
from tests.support.botocore_validation import recording_aws_calls
from tests.support.kfp_api import KfpApiDouble
from tests.support.scenario import demo_conf

pytestmark = pytest.mark.e2e


@pytest.fixture
def kfp_api(monkeypatch):
    with KfpApiDouble() as kfp:
        monkeypatch.setenv("AIRFLOW_CONN_KUBEFLOW_PIPELINES_DEFAULT", kfp.connection_json())
        yield kfp


@pytest.fixture
def kfp_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag("sagemaker_deploy_kfp")
    dag.get_task("run_kfp_pipeline").poll_interval = 0.2
    return dag


def _run(dag, conf):
    with recording_aws_calls() as calls:
        dag_run = dag.test(run_conf=conf)
    return dag_run, {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}, calls


def test_same_conf_runs_as_one_kfp_run_with_the_thirteen_parameters(scenario, kfp_api, kfp_dag):
    kfp_api.set_run_outcome("SUCCEEDED", after_polls=1)
    _, states, calls = _run(kfp_dag, demo_conf())

    assert states == {"validate": "success", "run_kfp_pipeline": "success"}, states
    assert calls == []  # the Airflow side touches no AWS API: KFP does the work
    [run] = kfp_api.runs.values()
    parameters = run["runtime_config"]["parameters"]
    assert list(parameters) == [*ORIGINAL_PARAMETER_NAMES, *PIPELINE_EXTRA_PARAMETERS]
    assert parameters["model_name"] == "churn-predictor"
    assert parameters["training_instance_count"] == 2
    assert "pipeline_spec" not in run or not run.get("pipeline_spec")


def test_a_failed_kfp_run_fails_the_task_with_its_error(scenario, kfp_api, kfp_dag, capfd):
    kfp_api.set_run_outcome("FAILED", "train_model: ResourceLimitExceeded for ml.p4d.24xlarge", after_polls=1)
    kfp_dag.get_task("run_kfp_pipeline").retries = 0  # a retry would submit a new KFP run; not under test
    _, states, _ = _run(kfp_dag, demo_conf())

    assert states["run_kfp_pipeline"] == "failed"
    assert "ResourceLimitExceeded for ml.p4d.24xlarge" in capfd.readouterr().out
