"""Two runs of one model on a real Airflow (scheduler, triggerer, LocalExecutor): the later run's
acquire_model_lock waits deferred, in the triggerer, until the earlier run gives the lock back.

The Airflow is the live tier's shared one (tests/live/conftest.py); the model is this module's own and
its resources are deleted afterwards, so the other modules' resource counts are unchanged.
"""

from __future__ import annotations

import contextlib

import pytest

from sagelift.domain.plan import derive_run_key
from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.scenario import demo_conf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "sagemaker_deploy"
MODEL = "churn-turns"


@pytest.fixture
def own_model(world):
    yield MODEL
    sm = world.aws.client("sagemaker", SCIENTIST_ACCOUNT)
    with contextlib.suppress(sm.exceptions.ClientError):
        sm.delete_endpoint(EndpointName=MODEL)
    for config in sm.list_endpoint_configs(NameContains=MODEL)["EndpointConfigs"]:
        sm.delete_endpoint_config(EndpointConfigName=config["EndpointConfigName"])
    for model in sm.list_models(NameContains=MODEL)["Models"]:
        sm.delete_model(ModelName=model["ModelName"])
    apigateway = world.aws.client("apigateway", SCIENTIST_ACCOUNT)
    for api in apigateway.get_rest_apis()["items"]:
        if api["name"] == MODEL:
            apigateway.delete_rest_api(restApiId=api["id"])


def test_the_later_run_waits_deferred_for_the_earlier_one(world, own_model):
    # twenty real seconds: the later run reaches its lock (five tasks) while the first trains, then each
    # run trains in turn
    world.life.training(seconds=200)
    conf = demo_conf(model_name=own_model)
    first = world.af.trigger(DAG_ID, conf)
    world.af.wait_for_task_state(DAG_ID, first, "train_model", "deferred", timeout=300)

    later = world.af.trigger(DAG_ID, conf)
    world.af.wait_for_task_state(DAG_ID, later, "acquire_model_lock", "deferred", timeout=300)
    assert world.af.task_states(DAG_ID, later)["resolve_tags"] is None  # nothing started behind the lock
    runs = {run_id: world.af.wait_for_run(DAG_ID, run_id, timeout=900) for run_id in (first, later)}

    assert {run["state"] for run in runs.values()} == {"success"}, [
        world.af.task_states(DAG_ID, r) for r in runs
    ]
    sm = world.aws.client("sagemaker", SCIENTIST_ACCOUNT)
    first_config = sm.describe_endpoint_config(
        EndpointConfigName=f"{own_model}-{derive_run_key(DAG_ID, first)}"
    )
    later_job = world.training_job(later, own_model)
    assert later_job["CreationTime"] > first_config["CreationTime"]
    served = sm.describe_endpoint(EndpointName=own_model)["EndpointConfigName"]
    assert served == f"{own_model}-{derive_run_key(DAG_ID, later)}"
