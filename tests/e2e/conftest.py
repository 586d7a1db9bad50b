"""Fixtures for whole runs of sagemaker_deploy (dag.test) against the local AWS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.botocore_validation import recording_aws_calls
from tests.support.scenario import (
    K8S_CONN_ID,  # noqa: F401  (tests/live/conftest.py imports it from here)
    Scenario,
    onboarded_cluster,
)


@dataclass
class RunResult:
    dag_run: Any
    states: dict[str, str]
    calls: list[Any]

    @property
    def state(self) -> str:
        return str(self.dag_run.state)


@pytest.fixture(scope="session")
def kubernetes_api():
    """The Kubernetes API double with the shipped RBAC applied; None where pods cannot run (not root)."""
    from tests.support.k8s_api import can_run_pods

    if not can_run_pods():
        yield None
        return
    with onboarded_cluster() as k8s:
        yield k8s


@pytest.fixture
def scenario(local_aws, kubernetes_api, monkeypatch, airflow_db) -> Scenario:
    world = Scenario(local_aws)
    if kubernetes_api is not None:
        world.use_kubernetes(kubernetes_api)
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
