"""The conf's optional ``instance_recommendation`` object (issue 20 item 2): how recommend_instance answers.

recommend_instance runs in every run that deploys an endpoint of its own, after approve_deploy and
before create_model. It always answers from sagelift's tables (sagelift.domain.instance_choice): which
hosting types fit the model, their price per hour in the region, and the pick. With
``endpoint_instance_type: "auto"`` deploy_endpoint deploys the pick.

This object adds an optional SageMaker Inference Recommender job over the run's registered model
version (``model_package_arn``), run with the model's role, when the account allows it
(``accounts.<id>.inference_recommender: true``):

- ``{"job": "default"}``: SageMaker load-tests the types sagelift found fitting (the cheapest
  ``MAX_JOB_TYPES``, or ``instance_types``) with its own traffic;
- ``{"job": "advanced", "instance_types": [...], "users": 2, "spawn_rate": 1, "duration_seconds": 300,
  "max_latency_ms": 100, "max_invocations": 1000}``: a load test of your own on 1-10 types (one
  traffic phase; stop at a P95 latency or an invocation rate).

Both need ``sample_payload_s3_uri`` (a .tar.gz of request bodies) and its ``content_type``. The job's
answer is judged by the same fit rules; the pick is its cheapest recommendation per hour that fits.

- ``parse_recommendation`` reads the object (native or JSON text); every rule names its dotted field.
- ``check_recommendation_against_platform``: the account allows the job, "auto" has something to
  decide, the instance types are allowed in the account.
- ``build_recommendations_job_request``: CreateInferenceRecommendationsJob's body.
- ``pick_from_job``: the job's recommendations judged and the pick.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.endpoint_settings import ObjectReader
from sagelift.domain.errors import Problems, SageliftValidationError, clip, show
from sagelift.domain.instance_choice import (
    PROCESSORS,
    Recommendation,
    fit_problem,
    hosting_instance_types,
    instance_spec,
)

FIELD = "instance_recommendation"
AUTO = "auto"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=1024)
JOBS = ("none", "default", "advanced")
MAX_JOB_TYPES = 10  # EndpointConfigurations holds at most 10
MAX_USERS = 100
MAX_DURATION_SECONDS = 3600
JOB_DURATION_SECONDS = 7200  # how long SageMaker may take for the whole job (default job)
LATENCY_PERCENTILE = "P95"
_KEYS = (
    "job",
    "sample_payload_s3_uri",
    "content_type",
    "processor",
    "instance_types",
    "users",
    "spawn_rate",
    "duration_seconds",
    "max_latency_ms",
    "max_invocations",
)

SETTINGS_DOC = (
    "Optional, as a JSON object: recommend_instance always answers from sagelift's price table (the "
    'hosting types that fit the model, their price per hour, the cheapest as the pick); endpoint_instance_type "auto" '
    'deploys the pick. Keys: job ("none", "default" or "advanced": a SageMaker Inference Recommender load '
    "test, if your account allows it); sample_payload_s3_uri and content_type (required with a job); "
    'processor ("cpu", "gpu", "any": what your image serves on; default cpu, a built-in algorithm knows); '
    "instance_types (the types to test, 1-10; required with advanced); users, spawn_rate, duration_seconds, "
    "max_latency_ms, max_invocations (advanced). README: Instance recommendation."
)


@dataclass(frozen=True)
class RecommendationSettings:
    job: str = "none"
    sample_payload_s3_uri: str | None = None
    content_type: str = "text/csv"
    processor: str | None = None  # None: the built-in algorithm's, or CPU for your own image
    instance_types: tuple[str, ...] = ()
    users: int = 1
    spawn_rate: int = 1
    duration_seconds: int = 120
    max_latency_ms: int | None = None
    max_invocations: int | None = None

    @property
    def enabled(self) -> bool:
        """Whether an Inference Recommender job runs (the table answers in every deploying run)."""
        return self.job != "none"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["instance_types"] = list(self.instance_types)
        return data

    def to_conf(self) -> dict[str, Any]:
        """The settings as a conf object without nulls or defaults (a KFP struct holds no nulls)."""
        defaults = RecommendationSettings()
        return {
            key: value
            for key, value in self.to_dict().items()
            if value is not None and value != getattr(defaults, key) and value != []
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RecommendationSettings:
        data = data or {}
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None}
        if "instance_types" in values:
            values["instance_types"] = tuple(values["instance_types"])
        return cls(**values)


def _instance_types(r: ObjectReader, problems: Problems) -> tuple[str, ...]:
    raw = r.raw.get("instance_types")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_JOB_TYPES:
        problems.add(r.name("instance_types"), f"must be a list of 1-{MAX_JOB_TYPES} hosting instance types")
        return ()
    known = hosting_instance_types()
    clean: list[str] = []
    for i, value in enumerate(raw):
        if value not in known:
            close = difflib.get_close_matches(str(value)[:64], known, n=1, cutoff=0.8)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.add(
                f"{r.name('instance_types')}[{i}]", f"{show(value)} is not a SageMaker hosting type{hint}"
            )
        elif value not in clean:
            clean.append(str(value))
    return tuple(clean)


def parse_recommendation(raw: Any, problems: Problems) -> RecommendationSettings:
    """The conf's ``instance_recommendation`` object; adds a problem per broken rule."""
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if not data:
        return RecommendationSettings()
    r = ObjectReader(data, FIELD, _KEYS, problems)
    job = r.choice("job", "none", JOBS)
    processor = r.raw.get("processor")
    if processor is not None:
        processor = r.choice("processor", "cpu", PROCESSORS)
    settings = RecommendationSettings(
        job=job,
        sample_payload_s3_uri=r.s3_uri("sample_payload_s3_uri"),
        content_type=r.text("content_type", "text/csv", 256),
        processor=processor,
        instance_types=_instance_types(r, problems),
        users=r.whole("users", 1, 1, MAX_USERS),
        spawn_rate=r.whole("spawn_rate", 1, 0, MAX_USERS),
        duration_seconds=r.whole("duration_seconds", 120, 60, MAX_DURATION_SECONDS),
        max_latency_ms=r.whole("max_latency_ms", None, 1, 60_000),
        max_invocations=r.whole("max_invocations", None, 1, 1_000_000),
    )
    if (
        settings.enabled
        and settings.sample_payload_s3_uri is None
        and not problems.has(r.name("sample_payload_s3_uri"))
    ):
        problems.add(
            r.name("sample_payload_s3_uri"),
            f"required with job {job}: an S3 object (.tar.gz) of sample requests the load test sends",
        )
    if job == "advanced" and not settings.instance_types and not problems.has(r.name("instance_types")):
        problems.add(
            r.name("instance_types"), "required with job advanced: the 1-10 hosting types to load-test"
        )
    if job != "advanced":
        for key in ("users", "spawn_rate", "duration_seconds", "max_latency_ms", "max_invocations"):
            if r.given(key):
                problems.add(r.name(key), "applies to job advanced only (a default job sets its own traffic)")
    return settings


