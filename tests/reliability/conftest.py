"""Fixtures of the reliability tier: the e2e world plus a scripted SageMaker lifecycle and faults."""

from __future__ import annotations

import os

import pytest

from tests.e2e.conftest import deploy_dag, kubernetes_api, run_deploy, scenario  # noqa: F401  (fixtures)
from tests.support.sagemaker_lifecycle import SageMakerLifecycle

# Parsing the DAG imports the Kubernetes and Amazon providers: slow on a loaded 2-core machine.
os.environ.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "300")

# Emulated seconds per real second: a 120 s training takes 2 s of the test's time.
TIME_SCALE = 60.0


@pytest.fixture
def lifecycle(local_aws):
    """A SageMakerLifecycle installed on the session's local AWS for this test; script it, then run."""
    with SageMakerLifecycle(time_scale=TIME_SCALE).installed(local_aws) as life:
        yield life
