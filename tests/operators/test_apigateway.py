"""expose_api and the API removal path against the local AWS, asserted on what the scientist account holds."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

from sagelift.domain.apigateway import ACCESS_LOG_FORMAT, OWNER_TAG_KEY, RESPONSES, ApiSpec, parse_policy
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.plan import Plan
from sagelift.links.apigateway import XCOM_KEY, ApiGatewayInvokeUrlLink, ApiGatewayStageLink
from sagelift.operators.apigateway import ApiGatewayExposeOperator, ApiGatewayRemoveOperator
from sagelift.steps.api import ApiGatewayClient, api_spec, expose_model_api
from tests.support import local_aws_apigateway
from tests.support.apigateway_payloads import (
    integration_request_body,
    integration_request_headers,
    method_response_body,
)
from tests.support.botocore_validation import RecordedCall, recording_aws_calls
from tests.support.local_aws import MASTER_ACCOUNT, REGION, RUNNER_ACCOUNT, SCIENTIST_ACCOUNT, LocalAws
from tests.support.task_context import FakeTaskInstance, step_plan, step_session, use_scientist_keys

CONN_ID = f"sagelift_aws_{SCIENTIST_ACCOUNT}"
INVOKE_ROLE_ARN = f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-apigateway-invoke"
STANDARD_TAGS = [{"Key": "team", "Value": "risk"}, {"Key": "cost-center", "Value": "cc-42"}]
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{SCIENTIST_ACCOUNT}:log-group:sagelift-api-access"
VPCE = "vpce-0123456789abcdef0"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    # Our own server: the API Gateway additions must be installed before it serves API Gateway at all.
    local_aws_apigateway.install()
    with LocalAws() as server:
        yield server


@pytest.fixture
def scientist_conn(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty local AWS and a connection whose keys moto attributes to the scientist account."""
    aws.reset()
    return use_scientist_keys(aws, monkeypatch, CONN_ID)


