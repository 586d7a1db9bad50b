"""The register_model and create_model components' bodies (issue 17 items 6 and 7): glue over
``sagelift.steps.model_registry`` and ``sagelift.steps.model``.

register_model registers the run's model package version (or adopts it on a retried step) with the
quality gate's verdict as its status, exactly as the Airflow task does; a Rejected version fails the
step with the gate's message, so nothing after it runs. create_model builds the model from that version.
A train-only run skips both, printing why. KFP has no approval: validate refuses a run that needs one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelift.domain.plan import Plan
from sagelift.steps import model, model_registry
from sagelift.steps.role_chain import chained_session, derive_session_name
from sagelift_kfp.steps import retried


def _sagemaker(p: Plan) -> Any:
    name = derive_session_name(p.dag_id, p.run_id, fallback="kfp")
    return chained_session(p.platform, p.account_id, name).client("sagemaker")


def _no_nulls(value: Any) -> Any:
    """A KFP struct holds no nulls: drop them at every depth."""
    if isinstance(value, Mapping):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value if v is not None]
    return value


@retried
def register_model(
    plan: Mapping[str, Any], run_tags: list[dict[str, str]], images: Mapping[str, Any], model_data_url: str
) -> dict[str, Any]:
    """register_model's XCom shape (sagelift.steps.model_registry), or ``{"skipped": True, ...}``."""
    p = Plan.from_xcom(plan)
    if reason := model_registry.skip_reason(p):
        print(reason)
        return {"skipped": True, "reason": reason}
    registered = model_registry.register_run(
        _sagemaker(p), p, run_tags, images, artifact=model_data_url or None, say=print
    )
    return dict(_no_nulls(registered))


@retried
def create_model(
    plan: Mapping[str, Any],
    run_tags: list[dict[str, str]],
    images: Mapping[str, Any],
    model_data_url: str,
    registered: Mapping[str, Any],
) -> str:
    """The model of the run's registered version; its name ("" when the run deploys nothing)."""
    p = Plan.from_xcom(plan)
    if skipped := p.skip_reason("create_model"):
        print(f"{skipped}. The trained artifact: {model_data_url}")
        return ""
    package = registered.get("model_package_arn")
    request = model.model_request(p, run_tags, images, model_data_url, package)
    return str(model.replace_model(_sagemaker(p), request)["ModelName"])
