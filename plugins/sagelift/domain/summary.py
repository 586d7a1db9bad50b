"""A run's summary: what sagemaker_deploy created or updated, and where to call the model.

Built from the plan and the steps' XCom values (identifiers, statuses, the invoke URL; no credentials),
printed by the final ``summarize_run`` task and returned as its XCom, which scripts/submit_run.py prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelift.domain.promotion import promoted_version
from sagelift.domain.training_settings import training_facts


def _get(mapping: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def build_run_summary(
    plan: Mapping[str, Any],
    *,
    images: Mapping[str, Any] | None,
    training: Mapping[str, Any] | None,
    model: Mapping[str, Any] | None,
    endpoint: Mapping[str, Any] | None,
    api: Mapping[str, Any] | None,
    batch: Mapping[str, Any] | None = None,
    tuning: Mapping[str, Any] | None = None,
    registered: Mapping[str, Any] | None = None,
    approval: Mapping[str, Any] | None = None,
    monitoring: Mapping[str, Any] | None = None,
    labeling: Mapping[str, Any] | None = None,
    recommendation: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    params, names = plan["params"], plan["names"]
    tuned = tuning_summary(tuning)
    if tuned and tuning:  # tune_model's "Training" is the best job: the run's trained job
        training = tuning
    resources: list[dict[str, Any]] = []
    for field, image in sorted((images or {}).items()):
        if isinstance(image, Mapping):
            action = {"copied": "copied", "already_copied": "reused", "in_ecr": "used"}.get(
                str(image.get("action")), str(image.get("action"))
            )
            resources.append(
                {"kind": "ECR image", "name": image.get("image"), "action": action, "for": field}
            )
    labeled = labeling_summary(labeling, params)
    if labeled:
        resources.append(
            {
                "kind": "labeling job",
                "name": labeled["job"],
                "action": "created",
                "status": labeled["status"],
                "output": labeled["output_manifest_s3_uri"],
            }
        )
    if tuned:
        resources.append(
            {"kind": "tuning job", "name": tuned["job"], "action": "created", "status": tuned["status"]}
        )
    if training:
        resources.append(
            {
                "kind": "training job",
                "name": _get(training, "Training", "TrainingJobName") or names["training_job"],
                "action": "created",
                "status": _get(training, "Training", "TrainingJobStatus"),
                "artifact": _get(training, "Training", "ModelArtifacts", "S3ModelArtifacts"),
            }
        )
    else:
        resources.append(
            {
                "kind": "training job",
                "name": None,
                "action": "skipped",
                "artifact": params.get("model_artifact_s3_path"),
            }
        )
    registry = registry_summary(registered)
    if registry and isinstance(approval, Mapping) and approval.get("status"):
        # approve_deploy decided after register_model: the version's status is the decision's
        registry = {**registry, "status": approval["status"], "approved_by": approval.get("approved_by")}
    if registry:
        resources.append(
            {
                "kind": "model package version",
                "name": f"{registry['group']} version {registry['version']}",
                "action": "registered",
                "status": registry["status"],
            }
        )
    shared = multi_model_summary(endpoint) or multi_model_summary(model)
    if model:
        resources.append(
            {
                "kind": "model",
                "name": _get(model, "Model", "ModelName") or names["model"],
                # the team's shared model: created by its first model's run, adopted by the others
                "action": "shared: this model's artifact added" if shared else "created",
            }
        )
    resources.extend(_endpoint_resources(endpoint, names, shared))
    serving = _get(params, "endpoint") or {}
    promoted = promoted_version(images)
    train_only = (
        not params.get("model_artifact_s3_path")
        and not promoted
        and not (params.get("model_docker_image") or params.get("training_algorithm_name"))
    )
    if train_only:
        resources.append(
            {
                "kind": "model, endpoint and API",
                "name": None,
                "action": "skipped: a train-only run deploys nothing",
            }
        )
    scored = batch_summary(batch)
    if scored:
        resources.append(
            {
                "kind": "batch transform job",
                "name": scored["job"],
                "action": "created",
                "status": scored["status"],
                "output": scored["output_s3_uri"],
            }
        )
        resources.append(
            {"kind": "endpoint and API", "name": None, "action": "skipped: batch scoring serves no endpoint"}
        )
    watched = monitoring_summary(monitoring)
    if watched:
        resources.append(
            {
                "kind": "monitoring schedule",
                "name": watched["schedule"],
                "action": watched["schedule_action"],
                "link": watched["console_url"],
            }
        )
    if api:
        resources.append(
            {
                "kind": "API Gateway API",
                "name": api.get("api_name"),
                "id": api.get("api_id"),
                "action": "created" if api.get("created") else "updated",
                "stage": api.get("stage"),
            }
        )
    return {
        "model_name": params["model_name"],
        "account_id": params["account_id"],
        "region": _get(plan, "platform", "region"),
        "dag_id": plan.get("dag_id"),
        "run_id": plan.get("run_id"),
        "run_key": names["run_key"],
        "invoke_url": (api or {}).get("invoke_url"),
        "authorization": (api or {}).get("authorization"),
        "api_key_id": (api or {}).get("api_key_id"),
        "train_only": train_only,
        # staged promotion: the source version this run deployed (None: not a promotion)
        "promoted_from": dict(promoted) if promoted else None,
        # the model artifact this run trained or deployed
        "artifact_s3_path": _get(training, "Training", "ModelArtifacts", "S3ModelArtifacts")
        or params.get("model_artifact_s3_path"),
        "mode": serving.get("mode") or "realtime",
        # where the endpoint's data capture lands (None: no capture)
        "data_capture_s3_uri": _get(serving, "data_capture", "destination_s3_uri")
        if _get(serving, "data_capture", "enabled") and not train_only
        else None,
        "async_output_s3_uri": _get(serving, "async_inference", "output_s3_uri")
        if serving.get("mode") == "async" and not train_only
        else None,
        # spot (interruptions, billable against training seconds) and the final metric values
        "training": training_facts(job) if isinstance(job := _get(training, "Training"), Mapping) else None,
        # tuning: the tuning job, its best training job, objective value and hyperparameters (None: no tuning)
        # batch scoring: the transform job, where its results are (None: the run served an endpoint)
        "batch": scored,
        # model monitoring: the endpoint's schedule, its baseline, alarms and console link (None: none)
        "monitoring": watched,
        # a team's shared multi-model endpoint: the endpoint, this model's key and artifact (None: its own)
        "multi_model": shared,
        # tuning: the tuning job, its best training job, objective value and hyperparameters (None: no tuning)
        "tuning": tuned,
        # the model registry: group, version, status and the quality gate's verdict (None: not registered)
        "registry": registry,
        # labeling: the labeling job, its counts and the labeled manifest training read (None: no labeling)
        "labeling": labeled,
        # recommend_instance: the types that fit with their price per hour, the pick and why (None: skipped)
        "recommendation": recommendation_summary(recommendation),
        "resources": resources,
    }


def _endpoint_resources(
    endpoint: Mapping[str, Any] | None, names: Mapping[str, Any], shared: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The endpoint's lines of the resources: its config and itself, or the team's shared endpoint."""
    resources: list[dict[str, Any]] = []
    if endpoint and shared:  # a team's shared endpoint: created by the first model's run, then adopted
        resources.append(
            {
                "kind": "shared multi-model endpoint",
                "name": shared["endpoint"],
                "action": f"serving this model as TargetModel {shared['target_model']}",
                "status": _get(endpoint, "Endpoint", "EndpointStatus"),
            }
        )
    elif endpoint:
        resources.append({"kind": "endpoint config", "name": names["endpoint_config"], "action": "created"})
        resources.append(
            {
                "kind": "endpoint",
                "name": _get(endpoint, "Endpoint", "EndpointName") or names["endpoint"],
                "action": "serving this run's config",
                "status": _get(endpoint, "Endpoint", "EndpointStatus"),
            }
        )
    return resources


