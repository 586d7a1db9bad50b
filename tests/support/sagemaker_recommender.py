"""SageMaker Inference Recommender for the local AWS: inference recommendations jobs with a scripted life.

moto has no Inference Recommender at all. This module adds (``patch_recommender``, called once by
tests/support/sagemaker_lifecycle._patch_moto) to the emulated SageMaker of each account and region:

- **CreateInferenceRecommendationsJob**: a job of an existing name is refused (ResourceInUse); its
  ``ModelPackageVersionArn`` must name a registered version of the account (ValidationException
  otherwise, as SageMaker does); the request is kept as sent;
- **DescribeInferenceRecommendationsJob**: the job's status computed from the emulated time since its
  creation, per ``script_recommender(life, seconds, outcome, failure_reason, stop_seconds, metrics)``:
  ``PENDING`` for the first tenth of ``seconds``, ``IN_PROGRESS`` until ``seconds``, then ``COMPLETED``,
  ``FAILED`` (``FailureReason``) or ``STOPPED``; without a lifecycle installed a job completes at once.
  A completed job lists ``InferenceRecommendations``, one per instance type it tested: an advanced job's
  ``EndpointConfigurations``, a default job's ``ContainerConfig.SupportedInstanceTypes`` (or ml.m5.large,
  ml.c5.xlarge when it names none), each with ``Metrics`` from ``metrics`` (instance type -> CostPerHour,
  ModelLatency, MaxInvocations) or, for a type not scripted, sagelift's price table and latency and
  invocations that improve with the type's vCPUs;
- **StopInferenceRecommendationsJob**: ``STOPPING`` for ``stop_seconds``, then ``STOPPED``; a stop of an
  ended job is a ValidationException;
- **ListInferenceRecommendationsJobs** (every job of the account and region, newest first).

What it does not emulate: the load test itself (no endpoints are created or invoked, the sample payload
is never read), EndpointPerformances, ``Endpoints`` (existing endpoints to test), serverless
configurations, model compilation, ListInferenceRecommendationsJobSteps, the list's filters and paging,
and the job's IAM checks (the role is not assumed).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import tests.support.sagemaker_lifecycle as lifecycle

OUTCOMES = ("COMPLETED", "FAILED", "STOPPED")
DEFAULT_TYPES = ("ml.m5.large", "ml.c5.xlarge")


@dataclass
class RecommenderScript:
    seconds: float = 0.0
    outcome: str = "COMPLETED"
    failure_reason: str = ""
    stop_seconds: float = 5.0
    # instance type -> {"CostPerHour": ..., "ModelLatency": ..., "MaxInvocations": ...}
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class _Job:
    created: float | None  # emulated seconds; None: created without a lifecycle (completes at once)
    script: RecommenderScript
    request: dict[str, Any]
    arn: str
    created_at: datetime.datetime
    stop_requested: float | None = None


def _state(life: Any) -> dict[str, Any]:
    return life.__dict__.setdefault("_recommender", {"script": RecommenderScript()})


def script_recommender(
    life: Any,
    seconds: float = 0.0,
    outcome: str = "COMPLETED",
    failure_reason: str = "",
    stop_seconds: float = 5.0,
    metrics: dict[str, dict[str, float]] | None = None,
) -> None:
    """The next inference recommendations jobs' script."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    _state(life)["script"] = RecommenderScript(
        seconds, outcome, failure_reason, stop_seconds, dict(metrics or {})
    )


def _jobs(backend: Any) -> dict[str, _Job]:
    return backend.__dict__.setdefault("_recommendation_jobs", {})


def _tested_types(request: dict[str, Any]) -> list[str]:
    config = request.get("InputConfig") or {}
    advanced = [c["InstanceType"] for c in config.get("EndpointConfigurations") or [] if "InstanceType" in c]
    if advanced:
        return advanced
    supported = (config.get("ContainerConfig") or {}).get("SupportedInstanceTypes") or []
    return list(supported) or list(DEFAULT_TYPES)


