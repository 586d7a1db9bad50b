"""Creates and updates whose answer was lost, step by step against the local AWS (issue 14 item 6).

The fault layer's ``lost`` (the local AWS acts, then drops the connection) with clients made as the product
makes them (botocore's standard retries, which send the request again), and the state one such run left
before sagelift converged duplicates: two APIs, two usage plans and two keys of one model. The whole-run
matrix is tests/reliability/test_faults.py.
"""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError

from sagelift.domain.apigateway import OWNER_TAG_KEY, derive_invoke_url
from sagelift.domain.plan import Plan
from sagelift.steps.api import ApiGatewayClient, api_spec, expose_model_api
from sagelift.steps.endpoint import reconcile_endpoint
from sagelift.steps.errors import StepRetry
from sagelift.steps.model import model_request, replace_model
from sagelift.steps.role_chain import DEFAULT_RETRIES
from sagelift.steps.training import start_training, training_request
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import SageMakerLifecycle, count_resources
from tests.support.task_context import step_plan

MODEL = "churn-predictor"


@pytest.fixture
def life(local_aws):
    with SageMakerLifecycle(time_scale=60).installed(local_aws) as lifecycle:
        yield lifecycle


@pytest.fixture
def client(local_aws):
    """A client as the product makes them: scientist keys, no admin header, botocore's standard retries."""
    key, secret = local_aws.create_access_key(SCIENTIST_ACCOUNT, user="lost-answers")
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)

    def make(service: str, retries: dict | None = None):
        config = Config(retries=retries or dict(DEFAULT_RETRIES))
        return session.client(service, endpoint_url=local_aws.url, config=config)

    return make


def _plan(run: int = 1, api: dict | None = None) -> Plan:
    platform = {
        "region": REGION,
        "accounts": {SCIENTIST_ACCOUNT: {}},
        "api": api or {"authorization": "API_KEY"},
    }
    return Plan.from_xcom(step_plan(platform=platform, run_id=f"manual__2026-12-0{run}T10:00:00+00:00"))


def _tags(plan: Plan) -> list[dict[str, str]]:
    return [
        {"Key": OWNER_TAG_KEY, "Value": plan.model_name},
        {"Key": "sagelift:run-id", "Value": plan.run_id},
    ]


def test_a_lost_answer_is_a_performed_operation_and_a_dropped_connection(life, local_aws, client):
    sm = client("sagemaker", retries={"total_max_attempts": 1, "mode": "standard"})
    plan = _plan()
    life.fault("sagemaker:CreateModel", "lost")

    with pytest.raises(ConnectionClosedError):
        sm.create_model(**model_request(plan, _tags(plan), None, "s3://bucket/model.tar.gz"))

    assert life.lost_answers == [("sagemaker:CreateModel", 200)]
    assert sm.describe_model(ModelName=plan.names.model)["ModelName"] == plan.names.model


