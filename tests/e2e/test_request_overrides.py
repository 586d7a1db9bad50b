"""Request overrides and network isolation on both engines (issue 17 items 4 and 5).

A refused override fails validate on Airflow (the ValidateRunOperator) and the KFP engine's first step
(its glue's plan_run) alike, naming the field, before any AWS call; an allowed one reaches the training
job and the model the local AWS holds, next to the isolation the platform turns on by default. The KFP
steps run in this process, as tests/steps/test_plan_changes.py runs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.sagemaker import expected_model_artifact
from sagelift.operators.validate import ValidateRunOperator
from tests.conftest import ROOT
from tests.support.botocore_validation import recording_aws_calls
from tests.support.local_aws import REGION, LocalAws
from tests.support.sagemaker_lifecycle import SageMakerLifecycle
from tests.support.scenario import DAG_TEST_USER, Scenario, demo_conf

pytestmark = pytest.mark.e2e

ALLOWED = {
    "CreateTrainingJob": ["StoppingCondition", "Environment"],
    "CreateModel": ["PrimaryContainer.Environment"],
}
REFUSED = {"CreateTrainingJob": {"HyperParameters": {"eta": "0.9"}}}
REFUSED_FIELD = "request_overrides.CreateTrainingJob.HyperParameters: not allowed by the platform"
BOTOCORE_REFUSED = {"CreateTrainingJob": {"StoppingCondition": {"MaxRuntimeInSeconds": "1h"}}}
BOTOCORE_FIELD = "request_overrides.CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds: Invalid type"


def _world(local_aws: LocalAws) -> Scenario:
    world = Scenario(local_aws)
    world.platform_overrides["sagemaker"] = {"check_interval_seconds": 1, "allowed_overrides": ALLOWED}
    return world.build()


@pytest.fixture
def glue(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    world = _world(local_aws)
    key, secret = world.runner_key
    for name, value in {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": local_aws.url,
        "SAGELIFT_PLATFORM": json.dumps(world.platform()),
        "SAGELIFT_KFP_RETRY_DELAY": "0",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(ROOT / "include" / "kfp"))
    from sagelift_kfp import steps

    with SageMakerLifecycle(time_scale=60).installed(local_aws):
        yield steps


@pytest.mark.parametrize(
    ("overrides", "field"),
    [(REFUSED, REFUSED_FIELD), (BOTOCORE_REFUSED, BOTOCORE_FIELD)],
    ids=["unlisted", "botocore"],
)
def test_airflow_validate_refuses_an_override_naming_the_field(
    local_aws, monkeypatch, airflow_db, overrides, field
):
    world = _world(local_aws)
    for key, value in world.airflow_env().items():
        monkeypatch.setenv(key, value)
    dag_run = SimpleNamespace(
        conf=demo_conf(request_overrides=overrides),
        dag_id="sagemaker_deploy",
        run_id="manual__overrides",
        run_type="manual",
        triggering_user_name=DAG_TEST_USER,
    )
    before = local_aws.request_count()
    with pytest.raises(AirflowFailException) as raised:
        ValidateRunOperator(task_id="validate").execute({"dag_run": dag_run})
    assert field in str(raised.value)
    assert len(str(raised.value).splitlines()[0]) <= 200
    assert local_aws.request_count() == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [(REFUSED, REFUSED_FIELD), (BOTOCORE_REFUSED, BOTOCORE_FIELD)],
    ids=["unlisted", "botocore"],
)
def test_kfp_first_step_refuses_an_override_naming_the_field(glue, local_aws, overrides, field):
    before = local_aws.request_count()
    with pytest.raises(SageliftValidationError) as raised:
        glue.plan_run(demo_conf(request_overrides=overrides), "sagemaker-deploy", "kfp-overrides-1")
    assert field in str(raised.value)
    assert local_aws.request_count() == before


def test_an_allowed_override_and_isolation_reach_the_account(glue, local_aws):
    overrides = {
        "CreateTrainingJob": {"Environment": {"LOG_LEVEL": "debug"}},
        "CreateModel": {"PrimaryContainer": {"Environment": {"WORKERS": "4"}}},
    }
    plan = glue.plan_run(demo_conf(request_overrides=overrides), "sagemaker-deploy", "kfp-overrides-2")
    glue.assume_role_chain(plan)
    tags = glue.resolve_tags(plan)
    images = glue.copy_images(plan, tags)
    with recording_aws_calls() as calls:
        glue.train_model(plan, tags, images)
        artifact = expected_model_artifact(
            plan["params"]["training_s3_output_path"], plan["names"]["training_job"]
        )
        from sagelift_kfp import governance  # register_model, then the model from its version

        registered = governance.register_model(plan, tags, images, artifact)
        model_name = governance.create_model(plan, tags, images, artifact, registered)

    # the bodies sent (the local AWS keeps neither a job's Environment nor isolation), each valid for
    # botocore's model, and the model the account now holds
    sent = {c.operation: c for c in calls if c.operation in ("CreateTrainingJob", "CreateModel")}
    assert all(c.errors == [] for c in sent.values())
    job = sent["CreateTrainingJob"].params
    assert job["Environment"] == {"LOG_LEVEL": "debug"}
    assert job["EnableNetworkIsolation"] is True
    model = sent["CreateModel"].params
    assert model["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_TFS_NGINX_LOGLEVEL": "info",
        "WORKERS": "4",
    }
    assert model["EnableNetworkIsolation"] is True
    held = local_aws.client("sagemaker").describe_model(ModelName=model_name)
    assert held["PrimaryContainer"]["Environment"]["WORKERS"] == "4"
