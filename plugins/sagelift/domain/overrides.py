"""Safe request overrides: extra SageMaker request fields a run may set, within the platform's allow-list.

The platform lists, per call, the fields (dotted paths) a conf may set
(``platform.sagemaker.allowed_overrides``, e.g. ``{"CreateTrainingJob": ["StoppingCondition",
"Environment"]}``, or CreateTransformJob for batch scoring); the conf's ``request_overrides`` sets them (``{"CreateTrainingJob":
{"Environment": {"LOG_LEVEL": "debug"}}}``). What sagelift owns (names, role ARNs, tags, the image,
VpcConfig, KMS keys, isolation, where the artifact lands, which model serves) can never be listed, so no
override can replace it. This module parses both sides and merges an override into a built request
(``merge_overrides``, called last by the builders in domain.sagemaker); the merged requests are checked
against botocore's service model at validate time by ``sagelift.steps.overrides`` (domain imports no
botocore), then against the rules SageMaker enforces across the fields of one request, which no model
expresses (``merged_request_problems``: a spot job's max wait covers its max runtime, and others).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from sagelift.domain.errors import Problems, kind, show, subfield

PARAMETER = "request_overrides"
# The calls a run's overrides may shape, and what sagelift owns in each (never overridable).
OWNED: Mapping[str, tuple[str, ...]] = {
    "CreateTrainingJob": (
        "TrainingJobName",
        "RoleArn",
        "Tags",
        "AlgorithmSpecification.TrainingImage",
        "AlgorithmSpecification.AlgorithmName",
        "AlgorithmSpecification.ContainerEntrypoint",
        "AlgorithmSpecification.TrainingImageConfig",
        "OutputDataConfig.S3OutputPath",
        "OutputDataConfig.KmsKeyId",
        "ResourceConfig.VolumeKmsKeyId",
        "VpcConfig",
        "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining",
        "CheckpointConfig",
    ),
    "CreateModel": (
        "ModelName",
        "ExecutionRoleArn",
        "Tags",
        "PrimaryContainer.Image",
        "PrimaryContainer.ImageConfig",
        "PrimaryContainer.ModelDataUrl",
        "PrimaryContainer.ModelDataSource",
        "PrimaryContainer.ModelPackageName",
        "Containers",
        "VpcConfig",
        "EnableNetworkIsolation",
    ),
    "CreateEndpointConfig": (
        "EndpointConfigName",
        "Tags",
        "ProductionVariants",
        "ShadowProductionVariants",
        "KmsKeyId",
        # where captures and async results land: the account's capture_prefixes bound them
        "DataCaptureConfig.DestinationS3Uri",
        "DataCaptureConfig.KmsKeyId",
        "AsyncInferenceConfig.OutputConfig",
        "ExecutionRoleArn",
        "VpcConfig",
        "EnableNetworkIsolation",
    ),
    # batch scoring: what is read and where results land are the conf's batch settings, bounded by
    # the account's batch_prefixes; the keys are the account's
    "CreateTransformJob": (
        "TransformJobName",
        "ModelName",
        "Tags",
        "TransformInput.DataSource",
        "TransformOutput.S3OutputPath",
        "TransformOutput.KmsKeyId",
        "TransformResources.VolumeKmsKeyId",
        "DataCaptureConfig",
    ),
}
OPERATIONS = tuple(OWNED)
PATH_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,99}(\.[A-Z][A-Za-z0-9]{0,99}){0,4}\Z", re.ASCII)
MAX_ALLOWED_PER_CALL = 50


def owned_conflict(operation: str, path: str) -> str | None:
    """The owned path ``path`` would reach into or replace, or None."""
    for owned in OWNED.get(operation, ()):
        if path == owned or owned.startswith(path + ".") or path.startswith(owned + "."):
            return owned
    return None


def parse_allowed_overrides(raw: Any, prefix: str, problems: Problems) -> dict[str, tuple[str, ...]]:
    """``platform.sagemaker.allowed_overrides``: per call, the dotted request fields runs may set."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(prefix, f"must be an object of call names to field lists, got {kind(raw)}")
        return {}
    allowed: dict[str, tuple[str, ...]] = {}
    for operation, paths in raw.items():
        name = subfield(prefix, operation)
        if operation not in OWNED:
            problems.add(name, f"not a call runs may shape; one of {', '.join(OPERATIONS)}")
            continue
        if not isinstance(paths, list) or not paths or len(paths) > MAX_ALLOWED_PER_CALL:
            problems.add(name, f"a list of 1-{MAX_ALLOWED_PER_CALL} request fields such as StoppingCondition")
            continue
        good: list[str] = []
        for i, path in enumerate(paths):
            if not isinstance(path, str) or not PATH_RE.match(path):
                problems.add(
                    f"{name}[{i}]", f"a request field or dotted path such as Environment, got {show(path)}"
                )
                continue
            owned = owned_conflict(operation, path)
            if owned is not None:
                problems.add(f"{name}[{i}]", f"{path} would replace {owned}, which sagelift owns")
                continue
            good.append(path)
        allowed[operation] = tuple(good)
    return allowed


