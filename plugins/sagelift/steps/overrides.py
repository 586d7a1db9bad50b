"""validate's check of a run's request overrides against botocore's SageMaker service model.

The domain checks that each overridden field is on the platform's allow-list; only botocore knows what
SageMaker accepts in it. Before anything runs, this builds every request the run will send with an
override (with the builders the steps use, so the merge is the real one), and validates it with
botocore's ParamValidator, the check a boto3 client makes before sending. A refusal names the field
path (``request_overrides.CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds``) and botocore's
rule. botocore's validator checks types, required members and minimums only; SageMaker also refuses a
value above the model's maximum (a length, a count, a number) or off its pattern, so the overridden
fields are checked against those too (not enums: botocore leaves them open so that a new value SageMaker
adds passes an older botocore). Last, the rules across fields of one request that no model expresses
(``sagelift.domain.overrides.merged_request_problems``: a spot job's max wait covers its max runtime).
Both engines call it right after building the plan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator

from sagelift.domain.batch_settings import build_transform_job_request
from sagelift.domain.errors import Problems, clip
from sagelift.domain.overrides import PARAMETER, merged_request_problems
from sagelift.domain.plan import Plan
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_model_request,
    build_training_job_request,
    expected_model_artifact,
)

# botocore's report lines name the field as 'parameter A.B[0].C, ...' or 'parameter in A.B: "C"'
# ('in input' for a top-level member).
_MEMBER_RE = re.compile(r'parameter in ([A-Za-z0-9_.\[\]]+): "([A-Za-z0-9_]+)"')
_PATH_RE = re.compile(r"parameter ([A-Za-z0-9_.\[\]]+),")


def _field_path(line: str) -> str:
    member = _MEMBER_RE.search(line)
    if member:
        parent, name = member.groups()
        return name if parent == "input" else f"{parent}.{name}"
    found = _PATH_RE.search(line)
    return found.group(1) if found else ""


@cache
def _sagemaker_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def overridden_requests(plan: Plan) -> dict[str, dict[str, Any]]:
    """The bodies of the calls the run overrides, as the steps will build them (tags and copied images
    are only known later; neither is overridable, so the check does not depend on them)."""
    params, names = plan.params, plan.names
    network = plan.platform.account(plan.account_id).network
    wanted = params.request_overrides
    bodies: dict[str, dict[str, Any]] = {}
    if "CreateTrainingJob" in wanted:
        bodies["CreateTrainingJob"] = build_training_job_request(
            params,
            names,
            region=plan.region,
            role_arn=plan.platform.training_role_arn(plan.account_id),
            tags=[],
            settings=plan.platform.sagemaker,
            network=network,
        )
    if "CreateModel" in wanted:
        artifact = params.model_artifact_s3_path or expected_model_artifact(
            str(params.training_s3_output_path), names.training_job
        )
        bodies["CreateModel"] = build_model_request(
            params,
            names,
            region=plan.region,
            role_arn=plan.platform.model_role_arn(plan.account_id),
            model_data_url=artifact,
            tags=[],
            network=network,
        )
    if "CreateEndpointConfig" in wanted:
        bodies["CreateEndpointConfig"] = build_endpoint_config_request(
            params, names, tags=[], settings=plan.platform.sagemaker, network=network
        )
    if "CreateTransformJob" in wanted and params.batch.enabled:
        bodies["CreateTransformJob"] = build_transform_job_request(
            params.batch,
            job_name=names.model,
            model_name=names.model,
            training_output=params.training_s3_output_path,
            tags=[],
            network=network,
            overrides=wanted["CreateTransformJob"],
        )
    return bodies


def request_problems(operation: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, rule) for every way ``body`` breaks botocore's input shape of ``operation``."""
    shape = _sagemaker_model().operation_model(operation).input_shape
    if shape is None:  # every Create* call has an input shape
        return []
    report = ParamValidator().validate(body, shape)
    if not report.has_errors():
        return []
    problems = []
    for line in report.generate_report().splitlines():
        path = _field_path(line)
        field = f"{PARAMETER}.{operation}" + (f".{path}" if path else "")
        problems.append((field, clip(line.strip(), 160)))
    return problems


@cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    """A model pattern (Java syntax) as Python's, or None where Python reads it otherwise (\\p{...})."""
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _beyond_model(shape: Shape, value: Any, path: str) -> list[tuple[str, str]]:
    """(path, rule) for each value under ``value`` above its shape's maximum or off its pattern."""
    meta, found = shape.metadata, []
    top = meta.get("max")
    if shape.type_name == "string" and isinstance(value, str):
        compiled = _pattern(meta["pattern"]) if "pattern" in meta else None
        if top is not None and len(value) > top:
            found.append((path, f"at most {top} characters, got {len(value)}"))
        elif compiled is not None and not compiled.fullmatch(value):
            found.append((path, f"must match {meta['pattern']}"))
    elif shape.type_name in ("integer", "long", "float", "double"):
        if isinstance(value, int | float) and not isinstance(value, bool) and top is not None and value > top:
            found.append((path, f"at most {top}, got {value}"))
    elif shape.type_name == "list" and isinstance(value, list):
        if top is not None and len(value) > top:
            found.append((path, f"at most {top} items, got {len(value)}"))
        for i, item in enumerate(value):
            found += _beyond_model(shape.member, item, f"{path}[{i}]")  # type: ignore[attr-defined]
    elif shape.type_name == "map" and isinstance(value, Mapping):
        if top is not None and len(value) > top:
            found.append((path, f"at most {top} entries, got {len(value)}"))
        for key, item in value.items():
            found += _beyond_model(shape.key, key, f"{path}.{key}")  # type: ignore[attr-defined]
            found += _beyond_model(shape.value, item, f"{path}.{key}")  # type: ignore[attr-defined]
    elif shape.type_name == "structure" and isinstance(value, Mapping):
        members = shape.members  # type: ignore[attr-defined]
        for key, item in value.items():
            if key in members:
                found += _beyond_model(members[key], item, f"{path}.{key}")
    return found


def beyond_model_problems(
    operation: str, body: Mapping[str, Any], fields: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(field, rule) for every value the override ``fields`` set (as merged into ``body``) above its
    maximum or off its pattern in SageMaker's model; an object the override names is read as merged."""
    shape = _sagemaker_model().operation_model(operation).input_shape
    found: list[tuple[str, str]] = []

    def walk(shape: Shape, merged: Any, override: Any, path: str) -> None:
        if shape.type_name == "structure" and isinstance(override, Mapping) and isinstance(merged, Mapping):
            members = shape.members  # type: ignore[attr-defined]
            for key, below in override.items():
                if key in members and key in merged:
                    walk(members[key], merged[key], below, f"{path}.{key}" if path else str(key))
        else:
            found.extend(_beyond_model(shape, merged, path))

    if shape is not None:
        walk(shape, body, fields, "")
    return [(f"{PARAMETER}.{operation}.{path}", clip(rule, 160)) for path, rule in found]


def check_request_overrides(plan: Plan) -> None:
    """Raise SageliftValidationError naming every overridden request field SageMaker would refuse: by
    its model (botocore's checks, then maximums and patterns), then by its rules across fields."""
    if not plan.params.request_overrides:
        return
    problems = Problems()
    for operation, body in overridden_requests(plan).items():
        fields = plan.params.request_overrides.get(operation) or {}
        refused = request_problems(operation, body)
        if not refused:  # the shape holds, so the values can be read
            refused = beyond_model_problems(operation, body, fields)
        if not refused:
            refused = merged_request_problems(operation, body, fields)
        for field, rule in refused:
            problems.add(field, rule)
    problems.raise_if_any()


def checked_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """validate's JSON plan, once its request overrides pass botocore's model (both engines' validate)."""
    check_request_overrides(Plan.from_xcom(plan))
    return plan


__all__ = [
    "beyond_model_problems",
    "check_request_overrides",
    "checked_plan",
    "overridden_requests",
    "request_problems",
]
