"""The monitor_endpoint component's body (issue 20 item 3): glue over ``sagelift.steps.monitoring``.

With ``monitoring`` set, the step runs the baseline processing job over the training channel (started or
followed: a retried step adopts the job of its fixed name; stopped when KFP terminates the run), then
puts the run's data-quality job definition, the endpoint's schedule (created, or updated by a re-run) and
the drift alarms, as the Airflow task does. Otherwise it prints why it skips and returns
``{"skipped": True}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelift.domain.plan import Plan
from sagelift.steps import lock, monitoring
from sagelift.steps.role_chain import chained_session, derive_session_name
from sagelift_kfp.steps import retried


@retried
def monitor_endpoint(
    plan: Mapping[str, Any], run_tags: list[dict[str, str]], endpoint: Any
) -> dict[str, Any]:
    """The monitor's facts (a KFP struct holds no nulls, so unknown ones are left out). ``endpoint``
    only orders this step after deploy_endpoint."""
    p = Plan.from_xcom(plan)
    if skipped := p.skip_reason("monitor_endpoint"):
        print(skipped)
        return {"skipped": True}
    session = chained_session(
        p.platform, p.account_id, derive_session_name(p.dag_id, p.run_id, fallback="kfp")
    )
    lock.renew(session.client("s3"), p)  # the lease starts again for the baseline's wait, as on Airflow
    facts = monitoring.monitor_here(
        session.client("sagemaker"),
        session.client("cloudwatch"),
        session.client("s3"),
        p,
        run_tags,
        say=print,
    )
    return {key: value for key, value in facts.items() if value is not None}