def multi_model_summary(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """create_model's or deploy_endpoint's ``MultiModel`` placement as the summary shows it."""
    found = result.get("MultiModel") if isinstance(result, Mapping) else None
    if not isinstance(found, Mapping) or "target_model" not in found:
        return None
    return {
        "team": found.get("team"),
        "endpoint": found.get("endpoint_name"),
        "target_model": found.get("target_model"),
        "artifact_s3_uri": found.get("artifact_s3_uri"),
    }


def _multi_model_lines(shared: Mapping[str, Any] | None) -> list[str]:
    if not shared:
        return []
    return [
        f"Multi-model endpoint: team {shared.get('team')}'s {shared.get('endpoint')} serves this model as "
        f"TargetModel {shared.get('target_model')} ({shared.get('artifact_s3_uri')}); the invoke URL routes to it"
    ]


def batch_summary(batch: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """batch_transform's XCom (``{"Transform", "Batch"}``; KFP: the facts alone) as the summary shows it.
    SageMaker reports no record counts for a transform job, so the summary claims none."""
    facts = batch.get("Batch", batch) if isinstance(batch, Mapping) else None
    if not isinstance(facts, Mapping) or not facts.get("job"):
        return None
    keys = ("job", "status", "input_s3_uri", "output_s3_uri", "instance_type", "instance_count", "seconds")
    return {key: facts.get(key) for key in keys}


def labeling_summary(labeling: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """label_data's XCom (domain.labeling.labeling_facts) as the summary shows it, with the training
    channel its labeled manifest became."""
    if not isinstance(labeling, Mapping) or not labeling.get("job"):
        return None
    keys = ("job", "status", "labeled", "human_labeled", "failed", "unlabeled", "output_manifest_s3_uri")
    return {**{key: labeling.get(key) for key in keys}, "channel": _get(params, "labeling", "channel")}


def recommendation_summary(answer: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """recommend_instance's XCom (sagelift.steps.recommendation) as the summary shows it: the cheapest
    fits with their price per hour, the pick and why, what was deployed."""
    if not isinstance(answer, Mapping) or "fit_count" not in answer:
        return None
    fits = [f for f in answer.get("fits") or [] if isinstance(f, Mapping)][:5]
    job = answer.get("job") if isinstance(answer.get("job"), Mapping) else {}
    return {
        "region": answer.get("region"),
        "prices_as_of": answer.get("prices_as_of"),
        "fit_count": answer.get("fit_count"),
        "fits": [
            {"instance_type": f.get("instance_type"), "usd_per_hour": f.get("usd_per_hour")} for f in fits
        ],
        "pick": answer.get("pick"),
        "pick_usd_per_hour": answer.get("pick_usd_per_hour"),
        "why": answer.get("why"),
        "job": (job or {}).get("name"),
        "auto": bool(answer.get("auto")),
        "endpoint_instance_type": answer.get("endpoint_instance_type"),
    }


def _recommendation_lines(rec: Mapping[str, Any] | None) -> list[str]:
    if not rec:
        return []
    prices = ", ".join(f"{f['instance_type']} ${f['usd_per_hour']:g}/h" for f in rec.get("fits") or [])
    pick = rec.get("pick")
    priced = f" at ${rec['pick_usd_per_hour']:g}/h" if rec.get("pick_usd_per_hour") is not None else ""
    deployed = rec.get("endpoint_instance_type")
    return [
        f"Instance recommendation: {rec.get('fit_count')} hosting types fit in {rec.get('region')} (prices as "
        f"of {rec.get('prices_as_of')}; cheapest {prices or 'none'})",
        f"  pick {pick or 'none'}{priced}: {rec.get('why')}",
        f"  deployed {deployed}"
        + (' (endpoint_instance_type "auto")' if rec.get("auto") else " (as the conf says)"),
    ]


def monitoring_summary(monitoring: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """monitor_endpoint's XCom (``{"Monitoring", "Baseline"}``; KFP: the facts alone) as the summary shows it."""
    facts = monitoring.get("Monitoring", monitoring) if isinstance(monitoring, Mapping) else None
    if not isinstance(facts, Mapping) or not facts.get("schedule"):
        return None
    keys = (
        "schedule",
        "schedule_action",
        "frequency",
        "schedule_expression",
        "baseline_s3_uri",
        "reports_s3_uri",
        "alarms",
        "drift_threshold",
        "console_url",
    )
    return {key: facts.get(key) for key in keys}


def registry_summary(registered: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """register_model's XCom as the summary shows it."""
    if not isinstance(registered, Mapping) or not registered.get("model_package_arn"):
        return None
    gate: Mapping[str, Any] = registered.get("gate") or {}
    checks = [c for c in gate.get("checks") or [] if isinstance(c, Mapping)]
    return {
        "group": registered.get("model_package_group"),
        "version": registered.get("version"),
        "status": registered.get("status"),
        "model_package_arn": registered.get("model_package_arn"),
        "quality_gate": ("passed" if gate.get("passed", True) else "failed") if checks else "none",
        "checks": [dict(c) for c in checks],
    }


def tuning_summary(tuning: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """tune_model's XCom (its ``facts``: domain.tuning.tuning_facts) as the summary shows it."""
    facts = tuning.get("facts") if isinstance(tuning, Mapping) else None
    if not isinstance(facts, Mapping) or not facts.get("tuning_job"):
        return None
    best: Mapping[str, Any] = facts.get("best") or {}
    return {
        "job": facts.get("tuning_job"),
        "status": facts.get("status"),
        "strategy": facts.get("strategy"),
        "objective_metric": facts.get("objective_metric"),
        "objective_direction": facts.get("objective_direction"),
        "training_jobs": dict(facts.get("jobs") or {}),
        "best_training_job": best.get("training_job"),
        "objective_value": best.get("objective_value"),
        "hyperparameters": dict(best.get("hyperparameters") or {}),
    }


def render_run_summary(summary: Mapping[str, Any]) -> str:
    lines = [
        f"Model {summary['model_name']} in account {summary['account_id']} (run {summary['run_id']}):",
    ]
    for item in summary["resources"]:
        extra = ", ".join(
            f"{key} {item[key]}"
            for key in ("status", "artifact", "output", "stage", "for")
            if item.get(key) is not None
        )
        lines.append(
            f"  - {item['kind']} {item.get('name') or ''}: {item['action']}"
            + (f" ({extra})" if extra else "")
        )
    facts = summary.get("training") or {}
    if facts.get("spot") and facts.get("billable_seconds") is not None:
        saving = facts.get("saving_percent")
        lines.append(
            f"Spot training: billed {facts['billable_seconds']} s of {facts.get('training_seconds')} s trained"
            + (f" ({saving:g} % saved)" if saving is not None else "")
            + f", {facts.get('interruptions', 0)} interruption(s)"
        )
    if facts.get("metrics"):
        lines.append("Final metrics: " + ", ".join(f"{k}={v:g}" for k, v in sorted(facts["metrics"].items())))
    tuned = summary.get("tuning") or {}
    if tuned:
        tried = ", ".join(f"{k}={v}" for k, v in sorted((tuned.get("hyperparameters") or {}).items()))
        lines.append(
            f"Tuning: {tuned.get('job')} ({tuned.get('strategy')}, "
            f"{(tuned.get('training_jobs') or {}).get('completed', 0)} jobs completed); best job "
            f"{tuned.get('best_training_job')}: {tuned.get('objective_metric')}={tuned.get('objective_value')} "
            f"({tuned.get('objective_direction')}) with {tried or 'no tuned hyperparameters'}"
        )
    if labeled := summary.get("labeling"):
        lines.append(
            f"Labeling: {labeled.get('job')} labeled {labeled.get('labeled')} objects "
            f"({labeled.get('human_labeled')} by people, {labeled.get('failed')} failed, "
            f"{labeled.get('unlabeled')} unlabeled); training channel {labeled.get('channel')} read "
            f"{labeled.get('output_manifest_s3_uri')}"
        )
    registry = summary.get("registry") or {}
    if registry:
        gate = "; ".join(f"{c.get('rule')}: {c.get('value')}" for c in registry.get("checks") or [])
        lines.append(
            f"Model registry: {registry.get('group')} version {registry.get('version')} is "
            f"{registry.get('status')}"
            + (f" (approved by {registry['approved_by']})" if registry.get("approved_by") else "")
            + f"; quality gate {registry.get('quality_gate')}"
            + (f" ({gate})" if gate else "")
        )
    scored = summary.get("batch") or {}
    if scored:
        took = f" in {scored['seconds']:g} s" if scored.get("seconds") is not None else ""
        lines.append(
            f"Batch scoring: {scored.get('job')} scored {scored.get('input_s3_uri')} on "
            f"{scored.get('instance_count')} x {scored.get('instance_type')}{took}; results under "
            f"{scored.get('output_s3_uri')}"
        )
    lines.extend(_recommendation_lines(summary.get("recommendation")))
    lines.extend(_multi_model_lines(summary.get("multi_model")))
    if watched := summary.get("monitoring"):
        lines.append(
            f"Model monitoring: schedule {watched.get('schedule')} ({watched.get('frequency')}, "
            f"{watched.get('schedule_action')}) checks captured data against the baseline "
            f"{watched.get('baseline_s3_uri')}; {len(watched.get('alarms') or [])} drift alarm(s); reports under "
            f"{watched.get('reports_s3_uri')}; {watched.get('console_url')}"
        )
    if promoted := summary.get("promoted_from"):
        lines.append(
            f"Promoted version {promoted.get('version')} from account {promoted.get('account_id')} "
            f"({promoted.get('model_package_arn')}): same image digest, artifact {promoted.get('model_data_url')}"
        )
    if summary.get("train_only"):
        lines.append(f"Train-only run: nothing deployed. Trained artifact: {summary.get('artifact_s3_path')}")
    if summary.get("data_capture_s3_uri"):
        lines.append(f"Data capture: requests and responses land under {summary['data_capture_s3_uri']}")
    if summary.get("async_output_s3_uri"):
        lines.append(f"Async results land under {summary['async_output_s3_uri']}")
    if summary.get("invoke_url"):
        lines.append(f"Invoke URL: POST {summary['invoke_url']}")
        if summary.get("api_key_id"):
            lines.append(f"  send API key {summary['api_key_id']}'s value in the x-api-key header")
    return "\n".join(lines)
