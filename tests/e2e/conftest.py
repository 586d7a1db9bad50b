"""Fixtures for whole runs of sagemaker_deploy (dag.test) against the local AWS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.botocore_validation import recording_aws_calls
from tests.support.scenario import Scenario


@dataclass
class RunResult:
    dag_run: Any
    states: dict[str, str]
    calls: list[Any]

    @property
    def state(self) -> str:
        return str(self.dag_run.state)


K8S_CONN_ID = "sagelift_k8s"


@pytest.fixture(scope="session")
def kubernetes_api():
    """The Kubernetes API double with the shipped RBAC applied; None where pods cannot run (not root)."""
    from tests.conftest import ROOT
    from tests.support.k8s_api import KubernetesApiDouble, can_run_pods

    if not can_run_pods():
        yield None
        return
    with KubernetesApiDouble(namespaces=("default", "sagelift"), enforce_rbac=True) as k8s:
        k8s.apply_manifest(ROOT / "include/k8s/rbac.yaml")
        yield k8s


@pytest.fixture
def scenario(local_aws, kubernetes_api, monkeypatch, airflow_db) -> Scenario:
    world = Scenario(local_aws)
    if kubernetes_api is not None:
        world.platform_overrides["kubernetes"] = {
            "enabled": True,
            "namespace": "sagelift",
            "kubernetes_conn_id": K8S_CONN_ID,
        }
        for key, value in kubernetes_api.airflow_connection_env(K8S_CONN_ID).items():
            monkeypatch.setenv(key, value)
    world.build()
    for key, value in world.airflow_env().items():
        monkeypatch.setenv(key, value)
    return world


@pytest.fixture(scope="session")
def deploy_dag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("sagemaker_deploy")


@pytest.fixture
def run_deploy(deploy_dag, scenario):
    """Run sagemaker_deploy once with a conf; every AWS call is recorded and strictly validated."""

    def run(conf: dict[str, Any]) -> RunResult:
        with recording_aws_calls() as calls:
            dag_run = deploy_dag.test(run_conf=conf)
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
        return RunResult(dag_run=dag_run, states=states, calls=list(calls))

    return run
