"""plan_changes: what a run would do to the account, found with read-only calls only (a change set).

With ``plan_only: true`` (or ``make plan CONF=...``) a run validates, reaches the account through the
role chain and then calls only this module, which makes Describe/List/Get calls (GetObject, for the tag
document and the model's lock) and no write. For every resource the run would touch it reports a
``sagelift.domain.changes.Change``: ``create``, ``update`` with each field's old -> new value, or
``unchanged``. The requests it compares are built by the same functions the steps use
(``training.training_request``, ``model.model_request``, ``build_endpoint_config_request``,
``api.api_spec`` and the API Gateway builders), so the plan says what a run sends.

One resource kind is one small function of ``PlanContext`` returning its changes (``PLANNERS``, in the
order the run makes them); a step that adds a kind of resource adds its function there. A resource the
run would refuse to change (another owner's endpoint or API of the same name) fails the plan with the
step's own message, as the run would fail.

Not planned: what a run prunes after a successful deploy (the model's oldest endpoint configs and models
beyond ``keep_endpoint_configs``, which depends on the runs in progress then), and the API's duplicates a
lost answer left (a run deletes them); the plan notes both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.apigateway import (
    HTTP_METHOD,
    RESOURCE_PATH,
    build_put_integration_request,
    build_put_method_request,
    build_stage_patch_operations,
    build_update_rest_api_patch,
    build_usage_plan_patch,
    method_matches,
    select_owned,
)
from sagelift.domain.changes import (
    Change,
    ChangeSet,
    FieldChange,
    create,
    diff_patch,
    diff_request,
    diff_tags,
    update_or_unchanged,
)
from sagelift.domain.images import IMAGE_PARAMS, ImageStep, ecr_registry_host, plan_image_steps
from sagelift.domain.lock import plan_lock
from sagelift.domain.ownership import is_owned, owner_of
from sagelift.domain.plan import Plan
from sagelift.domain.sagemaker import build_endpoint_config_request, build_update_endpoint_request
from sagelift.steps import api, lock, model, training
from sagelift.steps.clients import Clients
from sagelift.steps.endpoint import CHANGING, list_tags
from sagelift.steps.errors import StepFailed, describe_or_none, error_code
from sagelift.steps.images import image_digest
from sagelift.steps.tags import resolve_tags

log = logging.getLogger(__name__)

NEW_DEPLOYMENT = "(this run's deployment)"


@dataclass
class PlanContext:
    """What the planners share: the run's plan and tags, clients made once per service, and what earlier
    planners found that later requests need (the images pinned by digest, the artifact to deploy)."""

    plan: Plan
    clients: Clients
    tags: list[dict[str, str]]
    images: dict[str, Any] = field(default_factory=dict)
    artifact: str | None = None
    notes: list[str] = field(default_factory=list)
    _made: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self.clients(service, self.plan.region)
        return self._made[service]

    @property
    def deploys(self) -> bool:
        """False for a train-only run (no serving image): it creates no model, endpoint or API."""
        return bool(getattr(self.plan.params, "deploys", True))


Planner = Callable[[PlanContext], list[Change]]


# --- the model's lock ----------------------------------------------------------------------------------
def plan_model_lock(ctx: PlanContext) -> list[Change]:
    found = plan_lock(ctx.plan)
    if found is None:
        ctx.notes.append("platform.locks_s3_uri is not set: runs of this model are not serialized")
        return []
    state = lock.read_lock(ctx.client("s3"), found)
    holder = state.holder
    if holder is None:
        return [create("model lock", found.uri, "free: taken for the run, given back at its end")]
    if holder.run_key == ctx.plan.names.run_key:
        return [Change("model lock", found.uri, "update", note="held by this run already: written again")]
    if state.lapsed:
        note = f"{holder.describe()} held it until {state.until}: its lapsed lease is taken over"
        return [Change("model lock", found.uri, "update", note=note)]
    note = f"held by {holder.describe()} until {state.until}: the run waits for its turn, then takes it"
    return [create("model lock", found.uri, note)]


# --- images --------------------------------------------------------------------------------------------
def _entry(step: ImageStep, image: str, digest: str | None, action: str) -> dict[str, Any]:
    return {"image": image, "digest": digest, "source": str(step.source), "action": action}


def plan_images(ctx: PlanContext) -> list[Change]:
    """copy_images: images in the account's ECR are read by digest; others would be copied into it."""
    plan = ctx.plan
    changes: list[Change] = []
    steps = plan_image_steps(
        plan.params.to_dict(), plan.account_id, plan.region, plan.platform.ecr.repository_prefix
    )
    for step in steps:
        if step.action == "aws_owned":
            ctx.images[step.param] = _entry(step, step.in_place, step.source.digest, "aws_owned")
            changes.append(Change("image", str(step.source), "unchanged", note="AWS-owned: used in place"))
            continue
        ecr = ctx.client("ecr")
        if step.action == "in_ecr":
            digest = image_digest(ecr, step, plan.account_id)
            ctx.images[step.param] = _entry(step, step.source.pinned(digest), digest, "in_ecr")
            note = f"in the account's ECR as {digest[:19]}"
            changes.append(Change("image", str(step.source), "unchanged", note=note))
            continue
        changes += _plan_copy(ctx, ecr, step)
    for param in IMAGE_PARAMS:
        ctx.images.setdefault(param, None)
    return changes


