"""One real Airflow (scheduler, triggerer, dag-processor, API server as processes) for the live tier.

Every module here drives the same ``airflow standalone``, started once for the package and stopped after
its last test: starting one takes half a minute to a minute on a loaded 2-core machine, and two at once
starve each other. tests/conftest.py keeps the package on one xdist worker and hands it out first, as the
longest unit. Task processes start with the DAG files' imports already loaded (``preload``, see
tests/support/airflow_standalone.py): most of a run's CPU time otherwise. The SageMaker lifecycle runs 10
emulated seconds per real second in the moto server of this process, which the Airflow processes reach
over HTTP.

Users: ``admin`` and ``bob`` may deploy into the scientist account (333333333333), with the retrain
registrations' owners; ``alice`` may deploy only into 444444444444 (onboarded, never reached): two
users for tests/live/test_access.py, each with a password and a token (``af.client(user)``).
"""

from __future__ import annotations

import json
import os

import pytest

from sagelift.domain.plan import derive_run_key
from tests.conftest import ROOT
from tests.e2e.conftest import K8S_CONN_ID, kubernetes_api  # noqa: F401  (fixture)
from tests.live import approval_account
from tests.support.airflow_standalone import ADMIN, AirflowStandalone, dag_imports
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import Scenario

DAG_ID = "sagemaker_deploy"
ALICE, BOB = "alice", "bob"
ALICE_ACCOUNT = "444444444444"
RETRAIN_OWNERS = sorted(
    {json.loads(path.read_text())["owner"] for path in (ROOT / "include/examples/retrain").glob("*.json")}
)


def access_settings() -> dict:
    """Who may deploy where in the live tier's platform (see the module docstring)."""
    return {
        "groups": {"scientists": [ADMIN, BOB, *RETRAIN_OWNERS]},
        "accounts": {
            SCIENTIST_ACCOUNT: {"deployers": {"groups": ["scientists"]}},
            ALICE_ACCOUNT: {"deployers": {"users": [ALICE]}},
            **approval_account.account_settings("scientists"),
        },
        "approval_timeout_seconds": approval_account.APPROVAL_TIMEOUT_SECONDS,
    }


class World:
    """The running Airflow, the local AWS behind it and the lifecycle that scripts SageMaker."""

    def __init__(self, aws, af: AirflowStandalone, life: SageMakerLifecycle) -> None:
        self.aws, self.af, self.life = aws, af, life

    def training_job(self, run_id: str, model_name: str = "churn-predictor") -> dict:
        sm = self.aws.client("sagemaker", SCIENTIST_ACCOUNT)
        return sm.describe_training_job(TrainingJobName=f"{model_name}-{derive_run_key(DAG_ID, run_id)}")


@pytest.fixture(scope="package")
def world(local_aws_server, kubernetes_api, airflow_db):  # noqa: F811
    local_aws_server.reset()
    scenario = Scenario(local_aws_server)
    scenario.platform_overrides["sagemaker"] = {"check_interval_seconds": 1}
    scenario.platform_overrides.update(access_settings())
    env: dict[str, str] = {}
    if kubernetes_api is not None:
        scenario.platform_overrides["kubernetes"] = {
            "enabled": True,
            "namespace": "sagelift",
            "kubernetes_conn_id": K8S_CONN_ID,
        }
        env.update(kubernetes_api.airflow_connection_env(K8S_CONN_ID))
    scenario.build()
    env.update(scenario.airflow_env())
    env.update(approval_account.onboard(local_aws_server, scenario))
    with (
        SageMakerLifecycle(time_scale=10).installed(local_aws_server) as life,
        AirflowStandalone(
            env=env,
            keep_home=bool(os.environ.get("SAGELIFT_KEEP_AIRFLOW_HOME")),
            preload=dag_imports(),
            users={ALICE: "user", BOB: "user"},
        ) as af,
    ):
        af.wait_for_dag(DAG_ID)
        yield World(local_aws_server, af, life)
