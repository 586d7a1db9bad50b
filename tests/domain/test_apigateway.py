"""Step 8's request bodies: golden JSON, each checked against botocore's API Gateway model."""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from sagelift.domain.apigateway import (
    ACCESS_LOG_FORMAT,
    ASYNC_INVOCATION,
    INVOCATIONS,
    OWNER_TAG_KEY,
    RESPONSES,
    ApiSpec,
    api_stages_of,
    build_create_api_key_request,
    build_create_deployment_request,
    build_create_rest_api_request,
    build_create_stage_request,
    build_create_usage_plan_request,
    build_put_integration_request,
    build_put_integration_response_requests,
    build_put_method_request,
    build_put_method_response_requests,
    build_resource_policy,
    build_stage_patch_operations,
    build_update_rest_api_patch,
    build_usage_plan_patch,
    derive_api_spec,
    derive_integration_uri,
    derive_invoke_url,
    derive_stage_arn,
    method_matches,
    parse_policy,
    same_policy,
    select_owned,
)
from sagelift.domain.errors import Problems, SageliftValidationError
from sagelift.domain.platform import ApiCallers, ApiSettings, PlatformConfig
from tests.support.botocore_validation import validate_request

ACCOUNT = "333333333333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagelift-apigateway-invoke"
TAGS = [{"Key": "team", "Value": "risk"}]
ALL_TAGS = {"team": "risk", "sagelift:model-name": "churn"}


def settings(**raw: Any) -> ApiSettings:
    problems = Problems()
    parsed = ApiSettings.from_dict(raw, problems)
    problems.raise_if_any()
    return parsed


def spec(
    region: str = "us-east-1",
    *,
    callers: ApiCallers | None = None,
    asynchronous: bool = False,
    **raw: Any,
) -> ApiSpec:
    return derive_api_spec(
        api_name="sagelift-churn",
        model_name="churn",
        account_id=ACCOUNT,
        region=region,
        endpoint_name="sagelift-churn",
        invoke_role_arn=ROLE,
        settings=settings(**raw),
        tags=TAGS,
        dag_id="sagelift_pipeline",
        run_id="manual__1",
        callers=callers,
        asynchronous=asynchronous,
    )