def _plan_copy(ctx: PlanContext, ecr: Any, step: ImageStep) -> list[Change]:
    repository, tag = step.target_repository, str(step.target_tag)
    target = f"{ecr_registry_host(ctx.plan.account_id, ctx.plan.region)}/{repository}"
    changes: list[Change] = []
    try:
        ecr.describe_repositories(repositoryNames=[repository])
    except ClientError as err:
        if error_code(err) != "RepositoryNotFoundException":
            raise
        changes.append(create("ECR repository", repository))
    present: str | None = None
    if not changes:
        try:
            details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
            present = str((details.get("imageDetails") or [{}])[0].get("imageDigest") or "") or None
        except ClientError as err:
            if error_code(err) not in ("ImageNotFoundException", "RepositoryNotFoundException"):
                raise
    name = f"{repository}:{tag}"
    source = f"copied from {step.source}"
    if present is None:
        ctx.images[step.param] = _entry(step, f"{target}:{tag}", None, "copy")
        changes.append(create("image copy", name, source))
    elif step.source.digest is not None and step.source.digest == present:
        ctx.images[step.param] = _entry(step, f"{target}@{present}", present, "already_copied")
        changes.append(
            Change("image copy", name, "unchanged", note=f"holds {present[:19]}, the source's digest")
        )
    else:
        ctx.images[step.param] = _entry(step, f"{target}@{present}", present, "copy")
        moved = FieldChange("digest", present, f"the digest of {step.source} when the run copies it")
        note = f"{source}; nothing moves if the source still has that digest"
        changes.append(Change("image copy", name, "update", (moved,), note))
    return changes


# --- SageMaker -----------------------------------------------------------------------------------------
def plan_training_job(ctx: PlanContext) -> list[Change]:
    plan = ctx.plan
    if not plan.params.trains:
        ctx.artifact = training.model_artifact(plan, None)
        ctx.notes.append(f"no training: the run deploys the existing artifact {ctx.artifact}")
        return []
    request = training.training_request(plan, ctx.tags, ctx.images)
    name = str(request["TrainingJobName"])
    existing = describe_or_none(ctx.client("sagemaker").describe_training_job, TrainingJobName=name)
    ctx.artifact = training.model_artifact(plan, existing)
    if existing is not None:
        note = f"this run's job exists ({existing['TrainingJobStatus']}): followed, not started again"
        return [Change("SageMaker training job", name, "unchanged", note=note)]
    resources = request["ResourceConfig"]
    note = f"{resources['InstanceCount']} x {resources['InstanceType']}"
    return [create("SageMaker training job", name, note)]