def _metrics(instance_type: str, region: str, script: RecommenderScript) -> dict[str, Any]:
    from sagelift.domain.instance_choice import instance_spec, price_table

    if instance_type in script.metrics:
        scripted = script.metrics[instance_type]
        cost = float(scripted["CostPerHour"])
        latency = int(scripted.get("ModelLatency", 20))
        invocations = int(scripted.get("MaxInvocations", 1000))
    else:
        vcpus = instance_spec(instance_type).vcpus
        cost = price_table().price(region, instance_type) or 1.0
        latency, invocations = max(2, 40 // vcpus), 300 * vcpus
    return {
        "CostPerHour": cost,
        "CostPerInference": round(cost / 60 / max(invocations, 1), 10),
        "MaxInvocations": invocations,
        "ModelLatency": latency,
        "CpuUtilization": 55.0,
        "MemoryUtilization": 30.0,
        "ModelSetupTime": 40,
    }


def _status(job: _Job, now: float | None) -> tuple[str, str]:
    script = job.script
    if job.stop_requested is not None and now is not None:
        return ("STOPPED" if now - job.stop_requested >= script.stop_seconds else "STOPPING"), ""
    if job.created is None or now is None:
        return script.outcome, script.failure_reason if script.outcome == "FAILED" else ""
    elapsed = now - job.created
    if elapsed < script.seconds / 10:
        return "PENDING", ""
    if elapsed < script.seconds:
        return "IN_PROGRESS", ""
    return script.outcome, script.failure_reason if script.outcome == "FAILED" else ""


def _describe(backend: Any, name: str) -> dict[str, Any]:
    from moto.sagemaker.exceptions import ValidationError

    job = _jobs(backend).get(name)
    if job is None:
        raise ValidationError(message=f"Could not find inference recommendations job '{name}'.")
    life = lifecycle.active()
    with lifecycle._LOCK:
        status, reason = _status(job, life.now() if life is not None else None)
    request = job.request
    description: dict[str, Any] = {
        "JobName": name,
        "JobType": request["JobType"],
        "JobArn": job.arn,
        "RoleArn": request["RoleArn"],
        "Status": status,
        "CreationTime": job.created_at,
        "LastModifiedTime": datetime.datetime.now(datetime.UTC),
        "InputConfig": request["InputConfig"],
    }
    for key in ("JobDescription", "StoppingConditions"):
        if key in request:
            description[key] = request[key]
    if status in OUTCOMES:
        description["CompletionTime"] = datetime.datetime.now(datetime.UTC)
    if status == "FAILED":
        description["FailureReason"] = reason or "The load test failed."
    if status == "COMPLETED":
        description["InferenceRecommendations"] = [
            {
                "RecommendationId": f"{name}-{i}",
                "Metrics": _metrics(instance_type, backend.region_name, job.script),
                "EndpointConfiguration": {
                    "EndpointName": f"sm-epc-{name}-{i}"[:63],
                    "VariantName": "sm-epc-variant",
                    "InstanceType": instance_type,
                    "InitialInstanceCount": 1,
                },
                "ModelConfiguration": {},
            }
            for i, instance_type in enumerate(_tested_types(request))
        ]
    return description


def _known_package(backend: Any, arn: str) -> bool:
    packages = getattr(backend, "model_packages", {}) or {}
    return any(
        getattr(p, "arn", None) == arn or getattr(p, "model_package_arn", None) == arn
        for p in packages.values()
    )


def patch_recommender() -> None:
    """Add the Inference Recommender's calls to moto's SageMaker (see the module docstring)."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    def create_response(self: Any) -> Any:
        backend = self.sagemaker_backend
        request = {key: self._get_param(key) for key in ("JobName", "JobType", "RoleArn", "InputConfig")}
        for key in ("JobDescription", "StoppingConditions", "OutputConfig", "Tags"):
            if self._get_param(key) is not None:
                request[key] = self._get_param(key)
        name = request["JobName"]
        if name in _jobs(backend):
            raise ResourceInUseException(
                message=f"Job name {name} must be unique within an AWS account and region"
            )
        package = (request["InputConfig"] or {}).get("ModelPackageVersionArn")
        if package and not _known_package(backend, package):
            raise ValidationError(message=f"Model package version {package} does not exist.")
        life = lifecycle.active()
        with lifecycle._LOCK:
            script = _state(life)["script"] if life is not None else RecommenderScript()
            arn = f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:inference-recommendations-job/{name.lower()}"
            _jobs(backend)[name] = _Job(
                life.now() if life is not None else None,
                script,
                request,
                arn,
                datetime.datetime.now(datetime.UTC),
            )
        return ActionResult({"JobArn": arn})

    def describe_response(self: Any) -> Any:
        return ActionResult(_describe(self.sagemaker_backend, self._get_param("JobName")))

    def stop_response(self: Any) -> Any:
        backend, name = self.sagemaker_backend, self._get_param("JobName")
        job = _jobs(backend).get(name)
        if job is None:
            raise ValidationError(message=f"Could not find inference recommendations job '{name}'.")
        life = lifecycle.active()
        now = life.now() if life is not None else None
        with lifecycle._LOCK:
            status, _ = _status(job, now)
            if status not in ("PENDING", "IN_PROGRESS"):
                raise ValidationError(
                    message=f"The request was rejected because the inference recommendations job is in status {status}."
                )
            if job.stop_requested is None and now is not None:
                job.stop_requested = now
            elif now is None:
                job.script = RecommenderScript(outcome="STOPPED")
        return EmptyResult()

    def list_response(self: Any) -> Any:
        backend = self.sagemaker_backend
        summaries = []
        for name in reversed(list(_jobs(backend))):
            d = _describe(backend, name)
            summaries.append(
                {
                    key: d[key]
                    for key in (
                        "JobName",
                        "JobDescription",
                        "JobType",
                        "JobArn",
                        "Status",
                        "CreationTime",
                        "RoleArn",
                        "LastModifiedTime",
                    )
                    if key in d
                }
            )
        return ActionResult({"InferenceRecommendationsJobs": summaries})

    responses: Any = SageMakerResponse
    responses.create_inference_recommendations_job = create_response
    responses.describe_inference_recommendations_job = describe_response
    responses.stop_inference_recommendations_job = stop_response
    responses.list_inference_recommendations_jobs = list_response
