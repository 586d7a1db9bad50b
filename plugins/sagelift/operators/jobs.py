"""A run's SageMaker job as one Airflow task: start or adopt it, wait deferred (or in the worker), judge
its end, stop it on cancel. For the job kinds the provider has no operator for (labeling, inference
recommendations) and for sagelift's own processing jobs (the monitoring baseline).

A subclass names its ``job_kind`` (sagelift.steps.jobs) and implements two methods over the core's
steps: ``build_request(plan, context)`` returns the job's Create request, or None when the task does not
apply (it then skips with ``skip_reason(plan)``), and ``finish(description, plan)`` turns the ended job's
description into the task's return value (JSON-able, no secret). The base:

- renews the model's lock (sagelift.operators.lock.renew_model_lock): the lease starts again, and a run
  whose lapsed lock another run took stops before it starts a job;
- starts the job or adopts the run's job (its name is fixed per run: a retry, a resumed deferral or a
  lost answer follows the one job), through ``steps.jobs.start_or_adopt``;
- waits, deferred to ``SageMakerJobTrigger`` when the platform's ``deferrable`` is on (the default) or
  polling in the worker otherwise, every ``check_interval_seconds`` within ``wait_budget_seconds(plan)``
  (the platform's ``training_wait_budget_seconds`` unless the job kind knows its own longest run);
- judges the end: only success finishes the task; a failed or stopped job fails it for good (no retries:
  a rerun would follow the same ended job), naming the status and SageMaker's reason;
- stops the job on cancel: ``on_kill`` when the task is killed while waiting in the worker, the trigger's
  ``on_kill`` when the deferred task is marked failed.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from sagelift.domain.plan import Plan
from sagelift.operators.base import INPUT_FIELDS, StepInputs, aws_session_fields, skip_step, step_errors
from sagelift.operators.lock import renew_model_lock
from sagelift.steps import jobs
from sagelift.steps.endpoint import attempts

# The hook and the trigger are imported when the task runs: the DAG file's parse skips them.


class SageMakerJobOperator(StepInputs, BaseOperator):
    """One SageMaker job of the run; see the module docstring. Subclasses set ``job_kind`` and implement
    ``build_request``, ``finish`` and ``skip_reason``."""

    job_kind: ClassVar[jobs.JobKind]
    template_fields = INPUT_FIELDS
    ui_color = "#d5e8d4"

    def __init__(
        self,
        *,
        plan: Any = None,
        session: Any = None,
        tags: Any = None,
        images: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags, images=images)
        self.job_name: str | None = None
        self.aws_conn_id: str | None = None
        self.region_name: str | None = None

    # --- what a subclass provides --------------------------------------------------------------------
    def skip_reason(self, plan: Plan) -> str | None:
        """Why this task does not apply to the run (it skips), or None."""
        return plan.skip_reason(self.task_id)

    def build_request(self, plan: Plan, context: Any) -> dict[str, Any]:
        raise NotImplementedError

    def finish(self, description: dict[str, Any], plan: Plan) -> Any:
        raise NotImplementedError

    def wait_budget_seconds(self, plan: Plan) -> int:
        """How long the task waits for the job: the platform's training wait budget by default."""
        return plan.platform.sagemaker.training_wait_budget_seconds

    # --- the workflow ----------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        """The SageMaker client on the scientist account's connection (one per connection and region)."""
        from sagelift.hooks.sagemaker import SageMakerHook

        key = (self.aws_conn_id, self.region_name)
        if getattr(self, "_client_key", None) != key:
            self._client = SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).client
            self._client_key = key
        return self._client

    def execute(self, context: Any) -> Any:
        plan = self.read_plan()
        if reason := self.skip_reason(plan):
            skip_step(reason, context=context)
        aws_session_fields(self, self.read_session())
        kind = self.job_kind
        with step_errors():
            request = self.build_request(plan, context)
        self.job_name = name = str(request[kind.name_key])
        wait = plan.platform.sagemaker
        delay, budget = wait.check_interval_seconds, self.wait_budget_seconds(plan)
        max_attempts = attempts(budget, delay)
        with step_errors():
            # the lease starts again, and a run whose lapsed lock another run took stops before its job
            renew_model_lock(plan, self.read_session())
            description = jobs.start_or_adopt(self.client, kind, request)
            if jobs.job_state(kind, description) == "running":
                if wait.deferrable:
                    from sagelift.triggers.jobs import SageMakerJobTrigger

                    self.defer(
                        timeout=datetime.timedelta(seconds=budget + delay),
                        trigger=SageMakerJobTrigger(
                            operation=kind.operation,
                            job_name=name,
                            waiter_delay=delay,
                            waiter_max_attempts=max_attempts,
                            aws_conn_id=self.aws_conn_id,
                            region_name=self.region_name,
                        ),
                        method_name="execute_complete",
                    )
                description = jobs.wait_for_job(self.client, kind, name, delay, max_attempts, self.log.info)
            return self.finish(jobs.job_outcome(kind, description), plan)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        event = event or {}
        plan = self.read_plan()
        aws_session_fields(self, self.read_session())
        kind = self.job_kind
        name = str(event.get("job_name") or self.job_name or "")
        if event.get("status") in ("success", "failed", "stopped") and name:
            self.job_name = name
            with step_errors():
                return self.finish(jobs.job_outcome(kind, kind.describe(self.client, name)), plan)
        raise AirflowException(
            f"Waiting for {kind.label} {name} ended with {event.get('status')}: {event.get('message', '')}. "
            "The job may still be running; clear this task to follow it again."
        )

    def on_kill(self) -> None:
        """The task was killed while waiting in the worker: stop the run's job."""
        if self.job_name and self.aws_conn_id:
            jobs.stop_if_running(self.client, self.job_kind, self.job_name)
