"""Step 8, expose_api: the API Gateway REST API calls, and the create-or-update and removal of a model's API.

One method per remote call on a boto3 ``apigateway`` client, plus finding, exposing and removing a
model's API. Nothing here imports Airflow, so both engines share it: the Airflow hook
(sagelift.hooks.apigateway) is this class on the connection's client, and the Kubeflow Pipelines
component (include/kfp) wraps its own chained boto3 client. Request bodies come from
``sagelift.domain.apigateway`` and are sent unchanged.

Lost answers. botocore sends a request again when the connection drops before the answer, even if API
Gateway had already acted. So every create and update here is written to meet its own earlier copy:

- CreateRestApi, CreateUsagePlan, CreateApiKey and CreateDeployment make another item each time. After
  each (and after one that ended in a transient error) the model's items are listed again by name and
  owner tag (deployments: those this call made, by the run's description) and converge to one: the
  oldest, then the lowest id (usage plans, which have no date: the one naming the API's stage, then the
  lowest id), so every try and every later run keeps the same API, invoke URL and key; the others are
  deleted (a usage plan first loses its stages and keys, as API Gateway requires).
- CreateResource, PutMethod, PutMethodResponse, CreateStage and CreateUsagePlanKey answer
  ``ConflictException`` when repeated, UpdateUsagePlan refuses to add a stage the plan names, and
  UpdateRestApi may refuse to add a binary media type the API has (or remove one it lacks): such a
  refusal is accepted once a read shows the thing in place, as this run wants it.
- PutIntegration, PutIntegrationResponse, TagResource and the ``replace`` patches of UpdateRestApi and
  UpdateStage are idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sagelift.domain.apigateway import (
    HTTP_METHOD,
    INVOCATIONS,
    MULTI_MODEL_ROOT,
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
from sagelift.domain.multi_model import MultiModelPlacement
from sagelift.domain.plan import Plan
from sagelift.steps.errors import StepFailed, classify, error_code, is_not_found

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

    def get_rest_api(self, api_id: str) -> dict[str, Any]:
        return _strip_metadata(self.client.get_rest_api(restApiId=api_id))

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

    def keep_one_api(self, name: str, model_name: str) -> dict[str, Any] | None:
        """The model's API; extras (a create whose answer was lost and was sent again) are deleted.

        The one kept is the oldest (then the lowest id), so every run converges on the same API and its
        invoke URL.
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
        return found[0] if found else None

    def find_api(self, name: str, model_name: str) -> dict[str, Any] | None:
        """``keep_one_api``; an API of that name that is not the model's is refused, never adopted."""
        kept = self.keep_one_api(name, model_name)
        if kept is None:
            strangers = [a["id"] for a in self.list_rest_apis() if a.get("name") == name]
            if strangers:
                raise StepFailed(
                    f"API {name} ({', '.join(strangers)}) exists and is not tagged as sagelift model "
                    f"{model_name}'s; sagelift will not change it. Choose another model_name, or delete or "
                    "re-tag that API."
                )
        return kept

    # --- resources, methods, integrations --------------------------------------------------------
    def list_resources(self, api_id: str) -> list[dict[str, Any]]:
        return self._all("get_resources", restApiId=api_id)

    def create_resource(self, request: Mapping[str, Any]) -> dict[str, Any]:
        return _strip_metadata(self.client.create_resource(**request))

    def delete_resource(self, api_id: str, resource_id: str) -> bool:
        """Delete a resource with its methods; False when it was already gone."""
        try:
            self.client.delete_resource(restApiId=api_id, resourceId=resource_id)
        except ClientError as error:
            if is_not_found(error):
                return False
            raise
        return True

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

    def list_deployments(self, api_id: str) -> list[dict[str, Any]]:
        return self._all("get_deployments", restApiId=api_id)

    def delete_deployment(self, api_id: str, deployment_id: str) -> None:
        self.client.delete_deployment(restApiId=api_id, deploymentId=deployment_id)

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

    def get_usage_plan(self, plan_id: str) -> dict[str, Any]:
        return _strip_metadata(self.client.get_usage_plan(usagePlanId=plan_id))

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

    def delete_usage_plan_fully(self, plan: Mapping[str, Any]) -> None:
        """Detach the plan's stages, remove its keys, then delete it (API Gateway's required order)."""
        stages = [f"{s['apiId']}:{s['stage']}" for s in plan.get("apiStages") or []]
        if stages:
            self.update_usage_plan(
                plan["id"], [{"op": "remove", "path": "/apiStages", "value": stage} for stage in stages]
            )
        for key_id in self.list_usage_plan_key_ids(plan["id"]):
            self.delete_usage_plan_key(plan["id"], key_id)
        self.delete_usage_plan(plan["id"])

    def keep_one_usage_plan(self, name: str, model_name: str, stage: str) -> dict[str, Any] | None:
        """The model's usage plan; extras are deleted. API Gateway gives plans no creation date, so the one
        kept is the one naming ``stage`` (``apiId:stageName``: the plan in use), then the lowest id."""
        plans = sorted(
            select_owned(self.list_usage_plans(), name, model_name),
            key=lambda plan: stage not in api_stages_of(plan, [stage.split(":", 1)[0]]),
        )
        for extra in plans[1:]:
            log.warning("Usage plan %s (%s) duplicates %s; deleting it", name, extra["id"], plans[0]["id"])
            self.delete_usage_plan_fully(extra)
        return dict(plans[0]) if plans else None

    def keep_one_api_key(self, name: str, model_name: str, plan_id: str | None) -> dict[str, Any] | None:
        """The model's API key, the oldest (then lowest id); extras leave ``plan_id`` and are deleted."""
        keys = select_owned(self.list_api_keys(name), name, model_name)
        in_plan = set(self.list_usage_plan_key_ids(plan_id)) if plan_id and len(keys) > 1 else set()
        for extra in keys[1:]:
            log.warning("API key %s (%s) duplicates %s; deleting it", name, extra["id"], keys[0]["id"])
            if plan_id and extra["id"] in in_plan:
                self.delete_usage_plan_key(plan_id, extra["id"])
            self.delete_api_key(extra["id"])
        return dict(keys[0]) if keys else None

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


