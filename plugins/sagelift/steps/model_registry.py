"""register_model (issue 17 items 6 and 7): the run's model package version and its quality gate.

Every run that produces a servable model registers one version in the model package group named after
the model (created, tagged, when missing). A train-only run (no serving image, no built-in algorithm)
has nothing that serves, so it registers nothing: its artifact stays where training wrote it.

- ``register_version`` judges the quality gate on the training job's final metrics, then creates the
  run's version (the serving image by digest, the artifact, the environment, the metrics and gate verdict
  as CustomerMetadataProperties, the run's tags) with its status: Rejected when the gate fails,
  PendingManualApproval when the account ``requires_approval``, else Approved. A retry, or a create
  whose answer was lost, finds the version this run registered by its run key
  (``CustomerMetadataProperties["sagelift:run_key"]``) and adopts it: never two versions per run, and
  a status already decided (an approval) is kept.
- ``register_run`` is the step both engines call: it reads the deployed job (``deployed_job``: the run's
  training job, or the tuning job's best) for the artifact and final metrics, registers, and judges.
- ``gate_outcome`` raises ``StepFailed`` after a Rejected registration: the run stops before deploy,
  with a message naming the metric and both values.
- ``set_approval`` records a decision (Approved or Rejected) on a version: H3's approval task and H5's
  promotion use it.

The register_model task's XCom (both engines; JSON-able, no secrets)::

    {"model_package_group": "churn", "model_package_arn": "arn:aws:sagemaker:...:model-package/churn/3",
     "version": 3, "status": "Approved" | "PendingManualApproval" | "Rejected",
     "metrics": {"validation:auc": 0.91}, "model_data_url": "s3://...", "image": "<ecr>@sha256:...",
     "gate": {"passed": true, "checks": [{"rule", "metric", "threshold", "value", "passed"}], "message": ""},
     "adopted": false}

with ``"promoted_from": <source version ARN>`` in a promoted run; or ``{"skipped": true, "reason": "..."}``
when nothing was registered.
Teardown never deletes a group or its versions: the registry is the model's history.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from sagelift.domain.model_package import (
    RUN_KEY_PROPERTY,
    build_model_package_group_request,
    build_model_package_request,
    build_update_model_package_request,
    derive_group_name,
)
from sagelift.domain.plan import Plan
from sagelift.domain.promotion import promoted_version
from sagelift.domain.quality_gate import (
    APPROVED,
    REJECTED,
    GateResult,
    approval_status,
    evaluate_gate,
)
from sagelift.domain.sagemaker import resolve_model_image
from sagelift.domain.tuning import derive_tuning_job_name
from sagelift.steps.errors import StepFailed, describe_or_none, error_code
from sagelift.steps.training import model_artifact

log = logging.getLogger(__name__)

# How many of the group's newest versions a retry reads to find its own: runs of a model take turns
# (the model lock), so the run's version is among the newest.
ADOPT_SCAN = 20
DECISIONS = (APPROVED, REJECTED)


def skip_reason(plan: Plan) -> str | None:
    if plan.params.deploys:
        return None
    return (
        "register_model skipped: a train-only run (no model_docker_image, no training_algorithm_name) "
        "has no serving image to register"
    )


def requires_approval(plan: Plan) -> bool:
    return bool(getattr(plan.platform.account(plan.account_id), "requires_approval", False))


def ensure_group(client: Any, model_name: str, tags: list[dict[str, str]]) -> str:
    """The group's name; created (tagged) when missing. A group is never deleted by sagelift."""
    request = build_model_package_group_request(model_name, tags)
    name = str(request["ModelPackageGroupName"])
    if describe_or_none(client.describe_model_package_group, ModelPackageGroupName=name) is None:
        try:
            client.create_model_package_group(**request)
            log.info("Created model package group %s.", name)
        except ClientError as err:
            # Another run of the model, or this request's lost answer, made it first.
            if error_code(err) not in ("ResourceInUse", "ValidationException") or "exist" not in str(err):
                raise
    return name


def find_run_version(client: Any, group: str, run_key: str) -> dict[str, Any] | None:
    """This run's version of the group (found by its run key), or None."""
    page = client.list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=ADOPT_SCAN
    )
    for summary in page.get("ModelPackageSummaryList", []):
        described = client.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if (described.get("CustomerMetadataProperties") or {}).get(RUN_KEY_PROPERTY) == run_key:
            return dict(described)
    return None


def run_metrics(training: Mapping[str, Any] | None) -> dict[str, float]:
    """The final metric values of the job the run deploys (train_model's or tune_model's best job)."""
    description = (training or {}).get("Training") or training or {}
    return {
        str(m["MetricName"]): float(m["Value"])
        for m in description.get("FinalMetricDataList") or []
        if isinstance(m, Mapping) and "MetricName" in m and isinstance(m.get("Value"), int | float)
    }