def test_sagemaker_creates_sent_again_meet_what_the_first_made(life, local_aws, client):
    sm = client("sagemaker")
    plan = _plan()
    tags = _tags(plan)
    for operation in ("CreateTrainingJob", "CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
        life.fault(f"sagemaker:{operation}", "lost")

    job = start_training(sm, training_request(plan, tags, None))
    model = replace_model(sm, model_request(plan, tags, None, "s3://bucket/model.tar.gz"))
    change = reconcile_endpoint(sm, plan, tags)

    assert [op for op, status in life.lost_answers if status == 200] == [
        "sagemaker:CreateTrainingJob",
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
    ]
    assert (job["TrainingJobName"], model["ModelName"], change.operation) == (
        plan.names.training_job,
        plan.names.model,
        "create",
    )
    counts = count_resources(local_aws, SCIENTIST_ACCOUNT)
    assert [counts[k] for k in ("training_jobs", "models", "endpoint_configs", "endpoints")] == [1, 1, 1, 1]


def test_an_update_sent_again_while_updating_to_this_runs_config_is_this_update(life, local_aws, client):
    sm = client("sagemaker")
    first, second = _plan(1), _plan(2)
    for plan in (first, second):
        replace_model(sm, model_request(plan, _tags(plan), None, "s3://bucket/model.tar.gz"))
    reconcile_endpoint(sm, first, _tags(first))
    life.endpoint_update(seconds=120)  # 2 s at this time scale: still Updating when botocore sends it again
    life.fault("sagemaker:UpdateEndpoint", "lost")

    change = reconcile_endpoint(sm, second, _tags(second))

    assert change.operation == "update"
    assert life.lost_answers == [("sagemaker:UpdateEndpoint", 200)]
    during = sm.describe_endpoint(EndpointName=second.names.endpoint)
    assert during["EndpointStatus"] == "Updating"
    assert during["PendingDeploymentSummary"]["EndpointConfigName"] == second.names.endpoint_config
    # A retried task meets the update in progress and waits for it instead of retrying again.
    assert reconcile_endpoint(sm, second, _tags(second)).operation == "update"
    # Another run's config in progress is another deploy: retried later.
    third = _plan(3)
    replace_model(sm, model_request(third, _tags(third), None, "s3://bucket/model.tar.gz"))
    with pytest.raises(StepRetry, match="Updating"):
        reconcile_endpoint(sm, third, _tags(third))
    time.sleep(2.2)
    after = sm.describe_endpoint(EndpointName=second.names.endpoint)
    assert (after["EndpointStatus"], after["EndpointConfigName"]) == (
        "InService",
        second.names.endpoint_config,
    )


def _api_writes() -> list[str]:
    return [
        "CreateRestApi",
        "CreateResource",
        "PutMethod",
        "PutMethodResponse",
        "PutIntegration",
        "PutIntegrationResponse",
        "CreateDeployment",
        "CreateStage",
        "UpdateStage",
        "CreateUsagePlan",
        "CreateApiKey",
        "CreateUsagePlanKey",
    ]


def test_every_api_gateway_write_sent_again_leaves_one_api_plan_and_key(life, local_aws, client):
    hook = ApiGatewayClient(client("apigateway"))
    plan = _plan()
    for operation in _api_writes():
        life.fault(f"apigateway:{operation}", "lost")

    exposed = expose_model_api(hook, api_spec(plan, _tags(plan)))

    assert sorted(op for op, status in life.lost_answers if 200 <= status < 300) == sorted(
        f"apigateway:{op}" for op in _api_writes()
    )
    counts = count_resources(local_aws, SCIENTIST_ACCOUNT)
    assert {k: counts[k] for k in counts if k.startswith(("rest", "api", "usage"))} == {
        "rest_apis": 1,
        "api_resources": 2,  # / and /invocations
        "api_stages": 1,
        "usage_plans": 1,
        "usage_plan_stages": 1,
        "usage_plan_keys": 1,
        "api_keys": 1,
    }
    apigateway = local_aws.client("apigateway", SCIENTIST_ACCOUNT)
    assert len(apigateway.get_deployments(restApiId=exposed.api_id)["items"]) == 1
    assert exposed.invoke_url == derive_invoke_url(
        apigateway.get_rest_apis()["items"][0]["id"], REGION, exposed.stage
    )


def test_a_usage_plan_stage_added_again_is_accepted(life, local_aws, client):
    hook = ApiGatewayClient(client("apigateway"))
    plan = _plan()
    exposed = expose_model_api(hook, api_spec(plan, _tags(plan)))
    apigateway = local_aws.client("apigateway", SCIENTIST_ACCOUNT)
    stage = f"{exposed.api_id}:{exposed.stage}"
    apigateway.update_usage_plan(
        usagePlanId=exposed.usage_plan_id,
        patchOperations=[{"op": "remove", "path": "/apiStages", "value": stage}],
    )
    life.fault("apigateway:UpdateUsagePlan", "lost")

    again = expose_model_api(hook, api_spec(_plan(2), _tags(_plan(2))))

    assert life.lost_answers == [("apigateway:UpdateUsagePlan", 200)]
    stages = apigateway.get_usage_plan(usagePlanId=again.usage_plan_id)["apiStages"]
    assert stages == [{"apiId": exposed.api_id, "stage": exposed.stage}]


def test_duplicates_left_by_an_earlier_run_converge_on_the_oldest_api_plan_and_key(life, local_aws, client):
    """The state of the issue: a run whose creates were sent twice left 2 APIs, 2 plans and 2 keys; the
    next run switched to the other URL and key. Now the oldest of each stays, and the rest go."""
    hook = ApiGatewayClient(client("apigateway"))
    plan = _plan()
    first = expose_model_api(hook, api_spec(plan, _tags(plan)))
    time.sleep(1.1)  # API Gateway dates have whole seconds: the copies are strictly newer
    apigateway = local_aws.client("apigateway", SCIENTIST_ACCOUNT)
    owner = {OWNER_TAG_KEY: MODEL}
    copy = apigateway.create_rest_api(name=MODEL, tags=owner)["id"]
    apigateway.create_usage_plan(name=MODEL, tags=owner)
    copy_key = apigateway.create_api_key(name=MODEL, enabled=True, tags=owner)["id"]
    apigateway.create_usage_plan_key(usagePlanId=first.usage_plan_id, keyId=copy_key, keyType="API_KEY")

    later = expose_model_api(hook, api_spec(_plan(2), _tags(_plan(2))))

    assert (later.api_id, later.invoke_url, later.usage_plan_id, later.api_key_id) == (
        first.api_id,
        first.invoke_url,
        first.usage_plan_id,
        first.api_key_id,
    )
    assert copy not in {a["id"] for a in apigateway.get_rest_apis()["items"]}
    counts = count_resources(local_aws, SCIENTIST_ACCOUNT)
    assert (counts["rest_apis"], counts["usage_plans"], counts["api_keys"], counts["usage_plan_keys"]) == (
        1,
        1,
        1,
        1,
    )