def parse_request_overrides(value: Any, problems: Problems) -> dict[str, dict[str, Any]]:
    """The conf's ``request_overrides`` shape: an object of call names to objects of request fields.

    Whether the platform allows each field is ``check_request_overrides``'s rule (validate's preflight)."""
    if not value:
        return {}
    if not isinstance(value, Mapping):
        problems.add(PARAMETER, f"must be a JSON object of call names to request fields, got {kind(value)}")
        return {}
    out: dict[str, dict[str, Any]] = {}
    for operation, fields in value.items():
        name = subfield(PARAMETER, operation)
        if operation not in OWNED:
            problems.add(name, f"not a call runs may shape; one of {', '.join(OPERATIONS)}")
            continue
        if not isinstance(fields, Mapping) or not fields:
            problems.add(name, f"must be a non-empty object of request fields, got {kind(fields)}")
            continue
        out[str(operation)] = copy.deepcopy(dict(fields))
    return out


def _leaf_paths(
    operation: str, fields: Mapping[str, Any], allowed: tuple[str, ...], prefix: str = ""
) -> list[str]:
    """The paths of ``fields`` outside ``allowed``: a key is allowed when its path is listed (the whole
    value under it); an object with a listed or owned path below it is looked into, so a refusal names
    the deepest field."""
    outside: list[str] = []
    for key, value in fields.items():
        path = f"{prefix}{key}"
        if path in allowed:
            continue
        below = (*allowed, *OWNED.get(operation, ()))
        if isinstance(value, Mapping) and any(a.startswith(path + ".") for a in below):
            outside += _leaf_paths(operation, value, allowed, path + ".")
        else:
            outside.append(path)
    return outside


def check_request_overrides(
    overrides: Mapping[str, Mapping[str, Any]],
    allowed: Mapping[str, tuple[str, ...]],
    problems: Problems,
    *,
    trains: bool = True,
    deploys: bool = True,
    batch: bool = False,
) -> None:
    """Refuse every overridden field the platform does not list, naming it and what the call allows, and
    an override of a call the run never makes."""
    for operation, fields in overrides.items():
        if operation == "CreateTrainingJob" and not trains:
            problems.add(f"{PARAMETER}.{operation}", "model_artifact_s3_path is set, so nothing is trained")
            continue
        if operation != "CreateTrainingJob" and not deploys:
            problems.add(f"{PARAMETER}.{operation}", "a train-only run creates no model or endpoint")
            continue
        if operation == "CreateTransformJob" and not batch:
            problems.add(f"{PARAMETER}.{operation}", "batch is not set, so no transform job runs")
            continue
        if operation == "CreateEndpointConfig" and batch:
            problems.add(f"{PARAMETER}.{operation}", "batch is set, so no endpoint config is created")
            continue
        listed = allowed.get(operation, ())
        for path in _leaf_paths(operation, fields, listed):
            owned = owned_conflict(operation, path)
            if owned is not None:
                rule = f"sagelift sets {owned}; no override can replace it"
            elif listed:
                rule = f"not allowed by the platform (platform.sagemaker.allowed_overrides.{operation}: {', '.join(listed)})"
            else:
                rule = f"not allowed by the platform: it allows no {operation} overrides"
            problems.add(f"{PARAMETER}.{operation}.{path}", rule)


