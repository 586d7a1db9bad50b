"""plan_changes: what a run would do to the account, found with read-only calls only (a change set).

With ``plan_only: true`` (or ``make plan CONF=...``) a run validates, reaches the account through the
role chain and then calls only this module, which makes Describe/List/Get calls (GetObject, for the tag
document and the model's lock) and no write. For every resource the run would touch it reports a
``sagelift.domain.changes.Change``: ``create``, ``update`` with each field's old -> new value,
``delete`` (what a deploy prunes, the scaling a conf no longer asks for), or ``unchanged``. The requests
it compares are built by the same functions the steps use (``training.training_request``,
``model.model_request``, ``build_endpoint_config_request``, the guarded UpdateEndpoint, alarm and
Application Auto Scaling builders, ``api.api_spec`` and the API Gateway builders), so the plan says what
a run sends.

One resource kind is one small function of ``PlanContext`` returning its changes (``PLANNERS``, in the
order the run makes them); a step that adds a kind of resource adds its function there. A resource the
run would refuse to change (another owner's endpoint, alarm or API of the same name, a missing alarm the
conf names) fails the plan with the step's own message, as the run would fail.

Not planned: duplicates of the API a lost answer left (a run deletes them; the plan notes them), and
what another run of the model changes between the plan and this run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.apigateway import (
    ASYNC_INVOCATION,
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
from sagelift.domain.autoscaling import (
    build_put_scaling_policy_request,
    build_register_scalable_target_request,
    derive_resource_id,
    variant_changes,
)
from sagelift.domain.changes import (
    Change,
    ChangeSet,
    FieldChange,
    create,
    delete,
    diff_patch,
    diff_request,
    diff_tags,
    update_or_unchanged,
)
from sagelift.domain.deployment import (
    build_deployment_config,
    build_guarded_update_endpoint_request,
    build_put_metric_alarm_requests,
)
from sagelift.domain.images import IMAGE_PARAMS, ImageStep, ecr_registry_host, plan_image_steps
from sagelift.domain.lock import plan_lock
from sagelift.domain.ownership import is_owned, owner_of, per_run_name_re
from sagelift.domain.plan import Plan
from sagelift.domain.sagemaker import VARIANT_NAME, build_endpoint_config_request
from sagelift.domain.tuning import best_training_job
from sagelift.steps import alarms, api, autoscaling, batch, lock, model, model_registry, training, tuning
from sagelift.steps import labeling as labeling_step
from sagelift.steps.clients import Clients
from sagelift.steps.endpoint import CHANGING, list_tags, rollback_alarms
from sagelift.steps.errors import StepFailed, describe_or_none, error_code
from sagelift.steps.images import image_digest
from sagelift.steps.tags import resolve_tags

log = logging.getLogger(__name__)

NEW_DEPLOYMENT = "(this run's deployment)"
# The creation time of this run's endpoint config when it does not exist yet: newer than every other.
AFTER_EVERYTHING = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass
class PlanContext:
    """What the planners share: the run's plan and tags, clients made once per service, and what earlier
    planners found that later requests need (the images pinned by digest, the artifact to deploy)."""

    plan: Plan
    clients: Clients
    tags: list[dict[str, str]]
    images: dict[str, Any] = field(default_factory=dict)
    artifact: str | None = None
    # what plan_endpoint found: the endpoint's action, and the config it serves now (None: none yet)
    endpoint_action: str | None = None
    serving_config: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    _made: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self.clients(service, self.plan.region)
        return self._made[service]

    @property
    def deploys(self) -> bool:
        """False for a train-only run (no serving image): it creates no model, endpoint or API."""
        return self.plan.params.deploys

    @property
    def serves(self) -> bool:
        """False for a train-only run and in batch mode (a transform job instead): no endpoint, no API."""
        return self.plan.skip_reason("deploy_endpoint") is None


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


# --- labeling -----------------------------------------------------------------------------------------
def plan_labeling_job(ctx: PlanContext) -> list[Change]:
    """label_data: the run's labeling job, created unless an earlier try of the run made it."""
    if ctx.plan.skip_reason("label_data"):
        return []
    request = labeling_step.labeling_request(ctx.plan, ctx.tags)
    name = str(request["LabelingJobName"])
    existing = describe_or_none(ctx.client("sagemaker").describe_labeling_job, LabelingJobName=name)
    if existing is not None:
        return [
            Change("SageMaker labeling job", name, "unchanged", note="made by an earlier try of this run")
        ]
    settings = ctx.plan.params.labeling
    note = (
        f"the account's workteam labels {settings.manifest_s3_uri} ({settings.task_type}); the labeled "
        f"manifest is training channel {settings.channel}"
    )
    return [create("SageMaker labeling job", name, note)]


