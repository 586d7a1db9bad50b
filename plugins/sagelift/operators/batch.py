"""batch_transform on Airflow: the provider's SageMakerTransformOperator as a thin adapter over
``sagelift.steps.batch`` (which the KFP engine calls too).

The task skips unless the run's conf sets ``batch`` (``Plan.skip_reason``). Otherwise it scores the
conf's input prefix with the model create_model made: ``steps.batch.start_transform`` creates the run's
job or adopts it (a retry, a resumed deferral, a lost answer); the operator then defers to
``SageMakerTransformCompleteTrigger`` (by default; the platform's ``deferrable``) or waits in the worker
with botocore's waiter; ``transform_outcome`` judges the end: only Completed succeeds, Failed and Stopped
fail the task without retries. Cancelling stops the job: ``on_kill`` when the task is killed in the
worker, the trigger's ``on_kill`` when the deferred task is marked failed. The provider streams no
transform log (its hook has no log reader for transform jobs), so the task links the job's CloudWatch
logs instead.

The return value is the provider's (``{"Model": <DescribeModel>, "Transform": <DescribeTransformJob>}``,
which its OpenLineage facets read too) plus ``"Batch"``: the job's facts (identifiers, prefixes,
instances, seconds), read by the links and summarize_run.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, cast

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTransformOperator, serialize
from airflow.sdk.exceptions import AirflowException

from sagelift.hooks.sagemaker import SageMakerHook
from sagelift.links.sagemaker import TRANSFORM_LINKS
from sagelift.operators.base import INPUT_FIELDS, StepInputs, aws_session_fields, skip_step, step_errors
from sagelift.operators.lock import renew_model_lock
from sagelift.steps import batch
from sagelift.steps.endpoint import attempts

# The trigger is imported when the task defers: the DAG file's parse and other tasks' processes skip it.


class SageMakerBatchTransformOperator(StepInputs, SageMakerTransformOperator):
    """Score the conf's S3 prefix with the run's model (batch mode); skipped when ``batch`` is unset."""

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = (*SageMakerTransformOperator.template_fields, *INPUT_FIELDS, "model")
    # sagelift's links read the return value (job and logs), not the provider's persisted link XCom
    operator_extra_links = TRANSFORM_LINKS  # type: ignore[assignment]

    def __init__(
        self, *, plan: Any = None, session: Any = None, tags: Any = None, model: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(config={}, check_if_job_exists=False, check_if_model_exists=False, **kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags)
        self.model = model  # only orders this step after create_model
        self.job_name: str | None = None

    @property
    def _client(self) -> Any:
        return cast(SageMakerHook, self.hook).client

    def execute(self, context: Any) -> dict:
        plan = self.read_plan()
        if reason := plan.skip_reason("batch_transform"):
            skip_step(reason)
        aws_session_fields(self, self.read_session())
        settings = plan.platform.sagemaker
        self.deferrable = settings.deferrable
        self.check_interval = settings.check_interval_seconds
        self.max_attempts = attempts(settings.training_wait_budget_seconds, self.check_interval)
        self.max_ingestion_time = settings.training_wait_budget_seconds
        self.config = batch.transform_request(plan, self.read_tags())
        self.job_name = name = str(self.config["TransformJobName"])
        with step_errors():
            renew_model_lock(plan, self.read_session())
            description = batch.start_transform(self._client, self.config)
            if description["TransformJobStatus"] in batch.RUNNING:
                if self.deferrable:
                    from sagelift.triggers.sagemaker import SageMakerTransformCompleteTrigger

                    self.defer(
                        timeout=datetime.timedelta(seconds=self.max_ingestion_time),
                        trigger=SageMakerTransformCompleteTrigger(
                            job_name=name,
                            waiter_delay=self.check_interval,
                            waiter_max_attempts=self.max_attempts,
                            aws_conn_id=self.aws_conn_id,
                            region_name=self.region_name,
                            verify=self.verify,
                            botocore_config=self.botocore_config,
                        ),
                        method_name="execute_complete",
                    )
                description = batch.wait_for_transform(
                    self._client, name, self.check_interval, self.max_attempts
                )
            return self._finish(description)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        event = event or {}
        plan = self.read_plan()
        aws_session_fields(self, self.read_session())
        name = str(event.get("job_name") or batch.transform_job_name(plan))
        if event.get("status") in ("success", "failed", "stopped"):
            with step_errors():
                return self._finish(self.hook.describe_transform_job(name))
        raise AirflowException(
            f"Waiting for transform job {name} ended with {event.get('status')}: {event.get('message', '')}. "
            "The job may still be running; clear this task to follow it again."
        )

    def _finish(self, description: dict[str, Any]) -> dict[str, Any]:
        batch.transform_outcome(description)
        facts = batch.report_transform(description, self.log.info)
        # the provider's result shape and the attributes its OpenLineage facets read (input and output
        # prefixes, the model package's artifact)
        self.serialized_transform = serialize(description)
        self.serialized_model = serialize(self.hook.describe_model(description["ModelName"]))
        return {"Model": self.serialized_model, "Transform": self.serialized_transform, "Batch": facts}

    def on_kill(self) -> None:
        """The task was killed while waiting in the worker: stop the run's transform job."""
        if self.job_name:
            cast(SageMakerHook, self.hook).stop_transform_job_if_running(self.job_name)
