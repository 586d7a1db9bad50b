"""What step 8 asks of API Gateway, as plain data: one REST API per model in front of its endpoint.

The API is found again on every run by its name and the owner tag, so a re-run updates it in place
(integration pointed at the current endpoint, a new deployment on the same stage) instead of creating a
second API with a new invoke URL. Everything here is a pure function of the run's plan and the platform's
``api`` settings; the hook sends these bodies as they are, and the tests validate them against botocore's
service model.

Shape of the API (one of the two resources, by the run's endpoint mode)::

    /invocations        POST  --AWS integration-->  runtime.sagemaker  /endpoints/{endpoint}/invocations
    /async-invocations  POST  --AWS integration-->  runtime.sagemaker  /endpoints/{endpoint}/async-invocations
                        credentials: the account's invoke role; the headers of the Invocation passed through;
                        the body passed through untouched (no mapping template, no content conversion;
                        the API's binaryMediaTypes mark image bodies as bytes, never text); SageMaker's
                        status codes mapped to the method responses of the Invocation.

Who may call: the account itself, plus the callers the platform lists for the account
(``accounts.<id>.api_callers``), admitted by the API's resource policy and nobody else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sagelift.domain.errors import Problems
from sagelift.domain.multi_model import TARGET_MODEL_HEADER
from sagelift.domain.ownership import OWNER_TAG_KEY
from sagelift.domain.platform import (  # the rules live with the settings
    ApiCallers,
    ApiSettings,
    validate_api_settings,
)

# The run tag naming the model; on an API, usage plan or key it marks the ones sagelift owns for that model.
RESOURCE_PATH_PART = "invocations"
RESOURCE_PATH = "/" + RESOURCE_PATH_PART
HTTP_METHOD = "POST"
PASSED_REQUEST_HEADERS = ("Content-Type", "Accept")
PASSED_RESPONSE_HEADERS = ("Content-Type",)
ALL_METHODS_SETTINGS_PATH = "/*/*"

# Every field a request may carry, logged as JSON; API Gateway requires $context.requestId or
# $context.extendedRequestId in an access log format.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "sourceIp": "$context.identity.sourceIp",
        "caller": "$context.identity.caller",
        "user": "$context.identity.user",
        "apiKeyId": "$context.identity.apiKeyId",
        "vpceId": "$context.identity.vpceId",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integration.latency",
        "integrationError": "$context.integration.error",
    },
    separators=(",", ":"),
)

ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@dataclass(frozen=True)
class ResponseRule:
    """One SageMaker outcome: the method response a caller gets and the integration pattern that picks it.

    ``selection_pattern`` is matched against the status code SageMaker returned; ``None`` marks the
    default response, the one API Gateway uses when no pattern matches.
    """

    status_code: str
    selection_pattern: str | None
    meaning: str


# SageMaker runtime InvokeEndpoint answers 400 ValidationError, 424 ModelError, 429 ModelNotReady or
# throttling, 500 InternalFailure, 503 ServiceUnavailable. Anything else (403 when the invoke role lacks
# sagemaker:InvokeEndpoint, 404, 530 InternalDependencyException) is the gateway's fault from the caller's
# point of view: the default 502. The 200 has a pattern so that an unexpected status never passes as 200.
RESPONSES: tuple[ResponseRule, ...] = (
    ResponseRule("200", r"2\d{2}", "the model's prediction"),
    ResponseRule(
        "400", r"400|413|415", "the request was rejected by the endpoint (bad body or content type)"
    ),
    ResponseRule("424", r"424", "the model container raised an error for this input"),
    ResponseRule("429", r"429", "the endpoint is throttling or not ready yet; retry later"),
    ResponseRule("500", r"500", "SageMaker failed internally"),
    ResponseRule("503", r"503", "SageMaker is unavailable; retry later"),
    ResponseRule("502", None, "the gateway could not invoke the endpoint (role, endpoint or dependency)"),
)
# InvokeEndpointAsync answers 202 (queued) with the InferenceId in the body; its errors are the same.
ASYNC_RESPONSES: tuple[ResponseRule, ...] = (
    ResponseRule("202", r"2\d{2}", "queued; the result lands at X-Amzn-SageMaker-OutputLocation"),
    *RESPONSES[1:],
)


@dataclass(frozen=True)
class Invocation:
    """One way to call the endpoint through the API: a resource and the SageMaker runtime action behind it.

    ``request_headers`` pairs the header a caller sends with the header SageMaker reads (botocore's
    sagemaker-runtime model names them; a test checks the pairs against it). Everything else of the
    caller's request except the body is dropped.
    """

    path_part: str
    operation_name: str
    sagemaker_operation: str  # what the invoke role must be allowed (sagemaker:<operation>)
    request_headers: tuple[tuple[str, str], ...]
    response_headers: tuple[str, ...]
    responses: tuple[ResponseRule, ...]
    parents: tuple[str, ...] = ()  # the resources above path_part: ("models", "<model>") on a shared endpoint

    @property
    def path(self) -> str:
        return "/" + "/".join((*self.parents, self.path_part))


REALTIME_INVOCATION = Invocation(
    path_part=RESOURCE_PATH_PART,
    operation_name="InvokeModel",
    sagemaker_operation="InvokeEndpoint",
    request_headers=tuple((h, h) for h in PASSED_REQUEST_HEADERS),
    response_headers=PASSED_RESPONSE_HEADERS,
    responses=RESPONSES,
)
# InvokeEndpointAsync: the payload inline (the body, up to 128,000 bytes) or in S3 (the caller's
# X-Amzn-SageMaker-InputLocation, read by the model's execution role); the answer names where the result
# and a failure will land. The caller's Content-Type and Accept describe the payload and the result, as
# they do on /invocations; SageMaker reads them from its own header names.
ASYNC_INVOCATION = Invocation(
    path_part="async-invocations",
    operation_name="InvokeModelAsync",
    sagemaker_operation="InvokeEndpointAsync",
    request_headers=(
        ("Content-Type", "X-Amzn-SageMaker-Content-Type"),
        ("Accept", "X-Amzn-SageMaker-Accept"),
        ("X-Amzn-SageMaker-InputLocation", "X-Amzn-SageMaker-InputLocation"),
        ("X-Amzn-SageMaker-Inference-Id", "X-Amzn-SageMaker-Inference-Id"),
        ("X-Amzn-SageMaker-RequestTTLSeconds", "X-Amzn-SageMaker-RequestTTLSeconds"),
        ("X-Amzn-SageMaker-InvocationTimeoutSeconds", "X-Amzn-SageMaker-InvocationTimeoutSeconds"),
    ),
    response_headers=("Content-Type", "X-Amzn-SageMaker-OutputLocation", "X-Amzn-SageMaker-FailureLocation"),
    responses=ASYNC_RESPONSES,
)
INVOCATIONS = (REALTIME_INVOCATION, ASYNC_INVOCATION)
MULTI_MODEL_ROOT = "models"  # POST /models/<model>/invocations: a model on a shared multi-model endpoint


def multi_model_invocation(model_name: str) -> Invocation:
    """The realtime invocation at /models/<model>/invocations (issue 20 item 1): the integration sets
    the TargetModel header to the model's current key (ApiSpec.target_model)."""
    return replace(REALTIME_INVOCATION, parents=(MULTI_MODEL_ROOT, model_name))


