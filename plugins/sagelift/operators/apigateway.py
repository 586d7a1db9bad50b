"""Step 8, expose_api: one stable API Gateway REST API per model in front of its SageMaker endpoint.

The first run creates the API, its /invocations POST method, the SageMaker integration, the response
mapping, a deployment and the stage. Every later run finds the same API by name and owner tag, points
the integration at the current endpoint and deploys again on the same stage, so the invoke URL a
scientist shared keeps working. API Gateway applies these changes synchronously: nothing to wait for.

``ApiGatewayRemoveOperator`` is the teardown path: it deletes the model's API, usage plan and key, and
succeeds with nothing to do when they are already gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from airflow.sdk import BaseOperator

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
    derive_api_spec,
    derive_invoke_url,
    derive_rest_api_arn,
    derive_stage_arn,
    method_matches,
    method_response_matches,
    select_owned,
)
from sagelift.hooks.apigateway import ApiGatewayHook
from sagelift.links.apigateway import ApiGatewayInvokeUrlLink, ApiGatewayStageLink
from sagelift.operators.run_inputs import RunInputs, pull_run_inputs


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


def spec_from_run_inputs(inputs: RunInputs) -> ApiSpec:
    platform = inputs.platform
    return derive_api_spec(
        api_name=inputs.names["api"],
        model_name=str(inputs.params["model_name"]),
        account_id=inputs.account_id,
        region=inputs.region,
        endpoint_name=inputs.names["endpoint"],
        invoke_role_arn=platform.api_invoke_role_arn(inputs.account_id),
        settings=platform.api,
        tags=inputs.tag_list(),
        dag_id=str(inputs.plan.get("dag_id", "")),
        run_id=str(inputs.plan.get("run_id", "")),
    )


def expose_model_api(hook: ApiGatewayHook, spec: ApiSpec) -> ExposedApi:
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


def _ensure_invocations_resource(hook: ApiGatewayHook, api_id: str) -> str:
    by_path = {r["path"]: r["id"] for r in hook.list_resources(api_id)}
    if RESOURCE_PATH in by_path:
        return by_path[RESOURCE_PATH]
    return hook.create_resource(build_create_resource_request(api_id, by_path["/"]))["id"]


def _ensure_method(hook: ApiGatewayHook, api_id: str, resource_id: str, spec: ApiSpec) -> None:
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


def _ensure_usage_plan_and_key(hook: ApiGatewayHook, api_id: str, spec: ApiSpec) -> tuple[str, str]:
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


class ApiGatewayExposeOperator(BaseOperator):
    """Expose the run's endpoint through the model's API Gateway REST API (task ``expose_api``).

    Reads the plan, the scientist account's connection and the run's tags from upstream XCom; pushes
    ``{"api_id", "api_name", "stage", "invoke_url", "deployment_id", ...}``.
    """

    operator_extra_links = (ApiGatewayStageLink(), ApiGatewayInvokeUrlLink())
    ui_color = "#e7d5f5"

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        spec = spec_from_run_inputs(inputs)
        hook = ApiGatewayHook(aws_conn_id=inputs.aws_conn_id, region_name=inputs.region)
        exposed = expose_model_api(hook, spec)
        ApiGatewayStageLink.persist(
            context=context,
            operator=self,
            region_name=spec.region,
            aws_partition=spec.partition,
            api_id=exposed.api_id,
            stage=exposed.stage,
            invoke_url=exposed.invoke_url,
        )
        self.log.info(
            "%s API %s (%s) for model %s; deployment %s is live on stage %s. Invoke URL: %s",
            "Created" if exposed.created else "Updated",
            exposed.api_name,
            exposed.api_id,
            spec.model_name,
            exposed.deployment_id,
            exposed.stage,
            exposed.invoke_url,
        )
        if exposed.api_key_id:
            self.log.info(
                "Callers send the value of API key %s in the x-api-key header "
                "(aws apigateway get-api-key --api-key %s --include-value).",
                exposed.api_key_id,
                exposed.api_key_id,
            )
        return exposed.to_xcom()


class ApiGatewayRemoveOperator(BaseOperator):
    """Delete the model's API, usage plan and key (teardown); succeeds with nothing to do when gone."""

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        api_name, model_name = inputs.names["api"], str(inputs.params["model_name"])
        hook = ApiGatewayHook(aws_conn_id=inputs.aws_conn_id, region_name=inputs.region)
        removal = hook.remove_model_api(api_name, model_name)
        if removal.nothing_to_do:
            self.log.info(
                "No API named %s for model %s in account %s: nothing to remove.",
                api_name,
                model_name,
                inputs.account_id,
            )
        else:
            self.log.info(
                "Removed API %s for model %s: APIs %s, usage plans %s, API keys %s.",
                api_name,
                model_name,
                removal.api_ids,
                removal.usage_plan_ids,
                removal.api_key_ids,
            )
        return {"api_name": api_name, **asdict(removal)}
