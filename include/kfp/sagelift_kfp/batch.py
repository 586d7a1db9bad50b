"""The batch_transform component's body (issue 17 item 10): glue over ``sagelift.steps.batch``.

In batch mode the run scores the conf's S3 prefix with the model create_model made, in the run's
transform job: started or followed (a retried step adopts the job of its fixed name), waited for with
botocore's waiter, stopped when KFP terminates the run (SIGTERM), as the Airflow operator does by
deferring and cancelling. It renews the model's lock first (sagelift.steps.lock.renew: the lease starts
again, and a run whose lock another run took stops before starting the job). Otherwise the step prints
why it skips and returns ``{"skipped": True}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sagelift.domain.plan import Plan
from sagelift.steps import batch, lock
from sagelift.steps.role_chain import chained_session, derive_session_name
from sagelift_kfp.steps import retried


@retried
def batch_transform(
    plan: Mapping[str, Any], run_tags: list[dict[str, str]], model_name: str
) -> dict[str, Any]:
    """The ended job's facts (a KFP struct holds no nulls, so unknown ones are left out)."""
    p = Plan.from_xcom(plan)
    if skipped := p.skip_reason("batch_transform"):
        print(skipped)
        return {"skipped": True}
    session = chained_session(
        p.platform, p.account_id, derive_session_name(p.dag_id, p.run_id, fallback="kfp")
    )
    lock.renew(session.client("s3"), p)  # the lease starts again for the transform's wait
    facts = batch.transform_here(session.client("sagemaker"), p, run_tags, say=print)
    return {key: value for key, value in facts.items() if value is not None}
