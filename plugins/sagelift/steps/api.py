"""Step 8, expose_api: the API Gateway REST API calls, and the create-or-update and removal of a model's API.

One method per remote call on a boto3 ``apigateway`` client, plus finding, exposing and removing a
model's API. Nothing here imports Airflow, so both engines share it: the Airflow hook
(sagelift.hooks.apigateway) is this class on the connection's client, and the Kubeflow Pipelines
component (include/kfp) wraps its own chained boto3 client. Request bodies come from
``sagelift.domain.apigateway`` and are sent unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.apigateway import (
    HTTP_METHOD,
    RESOURCE_PATH,
    ApiSpec,
    api_stages_of,
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
    derive_api_spec,
    derive_invoke_url,
    derive_rest_api_arn,
    derive_stage_arn,
    method_matches,
    method_response_matches,
    select_owned,
)
from sagelift.domain.plan import Plan
from sagelift.steps.errors import StepFailed, is_not_found

log = logging.getLogger(__name__)


def _strip_metadata(response: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


@dataclass
class ApiRemoval:
    """What ``remove_model_api`` deleted; all empty when there was nothing to do."""

    api_ids: list[str] = field(default_factory=list)
    usage_plan_ids: list[str] = field(default_factory=list)
    api_key_ids: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.api_ids or self.usage_plan_ids or self.api_key_ids)


class ApiGatewayClient:
    """The API Gateway calls sagelift makes, on any boto3 ``apigateway`` client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        return self._client

    def _all(self, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self.client.get_paginator(operation).paginate(**kwargs):
            items.extend(page.get("items", []))
        return items

    # --- REST APIs -------------------------------------------------------------------------------
    def list_rest_apis(self) -> list[dict[str, Any]]:
        return self._all("get_rest_apis")

    def create_rest_api(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return _strip_metadata(self.client.create_rest_api(**request))

    def update_rest_api(self, api_id: str, patch_operations: list[dict[str, str]]) -> dict[str, Any]:
        return _strip_metadata(
            self.client.update_rest_api(restApiId=api_id, patchOperations=patch_operations)
        )

    def delete_rest_api(self, api_id: str) -> bool:
        """Delete the API; False when it was already gone."""
        try:
            self.client.delete_rest_api(restApiId=api_id)
        except ClientError as error:
            if is_not_found(error):
                return False
            raise
        return True

    def tag_resource(self, arn: str, tags: Mapping[str, str]) -> None:
        self.client.tag_resource(resourceArn=arn, tags=dict(tags))

    def find_apis(self, name: str, model_name: str) -> list[dict[str, Any]]:
        """The model's APIs (name and owner tag both match), oldest first; normally zero or one."""
        return [dict(item) for item in select_owned(self.list_rest_apis(), name, model_name)]

    def find_api(self, name: str, model_name: str) -> dict[str, Any] | None:
        """The model's API; extras (a create whose answer was lost and was sent again) are deleted.

        The one kept is the oldest (then the lowest id), so every run converges on the same API and its
        invoke URL. An API of that name that is not the model's is refused, never adopted.
        """
        found = self.find_apis(name, model_name)
        for extra in found[1:]:
            log.warning(
                "API %s (%s) duplicates %s for model %s; deleting it",
                name,
                extra["id"],
                found[0]["id"],
                model_name,
            )
            self.delete_rest_api(extra["id"])
        if not found:
            strangers = [a["id"] for a in self.list_rest_apis() if a.get("name") == name]
            if strangers:
                raise StepFailed(
                    f"API {name} ({', '.join(strangers)}) exists and is not tagged as sagelift model "
                    f"{model_name}'s; sagelift will not change it. Choose another model_name, or delete or "
                    "re-tag that API."
                )
        return found[0] if found else None

    # --- resources, methods, integrations --------------------------------------------------------
    def list_resources(self, api_id: str) -> list[dict[str, Any]]:
        return self._all("get_resources", restApiId=api_id)

    def create_resource(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return _strip_metadata(self.client.create_resource(**request))

    def get_method(self, api_id: str, resource_id: str, http_method: str) -> dict[str, Any] | None:
        try:
            return _strip_metadata(
                self.client.get_method(restApiId=api_id, resourceId=resource_id, httpMethod=http_method)
            )
        except ClientError as error:
            if is_not_found(error):
                return None
            raise

    def put_method(self, request: Mapping[str, Any]) -> None:
        self.client.put_method(**request)

    def delete_method(self, api_id: str, resource_id: str, http_method: str) -> None:
        self.client.delete_method(restApiId=api_id, resourceId=resource_id, httpMethod=http_method)

    def put_method_response(self, request: Mapping[str, Any]) -> None:
        self.client.put_method_response(**request)

    def delete_method_response(
        self, api_id: str, resource_id: str, http_method: str, status_code: str
    ) -> None:
        self.client.delete_method_response(
            restApiId=api_id, resourceId=resource_id, httpMethod=http_method, statusCode=status_code
        )

    def put_integration(self, request: Mapping[str, Any]) -> None:
        self.client.put_integration(**request)

    def put_integration_response(self, request: Mapping[str, Any]) -> None:
        self.client.put_integration_response(**request)

    # --- deployments and stages ------------------------------------------------------------------
    def create_deployment(self, request: Mapping[str, Any]) -> str:
        return self.client.create_deployment(**request)["id"]

    def get_stage(self, api_id: str, stage_name: str) -> dict[str, Any] | None:
        try:
            return _strip_metadata(self.client.get_stage(restApiId=api_id, stageName=stage_name))
        except ClientError as error:
            if is_not_found(error):
                return None
            raise

    def create_stage(self, request: Mapping[str, Any]) -> None:
        self.client.create_stage(**request)

    def update_stage(self, api_id: str, stage_name: str, patch_operations: list[dict[str, str]]) -> None:
        self.client.update_stage(restApiId=api_id, stageName=stage_name, patchOperations=patch_operations)

    # --- usage plans and API keys ----------------------------------------------------------------
    def list_usage_plans(self) -> list[dict[str, Any]]:
        return self._all("get_usage_plans")

    def create_usage_plan(self, request: Mapping[str, Any]) -> str:
        return self.client.create_usage_plan(**request)["id"]

    def update_usage_plan(self, plan_id: str, patch_operations: list[dict[str, str]]) -> None:
        self.client.update_usage_plan(usagePlanId=plan_id, patchOperations=patch_operations)

    def delete_usage_plan(self, plan_id: str) -> None:
        self.client.delete_usage_plan(usagePlanId=plan_id)

    def list_usage_plan_key_ids(self, plan_id: str) -> list[str]:
        return [item["id"] for item in self._all("get_usage_plan_keys", usagePlanId=plan_id)]

    def create_usage_plan_key(self, plan_id: str, key_id: str) -> None:
        self.client.create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")

    def delete_usage_plan_key(self, plan_id: str, key_id: str) -> None:
        self.client.delete_usage_plan_key(usagePlanId=plan_id, keyId=key_id)

    def list_api_keys(self, name: str) -> list[dict[str, Any]]:
        """Keys whose name starts with ``name``, without their secret values."""
        return self._all("get_api_keys", nameQuery=name, includeValues=False)

    def create_api_key(self, request: Mapping[str, Any]) -> str:
        """Create a key and return only its id: the generated value is a secret and is dropped here."""
        return self.client.create_api_key(**request)["id"]

    def delete_api_key(self, key_id: str) -> None:
        self.client.delete_api_key(apiKey=key_id)

    # --- removal ---------------------------------------------------------------------------------
    def remove_model_api(self, api_name: str, model_name: str) -> ApiRemoval:
        """Delete the model's API with its usage plan and key; removing again finds nothing and succeeds.

        Only items carrying both the API's name and the model's owner tag are touched, so an API someone
        else gave the same name survives. The usage plan is detached from the API's stages first, as
        API Gateway refuses to delete a plan that still names a stage.
        """
        removal = ApiRemoval()
        api_ids = [api["id"] for api in self.find_apis(api_name, model_name)]
        for plan in select_owned(self.list_usage_plans(), api_name, model_name):
            stages = api_stages_of(plan, api_ids)
            detach = [{"op": "remove", "path": "/apiStages", "value": stage} for stage in stages]
            if detach:
                self.update_usage_plan(plan["id"], detach)
            for key_id in self.list_usage_plan_key_ids(plan["id"]):
                self.delete_usage_plan_key(plan["id"], key_id)
            self.delete_usage_plan(plan["id"])
            removal.usage_plan_ids.append(plan["id"])
        for key in select_owned(self.list_api_keys(api_name), api_name, model_name):
            self.delete_api_key(key["id"])
            removal.api_key_ids.append(key["id"])
        for api_id in api_ids:
            if self.delete_rest_api(api_id):
                removal.api_ids.append(api_id)
        return removal


@dataclass(frozen=True)
class ExposedApi:
    """What the task pushes to XCom: identifiers and the URL, never an API key's value."""

    api_id: str
    api_name: str
    stage: str
    invoke_url: str
    deployment_id: str
    authorization: str
    created: bool
    api_key_id: str | None = None
    usage_plan_id: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        return asdict(self)


def api_spec(plan: Plan, tags: list[dict[str, str]]) -> ApiSpec:
    """What the model's API must look like for this run (validated against the platform's API settings)."""
    platform = plan.platform
    return derive_api_spec(
        api_name=plan.names.api,
        model_name=plan.model_name,
        account_id=plan.account_id,
        region=plan.region,
        endpoint_name=plan.names.endpoint,
        invoke_role_arn=platform.api_invoke_role_arn(plan.account_id),
        settings=platform.api,
        tags=tags,
        dag_id=plan.dag_id,
        run_id=plan.run_id,
    )


def expose_model_api(hook: ApiGatewayClient, spec: ApiSpec) -> ExposedApi:
    """Create or update the model's API so that it matches ``spec``, and deploy it to the stage."""
    api = hook.find_api(spec.api_name, spec.model_name)
    created = api is None
    if api is None:
        api = hook.create_rest_api(build_create_rest_api_request(spec))
    else:
        patch = build_update_rest_api_patch(api, spec)
        if patch:
            hook.update_rest_api(api["id"], patch)
        hook.tag_resource(derive_rest_api_arn(spec.region, api["id"]), spec.tags)
    api_id = api["id"]

    resource_id = _ensure_invocations_resource(hook, api_id)
    _ensure_method(hook, api_id, resource_id, spec)
    # PutIntegration replaces the integration, which is how a re-run points it at the current endpoint.
    hook.put_integration(build_put_integration_request(api_id, resource_id, spec))
    for request in build_put_integration_response_requests(api_id, resource_id):
        hook.put_integration_response(request)

    deployment_id = hook.create_deployment(build_create_deployment_request(api_id, spec))
    stage = hook.get_stage(api_id, spec.stage_name)
    if stage is None:
        hook.create_stage(build_create_stage_request(api_id, deployment_id, spec))
        hook.update_stage(api_id, spec.stage_name, build_stage_patch_operations(spec, deployment_id=None))
    else:
        hook.update_stage(
            api_id,
            spec.stage_name,
            build_stage_patch_operations(spec, deployment_id=deployment_id, existing=stage),
        )
        hook.tag_resource(derive_stage_arn(spec.region, api_id, spec.stage_name), spec.tags)

    usage_plan_id = api_key_id = None
    if spec.uses_api_key:
        usage_plan_id, api_key_id = _ensure_usage_plan_and_key(hook, api_id, spec)

    return ExposedApi(
        api_id=api_id,
        api_name=spec.api_name,
        stage=spec.stage_name,
        invoke_url=derive_invoke_url(api_id, spec.region, spec.stage_name),
        deployment_id=deployment_id,
        authorization=spec.authorization,
        created=created,
        api_key_id=api_key_id,
        usage_plan_id=usage_plan_id,
    )


def _ensure_invocations_resource(hook: ApiGatewayClient, api_id: str) -> str:
    by_path = {r["path"]: r["id"] for r in hook.list_resources(api_id)}
    if RESOURCE_PATH in by_path:
        return by_path[RESOURCE_PATH]
    return hook.create_resource(build_create_resource_request(api_id, by_path["/"]))["id"]


def _ensure_method(hook: ApiGatewayClient, api_id: str, resource_id: str, spec: ApiSpec) -> None:
    """PutMethod refuses an existing method, so a method whose authorization changed is replaced."""
    wanted = build_put_method_request(api_id, resource_id, spec)
    existing = hook.get_method(api_id, resource_id, HTTP_METHOD)
    if existing is not None and not method_matches(existing, wanted):
        hook.delete_method(api_id, resource_id, HTTP_METHOD)
        existing = None
    if existing is None:
        hook.put_method(wanted)
    responses: Mapping[str, Any] = (existing or {}).get("methodResponses") or {}
    for request in build_put_method_response_requests(api_id, resource_id):
        current = responses.get(request["statusCode"])
        if method_response_matches(current, request):
            continue
        if current is not None:
            hook.delete_method_response(api_id, resource_id, HTTP_METHOD, request["statusCode"])
        hook.put_method_response(request)


def _ensure_usage_plan_and_key(hook: ApiGatewayClient, api_id: str, spec: ApiSpec) -> tuple[str, str]:
    plans = select_owned(hook.list_usage_plans(), spec.api_name, spec.model_name)
    if plans:
        plan_id = str(plans[0]["id"])
        patch = build_usage_plan_patch(plans[0], api_id, spec)
        if patch:
            hook.update_usage_plan(plan_id, patch)
    else:
        plan_id = hook.create_usage_plan(build_create_usage_plan_request(api_id, spec))
    keys = select_owned(hook.list_api_keys(spec.api_name), spec.api_name, spec.model_name)
    key_id = str(keys[0]["id"]) if keys else hook.create_api_key(build_create_api_key_request(spec))
    if key_id not in hook.list_usage_plan_key_ids(plan_id):
        hook.create_usage_plan_key(plan_id, key_id)
    return plan_id, key_id
