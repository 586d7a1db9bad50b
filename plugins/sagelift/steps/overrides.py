"""validate's check of a run's request overrides against botocore's SageMaker service model.

The domain checks that each overridden field is on the platform's allow-list; only botocore knows what
SageMaker accepts in it. Before anything runs, this builds every request the run will send with an
override (with the builders the steps use, so the merge is the real one), and validates it with
botocore's ParamValidator, the check a boto3 client makes before sending. A refusal names the field
path (``request_overrides.CreateTrainingJob.StoppingCondition.MaxRuntimeInSeconds``) and botocore's
rule. Both engines call it right after building the plan.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

from sagelift.domain.batch_settings import build_transform_job_request
from sagelift.domain.errors import Problems, clip
from sagelift.domain.overrides import PARAMETER
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


def check_request_overrides(plan: Plan) -> None:
    """Raise SageliftValidationError naming every overridden request field SageMaker's model refuses."""
    if not plan.params.request_overrides:
        return
    problems = Problems()
    for operation, body in overridden_requests(plan).items():
        for field, rule in request_problems(operation, body):
            problems.add(field, rule)
    problems.raise_if_any()


def checked_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """validate's JSON plan, once its request overrides pass botocore's model (both engines' validate)."""
    check_request_overrides(Plan.from_xcom(plan))
    return plan


__all__ = ["check_request_overrides", "checked_plan", "overridden_requests", "request_problems"]
