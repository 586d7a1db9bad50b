"""create_model, deploy_endpoint and expose_api on a team's shared multi-model endpoint (issue 20 item 1):
glue over ``sagelift.steps.multi_model``, as the Airflow tasks do.

The pipeline's components call these when the run's ``multi_model`` is set (``applies``). create_model
copies the artifact to its versioned key and ensures the shared model, and returns the placement as JSON
text (the component's output is a string: the model's name otherwise); deploy_endpoint creates or adopts
the shared endpoint and waits in-process; expose_api routes POST /models/<model>/invocations to the
model's key and deletes its older keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sagelift.domain.multi_model import MultiModelPlacement
from sagelift.domain.plan import Plan
from sagelift.steps import api, multi_model
from sagelift.steps.role_chain import chained_session, derive_session_name
from sagelift_kfp.steps import retried


def applies(plan: Mapping[str, Any]) -> bool:
    return Plan.from_xcom(plan).params.multi_model.enabled


def _session(p: Plan) -> Any:
    return chained_session(p.platform, p.account_id, derive_session_name(p.dag_id, p.run_id, fallback="kfp"))


@retried
def create_model(plan: Mapping[str, Any], model_data_url: str) -> str:
    """The placement on the shared endpoint, as JSON text."""
    p = Plan.from_xcom(plan)
    session = _session(p)
    result = multi_model.create_model_here(
        session.client("s3"), session.client("sagemaker"), p, model_data_url
    )
    print(f"The model's artifact is {result['MultiModel']['artifact_s3_uri']} on the shared endpoint.")
    return json.dumps(result["MultiModel"])


@retried
def deploy_endpoint(plan: Mapping[str, Any], placement: str) -> dict[str, Any]:
    p = Plan.from_xcom(plan)
    where = multi_model.placement_of(json.loads(placement))
    session = _session(p)
    described = multi_model.deploy_here(session.client("sagemaker"), session.client("s3"), p, where)[
        "Endpoint"
    ]
    return {
        "endpoint_name": where.endpoint_name,
        "endpoint_arn": described["EndpointArn"],
        "endpoint_config_name": where.endpoint_name,
        "model_name": where.endpoint_name,
        "operation": "adopt",
        "MultiModel": where.to_xcom(),
    }


@retried
def expose_api(
    plan: Mapping[str, Any], run_tags: list[dict[str, str]], deployed: Mapping[str, Any]
) -> dict[str, Any]:
    p = Plan.from_xcom(plan)
    where = MultiModelPlacement.from_xcom(deployed) or multi_model.placement_of(None)
    session = _session(p)
    exposed = api.expose_model_api(
        api.ApiGatewayClient(session.client("apigateway")), api.api_spec(p, run_tags, where)
    )
    multi_model.prune_versions(session.client("s3"), p, where)
    return exposed.to_xcom()
