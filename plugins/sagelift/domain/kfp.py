"""Naming and state rules for running the compiled pipeline on Kubeflow Pipelines.

Pure so the hook, the operator, the trigger and the tests agree on one definition of "the same
package", "the same run" and "finished", without importing the KFP client.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sagelift.domain.batch_settings import BatchSettings
from sagelift.domain.endpoint_settings import EndpointSettings
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.labeling import LabelingSettings
from sagelift.domain.monitoring import MonitoringSettings
from sagelift.domain.multi_model import MultiModelSettings
from sagelift.domain.params import PARAMETERS
from sagelift.domain.quality_gate import QualityGate
from sagelift.domain.recommendation import RecommendationSettings
from sagelift.domain.training_settings import TrainingSettings
from sagelift.domain.tuning_settings import TuningSettings

# The pipeline's parameters: the 13 original ones, then plan_only, the serving settings (issue 16) and the
# training settings and request overrides (issue 17), in the order of PARAMETERS.
PIPELINE_EXTRA_PARAMETERS = (
    "plan_only",
    "endpoint",
    "training",
    "request_overrides",
    "tuning",
    "quality_gate",
    "batch",
    "multi_model",
    "instance_recommendation",
    "monitoring",
    "labeling",
)
# The object and list parameters, which KFP hands over as protobuf Struct values.
PIPELINE_STRUCTS = (
    "environment",
    "training_hyperparameters",
    "training_channels",
    "endpoint",
    "training",
    "request_overrides",
    "tuning",
    "quality_gate",
    "batch",
    "multi_model",
    "instance_recommendation",
    "monitoring",
    "labeling",
)
PIPELINE_PARAMETER_NAMES = tuple(
    spec.name for spec in PARAMETERS if spec.original or spec.name in PIPELINE_EXTRA_PARAMETERS
)

# KFP v2beta1 RuntimeState values. CANCELING and PAUSED are not final: the run can still move on.
SUCCEEDED = "SUCCEEDED"
FAILED_STATES = frozenset({"FAILED", "CANCELED", "SKIPPED"})
TERMINAL_STATES = FAILED_STATES | {SUCCEEDED}

PACKAGE_DIGEST_PREFIX = "sha256:"


def derive_package_digest(package: bytes) -> str:
    """Content identity of a compiled pipeline package: ``sha256:<hex>``."""
    return PACKAGE_DIGEST_PREFIX + hashlib.sha256(package).hexdigest()


def derive_pipeline_version_name(pipeline_name: str, digest: str) -> str:
    """The version name under which a package with this digest is uploaded.

    Deterministic, so the same package is never uploaded twice, and a package that returns to earlier
    content (A, B, then A again) reuses the version already holding it.
    """
    return f"{pipeline_name}-{digest.removeprefix(PACKAGE_DIGEST_PREFIX)[:16]}"


def derive_pipeline_version_description(digest: str) -> str:
    return f"Uploaded by sagelift; package {digest}"


def version_holds_package(version: dict[str, Any], pipeline_name: str, digest: str) -> bool:
    """Whether an existing pipeline version was uploaded from a package with this digest.

    KFP copies the pipeline's description to the first version it creates on upload, so the digest is
    looked for in the description as well as in the version name sagelift gives later versions.
    """
    name = version.get("name") or version.get("display_name") or ""
    description = version.get("description") or ""
    return name == derive_pipeline_version_name(pipeline_name, digest) or digest in description


def derive_run_display_name(dag_id: str, run_id: str) -> str:
    """One KFP run name per Airflow DAG run: a retry finds the run its earlier try submitted."""
    return f"sagelift {dag_id} {run_id}"


def name_filter(display_name: str) -> str:
    """A KFP list filter (filter.proto as JSON) matching one display name exactly."""
    return json.dumps(
        {"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": display_name}]}
    )


def derive_run_url(ui_url: str, run_id: str) -> str:
    """The run's page in the KFP UI."""
    return f"{ui_url.rstrip('/')}/#/runs/details/{run_id}"


def is_terminal(state: str | None) -> bool:
    return state in TERMINAL_STATES


# Why a parameter has no pipeline parameter, where the refusal should say more than that.
KFP_REFUSAL_REASONS = {
    "promote_from": ": a promotion waits for approval, which only the Airflow DAG has; trigger sagemaker_deploy",
}


def build_run_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """A run's validated params as the compiled pipeline's runtime parameters (unset -> the default).

    The optional platform overrides (tag document, PVC) have no pipeline parameter: a run that sets one
    is refused rather than silently run without it. The serving settings go as the conf object that
    gives them, without nulls (a KFP struct refuses them).
    """
    extra = [
        spec.name
        for spec in PARAMETERS
        if spec.name not in PIPELINE_PARAMETER_NAMES and params.get(spec.name) is not None
    ]
    if extra:
        raise SageliftValidationError.single(
            extra[0],
            "not available on the KFP engine (no pipeline parameter)" + KFP_REFUSAL_REASONS.get(extra[0], ""),
        )
    run = {
        spec.name: spec.default if params.get(spec.name) is None else params[spec.name]
        for spec in PARAMETERS
        if spec.name in PIPELINE_PARAMETER_NAMES
    }
    run["endpoint"] = EndpointSettings.from_dict(params.get("endpoint")).to_conf()
    run["training"] = TrainingSettings.from_dict(params.get("training")).to_conf()
    run["tuning"] = TuningSettings.from_dict(params.get("tuning")).to_conf()
    run["quality_gate"] = QualityGate.from_dict(params.get("quality_gate")).to_conf()
    run["batch"] = BatchSettings.from_dict(params.get("batch")).to_conf()
    run["multi_model"] = MultiModelSettings.from_dict(params.get("multi_model")).to_conf()
    run["instance_recommendation"] = RecommendationSettings.from_dict(
        params.get("instance_recommendation")
    ).to_conf()
    run["monitoring"] = MonitoringSettings.from_dict(params.get("monitoring")).to_conf()
    run["labeling"] = LabelingSettings.from_dict(params.get("labeling")).to_conf()
    return run


def _whole_numbers_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers_as_ints(v) for v in value]
    return value


def parse_run_parameters(received: Mapping[str, Any]) -> dict[str, Any]:
    """The conf a KFP component received, as the user sent it (the reverse of build_run_parameters).

    KFP hands STRUCT and LIST parameters over as protobuf Struct values, where every number is a double:
    {"max_depth": 5} arrives as {"max_depth": 5.0}. Whole numbers are turned back into integers, so the
    conf gives the request it gives on Airflow (a hyperparameter 5 is sent as "5", not "5.0").
    """
    conf = dict(received)
    for name in PIPELINE_STRUCTS:
        if name in conf:
            conf[name] = _whole_numbers_as_ints(conf[name])
    return conf