def serves_own_endpoint(params: Any) -> bool:
    """Whether the run (RunParams) creates an instance-backed endpoint of its own, the one
    recommend_instance sizes: not train-only, batch, multi-model (the team endpoint's type) or serverless."""
    return bool(
        params.deploys
        and not params.batch.enabled
        and not params.multi_model.enabled
        and params.endpoint.mode != "serverless"
    )


def check_recommendation_against_platform(
    settings: RecommendationSettings,
    *,
    endpoint_instance_type: str,
    allows_job: bool,
    allowed_types: Sequence[str],
    account_id: str,
    serves_own_endpoint: bool,
    problems: Problems,
) -> None:
    """validate: the account allows the job; "auto" and the job have an endpoint of the run's own to
    size; every named type is allowed in the account."""
    account = f"accounts.{account_id}"
    if settings.enabled and not allows_job:
        problems.add(
            f"{FIELD}.job",
            f"the platform does not allow Inference Recommender jobs in account {account_id} "
            f"({account}.inference_recommender); use job none",
        )
    if not serves_own_endpoint:
        if endpoint_instance_type == AUTO:
            problems.add(
                "endpoint_instance_type",
                '"auto" sizes an endpoint of the run\'s own; this run creates none (batch, multi_model, '
                "serverless or train-only): give an instance type",
            )
        if settings.enabled:
            problems.add(f"{FIELD}.job", "this run creates no endpoint of its own to size; use job none")
    if allowed_types:
        named = [("endpoint_instance_type", endpoint_instance_type)] if endpoint_instance_type != AUTO else []
        named += [(f"{FIELD}.instance_types[{i}]", t) for i, t in enumerate(settings.instance_types)]
        for name, value in named:
            if value not in allowed_types:
                problems.add(name, f"{value} is not in {account}.endpoint_instance_types")