def plan_model(ctx: PlanContext) -> list[Change]:
    if not ctx.deploys:
        return []
    plan = ctx.plan
    artifact = ctx.artifact or training.model_artifact(plan, None)
    request = model.model_request(plan, ctx.tags, ctx.images, artifact)
    name = str(request["ModelName"])
    existing = describe_or_none(ctx.client("sagemaker").describe_model, ModelName=name)
    if existing is None:
        return [create("SageMaker model", name, f"serves {request['PrimaryContainer']['Image']}")]
    # create_model replaces a model of the run's name (an earlier try's) with this try's
    fields = diff_request(request, existing)
    return [Change("SageMaker model", name, "update", tuple(fields), "replaced: deleted and created again")]


def _refuse_unowned(ctx: PlanContext, kind: str, name: str, arn: str) -> list[dict[str, str]]:
    """The resource's tags; another owner's resource fails the plan as it fails the run."""
    tags = list_tags(ctx.client("sagemaker"), arn)
    if not is_owned(tags, ctx.plan.model_name):
        owner = owner_of(tags)
        whose = f"it belongs to sagelift model {owner!r}" if owner else "it was not created by sagelift"
        raise StepFailed(
            f"{kind} {name} exists and {whose}; sagelift will not change it. "
            f"Choose another model_name, or delete or re-tag that {kind}."
        )
    return tags


def _config_request(ctx: PlanContext) -> dict[str, Any]:
    plan = ctx.plan
    return build_endpoint_config_request(
        plan.params, plan.names, tags=ctx.tags, settings=plan.platform.sagemaker
    )


def plan_endpoint_config(ctx: PlanContext) -> list[Change]:
    if not ctx.deploys:
        return []
    name = ctx.plan.names.endpoint_config
    sm = ctx.client("sagemaker")
    existing = describe_or_none(sm.describe_endpoint_config, EndpointConfigName=name)
    if existing is None:
        variant = _config_request(ctx)["ProductionVariants"][0]
        count = variant.get("InitialInstanceCount")
        what = f"{count} x {variant['InstanceType']}" if count and "InstanceType" in variant else "serverless"
        return [create("SageMaker endpoint config", name, f"variant {variant['VariantName']}: {what}")]
    _refuse_unowned(ctx, "Endpoint config", name, existing["EndpointConfigArn"])
    return [Change("SageMaker endpoint config", name, "unchanged", note="made by an earlier try of this run")]


def plan_endpoint(ctx: PlanContext) -> list[Change]:
    if not ctx.deploys:
        return []
    plan = ctx.plan
    name, config = plan.names.endpoint, plan.names.endpoint_config
    sm = ctx.client("sagemaker")
    current = describe_or_none(sm.describe_endpoint, EndpointName=name)
    if current is None:
        return [create("SageMaker endpoint", name, f"on config {config}")]
    tags = _refuse_unowned(ctx, "Endpoint", name, current["EndpointArn"])
    status = current["EndpointStatus"]
    if status == "Failed":
        note = f"the Failed endpoint is deleted first, then created on config {config}"
        return [create("SageMaker endpoint", name, note)]
    if status in CHANGING:
        note = f"{status} now (another deploy): the run waits until it settles, then deploys"
        if status == "Creating" or current.get("PendingDeploymentSummary"):
            note = f"{status} now: the run waits for it, then deploys {config} unless it is this run's"
        return [_endpoint_update(ctx, current, tags, note)]
    if current.get("EndpointConfigName") == config:
        return [Change("SageMaker endpoint", name, "unchanged", note=f"serves {config} already")]
    return [_endpoint_update(ctx, current, tags, "")]