def make_context(
    *,
    model_name: str = "churn",
    endpoint: str | None = None,
    api: dict[str, Any] | None = None,
    run_id: str = "manual__1",
    account: dict[str, Any] | None = None,
    serving: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The inputs expose_api and remove_api are wired with: a real plan (and teardown plan), session, tags.

    ``account``: the scientist account's platform settings; ``serving``: the run's ``endpoint`` settings.
    """
    platform = {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: account or {}}, "api": api or {}}
    params = {"endpoint": serving} if serving else None
    plan = step_plan(
        {"model_name": model_name}, platform, dag_id="sagelift_pipeline", run_id=run_id, params=params
    )
    if endpoint:
        plan["names"]["endpoint"] = endpoint
    teardown = {
        "teardown": {"model_name": model_name, "account_id": SCIENTIST_ACCOUNT},
        "platform": platform,
        "dag_id": "sagemaker_teardown",
        "run_id": run_id,
    }
    tags = [
        *STANDARD_TAGS,
        {"Key": OWNER_TAG_KEY, "Value": model_name},
        {"Key": "sagelift:run-id", "Value": run_id},
    ]
    return {
        "plan": plan,
        "teardown": teardown,
        "session": step_session(CONN_ID),
        "tags": tags,
        "ti": FakeTaskInstance({}),
    }


def expose(inputs: dict[str, Any]) -> tuple[dict[str, Any], list[RecordedCall]]:
    operator = ApiGatewayExposeOperator(
        task_id="expose_api", plan=inputs["plan"], session=inputs["session"], tags=inputs["tags"]
    )
    with recording_aws_calls() as calls:
        result = operator.execute({"ti": inputs["ti"]})
    return result, calls


def remove(inputs: dict[str, Any]) -> tuple[dict[str, Any], list[RecordedCall]]:
    operator = ApiGatewayRemoveOperator(
        task_id="remove_api", plan=inputs["teardown"], session=inputs["session"]
    )
    with recording_aws_calls() as calls:
        result = operator.execute({"ti": inputs["ti"]})
    return result, calls


def assert_valid(calls: list[RecordedCall]) -> None:
    assert calls, "no AWS call was recorded"
    assert {c.service for c in calls} == {"apigateway"}
    assert [(c.operation, c.errors) for c in calls if c.errors] == []


def apis(aws: LocalAws, account: str = SCIENTIST_ACCOUNT) -> list[dict[str, Any]]:
    return aws.client("apigateway", account).get_rest_apis()["items"]


def invocations_resource_id(client: Any, api_id: str) -> str:
    by_path = {r["path"]: r["id"] for r in client.get_resources(restApiId=api_id)["items"]}
    assert set(by_path) == {"/", "/invocations"}
    return by_path["/invocations"]


# --- first run ---------------------------------------------------------------------------------------
def test_first_run_builds_the_models_api_in_the_scientist_account(aws: LocalAws, scientist_conn: str) -> None:
    context = make_context()
    result, calls = expose(context)
    assert_valid(calls)

    [api] = apis(aws)
    api_id = api["id"]
    assert api["name"] == "churn"
    run_tags = {
        "team": "risk",
        "cost-center": "cc-42",
        OWNER_TAG_KEY: "churn",
        "sagelift:run-id": "manual__1",
    }
    assert api["tags"] == run_tags
    assert api["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert not api.get("policy")
    for other in (RUNNER_ACCOUNT, MASTER_ACCOUNT):
        assert apis(aws, other) == []

    client = aws.client("apigateway")
    resource_id = invocations_resource_id(client, api_id)
    method = client.get_method(restApiId=api_id, resourceId=resource_id, httpMethod="POST")
    assert method["authorizationType"] == "AWS_IAM"
    assert method["apiKeyRequired"] is False
    assert method["requestParameters"] == {
        "method.request.header.Content-Type": False,
        "method.request.header.Accept": False,
    }
    assert set(method["methodResponses"]) == {"200", "400", "424", "429", "500", "502", "503"}
    for response in method["methodResponses"].values():
        assert response["responseParameters"] == {"method.response.header.Content-Type": False}

    integration = method["methodIntegration"]
    assert integration["type"] == "AWS"
    assert integration["httpMethod"] == "POST"
    assert integration["uri"] == (
        f"arn:aws:apigateway:{REGION}:runtime.sagemaker:path//endpoints/churn/invocations"
    )
    assert integration["credentials"] == INVOKE_ROLE_ARN
    assert integration["timeoutInMillis"] == 29000
    assert integration["requestParameters"] == {
        "integration.request.header.Content-Type": "method.request.header.Content-Type",
        "integration.request.header.Accept": "method.request.header.Accept",
    }
    patterns = {code: r.get("selectionPattern") for code, r in integration["integrationResponses"].items()}
    assert patterns == {r.status_code: r.selection_pattern for r in RESPONSES}
    assert patterns["502"] is None  # the default: anything SageMaker answers that no pattern names

    [deployment] = client.get_deployments(restApiId=api_id)["items"]
    assert deployment["description"] == "sagelift sagelift_pipeline run manual__1: endpoint churn"
    stage = client.get_stage(restApiId=api_id, stageName="prod")
    assert stage["deploymentId"] == deployment["id"]
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 100.0
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 200
    assert not stage.get("accessLogSettings")
    assert stage["tags"] == run_tags
    assert client.get_usage_plans()["items"] == []
    assert client.get_api_keys()["items"] == []

    invoke_url = f"https://{api_id}.execute-api.{REGION}.amazonaws.com/prod/invocations"
    assert result == {
        "api_id": api_id,
        "api_name": "churn",
        "stage": "prod",
        "invoke_url": invoke_url,
        "deployment_id": deployment["id"],
        "authorization": "AWS_IAM",
        "created": True,
        "api_key_id": None,
        "usage_plan_id": None,
    }
    link_facts = context["ti"].pushed[XCOM_KEY]
    # The link opens the how-to-call page with the invoke URL in its fragment, not the URL itself.
    assert (
        ApiGatewayInvokeUrlLink()
        .format_link(**link_facts)
        .endswith("/sagelift/how-to-call#" + quote(invoke_url, safe=""))
    )
    assert ApiGatewayStageLink().format_link(**link_facts) == (
        f"https://console.aws.amazon.com/apigateway/main/apis/{api_id}/stages"
        f"?api={api_id}&region={REGION}&stage=prod"
    )


def test_the_invoke_url_is_in_the_task_log(
    aws: LocalAws, scientist_conn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result, _ = expose(make_context())
    captured = capsys.readouterr()
    assert result["invoke_url"] in captured.out + captured.err


# --- re-runs -----------------------------------------------------------------------------------------
def test_second_run_redeploys_the_same_api_with_the_same_invoke_url(
    aws: LocalAws, scientist_conn: str
) -> None:
    first, _ = expose(make_context(run_id="manual__1"))
    second, calls = expose(make_context(run_id="manual__2"))
    assert_valid(calls)
    assert not any(c.operation in ("CreateRestApi", "CreateStage", "CreateResource") for c in calls)

    [api] = apis(aws)
    client = aws.client("apigateway")
    deployments = client.get_deployments(restApiId=api["id"])["items"]
    assert sorted(d["id"] for d in deployments) == sorted([first["deployment_id"], second["deployment_id"]])
    assert first["deployment_id"] != second["deployment_id"]
    assert second["invoke_url"] == first["invoke_url"]
    assert second["created"] is False
    stage = client.get_stage(restApiId=api["id"], stageName="prod")
    assert stage["deploymentId"] == second["deployment_id"]
    # The run's tags follow the latest run on the API and its stage.
    assert stage["tags"]["sagelift:run-id"] == "manual__2"
    assert api["tags"]["sagelift:run-id"] == "manual__2"
    assert api["tags"][OWNER_TAG_KEY] == "churn"
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 200
    method = client.get_method(
        restApiId=api["id"], resourceId=invocations_resource_id(client, api["id"]), httpMethod="POST"
    )
    assert set(method["methodIntegration"]["integrationResponses"]) == {r.status_code for r in RESPONSES}


def test_a_rerun_points_the_integration_at_the_current_endpoint(aws: LocalAws, scientist_conn: str) -> None:
    expose(make_context(endpoint="churn-a"))
    result, _ = expose(make_context(endpoint="churn-b"))
    client = aws.client("apigateway")
    [api] = apis(aws)
    method = client.get_method(
        restApiId=api["id"], resourceId=invocations_resource_id(client, api["id"]), httpMethod="POST"
    )
    assert method["methodIntegration"]["uri"].endswith("/endpoints/churn-b/invocations")
    assert client.get_stage(restApiId=api["id"], stageName="prod")["deploymentId"] == result["deployment_id"]


def test_a_different_model_gets_its_own_api(aws: LocalAws, scientist_conn: str) -> None:
    churn, _ = expose(make_context(model_name="churn"))
    fraud, calls = expose(make_context(model_name="fraud"))
    assert_valid(calls)
    assert sorted((a["name"], a["tags"][OWNER_TAG_KEY]) for a in apis(aws)) == [
        ("churn", "churn"),
        ("fraud", "fraud"),
    ]
    assert fraud["api_id"] != churn["api_id"]
    assert fraud["invoke_url"] != churn["invoke_url"]


def test_an_api_of_the_same_name_not_tagged_for_the_model_is_refused_and_left_alone(
    aws: LocalAws, scientist_conn: str
) -> None:
    stranger = aws.client("apigateway").create_rest_api(name="churn", tags={"owner": "someone-else"})
    with pytest.raises(AirflowFailException) as refused:
        expose(make_context())
    assert str(refused.value).startswith(f"API churn ({stranger['id']}) exists and is not tagged as sagelift")
    [api] = apis(aws)
    assert api["id"] == stranger["id"] and api["tags"] == {"owner": "someone-else"}
    assert len(aws.client("apigateway").get_resources(restApiId=stranger["id"])["items"]) == 1


def test_duplicate_apis_of_the_model_converge_on_the_oldest(aws: LocalAws, scientist_conn: str) -> None:
    """A create API Gateway processed but whose answer was lost, sent again: two APIs of the model."""
    first, _ = expose(make_context())
    time.sleep(1.1)  # createdDate has whole seconds: the duplicate is strictly newer
    client = aws.client("apigateway")
    client.create_rest_api(name="churn", tags={OWNER_TAG_KEY: "churn"})
    assert len(apis(aws)) == 2
    again, _ = expose(make_context(run_id="manual__2"))
    assert again["api_id"] == first["api_id"] and again["invoke_url"] == first["invoke_url"]
    assert [a["id"] for a in apis(aws)] == [first["api_id"]]


# --- platform options --------------------------------------------------------------------------------
def test_api_key_authorization_adds_a_usage_plan_and_key(aws: LocalAws, scientist_conn: str) -> None:
    api_settings = {
        "authorization": "API_KEY",
        "throttle_rate_limit": 20,
        "throttle_burst_limit": 40,
        "quota_limit": 10000,
        "quota_period": "WEEK",
    }
    context = make_context(api=api_settings)
    result, calls = expose(context)
    assert_valid(calls)
    client = aws.client("apigateway")
    [api] = apis(aws)
    method = client.get_method(
        restApiId=api["id"], resourceId=invocations_resource_id(client, api["id"]), httpMethod="POST"
    )
    assert method["authorizationType"] == "NONE"
    assert method["apiKeyRequired"] is True

    [plan] = client.get_usage_plans()["items"]
    assert plan["name"] == "churn"
    assert plan["apiStages"] == [{"apiId": api["id"], "stage": "prod"}]
    assert plan["throttle"] == {"rateLimit": 20.0, "burstLimit": 40}
    assert plan["quota"] == {"limit": 10000, "period": "WEEK"}
    assert plan["tags"][OWNER_TAG_KEY] == "churn"
    [key] = client.get_api_keys(includeValues=True)["items"]
    assert key["enabled"] is True
    assert [k["id"] for k in client.get_usage_plan_keys(usagePlanId=plan["id"])["items"]] == [key["id"]]
    assert result["api_key_id"] == key["id"]
    assert result["usage_plan_id"] == plan["id"]
    # The key's secret value is never in what the task hands on.
    assert key["value"] not in json.dumps(result)
    assert key["value"] not in json.dumps(context["ti"].pushed)

    expose(make_context(api=api_settings, run_id="manual__2"))
    assert len(client.get_usage_plans()["items"]) == 1
    assert len(client.get_api_keys()["items"]) == 1
    assert len(apis(aws)) == 1


def test_switching_authorization_replaces_the_method(aws: LocalAws, scientist_conn: str) -> None:
    expose(make_context())
    _, calls = expose(make_context(api={"authorization": "API_KEY"}))
    assert_valid(calls)
    client = aws.client("apigateway")
    [api] = apis(aws)
    method = client.get_method(
        restApiId=api["id"], resourceId=invocations_resource_id(client, api["id"]), httpMethod="POST"
    )
    assert (method["authorizationType"], method["apiKeyRequired"]) == ("NONE", True)
    assert set(method["methodResponses"]) == {r.status_code for r in RESPONSES}
    assert method["methodIntegration"]["credentials"] == INVOKE_ROLE_ARN


def test_resource_policy_and_access_logging_follow_the_platform_settings(
    aws: LocalAws, scientist_conn: str
) -> None:
    restricted = {
        "allowed_vpc_endpoint_ids": [VPCE],
        "allowed_org_id": "o-abcdefghij",
        "access_log_destination_arn": LOG_GROUP_ARN,
        "stage_name": "v1",
    }
    result, calls = expose(make_context(api=restricted))
    assert_valid(calls)
    client = aws.client("apigateway")
    [api] = apis(aws)
    policy = parse_policy(api["policy"])
    assert policy is not None
    denies = {s["Sid"]: s["Condition"] for s in policy["Statement"] if s["Effect"] == "Deny"}
    assert denies == {
        "DenyOutsideVpcEndpoints": {"StringNotEquals": {"aws:SourceVpce": [VPCE]}},
        "DenyOutsideOrganization": {"StringNotEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}},
    }
    stage = client.get_stage(restApiId=api["id"], stageName="v1")
    assert stage["accessLogSettings"] == {"destinationArn": LOG_GROUP_ARN, "format": ACCESS_LOG_FORMAT}
    assert result["invoke_url"].endswith(".amazonaws.com/v1/invocations")

    expose(make_context(api={"stage_name": "v1"}, run_id="manual__2"))
    [api] = apis(aws)
    assert not api.get("policy")
    assert not client.get_stage(restApiId=api["id"], stageName="v1").get("accessLogSettings")


def test_a_broken_api_setting_fails_before_any_aws_call(aws: LocalAws, scientist_conn: str) -> None:
    before = aws.request_count()
    with pytest.raises(SageliftValidationError) as error:
        expose(make_context(api={"authorization": "API_KEY", "allowed_org_id": "o-abcdefghij"}))
    assert error.value.fields == ["platform.api.allowed_org_id"]
    assert aws.request_count() == before


# --- removal -----------------------------------------------------------------------------------------
def test_removing_a_models_api_leaves_nothing_and_removing_again_succeeds(
    aws: LocalAws, scientist_conn: str
) -> None:
    api_key_mode = {"authorization": "API_KEY", "quota_limit": 100}
    expose(make_context(api=api_key_mode))
    other, _ = expose(make_context(model_name="fraud"))
    client = aws.client("apigateway")

    result, calls = remove(make_context(api=api_key_mode))
    assert_valid(calls)
    assert [a["name"] for a in apis(aws)] == ["fraud"]
    assert client.get_usage_plans()["items"] == []
    assert client.get_api_keys()["items"] == []
    assert len(result["api_ids"]) == 1
    assert len(result["usage_plan_ids"]) == 1
    assert len(result["api_key_ids"]) == 1

    again, calls = remove(make_context(api=api_key_mode))
    assert_valid(calls)
    assert again == {"api_name": "churn", "api_ids": [], "usage_plan_ids": [], "api_key_ids": []}
    assert not any(c.operation.startswith("Delete") for c in calls)
    assert [a["id"] for a in apis(aws)] == [other["api_id"]]


# --- callers from other accounts (issue 16 item 6) -----------------------------------------------------
CALLER_ACCOUNT = "444455556666"
CALLER_ORG = "o-abcdefghij"


def test_the_resource_policy_admits_exactly_the_accounts_callers(aws: LocalAws, scientist_conn: str) -> None:
    callers = {"api_callers": {"accounts": [CALLER_ACCOUNT], "org_id": CALLER_ORG}}
    _, calls = expose(make_context(account=callers))
    assert_valid(calls)
    [api] = apis(aws)
    policy = parse_policy(api["policy"])
    assert policy is not None
    route = f"arn:aws:execute-api:{REGION}:{SCIENTIST_ACCOUNT}:*/prod/POST/invocations"
    admitted = [(s["Principal"], s.get("Condition"), s["Resource"]) for s in policy["Statement"]]
    assert admitted == [
        (
            {"AWS": [f"arn:aws:iam::{SCIENTIST_ACCOUNT}:root", f"arn:aws:iam::{CALLER_ACCOUNT}:root"]},
            None,
            route,
        ),
        ("*", {"StringEquals": {"aws:PrincipalOrgID": CALLER_ORG}}, route),
    ]
    assert {s["Effect"] for s in policy["Statement"]} == {"Allow"}

    # Callers dropped from the platform lose their access on the next run; the API stays the same.
    again, calls = expose(make_context(run_id="manual__2"))
    assert_valid(calls)
    [after] = apis(aws)
    assert after["id"] == api["id"] and not after.get("policy")
    assert again["invoke_url"].endswith("/prod/invocations")


def test_callers_from_other_accounts_need_iam_authorization(aws: LocalAws, scientist_conn: str) -> None:
    before = aws.request_count()
    with pytest.raises(SageliftValidationError) as error:
        make_context(
            api={"authorization": "API_KEY"}, account={"api_callers": {"accounts": [CALLER_ACCOUNT]}}
        )
    assert error.value.fields == [f"platform.accounts.{SCIENTIST_ACCOUNT}.api_callers"]
    assert aws.request_count() == before


# --- binary payloads (issue 16 item 7) -------------------------------------------------------------------
# A PNG header and every byte value: not UTF-8, so any text handling on the way changes it.
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
JSON_BODY = b'{"instances": [[0.5, 1.5]]}'


def _sagemaker_headers(operation: str) -> dict[str, str]:
    """botocore's sagemaker-runtime model: the header each input member of ``operation`` is read from."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker-runtime").operation_model(operation)
    return {
        name: shape.serialization["name"]
        for name, shape in model.input_shape.members.items()
        if shape.serialization.get("location") == "header"
    }


def _deployed(aws: LocalAws, path: str = "/invocations") -> tuple[dict[str, Any], dict[str, Any]]:
    client = aws.client("apigateway")
    [api] = apis(aws)
    by_path = {r["path"]: r["id"] for r in client.get_resources(restApiId=api["id"])["items"]}
    method = client.get_method(restApiId=api["id"], resourceId=by_path[path], httpMethod="POST")
    return client.get_rest_api(restApiId=api["id"]), method


def _passes_bytes_unchanged(api: dict[str, Any], method: dict[str, Any]) -> bool:
    integration = method["methodIntegration"]
    ok = integration_request_body(api, integration, JSON_BODY, "application/json") == JSON_BODY
    for content_type in ("image/png", "image/jpeg", "application/x-image"):
        ok &= integration_request_body(api, integration, IMAGE, content_type) == IMAGE
    return ok


def test_the_deployed_api_passes_image_bytes_unchanged_to_invoke_endpoint(
    aws: LocalAws, scientist_conn: str
) -> None:
    _, calls = expose(make_context())
    assert_valid(calls)
    api, method = _deployed(aws)
    integration = method["methodIntegration"]
    assert api["binaryMediaTypes"] == ["image/*", "application/x-image"]
    assert integration.get("contentHandling") is None
    assert integration["passthroughBehavior"] == "WHEN_NO_MATCH" and not integration.get("requestTemplates")
    assert _passes_bytes_unchanged(api, method)

    # The request SageMaker gets is InvokeEndpoint's: its path, and the caller's Content-Type and Accept
    # in the headers botocore's model reads ContentType and Accept from.
    assert integration["uri"].endswith(":runtime.sagemaker:path//endpoints/churn/invocations")
    headers = integration_request_headers(
        method, integration, {"Content-Type": "image/png", "Accept": "application/json", "Cookie": "x"}
    )
    wanted = _sagemaker_headers("InvokeEndpoint")
    assert headers == {wanted["ContentType"]: "image/png", wanted["Accept"]: "application/json"}

    # The answer: a JSON prediction to a JSON Accept, a mask image to an image Accept, both as sent.
    for status, response in integration["integrationResponses"].items():
        assert response.get("contentHandling") is None, status
        body = method_response_body(api, response, JSON_BODY, "application/json", "application/json")
        assert body == JSON_BODY, status
        assert method_response_body(api, response, IMAGE, "image/png", "image/png") == IMAGE, status


def test_a_rerun_restores_binary_handling_changed_by_hand(aws: LocalAws, scientist_conn: str) -> None:
    first, _ = expose(make_context())
    client = aws.client("apigateway")
    api_id = first["api_id"]
    client.update_rest_api(
        restApiId=api_id,
        patchOperations=[
            {"op": "remove", "path": "/binaryMediaTypes/application~1x-image"},
            {"op": "add", "path": "/binaryMediaTypes/text~1csv"},
        ],
    )
    api, method = _deployed(aws)
    resource_id = invocations_resource_id(client, api_id)
    client.put_integration(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod="POST",
        type="AWS",
        integrationHttpMethod="POST",
        uri=method["methodIntegration"]["uri"],
        contentHandling="CONVERT_TO_TEXT",
    )
    broken_api, broken_method = _deployed(aws)
    assert broken_api["binaryMediaTypes"] == ["image/*", "text/csv"]
    assert not _passes_bytes_unchanged(broken_api, broken_method)  # the model tells a broken API apart

    again, calls = expose(make_context(run_id="manual__2"))
    assert_valid(calls)
    patch = [c.params["patchOperations"] for c in calls if c.operation == "UpdateRestApi"]
    assert patch == [
        [
            {"op": "remove", "path": "/binaryMediaTypes/text~1csv"},
            {"op": "add", "path": "/binaryMediaTypes/application~1x-image"},
        ]
    ]
    api, method = _deployed(aws)
    assert again["api_id"] == api_id == api["id"]
    assert sorted(api["binaryMediaTypes"]) == ["application/x-image", "image/*"]
    assert _passes_bytes_unchanged(api, method)


def test_the_platform_chooses_the_binary_media_types(aws: LocalAws, scientist_conn: str) -> None:
    expose(make_context(api={"binary_media_types": ["image/png"]}))
    api, method = _deployed(aws)
    assert api["binaryMediaTypes"] == ["image/png"]
    integration = method["methodIntegration"]
    assert integration_request_body(api, integration, IMAGE, "image/png") == IMAGE
    assert integration_request_body(api, integration, IMAGE, "image/jpeg") != IMAGE  # not listed: text


# --- asynchronous endpoints ----------------------------------------------------------------------------
ASYNC_SERVING = {"mode": "async", "async_inference": {"output_s3_uri": "s3://sagelift-async/churn/"}}


def test_an_async_endpoint_is_exposed_through_invoke_endpoint_async(
    aws: LocalAws, scientist_conn: str
) -> None:
    callers = {"api_callers": {"accounts": [CALLER_ACCOUNT]}}
    result, calls = expose(make_context(serving=ASYNC_SERVING, account=callers))
    assert_valid(calls)
    client = aws.client("apigateway")
    [api] = apis(aws)
    paths = {r["path"] for r in client.get_resources(restApiId=api["id"])["items"]}
    assert paths == {"/", "/async-invocations"}  # InvokeEndpoint would fail on an async endpoint
    assert result["invoke_url"].endswith("/prod/async-invocations")

    api, method = _deployed(aws, "/async-invocations")
    integration = method["methodIntegration"]
    assert integration["uri"].endswith(":runtime.sagemaker:path//endpoints/churn/async-invocations")
    assert integration["credentials"] == INVOKE_ROLE_ARN
    wanted = _sagemaker_headers("InvokeEndpointAsync")
    sent = integration_request_headers(
        method,
        integration,
        {
            "Content-Type": "image/jpeg",
            "Accept": "application/json",
            wanted["InputLocation"]: "s3://inputs/cat.jpg",
            wanted["InferenceId"]: "req-1",
            wanted["RequestTTLSeconds"]: "3600",
            wanted["InvocationTimeoutSeconds"]: "600",
            "Authorization": "not passed",
        },
    )
    assert sent == {
        wanted["ContentType"]: "image/jpeg",
        wanted["Accept"]: "application/json",
        wanted["InputLocation"]: "s3://inputs/cat.jpg",
        wanted["InferenceId"]: "req-1",
        wanted["RequestTTLSeconds"]: "3600",
        wanted["InvocationTimeoutSeconds"]: "600",
    }
    # An inline payload (InvokeEndpointAsync's Body) passes as bytes, like a realtime one.
    assert _passes_bytes_unchanged(api, method)
    responses = method["methodIntegration"]["integrationResponses"]
    assert responses["202"]["selectionPattern"] == r"2\d{2}" and "200" not in responses
    assert responses["202"]["responseParameters"] == {
        f"method.response.header.{h}": f"integration.response.header.{h}"
        for h in ("Content-Type", "X-Amzn-SageMaker-OutputLocation", "X-Amzn-SageMaker-FailureLocation")
    }
    policy = parse_policy(api["policy"])
    assert policy is not None
    assert policy["Statement"][0]["Resource"].endswith(":*/prod/POST/async-invocations")

    # Back to realtime: the async path goes, /invocations comes, on the same API.
    again, calls = expose(make_context(run_id="manual__2", account=callers))
    assert_valid(calls)
    assert [c.operation for c in calls].count("DeleteResource") == 1
    paths = {r["path"] for r in client.get_resources(restApiId=api["id"])["items"]}
    assert paths == {"/", "/invocations"}
    assert again["api_id"] == api["id"] and again["invoke_url"].endswith("/prod/invocations")


# --- a lost answer to UpdateRestApi (the step, on the local AWS) -----------------------------------------
class _AnswerLostThenRefused(ApiGatewayClient):
    """UpdateRestApi is performed, its answer lost, and botocore's repeat refused (as AWS may refuse to
    add a binary media type the API already has); ``perform=False``: refused without being performed."""

    def __init__(self, client: Any, *, perform: bool) -> None:
        super().__init__(client)
        self.perform = perform

    def update_rest_api(self, api_id: str, patch_operations: list[dict[str, str]]) -> dict[str, Any]:
        if self.perform:
            super().update_rest_api(api_id, patch_operations)
        error = {"Error": {"Code": "BadRequestException", "Message": "Binary media type already exists"}}
        raise ClientError(error, "UpdateRestApi")


def _spec(binary_media_types: tuple[str, ...]) -> ApiSpec:
    plan = Plan.from_xcom(make_context(api={"binary_media_types": list(binary_media_types)})["plan"])
    return api_spec(plan, [])


def test_an_update_whose_answer_was_lost_is_accepted_once_the_api_reads_right(
    aws: LocalAws, scientist_conn: str
) -> None:
    client = aws.client("apigateway")
    first = expose_model_api(ApiGatewayClient(client), _spec(("image/png",)))
    again = expose_model_api(_AnswerLostThenRefused(client, perform=True), _spec(("image/png", "image/jpeg")))
    assert again.api_id == first.api_id
    assert client.get_rest_api(restApiId=first.api_id)["binaryMediaTypes"] == ["image/png", "image/jpeg"]

    with pytest.raises(ClientError, match="BadRequestException"):
        expose_model_api(_AnswerLostThenRefused(client, perform=False), _spec(("image/gif",)))
    assert client.get_rest_api(restApiId=first.api_id)["binaryMediaTypes"] == ["image/png", "image/jpeg"]
