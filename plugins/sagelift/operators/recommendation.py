"""recommend_instance on Airflow: a thin adapter over ``sagelift.steps.recommendation`` (which the KFP
engine calls too).

The task runs after approve_deploy, before create_model, in every run that creates an instance-backed
endpoint of its own (``Plan.skip_reason`` skips it otherwise). It answers which hosting types fit the
model, their price per hour in the region and the pick, from sagelift's tables; with
``endpoint_instance_type: "auto"`` deploy_endpoint deploys the pick (read from this task's return value).

With ``instance_recommendation.job`` set, it is a SageMakerJobOperator: it starts the run's Inference
Recommender job (or adopts it), defers like training (or waits in the worker), fails for good on a
failed or stopped job, and stops the job on cancel; the pick is then the job's cheapest recommendation
that fits.
"""

from __future__ import annotations

from typing import Any

from sagelift.domain.instance_choice import Recommendation
from sagelift.domain.plan import Plan
from sagelift.operators.base import (
    INPUT_FIELDS,
    aws_session_fields,
    connection_clients,
    skip_step,
    step_errors,
)
from sagelift.operators.jobs import SageMakerJobOperator
from sagelift.steps import jobs, recommendation
from sagelift.steps.errors import StepFailed


class SageMakerRecommendInstanceOperator(SageMakerJobOperator):
    """Answer which instance types fit, their price and the pick; run an Inference Recommender job when
    the conf asks for one."""

    job_kind = jobs.RECOMMENDATION_JOB
    template_fields = (*INPUT_FIELDS, "registered")  # type: ignore[assignment]

    def __init__(self, *, registered: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registered = registered  # register_model's XCom: the version's ARN and artifact

    def skip_reason(self, plan: Plan) -> str | None:
        return plan.skip_reason("recommend_instance")

    def _answer(self, plan: Plan) -> Recommendation:
        s3 = connection_clients(self.read_session())("s3")
        return recommendation.table_answer(plan, self.registered, s3)

    def execute(self, context: Any) -> Any:
        plan = self.read_plan()
        if reason := self.skip_reason(plan):
            skip_step(reason, context=context)
        if plan.params.instance_recommendation.enabled:
            return super().execute(context)
        aws_session_fields(self, self.read_session())
        with step_errors():
            return recommendation.report(plan, self._answer(plan), self.log.info)

    def build_request(self, plan: Plan, context: Any) -> dict[str, Any]:
        request = recommendation.job_request(plan, self.registered, self._answer(plan), self.read_tags())
        if request is None:  # not reached: execute answers from the table when the conf asks for no job
            raise StepFailed("recommend_instance: the conf asks for no Inference Recommender job")
        return request

    def finish(self, description: dict[str, Any], plan: Plan) -> Any:
        return recommendation.job_answer(plan, self._answer(plan), description, self.log.info)