@dataclass(frozen=True)
class ApiSpec:
    """Everything the model's API should be after this run; build it with ``derive_api_spec``."""

    api_name: str
    model_name: str
    account_id: str
    region: str
    endpoint_name: str
    invoke_role_arn: str
    stage_name: str
    authorization: str
    integration_timeout_ms: int
    throttle_rate_limit: float
    throttle_burst_limit: int
    quota_limit: int | None
    quota_period: str
    access_log_destination_arn: str | None
    allowed_vpc_endpoint_ids: tuple[str, ...]
    allowed_org_id: str | None
    endpoint_type: str
    run_tags: Mapping[str, str]
    deployment_description: str
    binary_media_types: tuple[str, ...] = ()
    caller_account_ids: tuple[str, ...] = ()
    caller_org_id: str | None = None
    invocation: Invocation = REALTIME_INVOCATION
    # On a shared multi-model endpoint: the artifact key the API's route invokes (TargetModel).
    target_model: str | None = None

    @property
    def uses_api_key(self) -> bool:
        return self.authorization == "API_KEY"

    @property
    def partition(self) -> str:
        return derive_partition(self.region)

    @property
    def tags(self) -> dict[str, str]:
        """The run's tags plus the owner tag, on the API, its stage, usage plan and key."""
        return {**self.run_tags, OWNER_TAG_KEY: self.model_name}