def api_spec(plan: Plan, tags: list[dict[str, str]], placement: MultiModelPlacement | None = None) -> ApiSpec:
    """What the model's API must look like for this run (validated against the platform's API settings):
    the account's callers from other accounts, and the asynchronous invocation for an async endpoint.
    ``placement``: the model's key on its team's shared multi-model endpoint (deploy_endpoint's), which
    the API's /models/<model>/invocations invokes."""
    platform = plan.platform
    return derive_api_spec(
        api_name=plan.names.api,
        model_name=plan.model_name,
        account_id=plan.account_id,
        region=plan.region,
        endpoint_name=placement.endpoint_name if placement else plan.names.endpoint,
        invoke_role_arn=platform.api_invoke_role_arn(plan.account_id),
        settings=platform.api,
        tags=tags,
        dag_id=plan.dag_id,
        run_id=plan.run_id,
        callers=platform.account(plan.account_id).api_callers,
        asynchronous=plan.params.endpoint.mode == "async",
        target_model=placement.target_model if placement else None,
    )


def expose_model_api(hook: ApiGatewayClient, spec: ApiSpec) -> ExposedApi:
    """Create or update the model's API so that it matches ``spec``, and deploy it to the stage."""
    api = hook.find_api(spec.api_name, spec.model_name)
    created = api is None
    if api is None:
        api = _create_one(
            lambda: hook.create_rest_api(build_create_rest_api_request(spec)),
            lambda: hook.keep_one_api(spec.api_name, spec.model_name),
            f"API {spec.api_name}",
        )
    else:
        current, patch = api, build_update_rest_api_patch(api, spec)
        if patch:
            _accept_repeat(
                lambda: hook.update_rest_api(current["id"], patch),
                lambda: not build_update_rest_api_patch(hook.get_rest_api(current["id"]), spec),
                codes=("ConflictException", "BadRequestException", "NotFoundException"),
            )
        hook.tag_resource(derive_rest_api_arn(spec.region, api["id"]), spec.tags)
    api_id = api["id"]

    resource_id = _ensure_invocations_resource(hook, api_id, spec)
    _ensure_method(hook, api_id, resource_id, spec)
    # PutIntegration replaces the integration (content handling and templates included), which is how a
    # re-run points it at the current endpoint and undoes a hand edit.
    hook.put_integration(build_put_integration_request(api_id, resource_id, spec))
    for request in build_put_integration_response_requests(api_id, resource_id, spec):
        hook.put_integration_response(request)
    _remove_other_invocations(hook, api_id, spec)

    deployment_id = _deploy(hook, api_id, spec)
    stage = hook.get_stage(api_id, spec.stage_name)
    if stage is None:
        _accept_repeat(
            lambda: hook.create_stage(build_create_stage_request(api_id, deployment_id, spec)),
            lambda: hook.get_stage(api_id, spec.stage_name) is not None,
        )
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
        invoke_url=derive_invoke_url(api_id, spec.region, spec.stage_name, spec.invocation.path),
        deployment_id=deployment_id,
        authorization=spec.authorization,
        created=created,
        api_key_id=api_key_id,
        usage_plan_id=usage_plan_id,
    )


