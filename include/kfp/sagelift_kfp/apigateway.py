"""Step 8 on KFP: the model's API Gateway API, created or updated with sagelift.domain.apigateway.

``ApiGatewayCalls`` has the method names of sagelift.hooks.apigateway.ApiGatewayHook over a plain
boto3 client, and ``expose_model_api`` follows sagelift.operators.apigateway.expose_model_api call for
call. (That function takes any object with the hook's methods; once it lives in a module that does not
import Airflow, this one should call it instead of mirroring it.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.apigateway import (
    HTTP_METHOD,
    RESOURCE_PATH,
    ApiSpec,
    build_create_api_key_request,
    build_create_deployment_request,
    build_create_resource_request,
    build_create_rest_api_request,
    build_create_stage_request,
    build_create_usage_plan_request,
    build_put_integration_request,
    build_put_integration_response_requests,
    build_put_method_request,
    build_put_method_response_requests,
    build_stage_patch_operations,
    build_update_rest_api_patch,
    build_usage_plan_patch,
    derive_invoke_url,
    derive_rest_api_arn,
    derive_stage_arn,
    method_matches,
    method_response_matches,
    select_owned,
)


def _strip(response: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def _missing(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "NotFoundException"


class ApiGatewayCalls:
    def __init__(self, client: Any) -> None:
        self.client = client

    def _all(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        return [
            i for p in self.client.get_paginator(operation).paginate(**kwargs) for i in p.get("items", [])
        ]

    def _get(self, method: str, **kwargs: Any) -> dict[str, Any] | None:
        try:
            return _strip(getattr(self.client, method)(**kwargs))
        except ClientError as err:
            if _missing(err):
                return None
            raise

    def find_api(self, name: str, model_name: str) -> dict[str, Any] | None:
        found = select_owned(self._all("get_rest_apis"), name, model_name)
        return dict(found[0]) if found else None


def expose_model_api(client: Any, spec: ApiSpec) -> dict[str, Any]:
    """Create or update the model's API to match ``spec`` and deploy it; identifiers only, no key value."""
    calls = ApiGatewayCalls(client)
    api = calls.find_api(spec.api_name, spec.model_name)
    created = api is None
    if api is None:
        api = _strip(client.create_rest_api(**build_create_rest_api_request(spec)))
    else:
        patch = build_update_rest_api_patch(api, spec)
        if patch:
            client.update_rest_api(restApiId=api["id"], patchOperations=patch)
        client.tag_resource(resourceArn=derive_rest_api_arn(spec.region, api["id"]), tags=dict(spec.tags))
    api_id = api["id"]

    by_path = {r["path"]: r["id"] for r in calls._all("get_resources", restApiId=api_id)}
    resource_id = (
        by_path.get(RESOURCE_PATH)
        or client.create_resource(**build_create_resource_request(api_id, by_path["/"]))["id"]
    )

    wanted = build_put_method_request(api_id, resource_id, spec)
    existing = calls._get("get_method", restApiId=api_id, resourceId=resource_id, httpMethod=HTTP_METHOD)
    if existing is not None and not method_matches(existing, wanted):
        client.delete_method(restApiId=api_id, resourceId=resource_id, httpMethod=HTTP_METHOD)
        existing = None
    if existing is None:
        client.put_method(**wanted)
    responses: Mapping[str, Any] = (existing or {}).get("methodResponses") or {}
    for request in build_put_method_response_requests(api_id, resource_id):
        current = responses.get(request["statusCode"])
        if method_response_matches(current, request):
            continue
        if current is not None:
            client.delete_method_response(
                restApiId=api_id,
                resourceId=resource_id,
                httpMethod=HTTP_METHOD,
                statusCode=request["statusCode"],
            )
        client.put_method_response(**request)
    client.put_integration(**build_put_integration_request(api_id, resource_id, spec))
    for request in build_put_integration_response_requests(api_id, resource_id):
        client.put_integration_response(**request)

    deployment_id = client.create_deployment(**build_create_deployment_request(api_id, spec))["id"]
    stage = calls._get("get_stage", restApiId=api_id, stageName=spec.stage_name)
    if stage is None:
        client.create_stage(**build_create_stage_request(api_id, deployment_id, spec))
        client.update_stage(
            restApiId=api_id,
            stageName=spec.stage_name,
            patchOperations=build_stage_patch_operations(spec, deployment_id=None),
        )
    else:
        client.update_stage(
            restApiId=api_id,
            stageName=spec.stage_name,
            patchOperations=build_stage_patch_operations(spec, deployment_id=deployment_id, existing=stage),
        )
        client.tag_resource(
            resourceArn=derive_stage_arn(spec.region, api_id, spec.stage_name), tags=dict(spec.tags)
        )

    usage_plan_id = api_key_id = None
    if spec.uses_api_key:
        plans = select_owned(calls._all("get_usage_plans"), spec.api_name, spec.model_name)
        if plans:
            usage_plan_id = str(plans[0]["id"])
            patch = build_usage_plan_patch(plans[0], api_id, spec)
            if patch:
                client.update_usage_plan(usagePlanId=usage_plan_id, patchOperations=patch)
        else:
            usage_plan_id = client.create_usage_plan(**build_create_usage_plan_request(api_id, spec))["id"]
        keys = select_owned(
            calls._all("get_api_keys", nameQuery=spec.api_name, includeValues=False),
            spec.api_name,
            spec.model_name,
        )
        # CreateApiKey answers with the key's value: only its id is kept.
        api_key_id = (
            str(keys[0]["id"]) if keys else client.create_api_key(**build_create_api_key_request(spec))["id"]
        )
        attached = [k["id"] for k in calls._all("get_usage_plan_keys", usagePlanId=usage_plan_id)]
        if api_key_id not in attached:
            client.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=api_key_id, keyType="API_KEY")

    return {
        "api_id": api_id,
        "api_name": spec.api_name,
        "stage": spec.stage_name,
        "invoke_url": derive_invoke_url(api_id, spec.region, spec.stage_name),
        "deployment_id": deployment_id,
        "authorization": spec.authorization,
        "created": created,
        "api_key_id": api_key_id,
        "usage_plan_id": usage_plan_id,
    }
