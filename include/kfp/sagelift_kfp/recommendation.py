"""The recommend_instance component's body (issue 20 item 2): glue over ``sagelift.steps.recommendation``.

After register_model and before create_model, as on Airflow: which hosting types fit the model, what
each costs per hour and the pick, from sagelift's tables; with ``instance_recommendation.job`` the run's
Inference Recommender job is started or followed (a retried step adopts the job of its fixed name),
waited for in this process and stopped when KFP terminates the run (SIGTERM), as the Airflow task does
by deferring and cancelling. deploy_endpoint deploys the pick for ``endpoint_instance_type: "auto"``
(``deploy_plan``). A run without an instance-backed endpoint of its own skips, printing why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelift.domain.plan import Plan
from sagelift.domain.recommendation import resolve_instance_type
from sagelift.steps import lock, recommendation
from sagelift.steps.clients import session_clients
from sagelift.steps.role_chain import chained_session, derive_session_name
from sagelift_kfp.governance import _no_nulls
from sagelift_kfp.steps import retried


@retried
def recommend_instance(
    plan: Mapping[str, Any], run_tags: list[dict[str, str]], registered: Mapping[str, Any]
) -> dict[str, Any]:
    """The task's answer (sagelift.steps.recommendation), or ``{"skipped": True, "reason": ...}``."""
    p = Plan.from_xcom(plan)
    if reason := p.skip_reason("recommend_instance"):
        print(reason)
        return {"skipped": True, "reason": reason}
    session = chained_session(
        p.platform, p.account_id, derive_session_name(p.dag_id, p.run_id, fallback="kfp")
    )
    if p.params.instance_recommendation.enabled:  # a job: the lease starts again for its wait
        lock.renew(session.client("s3"), p)
    answer = recommendation.recommend_here(session_clients(session), p, registered, run_tags, say=print)
    return dict(_no_nulls(answer))


def deploy_plan(plan: Mapping[str, Any], recommended: Mapping[str, Any]) -> dict[str, Any]:
    """The plan deploy_endpoint deploys: "auto" resolved to recommend_instance's pick."""
    return resolve_instance_type(plan, recommended)