def _create_one(
    create: Callable[[], Any], keep_one: Callable[[], Mapping[str, Any] | None], what: str
) -> dict[str, Any]:
    """Create an item that API Gateway would duplicate, then converge the model's items on one.

    botocore may have sent the create twice (its first answer lost), and a create that ended in a
    transient error may still have been performed: either way the listing by name and owner tag decides
    which one this run uses (``keep_one`` keeps the oldest and deletes the others).
    """
    failure: ClientError | BotoCoreError | None = None
    created: Any = None
    try:
        created = create()
    except (ClientError, BotoCoreError) as err:
        if classify(err) != "transient":
            raise
        failure = err
    kept = keep_one()
    if kept is not None:
        if failure is not None:
            log.info("%s: the create failed (%s), but AWS had made it; using %s", what, failure, kept["id"])
        return dict(kept)
    if failure is not None:
        raise failure
    # Not listed yet (a listing can lag a create): the created item itself.
    return dict(created)


def _accept_repeat(
    put: Callable[[], Any], in_place: Callable[[], bool], codes: tuple[str, ...] = ("ConflictException",)
) -> None:
    """A write API Gateway refuses to repeat: its refusal means an earlier copy (whose answer was lost)
    was performed, which a read confirms; any other refusal stands."""
    try:
        put()
    except ClientError as err:
        if error_code(err) not in codes or not in_place():
            raise
        log.info("%s was already done by an earlier attempt whose answer was lost.", err.operation_name)


def _deploy(hook: ApiGatewayClient, api_id: str, spec: ApiSpec) -> str:
    """Create this try's deployment; copies made by a repeated request converge on the oldest."""

    def mine() -> dict[str, dict[str, Any]]:
        return {
            d["id"]: d
            for d in hook.list_deployments(api_id)
            if d.get("description") == spec.deployment_description
        }

    before = set(mine())

    def keep_one() -> dict[str, Any] | None:
        new = sorted(
            (d for i, d in mine().items() if i not in before),
            key=lambda d: (str(d.get("createdDate") or ""), str(d["id"])),
        )
        for extra in new[1:]:
            log.warning("Deployment %s duplicates %s; deleting it", extra["id"], new[0]["id"])
            hook.delete_deployment(api_id, extra["id"])
        return new[0] if new else None

    def create() -> dict[str, str]:
        return {"id": hook.create_deployment(build_create_deployment_request(api_id, spec))}

    return str(_create_one(create, keep_one, f"deployment of API {api_id}")["id"])


def _ensure_invocations_resource(hook: ApiGatewayClient, api_id: str, spec: ApiSpec) -> str:
    """The invocation's resource, and those above it (/models/<model> on a shared endpoint)."""
    by_path = {r["path"]: r["id"] for r in hook.list_resources(api_id)}
    parent, path = by_path["/"], ""
    for part in (*spec.invocation.parents, spec.invocation.path_part):
        path = f"{path}/{part}"
        if path not in by_path:
            by_path[path] = _create_resource(hook, api_id, parent, part, path, by_path)
        parent = by_path[path]
    return parent


def _create_resource(
    hook: ApiGatewayClient, api_id: str, parent: str, part: str, path: str, by_path: dict[str, str]
) -> str:
    def in_place() -> bool:
        by_path.update({r["path"]: r["id"] for r in hook.list_resources(api_id)})
        return path in by_path

    try:
        return str(hook.create_resource(build_create_resource_request(api_id, parent, part))["id"])
    except ClientError as err:
        if error_code(err) != "ConflictException" or not in_place():
            raise
    log.info("Resource %s was created by an earlier attempt whose answer was lost.", path)
    return by_path[path]