# --- SageMaker -----------------------------------------------------------------------------------------
def plan_training_job(ctx: PlanContext) -> list[Change]:
    plan = ctx.plan
    if not plan.params.trains:
        ctx.artifact = training.model_artifact(plan, None)
        ctx.notes.append(f"no training: the run deploys the existing artifact {ctx.artifact}")
        return []
    if plan.params.tuning.enabled:
        return plan_tuning_job(ctx)
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


def plan_tuning_job(ctx: PlanContext) -> list[Change]:
    """A tuning run: its tuning job in place of the training job; the artifact is the best job's."""
    plan, sm = ctx.plan, ctx.client("sagemaker")
    request = tuning.tuning_request(plan, ctx.tags, ctx.images)
    name = str(request["HyperParameterTuningJobName"])
    existing = describe_or_none(sm.describe_hyper_parameter_tuning_job, HyperParameterTuningJobName=name)
    best = best_training_job(existing) if existing is not None else None
    if best is not None:
        job = describe_or_none(sm.describe_training_job, TrainingJobName=best["training_job"])
        ctx.artifact = training.model_artifact(plan, job)
    else:
        ctx.notes.append("the model's artifact is the tuning job's best training job's, known when it ends")
    if existing is not None:
        note = f"this run's tuning job exists ({existing['HyperParameterTuningJobStatus']}): followed"
        return [Change("SageMaker tuning job", name, "unchanged", note=note)]
    config, definition = request["HyperParameterTuningJobConfig"], request["TrainingJobDefinition"]
    limits, resources = config["ResourceLimits"], definition["ResourceConfig"]
    jobs = limits.get("MaxNumberOfTrainingJobs", "one per combination of")
    note = (
        f"{config['Strategy']}: up to {jobs} training jobs, {limits['MaxParallelTrainingJobs']} at a time, each "
        f"{resources['InstanceCount']} x {resources['InstanceType']}; the best by "
        f"{config['HyperParameterTuningJobObjective']['MetricName']} is deployed"
    )
    return [create("SageMaker tuning job", name, note)]


def plan_model_version(ctx: PlanContext) -> list[Change]:
    """register_model: the run's version in the group named after the model (and the group, the first
    time); a retry finds the version its run registered."""
    plan = ctx.plan
    if model_registry.skip_reason(plan):
        return []
    sm = ctx.client("sagemaker")
    group = model_registry.derive_group_name(plan.model_name)
    kind = "SageMaker model package version"
    changes: list[Change] = []
    existing = None
    if describe_or_none(sm.describe_model_package_group, ModelPackageGroupName=group) is None:
        changes.append(
            create("SageMaker model package group", group, "the model's registry; teardown keeps it")
        )
    else:
        existing = model_registry.find_run_version(sm, group, plan.names.run_key)
    if existing is not None:
        version, status = existing.get("ModelPackageVersion"), existing.get("ModelApprovalStatus")
        return [Change(kind, f"{group} (version {version})", "unchanged", note=f"this run's, {status}")]
    status = "PendingManualApproval" if model_registry.requires_approval(plan) else "Approved"
    rules = plan.params.quality_gate.to_dict()
    gate = f"; Rejected instead if the quality gate ({', '.join(rules)}) fails" if rules else ""
    return [*changes, create(kind, f"{group} (a new version)", f"{status}{gate}")]


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
        plan.params,
        plan.names,
        tags=ctx.tags,
        settings=plan.platform.sagemaker,
        network=plan.platform.account(plan.account_id).network,
    )


def plan_endpoint_config(ctx: PlanContext) -> list[Change]:
    if not ctx.serves:
        return []
    name = ctx.plan.names.endpoint_config
    sm = ctx.client("sagemaker")
    existing = describe_or_none(sm.describe_endpoint_config, EndpointConfigName=name)
    if existing is None:
        variant = _config_request(ctx)["ProductionVariants"][0]
        count = variant.get("InitialInstanceCount")
        what = f"{count} x {variant['InstanceType']}" if count and "InstanceType" in variant else "serverless"
        if variant.get("InstanceType") == "auto":  # decided by recommend_instance, after registration
            what = f'{count} x the instance type recommend_instance will pick (endpoint_instance_type "auto")'
        return [create("SageMaker endpoint config", name, f"variant {variant['VariantName']}: {what}")]
    _refuse_unowned(ctx, "Endpoint config", name, existing["EndpointConfigArn"])
    return [Change("SageMaker endpoint config", name, "unchanged", note="made by an earlier try of this run")]


