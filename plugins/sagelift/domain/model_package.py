"""Pure builders of the model registry's request bodies (issue 17 item 6).

Every run that produces a servable model registers it as a version of the model package group named
after the model (``model_name``). The version holds the serving image (digest-pinned by copy_images),
the artifact, the environment, the run's tags, and in ``CustomerMetadataProperties`` the run's key
(how a retry finds the version it registered instead of registering twice), the final metric values
and the quality gate's verdict. ModelMetrics is left out: it takes S3 reports, which sagelift does not
write; the metric values are properties of the version instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

RUN_KEY_PROPERTY = "sagelift:run_key"
DAG_PROPERTY = "sagelift:dag_id"
GATE_PROPERTY = "sagelift:quality_gate"
PROMOTED_PROPERTY = "sagelift:promoted_from"
METRIC_PREFIX = "metric:"
MAX_PROPERTIES = 50  # botocore: CustomerMetadataMap holds 1-50 entries
PROPERTY_MAX = 256
_UNSAFE = re.compile(r"[^\w\s.:/=+\-@]")

Tags = Sequence[Mapping[str, str]]


def derive_group_name(model_name: str) -> str:
    """The group is named after the model: every run of the model adds a version to it."""
    return model_name


def _safe(text: str, limit: int) -> str:
    """A CustomerMetadataProperties key or value: only the characters its pattern allows."""
    return _UNSAFE.sub("_", text)[:limit] or "_"


def metadata_properties(
    *, run_key: str, dag_id: str, metrics: Mapping[str, float], gate: str, promoted_from: str | None = None
) -> dict[str, str]:
    props = {RUN_KEY_PROPERTY: run_key, DAG_PROPERTY: _safe(dag_id, PROPERTY_MAX), GATE_PROPERTY: gate}
    if promoted_from:  # a promoted run's version names the version it copies (another account's)
        props[PROMOTED_PROPERTY] = _safe(promoted_from, PROPERTY_MAX)
    for name, value in sorted(metrics.items())[: MAX_PROPERTIES - len(props)]:
        props[_safe(METRIC_PREFIX + name, 128)] = f"{value:g}"
    return props


def build_model_package_group_request(model_name: str, tags: Tags) -> dict[str, Any]:
    return {
        "ModelPackageGroupName": derive_group_name(model_name),
        "ModelPackageGroupDescription": f"Versions of the model {model_name} registered by sagelift runs",
        "Tags": [dict(tag) for tag in tags],
    }


def build_model_package_request(
    *,
    model_name: str,
    run_key: str,
    dag_id: str,
    run_id: str,
    image: str,
    model_data_url: str,
    environment: Mapping[str, str] | None,
    metrics: Mapping[str, float],
    gate: str,
    status: str,
    tags: Tags,
    promoted_from: str | None = None,
) -> dict[str, Any]:
    """CreateModelPackage's body for the run's version; ``gate`` is passed, failed or none;
    ``promoted_from`` the ARN of the version a promoted run deploys."""
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": model_data_url}
    if environment:
        container["Environment"] = dict(environment)
    return {
        "ModelPackageGroupName": derive_group_name(model_name),
        "ModelPackageDescription": f"{model_name} from run {run_id} of {dag_id} (run key {run_key})"[:1024],
        "InferenceSpecification": {"Containers": [container]},
        "ModelApprovalStatus": status,
        "CustomerMetadataProperties": metadata_properties(
            run_key=run_key, dag_id=dag_id, metrics=metrics, gate=gate, promoted_from=promoted_from
        ),
        "ClientToken": f"sagelift-{run_key}",
        "Tags": [dict(tag) for tag in tags],
    }


def build_update_model_package_request(package_arn: str, status: str, description: str) -> dict[str, Any]:
    return {
        "ModelPackageArn": package_arn,
        "ModelApprovalStatus": status,
        "ApprovalDescription": description[:1024],
    }
