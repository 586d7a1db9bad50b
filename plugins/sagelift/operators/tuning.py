"""Step 5 with tuning on Airflow (issue 17 item 1): the provider's ``SageMakerTuningOperator`` as a thin
adapter over the core's tuning workflow (sagelift.steps.tuning), which the KFP engine runs in-process.

``tune_model`` runs only when the conf sets ``tuning`` (train_model skips then, and this task skips
otherwise): ``start_tuning`` creates the run's tuning job or adopts it (a retry, a resumed deferral, a
lost answer); the operator then defers to ``SageMakerTuningCompleteTrigger`` (which logs the progress:
training jobs completed, running and failed, the best so far; and stops the job when the deferred task is
marked failed) or waits in the worker with the same progress lines; ``report_tuning`` judges the end
(only Completed with a best job succeeds; Failed and Stopped fail the task without retries) and reads the
best training job.

Its XCom keeps the provider's ``Tuning`` (the tuning job's description) and adds ``Training``: the best
training job's DescribeTrainingJob answer, the same shape train_model returns, so create_model, the
registry and the summary read the deployed job the same way whichever step trained it; and ``facts``
(``domain.tuning.tuning_facts``: best job, objective value, its hyperparameters).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any, cast

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTuningOperator, serialize
from airflow.sdk.exceptions import AirflowException

from sagelift.hooks.sagemaker import SageMakerHook
from sagelift.links.sagemaker import TUNING_LINKS
from sagelift.operators.base import INPUT_FIELDS, StepInputs, aws_session_fields, skip_step, step_errors
from sagelift.operators.lock import renew_model_lock
from sagelift.steps import endpoint as endpoints
from sagelift.steps import tuning

# The trigger is imported when the task defers: the DAG file's parse and other tasks' processes skip it.


def _client(operator: Any) -> Any:
    return cast(SageMakerHook, operator.hook).client


class SageMakerTuneModelOperator(StepInputs, SageMakerTuningOperator):
    """Step 5 with tuning: a SageMaker tuning job; skipped unless the conf sets ``tuning``."""

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = (*SageMakerTuningOperator.template_fields, *INPUT_FIELDS)
    operator_extra_links = TUNING_LINKS

    def __init__(
        self, *, plan: Any = None, session: Any = None, tags: Any = None, images: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(config={}, **kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags, images=images)
        self.job_name: str | None = None

    def execute(self, context: Any) -> dict:
        plan = self.read_plan()
        if not plan.params.trains or not plan.params.tuning.enabled:
            skip_step(
                "Tuning skipped: the conf sets no tuning, so train_model runs one training job."
                if plan.params.trains
                else "Tuning skipped: model_artifact_s3_path is set, so nothing is trained."
            )
        aws_session_fields(self, self.read_session())
        settings = plan.platform.sagemaker
        self.deferrable = settings.deferrable
        self.check_interval = settings.check_interval_seconds
        self.max_attempts = endpoints.attempts(settings.training_wait_budget_seconds, self.check_interval)
        self.max_ingestion_time = settings.training_wait_budget_seconds
        self.config = tuning.tuning_request(plan, self.read_tags(), self.read_images())
        self.job_name = name = str(self.config["HyperParameterTuningJobName"])
        with step_errors():
            renew_model_lock(plan, self.read_session())
            description = tuning.start_tuning(_client(self), self.config)
            if description["HyperParameterTuningJobStatus"] in tuning.RUNNING:
                if self.deferrable:
                    from sagelift.triggers.sagemaker import SageMakerTuningCompleteTrigger

                    self.defer(
                        timeout=datetime.timedelta(seconds=self.max_ingestion_time),
                        trigger=SageMakerTuningCompleteTrigger(
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
                description = tuning.wait_for_tuning(
                    _client(self), name, self.check_interval, self.max_attempts, say=self.log.info
                )
            return self._finish(description)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = event or {}
        aws_session_fields(self, self.read_session())
        name = str(event.get("job_name") or self.job_name or "")
        if event.get("status") in ("success", "failed", "stopped") and name:
            with step_errors():
                description = _client(self).describe_hyper_parameter_tuning_job(
                    HyperParameterTuningJobName=name
                )
                return self._finish(dict(description))
        raise AirflowException(
            f"Waiting for tuning job {name} ended with {event.get('status')}: {event.get('message', '')}. "
            "The job may still be running; clear this task to follow it again."
        )

    def _finish(self, description: dict[str, Any]) -> dict[str, Any]:
        facts, best = tuning.report_tuning(_client(self), description, self.log.info)
        return {"Tuning": serialize(description), "Training": serialize(best), "facts": facts}

    def on_kill(self) -> None:
        """The task was killed while waiting in the worker: stop the run's tuning job."""
        if self.job_name:
            tuning.stop_tuning(_client(self), self.job_name)
