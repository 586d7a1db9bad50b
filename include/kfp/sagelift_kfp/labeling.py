"""The label_data component's body (issue 20 item 4): glue over ``sagelift.steps.labeling``.

With ``labeling`` set, the step writes the job's worker UI template and label categories, then runs the
run's Ground Truth labeling job (started or followed: a retried step adopts the job of its fixed name),
polling until the workteam is done and stopping the job when KFP terminates the run (SIGTERM), as the
Airflow task does by deferring and cancelling. The labeled manifest is already a training channel in the
plan, so train_model needs only to run after it. Otherwise it prints why it skips and returns
``{"skipped": True}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelift.domain.plan import Plan
from sagelift.steps import labeling, lock
from sagelift.steps.role_chain import chained_session, derive_session_name
from sagelift_kfp.steps import retried


@retried
def label_data(plan: Mapping[str, Any], run_tags: list[dict[str, str]]) -> dict[str, Any]:
    """The ended job's facts (a KFP struct holds no nulls, so unknown ones are left out)."""
    p = Plan.from_xcom(plan)
    if skipped := p.skip_reason("label_data"):
        print(skipped)
        return {"skipped": True}
    session = chained_session(
        p.platform, p.account_id, derive_session_name(p.dag_id, p.run_id, fallback="kfp")
    )
    lock.renew(session.client("s3"), p)  # the lease starts again for the job's wait, as on Airflow
    facts = labeling.label_here(session.client("sagemaker"), session.client("s3"), p, run_tags, say=print)
    return {key: value for key, value in facts.items() if value is not None}