def deployed_job(client: Any, plan: Plan) -> dict[str, Any] | None:
    """The training job whose model the run deploys, read from SageMaker (so both engines and any retry
    see the same): the tuning job's best job when the run tunes, else the run's own job; None when the
    run trained nothing (it deploys a given artifact)."""
    if not plan.params.trains:
        return None
    name: str | None = plan.names.training_job
    if plan.params.tuning.enabled:
        tuning = describe_or_none(
            client.describe_hyper_parameter_tuning_job,
            HyperParameterTuningJobName=derive_tuning_job_name(plan.names),
        )
        name = ((tuning or {}).get("BestTrainingJob") or {}).get("TrainingJobName")
    return describe_or_none(client.describe_training_job, TrainingJobName=name) if name else None


def register_run(
    client: Any,
    plan: Plan,
    tags: list[dict[str, str]],
    images: Mapping[str, Any] | None,
    artifact: str | None = None,
    say: Callable[[str], None] = log.info,
) -> dict[str, Any]:
    """register_model on either engine: the deployed job's artifact (or ``artifact``, a given one) and
    final metrics, registered as the run's version (``register_version``), then the gate's verdict
    (``gate_outcome``: a Rejected version stops the run). A promoted run (``promote_from``) registers the
    source version's image and artifact, naming that version; the source passed its own gate, so none
    is applied again."""
    if reason := skip_reason(plan):
        say(reason)
        return {"skipped": True, "reason": reason}
    source = promoted_version(images)
    job = deployed_job(client, plan)
    url = artifact or (str(source["model_data_url"]) if source else model_artifact(plan, job))
    promoted_from = str(source["model_package_arn"]) if source else None
    registered = register_version(
        client, plan, tags, images, url, run_metrics(job), say, promoted_from=promoted_from
    )
    return dict(gate_outcome(registered))


def register_version(
    client: Any,
    plan: Plan,
    tags: list[dict[str, str]],
    images: Mapping[str, Any] | None,
    model_data_url: str,
    metrics: Mapping[str, float],
    say: Callable[[str], None] = log.info,
    promoted_from: str | None = None,
) -> dict[str, Any]:
    """Judge the gate and register (or adopt) the run's version; returns the task's XCom (see above)."""
    if reason := skip_reason(plan):
        say(reason)
        return {"skipped": True, "reason": reason}
    params = plan.params
    gated = params.quality_gate.enabled and not promoted_from
    gate = evaluate_gate(params.quality_gate, metrics) if gated else GateResult(True)
    status = approval_status(gate, requires_approval(plan))
    image = resolve_model_image(params, plan.region, images)
    group = ensure_group(client, plan.model_name, tags)
    existing = find_run_version(client, group, plan.names.run_key)
    adopted = existing is not None
    if existing is None:
        request = build_model_package_request(
            model_name=plan.model_name,
            run_key=plan.names.run_key,
            dag_id=plan.dag_id,
            run_id=plan.run_id,
            image=image,
            model_data_url=model_data_url,
            environment=params.environment,
            metrics=metrics,
            gate=("passed" if gate.passed else "failed") if gated else "none",
            status=status,
            tags=tags,
            promoted_from=promoted_from,
        )
        arn = client.create_model_package(**request)["ModelPackageArn"]
        existing = dict(client.describe_model_package(ModelPackageName=arn))
        say(
            f"Registered version {existing.get('ModelPackageVersion')} of model package group {group} ({status})."
        )
    else:
        say(
            f"Version {existing.get('ModelPackageVersion')} of {group} was registered by this run already "
            f"({existing.get('ModelApprovalStatus')}); adopting it."
        )
    for rule in gate.checks:
        say(
            f"Quality gate {rule['rule']}: value {rule['value']}, {'passed' if rule['passed'] else 'failed'}."
        )
    promotion = {"promoted_from": promoted_from} if promoted_from else {}
    return {
        **promotion,
        "model_package_group": group,
        "model_package_arn": str(existing["ModelPackageArn"]),
        "version": int(existing.get("ModelPackageVersion") or 0),
        "status": str(existing.get("ModelApprovalStatus") or status),
        "metrics": dict(metrics),
        "model_data_url": model_data_url,
        "image": image,
        "gate": gate.to_dict(),
        "adopted": adopted,
    }


def gate_outcome(registered: Mapping[str, Any]) -> Mapping[str, Any]:
    """The registration, unless the gate rejected it (``StepFailed``: the run stops before deploy)."""
    gate = registered.get("gate") or {}
    if registered.get("skipped") or gate.get("passed", True):
        return registered
    suffix = f"; {registered.get('model_package_group')} version {registered.get('version')} is Rejected"
    message = str(gate.get("message") or "quality_gate: failed")
    raise StepFailed(message[: 198 - len(suffix)] + suffix + ".\nNothing was deployed.")


def set_approval(client: Any, package_arn: str, status: str, description: str) -> dict[str, Any]:
    """Record a decision (Approved or Rejected) on a version; returns its description."""
    if status not in DECISIONS:
        raise ValueError(f"status: one of {', '.join(DECISIONS)}, got {status!r}")
    client.update_model_package(**build_update_model_package_request(package_arn, status, description))
    log.info("Model package %s is now %s.", package_arn, status)
    return dict(client.describe_model_package(ModelPackageName=package_arn))


__all__ = [
    "deployed_job",
    "derive_group_name",
    "ensure_group",
    "find_run_version",
    "gate_outcome",
    "register_run",
    "register_version",
    "run_metrics",
    "set_approval",
]
