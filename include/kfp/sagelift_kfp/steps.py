"""The KFP components' bodies: glue from JSON-able inputs to the core's step workflows (sagelift.steps).

Each component of include/kfp/pipeline.py calls one function here; each function builds the chained
session from the pod's own identity and calls the same workflow the Airflow operators call, waiting with
botocore's waiters where Airflow would defer, and running a step again after a transient error
(``retried``) where Airflow would retry the task. ``dag_id`` on this engine is the pipeline's name and
``run_id`` the KFP run id, so names, tags and role session names follow the same rules as on Airflow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import boto3

from sagelift.domain.kfp import parse_run_parameters
from sagelift.domain.params import default_conf
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import parse_platform_variable
from sagelift.steps import api, endpoint, lock, overrides, pvc, serving, tags, training
from sagelift.steps.clients import session_clients
from sagelift.steps.errors import retry_transient
from sagelift.steps.images import publish_images
from sagelift.steps.plan_changes import plan_changes as plan_changes_in
from sagelift.steps.role_chain import chained_session, check_identity, derive_session_name

# The platform configuration (the document of the Airflow Variable sagelift_platform), mapped from a
# ConfigMap by the compiled pipeline.
PLATFORM_ENV = "SAGELIFT_PLATFORM"
retried = retry_transient(tries=3, first_delay=float(os.environ.get("SAGELIFT_KFP_RETRY_DELAY", "30")))


def plan_run(conf: Mapping[str, Any], dag_id: str, run_id: str) -> dict[str, Any]:
    """Validate the conf against the platform configuration; the run's plan, as Airflow's validate."""
    raw = {**default_conf(), **parse_run_parameters(conf)}
    platform = parse_platform_variable(os.environ.get(PLATFORM_ENV) or None)
    return overrides.checked_plan(build_plan(raw, platform, dag_id, run_id, engine="kfp"))


def _session(plan: Plan) -> boto3.session.Session:
    name = derive_session_name(plan.dag_id, plan.run_id, fallback="kfp")
    return chained_session(plan.platform, plan.account_id, name)


@retried
def ensure_pvc(plan: Mapping[str, Any]) -> dict[str, Any]:
    p = Plan.from_xcom(plan)
    if not p.platform.kubernetes.enabled:
        return {"skipped": True, "reason": "platform kubernetes.enabled is false"}
    if p.params.plan_only:
        return {"skipped": True, "reason": "plan_only: the run changes nothing"}
    return {"skipped": False, "claim_name": pvc.ensure_claim_here(pvc.claim_spec(p))}


@retried
def assume_role_chain(plan: Mapping[str, Any]) -> dict[str, Any]:
    p = Plan.from_xcom(plan)
    return check_identity(_session(p).client("sts"), p.platform, p.account_id)


@retried
def plan_changes(plan: Mapping[str, Any]) -> dict[str, Any] | None:
    """With plan_only: the run's change set from read-only calls (sagelift.steps.plan_changes), else None."""
    p = Plan.from_xcom(plan)
    if not p.params.plan_only:
        return None
    return plan_changes_in(p, session_clients(_session(p))).to_xcom()


def acquire_lock(plan: Mapping[str, Any]) -> dict[str, Any]:
    p = Plan.from_xcom(plan)
    return lock.acquire_waiting(_session(p).client("s3"), p)


@retried
def release_lock(conf: Mapping[str, Any], dag_id: str, run_id: str) -> bool:
    p = Plan.from_xcom(plan_run(conf, dag_id, run_id))
    return lock.release_run(_session(p).client("s3"), p)


@retried
def resolve_tags(plan: Mapping[str, Any]) -> list[dict[str, str]]:
    p = Plan.from_xcom(plan)
    return tags.resolve_tags(p, _session(p).client("s3"))


@retried
def copy_images(plan: Mapping[str, Any], run_tags: list[dict[str, str]]) -> dict[str, Any]:
    """The pinned images; a KFP struct holds no nulls, so an unset image (no training) is left out."""
    p = Plan.from_xcom(plan)
    images = publish_images(p, session_clients(_session(p)), run_tags, source_credentials=None)
    return {k: {f: v for f, v in e.items() if v is not None} for k, e in images.items() if e is not None}


@retried
def train_model(plan: Mapping[str, Any], run_tags: list[dict[str, str]], images: Mapping[str, Any]) -> tuple:
    """Renew the model's lock, train (or follow this run's job), print what it showed; (the artifact,
    the job's facts)."""
    p = Plan.from_xcom(plan)
    session = _session(p)
    if p.params.trains:  # the lease starts again for the job's wait, as on Airflow
        lock.renew(session.client("s3"), p)
    return training.train_here(session.client("sagemaker"), p, run_tags, images, say=print)


@retried
def deploy_endpoint(
    plan: Mapping[str, Any], run_tags: list[dict[str, str]], model_name: str
) -> dict[str, Any]:
    p = Plan.from_xcom(plan)
    if skipped := p.skip_reason("deploy_endpoint"):
        print(skipped)
        return {"skipped": True}
    client, clients = (session := _session(p)).client("sagemaker"), session_clients(session)
    change = serving.begin_deploy(client, clients, p, run_tags)
    name = p.names.endpoint
    described = (
        endpoint.wait_for_endpoint(client, p) if change.wait else client.describe_endpoint(EndpointName=name)
    )
    serving.end_deploy(client, clients, p, described)
    return {
        "endpoint_name": p.names.endpoint,
        "endpoint_arn": described["EndpointArn"],
        "endpoint_config_name": p.names.endpoint_config,
        "model_name": model_name,
        "operation": change.operation,
    }


@retried
def expose_api(
    plan: Mapping[str, Any], run_tags: list[dict[str, str]], deployed: Mapping[str, Any]
) -> dict[str, Any]:
    p = Plan.from_xcom(plan)
    if skipped := p.skip_reason("expose_api"):
        print(skipped)
        return {"skipped": True}
    client = api.ApiGatewayClient(_session(p).client("apigateway"))
    return api.expose_model_api(client, api.api_spec(p, run_tags)).to_xcom()