def derive_api_spec(
    *,
    api_name: str,
    model_name: str,
    account_id: str,
    region: str,
    endpoint_name: str,
    invoke_role_arn: str,
    settings: ApiSettings,
    tags: Iterable[Mapping[str, str]],
    dag_id: str,
    run_id: str,
    callers: ApiCallers | None = None,
    asynchronous: bool = False,
    target_model: str | None = None,
) -> ApiSpec:
    """Check the settings step 8 depends on together and freeze them into one spec.

    ``callers``: the account's ``api_callers``; ``asynchronous``: the endpoint serves asynchronously, so
    the API exposes InvokeEndpointAsync instead of InvokeEndpoint.
    """
    callers = callers or ApiCallers()
    problems = Problems()
    if not api_name or len(api_name) > 1024:
        problems.add("names.api", "a non-empty API name of at most 1024 characters")
    if not ENDPOINT_NAME_RE.match(endpoint_name):
        problems.add("names.endpoint", "a SageMaker endpoint name: 1-63 letters, digits and '-'")
    validate_api_settings(settings, problems)
    problems.raise_if_any()
    return ApiSpec(
        api_name=api_name,
        model_name=model_name,
        account_id=account_id,
        region=region,
        endpoint_name=endpoint_name,
        invoke_role_arn=invoke_role_arn,
        stage_name=settings.stage_name,
        authorization=settings.authorization,
        integration_timeout_ms=settings.integration_timeout_ms,
        throttle_rate_limit=float(settings.throttle_rate_limit),
        throttle_burst_limit=settings.throttle_burst_limit,
        quota_limit=settings.quota_limit,
        quota_period=settings.quota_period,
        access_log_destination_arn=settings.access_log_destination_arn,
        allowed_vpc_endpoint_ids=tuple(settings.allowed_vpc_endpoint_ids),
        allowed_org_id=settings.allowed_org_id,
        endpoint_type=settings.endpoint_type,
        run_tags={t["Key"]: t["Value"] for t in tags},
        deployment_description=f"sagelift {dag_id} run {run_id}: endpoint {endpoint_name}",
        binary_media_types=tuple(settings.binary_media_types),
        caller_account_ids=tuple(sorted(set(callers.accounts) - {account_id})),
        caller_org_id=callers.org_id,
        invocation=(
            multi_model_invocation(model_name)
            if target_model
            else ASYNC_INVOCATION
            if asynchronous
            else REALTIME_INVOCATION
        ),
        target_model=target_model,
    )