def plan_endpoint(ctx: PlanContext) -> list[Change]:
    if not ctx.serves:
        return []
    changes = _plan_endpoint(ctx)
    ctx.endpoint_action = changes[0].action
    smoke = ctx.plan.params.endpoint.smoke_test
    if smoke is not None and ctx.endpoint_action != "unchanged":
        ctx.notes.append(
            f"after InService the run invokes the endpoint once ({smoke.content_type}, expecting "
            f"{smoke.expected_status}); another answer reverts it to the config it served before"
        )
    return changes


def _plan_endpoint(ctx: PlanContext) -> list[Change]:
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


def _strategy_note(ctx: PlanContext) -> str:
    """How a guarded update shifts traffic and what rolls it back; empty for all at once."""
    strategy = ctx.plan.params.endpoint.deployment
    config = build_deployment_config(strategy, rollback_alarms(ctx.plan))
    if config is None:
        return ""
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    bake = routing["WaitIntervalInSeconds"]
    if "CanarySize" in routing:
        shift = f"canary: {routing['CanarySize']['Value']}% first, the rest after {bake} s"
    elif "LinearStepSize" in routing:
        shift = f"linear: {routing['LinearStepSize']['Value']}% at a time, {bake} s apart"
    else:
        shift = f"all at once, after {bake} s"
    alarm_names = [a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
    rollback = f"; rolls back on {', '.join(alarm_names)}" if alarm_names else ""
    return shift + rollback


def _endpoint_update(
    ctx: PlanContext, current: Mapping[str, Any], tags: list[dict[str, str]], note: str
) -> Change:
    """UpdateEndpoint to this run's config: the config's name and each setting that changes with it."""
    plan = ctx.plan
    strategy = plan.params.endpoint.deployment
    request = build_guarded_update_endpoint_request(plan.names, strategy, rollback_alarms(plan))
    request.pop("DeploymentConfig", None)  # how the update is made, not a setting: in the note
    fields = diff_request(request, current)
    serving = current.get("EndpointConfigName")
    ctx.serving_config = (
        describe_or_none(ctx.client("sagemaker").describe_endpoint_config, EndpointConfigName=serving)
        if serving
        else None
    )
    if ctx.serving_config is not None:
        excluded = ("EndpointConfigName", "Tags")
        wanted = {k: v for k, v in _config_request(ctx).items() if k not in excluded}
        variants = wanted.get("ProductionVariants") or []
        # the variant's model is named per run: its change is the config's, not a setting's
        wanted["ProductionVariants"] = [{k: v for k, v in p.items() if k != "ModelName"} for p in variants]
        fields += diff_request(wanted, ctx.serving_config, prefix="EndpointConfig")
    fields += diff_tags(ctx.tags, tags)
    how = _strategy_note(ctx)
    note = "; ".join(part for part in (note, how) if part)
    return Change("SageMaker endpoint", str(current["EndpointName"]), "update", tuple(fields), note)


def plan_alarms(ctx: PlanContext) -> list[Change]:
    """The alarms of a guarded deploy, put in place when the run creates or updates the endpoint."""
    plan = ctx.plan
    names = rollback_alarms(plan) if ctx.serves and ctx.endpoint_action != "unchanged" else ()
    if not names:
        return []
    cloudwatch = ctx.client("cloudwatch")
    if plan.params.endpoint.deployment.alarms:
        alarms.require_alarms(cloudwatch, names, plan.account_id, plan.region)  # a read; refuses as the run
        return [
            Change("CloudWatch alarm", n, "unchanged", note="named in the conf: checked, not changed")
            for n in names
        ]
    requests = build_put_metric_alarm_requests(plan.model_name, plan.names.endpoint, VARIANT_NAME, ctx.tags)
    existing = alarms.describe_alarms(cloudwatch, [r["AlarmName"] for r in requests])
    changes: list[Change] = []
    for request in requests:
        name = request["AlarmName"]
        current = existing.get(name)
        if current is None:
            changes.append(
                create("CloudWatch alarm", name, f"rolls the update back on {request['MetricName']}")
            )
            continue
        tags_now = cloudwatch.list_tags_for_resource(ResourceARN=current["AlarmArn"]).get("Tags", [])
        if not is_owned(tags_now, plan.model_name):
            owner = owner_of(tags_now)
            whose = f"it belongs to sagelift model {owner!r}" if owner else "it was not created by sagelift"
            raise StepFailed(
                f"CloudWatch alarm {name} exists and {whose}; sagelift will not change it. Delete or "
                "re-tag it, or name the alarms to use in endpoint.deployment.alarms."
            )
        # PutMetricAlarm ignores the tags of an existing alarm: only its settings can change
        changes.append(update_or_unchanged("CloudWatch alarm", name, diff_request(request, current)))
    return changes


def plan_autoscaling(ctx: PlanContext) -> list[Change]:
    """The variant's scalable target and policy, made what the conf says once the endpoint is InService."""
    plan = ctx.plan
    settings = plan.params.endpoint
    if not ctx.serves or settings.mode == "serverless":
        return []
    endpoint_name = plan.names.endpoint
    client = ctx.client("application-autoscaling")  # as steps.clients.autoscaling_client makes it
    target = autoscaling.describe_target(client, endpoint_name, VARIANT_NAME)
    policy = autoscaling.describe_policy(client, endpoint_name, VARIANT_NAME)
    resource = derive_resource_id(endpoint_name, VARIANT_NAME)
    scaling = settings.autoscaling
    if scaling is None:
        note = "the conf asks for no autoscaling: what an earlier run put there is removed"
        return [
            *([delete("scalable target", resource, note)] if target is not None else []),
            *([delete("scaling policy", str(policy["PolicyName"]))] if policy is not None else []),
        ]
    register = build_register_scalable_target_request(endpoint_name, VARIANT_NAME, scaling)
    put = build_put_scaling_policy_request(endpoint_name, VARIANT_NAME, scaling)
    capacity = f"{scaling.min_capacity}-{scaling.max_capacity} instances"
    if target is None:
        changes = [create("scalable target", resource, capacity)]
    else:
        wanted = {k: register[k] for k in ("MinCapacity", "MaxCapacity")}
        note = ""
        new_variants = _config_request(ctx)["ProductionVariants"]
        old_variants = (ctx.serving_config or {}).get("ProductionVariants") or []
        if ctx.endpoint_action == "update" and variant_changes(old_variants, new_variants, VARIANT_NAME):
            note = "the update changes the variant: deregistered before it, registered again after"
        changes = [update_or_unchanged("scalable target", resource, diff_request(wanted, target), note)]
    policy_name = str(put["PolicyName"])
    if policy is None:
        what = f"{put['TargetTrackingScalingPolicyConfiguration']['TargetValue']:g} invocations per instance"
        changes.append(create("scaling policy", policy_name, what))
    else:
        fields = diff_request(
            {k: put[k] for k in ("PolicyType", "TargetTrackingScalingPolicyConfiguration")}, policy
        )
        changes.append(update_or_unchanged("scaling policy", policy_name, fields))
    return changes


def plan_pruning(ctx: PlanContext) -> list[Change]:
    """What conclude_deploy prunes after this run's successful deploy (sagelift.steps.endpoint.
    prune_revisions, read the same way): the model's endpoint configs beyond the newest
    ``keep_endpoint_configs``, this run's config being the newest and in service, and their models."""
    if not ctx.serves:
        return []
    plan = ctx.plan
    model_name, in_service = plan.model_name, plan.names.endpoint_config
    keep = plan.platform.sagemaker.keep_endpoint_configs
    sm = ctx.client("sagemaker")
    own = per_run_name_re(model_name)
    configs = [
        c
        for page in sm.get_paginator("list_endpoint_configs").paginate(NameContains=model_name)
        for c in page["EndpointConfigs"]
        if own.fullmatch(c["EndpointConfigName"])
        and is_owned(list_tags(sm, c["EndpointConfigArn"]), model_name)
    ]
    if in_service not in {c["EndpointConfigName"] for c in configs}:
        configs.append({"EndpointConfigName": in_service, "CreationTime": AFTER_EVERYTHING})
    # at run time this run holds the model's lock and every other run waits for it: none is in progress
    serialized = plan_lock(plan) is not None
    configs.sort(key=lambda c: (c["EndpointConfigName"] == in_service, c["CreationTime"]), reverse=True)
    kept = {c["EndpointConfigName"] for c in configs[:keep]} | {in_service}
    doomed = [c["EndpointConfigName"] for c in configs[keep:] if c["EndpointConfigName"] not in kept]
    why = f"pruned: older than the newest {keep} of the model"
    changes = [delete("SageMaker endpoint config", name, why) for name in doomed]
    newest_kept = max(c["CreationTime"] for c in configs if c["EndpointConfigName"] in kept)
    for page in sm.get_paginator("list_models").paginate(NameContains=model_name):
        for m in page["Models"]:
            name = m["ModelName"]
            if not own.fullmatch(name) or name in kept or name == plan.names.model:
                continue
            if m["CreationTime"] > newest_kept or (not serialized and name not in doomed):
                continue
            if is_owned(list_tags(sm, m["ModelArn"]), model_name):
                changes.append(delete("SageMaker model", name, "pruned with its endpoint config"))
    return changes


# --- API Gateway ---------------------------------------------------------------------------------------
def plan_api(ctx: PlanContext) -> list[Change]:
    if not ctx.serves:
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
                f"{HTTP_METHOD} {spec.invocation.path} -> {spec.endpoint_name}",
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
    """POST /invocations (or /async-invocations for an async endpoint) and its integration with the
    endpoint, as expose_api would put them; the other path goes when the endpoint's mode changed."""
    path = spec.invocation.path
    where = f"{HTTP_METHOD} {path}"
    resources = hook.list_resources(api_id)
    fields = [
        FieldChange(f"{HTTP_METHOD} {other}", "integration", None)
        for other in sorted({RESOURCE_PATH, ASYNC_INVOCATION.path} - {path})
        if any(r.get("path") == other for r in resources)
    ]
    resource = next((r for r in resources if r.get("path") == path), None)
    if resource is None:
        return [*fields, FieldChange(where, None, f"integration with endpoint {spec.endpoint_name}")]
    method = hook.get_method(api_id, resource["id"], HTTP_METHOD)
    wanted = build_put_method_request(api_id, resource["id"], spec)
    if method is None:
        return [*fields, FieldChange(where, None, f"authorization {wanted['authorizationType']}")]
    if not method_matches(method, wanted):
        compared = ("authorizationType", "apiKeyRequired", "requestParameters")
        fields += diff_request({k: wanted[k] for k in compared}, method, prefix=where)
    integration = build_put_integration_request(api_id, resource["id"], spec)
    current = dict(method.get("methodIntegration") or {})
    # GetMethod names the integration's own HTTP method httpMethod; PutIntegration integrationHttpMethod
    current["integrationHttpMethod"] = current.get("httpMethod")
    skipped = ("restApiId", "resourceId", "httpMethod")
    wanted_integration = {k: v for k, v in integration.items() if k not in skipped}
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


# --- batch scoring -------------------------------------------------------------------------------------
def plan_batch_transform(ctx: PlanContext) -> list[Change]:
    """batch_transform: the run's transform job, created unless an earlier try of the run made it."""
    if ctx.plan.skip_reason("batch_transform"):
        return []
    request = batch.transform_request(ctx.plan, ctx.tags)
    name = str(request["TransformJobName"])
    existing = describe_or_none(ctx.client("sagemaker").describe_transform_job, TransformJobName=name)
    if existing is not None:
        return [
            Change("SageMaker transform job", name, "unchanged", note="made by an earlier try of this run")
        ]
    resources = request["TransformResources"]
    source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    note = (
        f"scores {source} on {resources['InstanceCount']} x {resources['InstanceType']}; results under "
        f"{request['TransformOutput']['S3OutputPath']}"
    )
    return [create("SageMaker transform job", name, note)]


# --- the change set ------------------------------------------------------------------------------------
PLANNERS: tuple[Planner, ...] = (
    plan_model_lock,
    plan_images,
    plan_labeling_job,
    plan_training_job,
    plan_model_version,
    plan_model,
    plan_batch_transform,
    plan_endpoint_config,
    plan_endpoint,
    plan_alarms,
    plan_autoscaling,
    plan_pruning,
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
    shown = ", ".join(f"{t['Key']}={t['Value']}" for t in ctx.tags)
    ctx.notes.append(f"tags on what the run creates or updates: {shown}")
    changes: list[Change] = []
    for planner in planners:
        changes += planner(ctx)
    return ChangeSet(
        model_name=plan.model_name,
        account_id=plan.account_id,
        run_id=plan.run_id,
        changes=tuple(changes),
        notes=tuple(ctx.notes),
    )