def _endpoint_update(
    ctx: PlanContext, current: Mapping[str, Any], tags: list[dict[str, str]], note: str
) -> Change:
    """UpdateEndpoint to this run's config: the config's name and each setting that changes with it."""
    request = build_update_endpoint_request(ctx.plan.names)
    fields = diff_request(request, current)
    serving = current.get("EndpointConfigName")
    old_config = (
        describe_or_none(ctx.client("sagemaker").describe_endpoint_config, EndpointConfigName=serving)
        if serving
        else None
    )
    if old_config is not None:
        wanted = {k: v for k, v in _config_request(ctx).items() if k not in ("EndpointConfigName", "Tags")}
        variants = wanted.get("ProductionVariants") or []
        # the variant's model is named per run: its change is the config's, not a setting's
        wanted["ProductionVariants"] = [{k: v for k, v in p.items() if k != "ModelName"} for p in variants]
        fields += diff_request(wanted, old_config, prefix="EndpointConfig")
    fields += diff_tags(ctx.tags, tags)
    return Change("SageMaker endpoint", str(current["EndpointName"]), "update", tuple(fields), note)


# --- API Gateway ---------------------------------------------------------------------------------------
def plan_api(ctx: PlanContext) -> list[Change]:
    if not ctx.deploys:
        return []
    spec = api.api_spec(ctx.plan, ctx.tags)
    hook = api.ApiGatewayClient(ctx.client("apigateway"))
    found = hook.find_apis(spec.api_name, spec.model_name)
    if not found:
        strangers = [a["id"] for a in hook.list_rest_apis() if a.get("name") == spec.api_name]
        if strangers:
            raise StepFailed(
                f"API {spec.api_name} ({', '.join(strangers)}) exists and is not tagged as sagelift model "
                f"{spec.model_name}'s; sagelift will not change it. Choose another model_name, or delete or "
                "re-tag that API."
            )
        changes = [
            create(
                "API Gateway REST API",
                spec.api_name,
                f"{HTTP_METHOD} {RESOURCE_PATH} -> {spec.endpoint_name}",
            ),
            create("API Gateway stage", f"{spec.api_name}/{spec.stage_name}", "with this run's deployment"),
        ]
        if spec.uses_api_key:
            changes += [
                create("API Gateway usage plan", spec.api_name),
                create("API Gateway API key", spec.api_name),
            ]
        return changes
    if len(found) > 1:
        ctx.notes.append(f"API {spec.api_name} has {len(found) - 1} duplicate(s); the run deletes them")
    current = found[0]
    api_id = str(current["id"])
    fields = diff_patch(build_update_rest_api_patch(current, spec), current)
    fields += _plan_method(hook, api_id, spec)
    fields += diff_tags(spec.tags, current.get("tags"), "tags")
    changes = [update_or_unchanged("API Gateway REST API", f"{spec.api_name} ({api_id})", fields)]
    changes.append(_plan_stage(hook, api_id, spec))
    if spec.uses_api_key:
        changes += _plan_usage_plan_and_key(hook, api_id, spec)
    return changes


def _plan_method(hook: api.ApiGatewayClient, api_id: str, spec: Any) -> list[FieldChange]:
    """POST /invocations and its integration with the endpoint, as expose_api would put them."""
    where = f"{HTTP_METHOD} {RESOURCE_PATH}"
    resource = next((r for r in hook.list_resources(api_id) if r.get("path") == RESOURCE_PATH), None)
    if resource is None:
        return [FieldChange(where, None, f"integration with endpoint {spec.endpoint_name}")]
    method = hook.get_method(api_id, resource["id"], HTTP_METHOD)
    wanted = build_put_method_request(api_id, resource["id"], spec)
    if method is None:
        return [FieldChange(where, None, f"authorization {wanted['authorizationType']}")]
    fields: list[FieldChange] = []
    if not method_matches(method, wanted):
        compared = ("authorizationType", "apiKeyRequired", "requestParameters")
        fields += diff_request({k: wanted[k] for k in compared}, method, prefix=where)
    integration = build_put_integration_request(api_id, resource["id"], spec)
    current = dict(method.get("methodIntegration") or {})
    # GetMethod names the integration's own HTTP method httpMethod; PutIntegration integrationHttpMethod
    current["integrationHttpMethod"] = current.get("httpMethod")
    skipped = ("restApiId", "resourceId", "httpMethod")
    wanted_integration = {k: v for k, v in integration.items() if k not in skipped and k in current}
    fields += diff_request(wanted_integration, current, prefix=f"{where} integration")
    return fields