def valid(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    assert validate_request("apigateway", operation, request) == []
    return request


# --- golden bodies -------------------------------------------------------------------------------------
def test_create_rest_api_default() -> None:
    assert valid("CreateRestApi", build_create_rest_api_request(spec())) == {
        "name": "sagelift-churn",
        "description": "Invokes the SageMaker endpoint of model churn (managed by sagelift)",
        "apiKeySource": "HEADER",
        "endpointConfiguration": {"types": ["REGIONAL"]},
        "disableExecuteApiEndpoint": False,
        "tags": ALL_TAGS,
        "binaryMediaTypes": ["image/*", "application/x-image"],
    }


def test_create_rest_api_private_with_policy() -> None:
    request = valid(
        "CreateRestApi",
        build_create_rest_api_request(
            spec(endpoint_type="PRIVATE", allowed_vpc_endpoint_ids=["vpce-0123456789abcdef0"])
        ),
    )
    assert request["endpointConfiguration"] == {
        "types": ["PRIVATE"],
        "vpcEndpointIds": ["vpce-0123456789abcdef0"],
    }
    assert json.loads(request["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowInvoke",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "execute-api:Invoke",
                "Resource": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:*/prod/POST/invocations",
            },
            {
                "Sid": "DenyOutsideVpcEndpoints",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "execute-api:Invoke",
                "Resource": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:*/*",
                "Condition": {"StringNotEquals": {"aws:SourceVpce": ["vpce-0123456789abcdef0"]}},
            },
        ],
    }


def test_put_method_aws_iam_and_api_key() -> None:
    assert valid("PutMethod", build_put_method_request("a1", "r1", spec())) == {
        "restApiId": "a1",
        "resourceId": "r1",
        "httpMethod": "POST",
        "authorizationType": "AWS_IAM",
        "apiKeyRequired": False,
        "operationName": "InvokeModel",
        "requestParameters": {
            "method.request.header.Content-Type": False,
            "method.request.header.Accept": False,
        },
    }
    keyed = valid("PutMethod", build_put_method_request("a1", "r1", spec(authorization="API_KEY")))
    assert (keyed["authorizationType"], keyed["apiKeyRequired"]) == ("NONE", True)


def test_put_integration_targets_the_sagemaker_runtime_with_the_invoke_role() -> None:
    assert valid(
        "PutIntegration", build_put_integration_request("a1", "r1", spec(integration_timeout_ms=12000))
    ) == {
        "restApiId": "a1",
        "resourceId": "r1",
        "httpMethod": "POST",
        "type": "AWS",
        "integrationHttpMethod": "POST",
        "uri": "arn:aws:apigateway:us-east-1:runtime.sagemaker:path//endpoints/sagelift-churn/invocations",
        "credentials": ROLE,
        "requestParameters": {
            "integration.request.header.Content-Type": "method.request.header.Content-Type",
            "integration.request.header.Accept": "method.request.header.Accept",
        },
        "passthroughBehavior": "WHEN_NO_MATCH",
        "timeoutInMillis": 12000,
    }


def test_method_and_integration_responses() -> None:
    method_responses = build_put_method_response_requests("a1", "r1")
    integration_responses = build_put_integration_response_requests("a1", "r1")
    for request in method_responses:
        valid("PutMethodResponse", request)
    for request in integration_responses:
        valid("PutIntegrationResponse", request)
    assert method_responses[0] == {
        "restApiId": "a1",
        "resourceId": "r1",
        "httpMethod": "POST",
        "statusCode": "200",
        "responseParameters": {"method.response.header.Content-Type": False},
    }
    assert integration_responses[0] == {
        "restApiId": "a1",
        "resourceId": "r1",
        "httpMethod": "POST",
        "statusCode": "200",
        "selectionPattern": r"2\d{2}",
        "responseParameters": {
            "method.response.header.Content-Type": "integration.response.header.Content-Type"
        },
    }
    defaults = [r["statusCode"] for r in integration_responses if "selectionPattern" not in r]
    assert defaults == ["502"]


def _status_seen_by_caller(sagemaker_status: str) -> str:
    """API Gateway's choice for a non-Lambda integration: the rule whose pattern matches, else the default."""
    matched = [
        r.status_code
        for r in RESPONSES
        if r.selection_pattern is not None and re.fullmatch(r.selection_pattern, sagemaker_status)
    ]
    assert len(matched) <= 1, f"{sagemaker_status} matches {matched}"
    return matched[0] if matched else next(r.status_code for r in RESPONSES if r.selection_pattern is None)


@pytest.mark.parametrize(
    ("sagemaker", "caller"),
    [
        ("200", "200"),  # prediction
        ("400", "400"),  # ValidationError
        ("413", "400"),  # payload too large
        ("424", "424"),  # ModelError
        ("429", "429"),  # ModelNotReadyException / throttling
        ("500", "500"),  # InternalFailure
        ("503", "503"),  # ServiceUnavailable
        ("403", "502"),  # the invoke role may not call the endpoint: not the caller's fault
        ("404", "502"),
        ("530", "502"),  # InternalDependencyException
    ],
)
def test_sagemaker_errors_map_to_the_callers_status(sagemaker: str, caller: str) -> None:
    assert _status_seen_by_caller(sagemaker) == caller


def test_deployment_and_stage() -> None:
    assert valid("CreateDeployment", build_create_deployment_request("a1", spec())) == {
        "restApiId": "a1",
        "description": "sagelift sagelift_pipeline run manual__1: endpoint sagelift-churn",
    }
    assert valid("CreateStage", build_create_stage_request("a1", "d1", spec(stage_name="v1"))) == {
        "restApiId": "a1",
        "stageName": "v1",
        "deploymentId": "d1",
        "description": "sagelift stage of model churn",
        "tags": ALL_TAGS,
    }


def test_stage_patch_points_at_the_deployment_and_sets_throttling_and_logging() -> None:
    log_group = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:api-access"
    ops = build_stage_patch_operations(
        spec(throttle_rate_limit=12.5, throttle_burst_limit=25, access_log_destination_arn=log_group),
        deployment_id="d2",
    )
    assert ops == [
        {"op": "replace", "path": "/deploymentId", "value": "d2"},
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "12.5"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "25"},
        {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": log_group},
        {"op": "replace", "path": "/accessLogSettings/format", "value": ACCESS_LOG_FORMAT},
    ]
    valid("UpdateStage", {"restApiId": "a1", "stageName": "prod", "patchOperations": ops})
    assert "$context.requestId" in json.loads(ACCESS_LOG_FORMAT).values()


def test_stage_patch_turns_access_logging_off_when_the_platform_drops_it() -> None:
    existing = {"accessLogSettings": {"destinationArn": "arn:aws:logs:us-east-1:1:log-group:x"}}
    ops = build_stage_patch_operations(spec(), deployment_id=None, existing=existing)
    assert ops[-1] == {"op": "remove", "path": "/accessLogSettings"}
    assert build_stage_patch_operations(spec(), deployment_id=None)[0]["value"] == "100"


def test_usage_plan_and_api_key() -> None:
    keyed = spec(authorization="API_KEY", quota_limit=500, quota_period="MONTH", throttle_rate_limit=10)
    assert valid("CreateUsagePlan", build_create_usage_plan_request("a1", keyed)) == {
        "name": "sagelift-churn",
        "description": "Throttling and quota for the sagelift API of model churn",
        "apiStages": [{"apiId": "a1", "stage": "prod"}],
        "throttle": {"rateLimit": 10.0, "burstLimit": 200},
        "quota": {"limit": 500, "period": "MONTH"},
        "tags": ALL_TAGS,
    }
    assert valid("CreateApiKey", build_create_api_key_request(keyed)) == {
        "name": "sagelift-churn",
        "description": "Caller key for the sagelift API of model churn",
        "enabled": True,
        "tags": ALL_TAGS,
    }


def test_usage_plan_patch_only_changes_what_differs() -> None:
    keyed = spec(authorization="API_KEY", quota_limit=500)
    current = build_create_usage_plan_request("a1", keyed)
    assert build_usage_plan_patch(current, "a1", keyed) == []
    changed = spec(authorization="API_KEY", throttle_burst_limit=50)
    ops = build_usage_plan_patch(current, "a2", changed)
    assert ops == [
        {"op": "add", "path": "/apiStages", "value": "a2:prod"},
        {"op": "replace", "path": "/throttle/burstLimit", "value": "50"},
        {"op": "remove", "path": "/quota"},
    ]
    valid("UpdateUsagePlan", {"usagePlanId": "p1", "patchOperations": ops})
    assert api_stages_of(
        {"apiStages": [{"apiId": "a1", "stage": "prod"}, {"apiId": "zz", "stage": "x"}]}, ["a1"]
    ) == ["a1:prod"]


# --- finding and updating an existing API ------------------------------------------------------------------
def test_select_owned_needs_name_and_owner_tag_and_prefers_the_oldest() -> None:
    items = [
        {"id": "b", "name": "sagelift-churn", "createdDate": "2026-02-01", "tags": {OWNER_TAG_KEY: "churn"}},
        {"id": "a", "name": "sagelift-churn", "createdDate": "2026-01-01", "tags": {OWNER_TAG_KEY: "churn"}},
        {"id": "c", "name": "sagelift-churn", "tags": {"owner": "someone-else"}},
        {"id": "d", "name": "sagelift-churn-2", "tags": {OWNER_TAG_KEY: "churn"}},
    ]
    assert [i["id"] for i in select_owned(items, "sagelift-churn", "churn")] == ["a", "b"]


def test_update_rest_api_patch_sets_and_removes_the_policy() -> None:
    org = spec(allowed_org_id="o-abcdefghij")
    created = build_create_rest_api_request(org)
    # API Gateway hands the policy back with its quotes escaped; an unchanged policy is not patched.
    existing = {
        "policy": created["policy"].replace('"', '\\"'),
        "endpointConfiguration": {"types": ["REGIONAL"]},
        "binaryMediaTypes": ["image/*", "application/x-image"],
    }
    assert build_update_rest_api_patch(existing, org) == []
    assert build_update_rest_api_patch(existing, spec()) == [
        {"op": "replace", "path": "/policy", "value": ""}
    ]
    ops = build_update_rest_api_patch(
        {
            "endpointConfiguration": {"types": ["EDGE"]},
            "binaryMediaTypes": ["image/*", "application/x-image"],
        },
        org,
    )
    assert parse_policy(ops[0]["value"]) == build_resource_policy(org)
    assert ops[1] == {"op": "replace", "path": "/endpointConfiguration/types/EDGE", "value": "REGIONAL"}
    valid("UpdateRestApi", {"restApiId": "a1", "patchOperations": ops})


def test_org_policy_allows_the_organization() -> None:
    policy = build_resource_policy(spec(allowed_org_id="o-abcdefghij"))
    assert policy is not None
    allow, deny = policy["Statement"]
    assert allow["Principal"] == "*"
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    assert build_resource_policy(spec()) is None


def test_method_matches_detects_an_authorization_change() -> None:
    existing = {
        "authorizationType": "AWS_IAM",
        "apiKeyRequired": False,
        "requestParameters": {
            "method.request.header.Content-Type": False,
            "method.request.header.Accept": False,
        },
    }
    assert method_matches(existing, build_put_method_request("a", "r", spec()))
    assert not method_matches(existing, build_put_method_request("a", "r", spec(authorization="API_KEY")))


# --- names and URLs ------------------------------------------------------------------------------------
def test_invoke_url_and_arns() -> None:
    assert (
        derive_invoke_url("abc123", "eu-west-1", "prod")
        == "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/invocations"
    )
    assert (
        derive_invoke_url("abc123", "cn-north-1", "prod")
        == "https://abc123.execute-api.cn-north-1.amazonaws.com.cn/prod/invocations"
    )
    assert (
        derive_integration_uri("us-gov-west-1", "e")
        == "arn:aws-us-gov:apigateway:us-gov-west-1:runtime.sagemaker:path//endpoints/e/invocations"
    )
    assert (
        derive_stage_arn("us-east-1", "abc123", "prod")
        == "arn:aws:apigateway:us-east-1::/restapis/abc123/stages/prod"
    )


def test_run_tags_cannot_take_over_the_owner_tag() -> None:
    hijack = derive_api_spec(
        api_name="sagelift-churn",
        model_name="churn",
        account_id=ACCOUNT,
        region="us-east-1",
        endpoint_name="sagelift-churn",
        invoke_role_arn=ROLE,
        settings=settings(),
        tags=[{"Key": OWNER_TAG_KEY, "Value": "fraud"}],
        dag_id="d",
        run_id="r",
    )
    assert hijack.tags[OWNER_TAG_KEY] == "churn"


# --- validation --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"allowed_org_id": "o-abcdefghij", "authorization": "API_KEY"}, "platform.api.allowed_org_id"),
        ({"allowed_org_id": "org-1"}, "platform.api.allowed_org_id"),
        ({"allowed_vpc_endpoint_ids": ["vpc-123"]}, "platform.api.allowed_vpc_endpoint_ids[0]"),
        ({"endpoint_type": "PRIVATE"}, "platform.api.allowed_vpc_endpoint_ids"),
        ({"quota_limit": 100}, "platform.api.quota_limit"),
        ({"authorization": "API_KEY", "quota_limit": 0}, "platform.api.quota_limit"),
        ({"throttle_rate_limit": 0}, "platform.api.throttle_rate_limit"),
        ({"throttle_burst_limit": 1.5}, "platform.api.throttle_burst_limit"),
        (
            {"access_log_destination_arn": "arn:aws:logs:us-east-1:333333333333:log-group:x:*"},
            "platform.api.access_log_destination_arn",
        ),
    ],
)
def test_inconsistent_api_settings_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(SageliftValidationError) as error:
        spec(**raw)
    assert error.value.fields == [field]


def test_bad_names_are_reported_together() -> None:
    with pytest.raises(SageliftValidationError) as error:
        derive_api_spec(
            api_name="",
            model_name="m",
            account_id=ACCOUNT,
            region="us-east-1",
            endpoint_name="bad_endpoint",
            invoke_role_arn=ROLE,
            settings=settings(),
            tags=[],
            dag_id="d",
            run_id="r",
        )
    assert error.value.fields == ["names.api", "names.endpoint"]


def test_firehose_access_log_destination_is_accepted() -> None:
    arn = f"arn:aws:firehose:us-east-1:{ACCOUNT}:deliverystream/amazon-apigateway-access"
    assert spec(access_log_destination_arn=arn).access_log_destination_arn == arn


# --- who may call: the resource policy (issue 16 item 6) -----------------------------------------------
GOLDEN_POLICIES = Path(__file__).parent / "golden" / "apigateway_policies.json"
CALLER = "444455556666"
OTHER_CALLER = "111122223333"
POLICY_CASES: dict[str, dict[str, Any]] = {
    "same_account_only": {},
    "caller_accounts": {"callers": ApiCallers(accounts=(CALLER, OTHER_CALLER))},
    "caller_organization": {"callers": ApiCallers(org_id="o-callers1234")},
    "caller_accounts_and_organization": {"callers": ApiCallers(accounts=(CALLER,), org_id="o-callers1234")},
    "caller_accounts_async": {"callers": ApiCallers(accounts=(CALLER,)), "asynchronous": True},
    # the account itself listed as a caller changes nothing
    "own_account_listed": {"callers": ApiCallers(accounts=(ACCOUNT,))},
    "private_with_callers": {
        "callers": ApiCallers(accounts=(CALLER,)),
        "endpoint_type": "PRIVATE",
        "allowed_vpc_endpoint_ids": ["vpce-0123456789abcdef0"],
    },
    "platform_organization": {"allowed_org_id": "o-abcdefghij"},
    "api_key_through_vpc_endpoint": {
        "authorization": "API_KEY",
        "allowed_vpc_endpoint_ids": ["vpce-0123456789abcdef0"],
    },
    "gov_cloud_callers": {"region": "us-gov-west-1", "callers": ApiCallers(accounts=(CALLER,))},
}


def _policies() -> dict[str, Any]:
    return {case: build_resource_policy(spec(**kwargs)) for case, kwargs in POLICY_CASES.items()}


def test_resource_policies_match_golden() -> None:
    policies = _policies()
    if os.environ.get("SAGELIFT_UPDATE_GOLDEN"):
        GOLDEN_POLICIES.write_text(json.dumps(policies, indent=2, sort_keys=True) + "\n")
    assert policies == json.loads(GOLDEN_POLICIES.read_text())


def _principals(policy: dict[str, Any] | None, effect: str = "Allow") -> set[str]:
    """Who the policy's statements of ``effect`` name: account roots, '*' or '*@<org>'."""
    names: set[str] = set()
    for statement in (policy or {}).get("Statement", []):
        if statement["Effect"] != effect:
            continue
        principal = statement["Principal"]
        if principal == "*":
            org = (statement.get("Condition") or {}).get("StringEquals", {}).get("aws:PrincipalOrgID")
            names.add(f"*@{org}" if org else "*")
        else:
            aws = principal["AWS"]
            names.update([aws] if isinstance(aws, str) else aws)
    return names


def test_the_policy_admits_exactly_the_listed_callers_and_the_account() -> None:
    policies = _policies()
    root = "arn:aws:iam::{}:root".format
    assert policies["same_account_only"] is None  # API Gateway's own rule: the account's IAM callers
    assert _principals(policies["caller_accounts"]) == {root(ACCOUNT), root(CALLER), root(OTHER_CALLER)}
    assert _principals(policies["caller_organization"]) == {root(ACCOUNT), "*@o-callers1234"}
    assert _principals(policies["caller_accounts_and_organization"]) == {
        root(ACCOUNT),
        root(CALLER),
        "*@o-callers1234",
    }
    assert policies["own_account_listed"] is None
    assert _principals(policies["gov_cloud_callers"]) == {
        "arn:aws-us-gov:iam::333333333333:root",
        "arn:aws-us-gov:iam::444455556666:root",
    }
    # Only POST on the API's one path on its stage; the platform's restrictions deny every route.
    for case, policy in policies.items():
        for statement in (policy or {}).get("Statement", []):
            resource = statement["Resource"]
            if statement["Effect"] == "Allow":
                path = "async-invocations" if case.endswith("_async") else "invocations"
                assert resource.endswith(f":{ACCOUNT}:*/prod/POST/{path}"), case
            else:
                assert resource.endswith(f":{ACCOUNT}:*/*"), case


def test_resource_policies_pass_the_parliament_linter() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from parliament import analyze_policy_string

    findings = {}
    for case, policy in _policies().items():
        if policy is None:
            continue
        analyzed = analyze_policy_string(json.dumps(policy))
        if analyzed.findings:
            findings[case] = [f"{f.issue}: {f.detail}" for f in analyzed.findings]
    assert findings == {}


def test_parliament_catches_a_policy_with_a_malformed_resource() -> None:
    from parliament import analyze_policy_string

    policy = build_resource_policy(spec(callers=ApiCallers(accounts=(CALLER,))))
    assert policy is not None
    policy["Statement"][0]["Resource"] = "execute-api:/prod/POST/invocations"  # not an ARN
    assert analyze_policy_string(json.dumps(policy)).findings


def test_a_policy_read_back_in_another_order_is_the_same_policy() -> None:
    wanted = build_resource_policy(spec(callers=ApiCallers(accounts=(CALLER, OTHER_CALLER))))
    assert wanted is not None
    returned = json.loads(json.dumps(wanted))
    returned["Statement"][0]["Principal"]["AWS"].reverse()
    assert same_policy(returned, wanted)
    single = build_resource_policy(spec(callers=ApiCallers(org_id="o-callers1234")))
    assert single is not None
    as_list = json.loads(json.dumps(single))
    as_list["Statement"][0]["Action"] = ["execute-api:Invoke"]
    assert same_policy(as_list, single)
    assert not same_policy(returned, single)
    existing = {
        "policy": json.dumps(returned).replace('"', '\\"'),
        "endpointConfiguration": {"types": ["REGIONAL"]},
        "binaryMediaTypes": ["image/*", "application/x-image"],
    }
    assert (
        build_update_rest_api_patch(existing, spec(callers=ApiCallers(accounts=(CALLER, OTHER_CALLER)))) == []
    )


def platform_with(account: dict[str, Any], api: dict[str, Any] | None = None) -> PlatformConfig:
    return PlatformConfig.from_dict({"region": "us-east-1", "accounts": {ACCOUNT: account}, "api": api or {}})


def test_the_platform_lists_callers_per_account() -> None:
    platform = platform_with({"api_callers": {"accounts": [OTHER_CALLER, CALLER], "org_id": "o-callers1234"}})
    assert platform.account(ACCOUNT).api_callers == ApiCallers(
        accounts=(OTHER_CALLER, CALLER), org_id="o-callers1234"
    )
    assert platform_with({}).account(ACCOUNT).api_callers == ApiCallers()


@pytest.mark.parametrize(
    ("account", "api", "field"),
    [
        (
            {"api_callers": {"accounts": ["4444"]}},
            None,
            f"platform.accounts.{ACCOUNT}.api_callers.accounts[0]",
        ),
        (
            {"api_callers": {"accounts": "444455556666"}},
            None,
            f"platform.accounts.{ACCOUNT}.api_callers.accounts",
        ),
        (
            {"api_callers": {"accounts": [CALLER, CALLER]}},
            None,
            f"platform.accounts.{ACCOUNT}.api_callers.accounts",
        ),
        ({"api_callers": {"org_id": "my-org"}}, None, f"platform.accounts.{ACCOUNT}.api_callers.org_id"),
        ({"api_callers": {"acounts": [CALLER]}}, None, f"platform.accounts.{ACCOUNT}.api_callers.acounts"),
        (
            {"api_callers": {"accounts": [CALLER]}},
            {"authorization": "API_KEY"},
            f"platform.accounts.{ACCOUNT}.api_callers",
        ),
        ({}, {"binary_media_types": ["image"]}, "platform.api.binary_media_types[0]"),
        ({}, {"binary_media_types": ["*/png"]}, "platform.api.binary_media_types[0]"),
        ({}, {"binary_media_types": ["image/png", "image/png"]}, "platform.api.binary_media_types"),
        ({}, {"binary_media_types": "image/png"}, "platform.api.binary_media_types"),
    ],
)
def test_bad_caller_and_media_type_settings_are_refused_naming_the_field(
    account: dict[str, Any], api: dict[str, Any] | None, field: str
) -> None:
    with pytest.raises(SageliftValidationError) as error:
        platform_with(account, api)
    assert error.value.fields == [field]


# --- binary payloads (issue 16 item 7) and the async path ----------------------------------------------
def test_binary_media_types_are_created_and_patched_in_place() -> None:
    wanted = spec(binary_media_types=["image/*", "application/x-image", "application/vnd.acme+octet"])
    assert valid("CreateRestApi", build_create_rest_api_request(wanted))["binaryMediaTypes"] == [
        "image/*",
        "application/x-image",
        "application/vnd.acme+octet",
    ]
    existing = {"endpointConfiguration": {"types": ["REGIONAL"]}, "binaryMediaTypes": ["image/*", "text/csv"]}
    ops = build_update_rest_api_patch(existing, wanted)
    assert ops == [
        {"op": "remove", "path": "/binaryMediaTypes/text~1csv"},
        {"op": "add", "path": "/binaryMediaTypes/application~1x-image"},
        {"op": "add", "path": "/binaryMediaTypes/application~1vnd.acme+octet"},
    ]
    valid("UpdateRestApi", {"restApiId": "a1", "patchOperations": ops})
    assert "binaryMediaTypes" not in build_create_rest_api_request(spec(binary_media_types=[]))


def test_the_integration_passes_the_body_untouched() -> None:
    for asynchronous in (False, True):
        request = valid(
            "PutIntegration", build_put_integration_request("a1", "r1", spec(asynchronous=asynchronous))
        )
        assert "contentHandling" not in request and "requestTemplates" not in request
        assert request["passthroughBehavior"] == "WHEN_NO_MATCH"
        for response in build_put_integration_response_requests("a1", "r1", spec(asynchronous=asynchronous)):
            assert "contentHandling" not in valid("PutIntegrationResponse", response)


def _sagemaker_runtime(operation: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker-runtime").operation_model(operation)


def test_each_invocation_maps_to_its_sagemaker_runtime_operation() -> None:
    """The integration URI is the operation's request URI, and every header a caller's value is mapped to
    is one botocore's model reads an input member from."""
    for invocation in INVOCATIONS:
        operation = invocation.sagemaker_operation
        model = _sagemaker_runtime(operation)
        asynchronous = invocation is ASYNC_INVOCATION
        request = build_put_integration_request("a1", "r1", spec(asynchronous=asynchronous))
        path = model.http["requestUri"].replace("{EndpointName}", "sagelift-churn")
        assert request["uri"] == f"arn:aws:apigateway:us-east-1:runtime.sagemaker:path/{path}"
        headers = {
            s.serialization["name"]
            for s in model.input_shape.members.values()
            if s.serialization.get("location") == "header"
        }
        mapped = {k.removeprefix("integration.request.header.") for k in request["requestParameters"]}
        assert mapped <= headers, operation
        method = valid("PutMethod", build_put_method_request("a1", "r1", spec(asynchronous=asynchronous)))
        assert set(method["requestParameters"]) == {v for v in request["requestParameters"].values()}
        out = {
            s.serialization["name"]
            for s in model.output_shape.members.values()
            if s.serialization.get("location") == "header"
        }
        # Content-Type: every HTTP answer has one (InvokeEndpointAsync's JSON), whether the model names it
        assert set(invocation.response_headers) - {"Content-Type"} <= out, operation
    assert _sagemaker_runtime("InvokeEndpointAsync").http["responseCode"] == 202
    assert ASYNC_INVOCATION.responses[0].status_code == "202"


def test_async_method_responses_carry_the_result_locations() -> None:
    requests = build_put_method_response_requests("a1", "r1", spec(asynchronous=True))
    for request in requests:
        valid("PutMethodResponse", request)
    accepted = next(r for r in requests if r["statusCode"] == "202")
    assert accepted["responseParameters"] == {
        "method.response.header.Content-Type": False,
        "method.response.header.X-Amzn-SageMaker-OutputLocation": False,
        "method.response.header.X-Amzn-SageMaker-FailureLocation": False,
    }
    assert "200" not in {r["statusCode"] for r in requests}
    assert spec(asynchronous=True).invocation.path == "/async-invocations"


def test_the_invoke_role_may_call_each_invocation_and_nothing_else() -> None:
    from sagelift.domain.onboarding import render_policies

    platform = PlatformConfig.from_dict(
        {
            "region": "us-east-1",
            "master_role_arn": "arn:aws:iam::222222222222:role/sagelift-master-pipeline",
            "accounts": {ACCOUNT: {}},
        }
    )
    policies = render_policies(
        platform,
        ACCOUNT,
        runner_principal_arn="arn:aws:iam::111111111111:role/x",
        data_uris=[],
        output_uris=[],
    )
    [statement] = policies["apigateway-invoke-permissions"]["Statement"]
    assert set(statement["Action"]) == {f"sagemaker:{i.sagemaker_operation}" for i in INVOCATIONS}
    assert statement["Resource"] == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/*"