# --- names, ARNs and URLs -------------------------------------------------------------------------
def derive_partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _dns_suffix(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def derive_integration_uri(region: str, endpoint_name: str, action: str = RESOURCE_PATH_PART) -> str:
    """The SageMaker runtime action behind the method (the double slash is part of the path form)."""
    return (
        f"arn:{derive_partition(region)}:apigateway:{region}:runtime.sagemaker:"
        f"path//endpoints/{endpoint_name}/{action}"
    )


def derive_invoke_url(api_id: str, region: str, stage_name: str, path: str = RESOURCE_PATH) -> str:
    return f"https://{api_id}.execute-api.{region}.{_dns_suffix(region)}/{stage_name}{path}"


def derive_execute_api_arn(spec: ApiSpec, route: str = "*") -> str:
    """``arn:...:execute-api:<region>:<account>:*/<route>``. The API id is '*': the policy is the API's own,
    so it names no other API, and the ARN is the same before the API exists (CreateRestApi carries it)."""
    return f"arn:{spec.partition}:execute-api:{spec.region}:{spec.account_id}:*/{route}"


def derive_rest_api_arn(region: str, api_id: str) -> str:
    return f"arn:{derive_partition(region)}:apigateway:{region}::/restapis/{api_id}"


def derive_stage_arn(region: str, api_id: str, stage_name: str) -> str:
    return f"{derive_rest_api_arn(region, api_id)}/stages/{stage_name}"


# --- finding the model's API again --------------------------------------------------------------
def is_owned(item: Mapping[str, Any], name: str, model_name: str) -> bool:
    """A listed API, usage plan or key is the model's when both its name and owner tag match."""
    return item.get("name") == name and (item.get("tags") or {}).get(OWNER_TAG_KEY) == model_name


def select_owned(items: Iterable[Mapping[str, Any]], name: str, model_name: str) -> list[Mapping[str, Any]]:
    """The model's items, oldest first, so that the one kept is the same on every run."""
    owned = [item for item in items if is_owned(item, name, model_name)]
    return sorted(owned, key=lambda item: (str(item.get("createdDate") or ""), str(item.get("id"))))


# --- the API itself ------------------------------------------------------------------------------
def _root(spec: ApiSpec, account_id: str) -> str:
    return f"arn:{spec.partition}:iam::{account_id}:root"


def build_resource_policy(spec: ApiSpec) -> dict[str, Any] | None:
    """Who may call the API beyond its authorization; None when only the account itself may (API Gateway's
    rule without a policy: an AWS_IAM caller of the same account whose IAM policy allows the call).

    The Allow admits the account itself and the account's ``api_callers``, nothing wider, and only to
    POST the API's one resource on its stage: other accounts by their root (each account's own IAM
    policies then decide which of its roles may call; AWS needs both sides to allow a cross-account
    call) and an organization by aws:PrincipalOrgID. Anonymous API-key callers and the platform-wide
    ``allowed_org_id`` need Principal '*'. Each platform restriction (VPC endpoints, organization) is an
    explicit Deny on every route, so it holds even for a caller whose own IAM policy allows the call.
    """
    callers = bool(spec.caller_account_ids or spec.caller_org_id)
    if not spec.allowed_vpc_endpoint_ids and not spec.allowed_org_id and not callers:
        return None
    route = f"{spec.stage_name}/{HTTP_METHOD}{spec.invocation.path}"
    invoke = {"Action": "execute-api:Invoke", "Resource": derive_execute_api_arn(spec, route)}
    everything = {"Action": "execute-api:Invoke", "Resource": derive_execute_api_arn(spec)}
    if spec.uses_api_key or spec.allowed_org_id:
        principal: Any = "*"
    elif spec.caller_account_ids:
        accounts = [spec.account_id, *spec.caller_account_ids]
        principal = {"AWS": [_root(spec, account) for account in accounts]}
    else:
        principal = {"AWS": _root(spec, spec.account_id)}
    statements: list[dict[str, Any]] = [
        {"Sid": "AllowInvoke", "Effect": "Allow", "Principal": principal, **invoke}
    ]
    if spec.caller_org_id and principal != "*":
        statements.append(
            {
                "Sid": "AllowCallerOrganization",
                "Effect": "Allow",
                "Principal": "*",
                **invoke,
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": spec.caller_org_id}},
            }
        )
    if spec.allowed_vpc_endpoint_ids:
        statements.append(
            {
                "Sid": "DenyOutsideVpcEndpoints",
                "Effect": "Deny",
                "Principal": "*",
                **everything,
                "Condition": {"StringNotEquals": {"aws:SourceVpce": list(spec.allowed_vpc_endpoint_ids)}},
            }
        )
    if spec.allowed_org_id:
        statements.append(
            {
                "Sid": "DenyOutsideOrganization",
                "Effect": "Deny",
                "Principal": "*",
                **everything,
                "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": spec.allowed_org_id}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def parse_policy(text: str | None) -> dict[str, Any] | None:
    """A policy as API Gateway returns it (JSON with its quotes backslash-escaped), or None."""
    if not text:
        return None
    for candidate in (text, text.replace('\\"', '"')):
        try:
            parsed = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return None


def _normalized(value: Any) -> Any:
    """A policy as IAM compares it: a one-item list is its item, and list order does not matter."""
    if isinstance(value, Mapping):
        return {k: _normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalized(v) for v in value]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return value


def same_policy(current: Mapping[str, Any] | None, wanted: Mapping[str, Any] | None) -> bool:
    return _normalized(current) == _normalized(wanted)


def _escape_pointer(value: str) -> str:
    """A JSON-pointer path segment: API Gateway names a binary media type in a patch path this way."""
    return value.replace("~", "~0").replace("/", "~1")


def _endpoint_configuration(spec: ApiSpec) -> dict[str, Any]:
    config: dict[str, Any] = {"types": [spec.endpoint_type]}
    if spec.endpoint_type == "PRIVATE":
        config["vpcEndpointIds"] = list(spec.allowed_vpc_endpoint_ids)
    return config


def build_create_rest_api_request(spec: ApiSpec) -> dict[str, Any]:
    request: dict[str, Any] = {
        "name": spec.api_name,
        "description": f"Invokes the SageMaker endpoint of model {spec.model_name} (managed by sagelift)",
        "apiKeySource": "HEADER",
        "endpointConfiguration": _endpoint_configuration(spec),
        "disableExecuteApiEndpoint": False,
        "tags": spec.tags,
    }
    if spec.binary_media_types:
        request["binaryMediaTypes"] = list(spec.binary_media_types)
    policy = build_resource_policy(spec)
    if policy is not None:
        request["policy"] = json.dumps(policy, separators=(",", ":"))
    return request


def build_update_rest_api_patch(existing: Mapping[str, Any], spec: ApiSpec) -> list[dict[str, str]]:
    """Patch operations that bring an existing API's policy, binary media types and endpoint type to the
    spec; [] when equal."""
    ops: list[dict[str, str]] = []
    wanted = build_resource_policy(spec)
    if not same_policy(parse_policy(existing.get("policy")), wanted):
        # A replace with an empty value is how API Gateway removes a resource policy.
        ops.append(
            {
                "op": "replace",
                "path": "/policy",
                "value": json.dumps(wanted, separators=(",", ":")) if wanted else "",
            }
        )
    current_types = list((existing.get("endpointConfiguration") or {}).get("types") or [])
    if current_types and current_types != [spec.endpoint_type]:
        ops.append(
            {
                "op": "replace",
                "path": f"/endpointConfiguration/types/{current_types[0]}",
                "value": spec.endpoint_type,
            }
        )
    current_media = list(existing.get("binaryMediaTypes") or [])
    ops += [
        {"op": "remove", "path": f"/binaryMediaTypes/{_escape_pointer(t)}"}
        for t in current_media
        if t not in spec.binary_media_types
    ]
    ops += [
        {"op": "add", "path": f"/binaryMediaTypes/{_escape_pointer(t)}"}
        for t in spec.binary_media_types
        if t not in current_media
    ]
    return ops


# --- resource, method, integration, responses ----------------------------------------------------
def build_create_resource_request(
    api_id: str, root_resource_id: str, path_part: str = RESOURCE_PATH_PART
) -> dict[str, Any]:
    return {"restApiId": api_id, "parentId": root_resource_id, "pathPart": path_part}


def build_put_method_request(api_id: str, resource_id: str, spec: ApiSpec) -> dict[str, Any]:
    return {
        "restApiId": api_id,
        "resourceId": resource_id,
        "httpMethod": HTTP_METHOD,
        "authorizationType": "AWS_IAM" if spec.authorization == "AWS_IAM" else "NONE",
        "apiKeyRequired": spec.uses_api_key,
        "operationName": spec.invocation.operation_name,
        "requestParameters": {
            f"method.request.header.{caller}": False for caller, _ in spec.invocation.request_headers
        },
    }


def method_matches(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a GetMethod answer already has the authorization and parameters of a put_method request."""
    return (
        existing.get("authorizationType") == wanted["authorizationType"]
        and bool(existing.get("apiKeyRequired")) == wanted["apiKeyRequired"]
        and (existing.get("requestParameters") or {}) == wanted["requestParameters"]
    )


def build_put_integration_request(api_id: str, resource_id: str, spec: ApiSpec) -> dict[str, Any]:
    return {
        "restApiId": api_id,
        "resourceId": resource_id,
        "httpMethod": HTTP_METHOD,
        "type": "AWS",
        "integrationHttpMethod": "POST",
        "uri": derive_integration_uri(spec.region, spec.endpoint_name, spec.invocation.path_part),
        "credentials": spec.invoke_role_arn,
        "requestParameters": {
            **{
                f"integration.request.header.{sagemaker}": f"method.request.header.{caller}"
                for caller, sagemaker in spec.invocation.request_headers
            },
            # a shared multi-model endpoint: which model answers (a static value, in quotes)
            **(
                {f"integration.request.header.{TARGET_MODEL_HEADER}": f"'{spec.target_model}'"}
                if spec.target_model
                else {}
            ),
        },
        # No request templates, and no contentHandling: the body goes to SageMaker exactly as the caller
        # sent it. A body whose Content-Type is one of the API's binaryMediaTypes passes as bytes; any
        # other (JSON, CSV) as the text it is. CONVERT_TO_BINARY would base64-decode a JSON body and
        # CONVERT_TO_TEXT base64-encode an image (API Gateway's content type conversion table).
        "passthroughBehavior": "WHEN_NO_MATCH",
        "timeoutInMillis": spec.integration_timeout_ms,
    }


def _response_headers(spec: ApiSpec | None) -> tuple[str, ...]:
    return spec.invocation.response_headers if spec else PASSED_RESPONSE_HEADERS


def _responses(spec: ApiSpec | None) -> tuple[ResponseRule, ...]:
    return spec.invocation.responses if spec else RESPONSES


def build_put_method_response_requests(
    api_id: str, resource_id: str, spec: ApiSpec | None = None
) -> list[dict[str, Any]]:
    return [
        {
            "restApiId": api_id,
            "resourceId": resource_id,
            "httpMethod": HTTP_METHOD,
            "statusCode": rule.status_code,
            "responseParameters": {f"method.response.header.{h}": False for h in _response_headers(spec)},
        }
        for rule in _responses(spec)
    ]


def method_response_matches(existing: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    return existing is not None and (existing.get("responseParameters") or {}) == wanted["responseParameters"]


def build_put_integration_response_requests(
    api_id: str, resource_id: str, spec: ApiSpec | None = None
) -> list[dict[str, Any]]:
    """The mapping of SageMaker's answers; no contentHandling either way, so a prediction passes as
    SageMaker sent it (bytes when the caller's Accept is one of the binaryMediaTypes, text otherwise)."""
    requests = []
    for rule in _responses(spec):
        request: dict[str, Any] = {
            "restApiId": api_id,
            "resourceId": resource_id,
            "httpMethod": HTTP_METHOD,
            "statusCode": rule.status_code,
            "responseParameters": {
                f"method.response.header.{h}": f"integration.response.header.{h}"
                for h in _response_headers(spec)
            },
        }
        if rule.selection_pattern is not None:
            request["selectionPattern"] = rule.selection_pattern
        requests.append(request)
    return requests


# --- deployment and stage ------------------------------------------------------------------------
def build_create_deployment_request(api_id: str, spec: ApiSpec) -> dict[str, Any]:
    """A deployment without a stage: the stage is then pointed at it, keeping its settings and tags."""
    return {"restApiId": api_id, "description": spec.deployment_description}


def build_create_stage_request(api_id: str, deployment_id: str, spec: ApiSpec) -> dict[str, Any]:
    return {
        "restApiId": api_id,
        "stageName": spec.stage_name,
        "deploymentId": deployment_id,
        "description": f"sagelift stage of model {spec.model_name}",
        "tags": spec.tags,
    }


def _number(value: float) -> str:
    """Patch values are strings; whole numbers are written without a fraction ('100', not '100.0')."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def build_stage_patch_operations(
    spec: ApiSpec, *, deployment_id: str | None, existing: Mapping[str, Any] | None = None
) -> list[dict[str, str]]:
    """Point the stage at ``deployment_id`` (when given) and set throttling and access logging."""
    ops: list[dict[str, str]] = []
    if deployment_id is not None:
        ops.append({"op": "replace", "path": "/deploymentId", "value": deployment_id})
    ops += [
        {
            "op": "replace",
            "path": f"{ALL_METHODS_SETTINGS_PATH}/throttling/rateLimit",
            "value": _number(spec.throttle_rate_limit),
        },
        {
            "op": "replace",
            "path": f"{ALL_METHODS_SETTINGS_PATH}/throttling/burstLimit",
            "value": str(spec.throttle_burst_limit),
        },
    ]
    if spec.access_log_destination_arn:
        ops += [
            {
                "op": "replace",
                "path": "/accessLogSettings/destinationArn",
                "value": spec.access_log_destination_arn,
            },
            {"op": "replace", "path": "/accessLogSettings/format", "value": ACCESS_LOG_FORMAT},
        ]
    elif existing is not None and existing.get("accessLogSettings"):
        ops.append({"op": "remove", "path": "/accessLogSettings"})
    return ops


# --- API keys and usage plans (authorization API_KEY) --------------------------------------------
def build_create_api_key_request(spec: ApiSpec) -> dict[str, Any]:
    """No value: API Gateway generates the secret, which never passes through sagelift."""
    return {
        "name": spec.api_name,
        "description": f"Caller key for the sagelift API of model {spec.model_name}",
        "enabled": True,
        "tags": spec.tags,
    }


def _quota(spec: ApiSpec) -> dict[str, Any] | None:
    return {"limit": spec.quota_limit, "period": spec.quota_period} if spec.quota_limit else None


def build_create_usage_plan_request(api_id: str, spec: ApiSpec) -> dict[str, Any]:
    request: dict[str, Any] = {
        "name": spec.api_name,
        "description": f"Throttling and quota for the sagelift API of model {spec.model_name}",
        "apiStages": [{"apiId": api_id, "stage": spec.stage_name}],
        "throttle": {"rateLimit": spec.throttle_rate_limit, "burstLimit": spec.throttle_burst_limit},
        "tags": spec.tags,
    }
    quota = _quota(spec)
    if quota is not None:
        request["quota"] = quota
    return request


def build_usage_plan_patch(existing: Mapping[str, Any], api_id: str, spec: ApiSpec) -> list[dict[str, str]]:
    """Patch operations that bring an existing usage plan to the spec; [] when it already matches."""
    ops: list[dict[str, str]] = []
    stages = existing.get("apiStages") or []
    if not any(s.get("apiId") == api_id and s.get("stage") == spec.stage_name for s in stages):
        ops.append({"op": "add", "path": "/apiStages", "value": f"{api_id}:{spec.stage_name}"})
    throttle = existing.get("throttle") or {}
    if throttle.get("rateLimit") != spec.throttle_rate_limit:
        ops.append(
            {"op": "replace", "path": "/throttle/rateLimit", "value": _number(spec.throttle_rate_limit)}
        )
    if throttle.get("burstLimit") != spec.throttle_burst_limit:
        ops.append({"op": "replace", "path": "/throttle/burstLimit", "value": str(spec.throttle_burst_limit)})
    quota, wanted = existing.get("quota") or {}, _quota(spec)
    if wanted is None and quota:
        ops.append({"op": "remove", "path": "/quota"})
    elif wanted is not None:
        if quota.get("limit") != wanted["limit"]:
            ops.append({"op": "replace", "path": "/quota/limit", "value": str(wanted["limit"])})
        if quota.get("period") != wanted["period"]:
            ops.append({"op": "replace", "path": "/quota/period", "value": wanted["period"]})
    return ops


def api_stages_of(plan: Mapping[str, Any], api_ids: Sequence[str]) -> list[str]:
    """The ``apiId:stage`` values of a usage plan naming the given APIs (detached before deleting)."""
    return [f"{s['apiId']}:{s['stage']}" for s in plan.get("apiStages") or [] if s.get("apiId") in api_ids]