def _stage_view(stage: Mapping[str, Any]) -> dict[str, Any]:
    """A stage description laid out by the paths of its patch operations (``/*/*/throttling/...``)."""
    settings = (stage.get("methodSettings") or {}).get("*/*") or {}
    throttling = {
        "rateLimit": settings.get("throttlingRateLimit"),
        "burstLimit": settings.get("throttlingBurstLimit"),
    }
    return {
        "deploymentId": stage.get("deploymentId"),
        "*": {"*": {"throttling": throttling}},
        "accessLogSettings": stage.get("accessLogSettings"),
    }


def _plan_stage(hook: api.ApiGatewayClient, api_id: str, spec: Any) -> Change:
    name = f"{spec.api_name}/{spec.stage_name}"
    stage = hook.get_stage(api_id, spec.stage_name)
    if stage is None:
        return create("API Gateway stage", name, "with this run's deployment")
    operations = build_stage_patch_operations(spec, deployment_id=NEW_DEPLOYMENT, existing=stage)
    fields = diff_patch(operations, _stage_view(stage)) + diff_tags(spec.tags, stage.get("tags"), "tags")
    return update_or_unchanged("API Gateway stage", name, fields, "every run deploys the API anew")


def _plan_usage_plan_and_key(hook: api.ApiGatewayClient, api_id: str, spec: Any) -> list[Change]:
    name, model_name = spec.api_name, spec.model_name
    plans = select_owned(hook.list_usage_plans(), name, model_name)
    changes: list[Change] = []
    plan_id: str | None = None
    if not plans:
        changes.append(create("API Gateway usage plan", name))
    else:
        plan_id = str(plans[0]["id"])
        fields = diff_patch(build_usage_plan_patch(plans[0], api_id, spec), plans[0])
        changes.append(update_or_unchanged("API Gateway usage plan", f"{name} ({plan_id})", fields))
    keys = select_owned(hook.list_api_keys(name), name, model_name)
    if not keys:
        changes.append(create("API Gateway API key", name, "its value is generated by API Gateway"))
    else:
        key_id = str(keys[0]["id"])
        in_plan = plan_id is not None and key_id in hook.list_usage_plan_key_ids(plan_id)
        fields = [] if in_plan else [FieldChange("usagePlan", None, name)]
        changes.append(update_or_unchanged("API Gateway API key", f"{name} ({key_id})", fields))
    return changes


# --- the change set ------------------------------------------------------------------------------------
PLANNERS: tuple[Planner, ...] = (
    plan_model_lock,
    plan_images,
    plan_training_job,
    plan_model,
    plan_endpoint_config,
    plan_endpoint,
    plan_api,
)


def plan_changes(
    plan: Plan,
    clients: Clients,
    *,
    tags: list[dict[str, str]] | None = None,
    planners: tuple[Planner, ...] = PLANNERS,
) -> ChangeSet:
    """The run's change set, from read-only calls in the account (``clients`` make its clients).

    ``tags`` are resolve_tags' when that step has run; otherwise they are resolved here (GetObject of the
    tag document), as resolve_tags would.
    """
    ctx = PlanContext(plan=plan, clients=clients, tags=[])
    ctx.tags = tags if tags is not None else resolve_tags(plan, ctx.client("s3"))
    changes: list[Change] = []
    for planner in planners:
        changes += planner(ctx)
    keep = plan.platform.sagemaker.keep_endpoint_configs
    if ctx.deploys:
        ctx.notes.append(
            f"after a successful deploy, the run prunes this model's endpoint configs and models beyond the "
            f"newest {keep} (not listed here)"
        )
    return ChangeSet(
        model_name=plan.model_name,
        account_id=plan.account_id,
        run_id=plan.run_id,
        changes=tuple(changes),
        notes=tuple(ctx.notes),
    )