def _remove_other_invocations(hook: ApiGatewayClient, api_id: str, spec: ApiSpec) -> None:
    """A run that changed the endpoint's mode (realtime <-> async, own <-> shared multi-model endpoint)
    drops the invocation path the endpoint no longer answers, so the next deployment does not publish it
    (/models and what lies under it, deepest first)."""
    others = {i.path for i in INVOCATIONS if i != spec.invocation}
    shared = "/" + MULTI_MODEL_ROOT
    for resource in sorted(hook.list_resources(api_id), key=lambda r: -len(str(r["path"]))):
        path = str(resource["path"])
        under_shared = path == shared or path.startswith(shared + "/")
        wanted = spec.invocation.path == path or spec.invocation.path.startswith(path + "/")
        stale = path in others or (under_shared and not wanted)
        if stale and hook.delete_resource(api_id, resource["id"]):
            log.info(
                "Removed %s from API %s: the endpoint now serves %s.",
                resource["path"],
                api_id,
                spec.invocation.path,
            )


def _ensure_method(hook: ApiGatewayClient, api_id: str, resource_id: str, spec: ApiSpec) -> None:
    """PutMethod refuses an existing method, so a method whose authorization changed is replaced."""
    wanted = build_put_method_request(api_id, resource_id, spec)
    existing = hook.get_method(api_id, resource_id, HTTP_METHOD)
    if existing is not None and not method_matches(existing, wanted):
        hook.delete_method(api_id, resource_id, HTTP_METHOD)
        existing = None
    if existing is None:

        def method_in_place() -> bool:
            method = hook.get_method(api_id, resource_id, HTTP_METHOD)
            return method is not None and method_matches(method, wanted)

        _accept_repeat(lambda: hook.put_method(wanted), method_in_place)
    responses: Mapping[str, Any] = (existing or {}).get("methodResponses") or {}
    for request in build_put_method_response_requests(api_id, resource_id, spec):
        current = responses.get(request["statusCode"])
        if method_response_matches(current, request):
            continue
        if current is not None:
            hook.delete_method_response(api_id, resource_id, HTTP_METHOD, request["statusCode"])
        _accept_repeat(
            partial(hook.put_method_response, request),
            partial(_method_response_in_place, hook, api_id, resource_id, request),
        )


def _method_response_in_place(
    hook: ApiGatewayClient, api_id: str, resource_id: str, request: Mapping[str, Any]
) -> bool:
    method = hook.get_method(api_id, resource_id, HTTP_METHOD) or {}
    current = (method.get("methodResponses") or {}).get(request["statusCode"])
    return method_response_matches(current, request)


def _ensure_usage_plan_and_key(hook: ApiGatewayClient, api_id: str, spec: ApiSpec) -> tuple[str, str]:
    """The model's one usage plan and one API key (the oldest of each), the key in the plan."""
    name, model, stage = spec.api_name, spec.model_name, f"{api_id}:{spec.stage_name}"
    plan = hook.keep_one_usage_plan(name, model, stage)
    if plan is None:
        plan = _create_one(
            lambda: {"id": hook.create_usage_plan(build_create_usage_plan_request(api_id, spec))},
            lambda: hook.keep_one_usage_plan(name, model, stage),
            f"usage plan {name}",
        )
    plan_id = str(plan["id"])
    patch = build_usage_plan_patch(plan, api_id, spec)
    if patch:
        # A repeated "add" of a stage is refused; the plan read back says whether anything is left.
        _accept_repeat(
            lambda: hook.update_usage_plan(plan_id, patch),
            lambda: not build_usage_plan_patch(hook.get_usage_plan(plan_id), api_id, spec),
            codes=("ConflictException", "BadRequestException"),
        )
    key = hook.keep_one_api_key(name, model, plan_id)
    if key is None:
        key = _create_one(
            lambda: {"id": hook.create_api_key(build_create_api_key_request(spec))},
            lambda: hook.keep_one_api_key(name, model, plan_id),
            f"API key {name}",
        )
    key_id = str(key["id"])
    if key_id not in hook.list_usage_plan_key_ids(plan_id):
        _accept_repeat(
            lambda: hook.create_usage_plan_key(plan_id, key_id),
            lambda: key_id in hook.list_usage_plan_key_ids(plan_id),
        )
    return plan_id, key_id