def merge_overrides(request: dict[str, Any], fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """``request`` with ``fields`` merged in: objects key by key (an override of StoppingCondition's
    MaxRuntimeInSeconds keeps MaxWaitTimeInSeconds), anything else replaced."""
    if not fields:
        return request
    merged = copy.deepcopy(request)
    _merge(merged, fields)
    return merged


def _merge(target: dict[str, Any], fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


# --- the merged request as a whole ----------------------------------------------------------------------
# Rules SageMaker enforces across the fields of one request, which botocore's model cannot express. An
# override changes one side of such a rule (sagelift or the conf set the other), so validate checks the
# merged body (sagelift.steps.overrides) and names the overridden field, the other side in the rule.
MAX_TRANSFORM_PAYLOAD_MB = 100  # CreateTransformJob: MaxPayloadInMB, and times MaxConcurrentTransforms


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def is_overridden(fields: Mapping[str, Any] | None, path: str) -> bool:
    """Whether the conf's ``fields`` of one call set the dotted ``path``."""
    node: Any = fields or {}
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _training_job_rules(body: Mapping[str, Any], fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    stopping = _object(body.get("StoppingCondition"))
    runtime = _number(stopping.get("MaxRuntimeInSeconds"))
    wait = _number(stopping.get("MaxWaitTimeInSeconds"))
    waits = is_overridden(fields, "StoppingCondition.MaxWaitTimeInSeconds")
    if body.get("EnableManagedSpotTraining") is not True:
        if waits:  # "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining ..."
            found.append(
                (
                    "StoppingCondition.MaxWaitTimeInSeconds",
                    "applies to spot training only; set training.use_spot",
                )
            )
    elif runtime is not None and wait is not None and wait < runtime:
        # SageMaker: a spot job's MaxWaitTimeInSeconds must be at least its MaxRuntimeInSeconds
        if waits:
            found.append(
                (
                    "StoppingCondition.MaxWaitTimeInSeconds",
                    f"{wait} is below MaxRuntimeInSeconds {runtime}; a spot job's wait must cover it",
                )
            )
        elif is_overridden(fields, "StoppingCondition.MaxRuntimeInSeconds"):
            found.append(
                (
                    "StoppingCondition.MaxRuntimeInSeconds",
                    f"{runtime} exceeds spot MaxWaitTimeInSeconds {wait} (training.max_wait_seconds)",
                )
            )
    resources = _object(body.get("ResourceConfig"))
    if is_overridden(fields, "ResourceConfig.InstanceGroups") and (
        "InstanceType" in resources or "InstanceCount" in resources
    ):
        found.append(
            (
                "ResourceConfig.InstanceGroups",
                "a job names InstanceGroups or InstanceType and InstanceCount, which sagelift sets "
                "(training_instance_type, training_instance_count)",
            )
        )
    return found


def _transform_job_rules(body: Mapping[str, Any], fields: Mapping[str, Any]) -> list[tuple[str, str]]:
    payload = _number(body.get("MaxPayloadInMB"))
    concurrent = _number(body.get("MaxConcurrentTransforms"))
    if payload is None or concurrent is None or payload * concurrent <= MAX_TRANSFORM_PAYLOAD_MB:
        return []
    rule = (
        f"MaxPayloadInMB x MaxConcurrentTransforms is {payload} x {concurrent}, above SageMaker's "
        f"{MAX_TRANSFORM_PAYLOAD_MB} MB"
    )
    for path in ("MaxConcurrentTransforms", "MaxPayloadInMB"):
        if is_overridden(fields, path):
            return [(path, rule)]
    return []  # both from the conf's batch settings, whose own rules hold them


_MERGED_RULES = {"CreateTrainingJob": _training_job_rules, "CreateTransformJob": _transform_job_rules}


def merged_request_problems(
    operation: str, body: Mapping[str, Any], fields: Mapping[str, Any] | None
) -> list[tuple[str, str]]:
    """(field, rule) for every rule across the fields of ``operation``'s merged ``body`` that SageMaker
    would refuse and the conf's override ``fields`` broke; the field is the overridden one, under
    ``request_overrides.<operation>``."""
    rules = _MERGED_RULES.get(operation)
    if rules is None or not fields:
        return []
    return [(f"{PARAMETER}.{operation}.{path}", rule) for path, rule in rules(body, fields)]