def build_recommendations_job_request(
    settings: RecommendationSettings,
    *,
    job_name: str,
    role_arn: str,
    model_package_arn: str,
    instance_types: Iterable[str],
    framework_hint: str | None,
    tags: Sequence[Mapping[str, str]],
    volume_kms_key: str | None = None,
    vpc_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateInferenceRecommendationsJob's body. ``instance_types``: the types a default job may test
    (the cheapest that fit) or an advanced job's own."""
    types = list(instance_types)[:MAX_JOB_TYPES]
    container: dict[str, Any] = {
        "Domain": "MACHINE_LEARNING",
        "Task": "OTHER",
        "PayloadConfig": {
            "SamplePayloadUrl": settings.sample_payload_s3_uri,
            "SupportedContentTypes": [settings.content_type],
        },
        "SupportedEndpointType": "RealTime",
    }
    if framework_hint:
        container["Framework"] = framework_hint
    input_config: dict[str, Any] = {"ModelPackageVersionArn": model_package_arn, "ContainerConfig": container}
    request: dict[str, Any] = {
        "JobName": job_name,
        "JobType": "Advanced" if settings.job == "advanced" else "Default",
        "RoleArn": role_arn,
        "InputConfig": input_config,
        "JobDescription": "sagelift recommend_instance",
        "Tags": [dict(t) for t in tags],
    }
    if volume_kms_key:
        input_config["VolumeKmsKeyId"] = volume_kms_key
    if vpc_config:  # the test endpoints run in the account's VPC, as its own endpoints do
        input_config["VpcConfig"] = dict(vpc_config)
    if settings.job == "advanced":
        input_config["EndpointConfigurations"] = [{"InstanceType": t} for t in types]
        input_config["TrafficPattern"] = {
            "TrafficType": "PHASES",
            "Phases": [
                {
                    "InitialNumberOfUsers": settings.users,
                    "SpawnRate": settings.spawn_rate,
                    "DurationInSeconds": settings.duration_seconds,
                }
            ],
        }
        input_config["ResourceLimit"] = {"MaxNumberOfTests": len(types), "MaxParallelOfTests": 1}
        stopping: dict[str, Any] = {}
        if settings.max_invocations is not None:
            stopping["MaxInvocations"] = settings.max_invocations
        if settings.max_latency_ms is not None:
            stopping["ModelLatencyThresholds"] = [
                {"Percentile": LATENCY_PERCENTILE, "ValueInMilliseconds": settings.max_latency_ms}
            ]
        if stopping:
            request["StoppingConditions"] = stopping
    else:
        input_config["JobDurationInSeconds"] = JOB_DURATION_SECONDS
        container["SupportedInstanceTypes"] = types
    return request


def pick_from_job(
    table_answer: Recommendation,
    description: Mapping[str, Any],
    allowed_types: Sequence[str] = (),
) -> Recommendation:
    """The job's recommendations judged by the fit rules; the pick is the cheapest per hour that fits
    (the table's pick when none does, saying so)."""
    name = str(description.get("JobName", "?"))
    judged: list[dict[str, Any]] = []
    for rec in description.get("InferenceRecommendations") or []:
        config, metrics = rec.get("EndpointConfiguration") or {}, rec.get("Metrics") or {}
        instance_type = config.get("InstanceType")
        if not isinstance(instance_type, str) or instance_type not in hosting_instance_types():
            continue
        problem = fit_problem(
            instance_spec(instance_type),
            table_answer.memory_needed_gib,
            table_answer.processor,
            allowed_types,
        )
        judged.append(
            {
                "instance_type": instance_type,
                "instance_count": int(config.get("InitialInstanceCount") or 1),
                "usd_per_hour": metrics.get("CostPerHour"),
                "usd_per_inference": metrics.get("CostPerInference"),
                "max_invocations": metrics.get("MaxInvocations"),
                "latency_ms": metrics.get("ModelLatency"),
                "fits": problem is None,
                **({"why_not": problem} if problem else {}),
            }
        )
    judged = judged[:MAX_JOB_TYPES]
    fitting = [j for j in judged if j["fits"] and isinstance(j["usd_per_hour"], int | float)]
    job = {"name": name, "type": str(description.get("JobType", "")), "recommendations": judged}
    if not fitting:
        why = f"{table_answer.why}; job {name} recommended no type that fits, so the table's pick stands"
        return replace(table_answer, why=why, job=job)
    best = min(fitting, key=lambda j: (j["usd_per_hour"], j["instance_type"]))
    latency = f", {best['latency_ms']} ms model latency" if best.get("latency_ms") is not None else ""
    why = (
        f"Inference Recommender job {name}'s cheapest recommendation that fits: ${best['usd_per_hour']:g}/h"
        f"{latency}, {best['max_invocations']} invocations per minute"
    )
    return replace(
        table_answer,
        pick=best["instance_type"],
        pick_usd_per_hour=float(best["usd_per_hour"]),
        why=why,
        job=job,
    )


def resolve_instance_type(
    plan: Mapping[str, Any], recommendation: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The plan (its XCom form) with ``endpoint_instance_type: "auto"`` replaced by recommend_instance's
    pick, for deploy_endpoint on both engines; any other plan unchanged."""
    params = (plan or {}).get("params") or {}
    if params.get("endpoint_instance_type") != AUTO:
        return dict(plan or {})
    pick = (recommendation or {}).get("pick")
    if not isinstance(pick, str) or pick not in hosting_instance_types():
        why = (recommendation or {}).get("why") or "recommend_instance left no answer"
        raise SageliftValidationError.single(
            "endpoint_instance_type", f'"auto" has no instance type to deploy: {clip(str(why), 150)}'
        )
    return {**plan, "params": {**params, "endpoint_instance_type": pick}}
