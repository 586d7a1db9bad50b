"""Steps 5-7 on Airflow: the provider's SageMaker operators as thin adapters over the core's workflows.

Each class keeps the stock operator's identity (its hook, templated fields, result shape, OpenLineage
facets and extra links) and hands the work to the Airflow-free core, which the KFP engine calls too:

- ``train_model``: ``steps.training.start_training`` creates the run's job or adopts it (a retry, a
  resumed deferral, a lost answer); the operator then defers to ``SageMakerTrainingCompleteTrigger``
  (which streams the training log and stops the job when the deferred task is marked failed) or waits
  in the worker with the provider's log streaming; ``training_outcome`` judges the end: only Completed
  succeeds, Failed and Stopped fail the task without retries;
- ``create_model``: ``steps.model.replace_model``;
- ``deploy_endpoint``: ``steps.lock.verify_held`` (the run still holds its model's lock), then
  ``steps.endpoint.reconcile_endpoint`` (create or update, Failed recovery, the
  Updating guard, takeover refusal), then a wait only when something changed, then
  ``endpoint_outcome`` (Failed, rolled back or replaced by another run is final) and
  ``prune_revisions`` (sparing the runs that hold the model's lock); ``steps.serving`` around them:
  autoscaling (deregistered before an update that changes the variant, registered after) and the
  smoke test with revert.

Every wait's attempt count derives from the platform's wall-clock budget, and waits defer by default.
The AWS connection and region come from assume_role_chain's session facts, so every call, the deferred
triggers' included, runs in the scientist account.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerModelOperator,
    SageMakerTrainingOperator,
    serialize,
)
from airflow.sdk.exceptions import AirflowException

from sagelift.domain.plan import Plan
from sagelift.domain.recommendation import resolve_instance_type
from sagelift.hooks.sagemaker import SageMakerHook
from sagelift.links.sagemaker import ENDPOINT_LINKS, MODEL_LINKS, TRAINING_LINKS
from sagelift.operators.base import (
    INPUT_FIELDS,
    StepInputs,
    aws_session_fields,
    connection_clients,
    skip_if_train_only,
    skip_step,
    step_errors,
)
from sagelift.operators.lock import renew_model_lock
from sagelift.steps import endpoint as endpoints
from sagelift.steps import training

# The triggers and the steps only create_model and deploy_endpoint use are imported when a task executes:
# the DAG file's parse and every other task's process load this module without needing them.
if TYPE_CHECKING:
    from sagelift.triggers.sagemaker import SageMakerTrainingCompleteTrigger


def _client(operator: Any) -> Any:
    """The scientist account's boto3 SageMaker client of an operator's hook."""
    return cast(SageMakerHook, operator.hook).client


class SageMakerTrainModelOperator(StepInputs, SageMakerTrainingOperator):
    """Step 5: train on SageMaker; skipped when the run deploys an existing artifact."""

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = (*SageMakerTrainingOperator.template_fields, *INPUT_FIELDS)
    operator_extra_links = TRAINING_LINKS

    def __init__(
        self, *, plan: Any = None, session: Any = None, tags: Any = None, images: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(config={}, check_if_job_exists=False, **kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags, images=images)
        self.job_name: str | None = None

    def execute(self, context: Any) -> dict:
        plan = self.read_plan()
        if plan.params.promote_from.enabled:
            promote = plan.params.promote_from
            skip_step(
                f"Training skipped: this run promotes version {promote.version} of {plan.model_name} from "
                f"account {promote.account_id} (promote_from), with its images and artifact."
            )
        if not plan.params.trains:
            skip_step(
                f"Training skipped: model_artifact_s3_path is set, so the existing artifact "
                f"{plan.params.model_artifact_s3_path} is deployed as it is."
            )
        if plan.params.tuning.enabled:
            skip_step(
                "Training skipped: the conf sets tuning, so tune_model runs a tuning job and its best "
                "training job's model is deployed."
            )
        aws_session_fields(self, self.read_session())
        settings = plan.platform.sagemaker
        self.deferrable = settings.deferrable
        self.check_interval = settings.check_interval_seconds
        self.max_attempts = endpoints.attempts(settings.training_wait_budget_seconds, self.check_interval)
        self.max_ingestion_time = settings.training_wait_budget_seconds
        self.config = training.training_request(plan, self.read_tags(), self.read_images())
        self.job_name = name = str(self.config["TrainingJobName"])
        with step_errors():
            renew_model_lock(plan, self.read_session())
            description = training.start_training(_client(self), self.config)
            running = description["TrainingJobStatus"] in training.RUNNING
            if running and self.deferrable:
                self.defer(
                    timeout=datetime.timedelta(seconds=self.max_ingestion_time),
                    trigger=self._trigger(name, settings.stream_training_logs, description),
                    method_name="execute_complete",
                )
            if not self.deferrable:  # also for a job that has ended: its log is printed once
                description = self._wait_in_worker(name, settings.stream_training_logs)
            training.training_outcome(description)
            training.report_training(description)
        return self.serialize_result(name)

    def _trigger(
        self, job_name: str, print_log: bool, description: dict[str, Any]
    ) -> SageMakerTrainingCompleteTrigger:
        from sagelift.triggers.sagemaker import SageMakerTrainingCompleteTrigger

        return SageMakerTrainingCompleteTrigger(
            job_name=job_name,
            waiter_delay=self.check_interval,
            waiter_max_attempts=self.max_attempts,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
            print_log=print_log,
            instance_count=int(description.get("ResourceConfig", {}).get("InstanceCount", 0)),
        )

    def _wait_in_worker(self, name: str, print_log: bool) -> dict[str, Any]:
        if print_log:
            self.hook.check_training_status_with_log(
                name,
                non_terminal_states=set(training.RUNNING),
                failed_states=set(),
                wait_for_completion=True,
                check_interval=self.check_interval,
                max_ingestion_time=self.max_ingestion_time,
            )
            return dict(self.hook.describe_training_job(name))
        return training.wait_for_training(_client(self), name, self.check_interval, self.max_attempts)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        event = event or {}
        plan = self.read_plan()
        aws_session_fields(self, self.read_session())
        name = str(event.get("job_name") or plan.names.training_job)
        if event.get("status") in ("success", "failed", "stopped"):
            with step_errors():
                description = self.hook.describe_training_job(name)
                training.training_outcome(description)
                training.report_training(description)
            return self.serialize_result(name)
        raise AirflowException(
            f"Waiting for training job {name} ended with {event.get('status')}: {event.get('message', '')}. "
            "The job may still be running; clear this task to follow it again."
        )

    def on_kill(self) -> None:
        """The task was killed while waiting in the worker: stop the run's training job."""
        if self.job_name:
            cast(SageMakerHook, self.hook).stop_training_job_if_running(self.job_name)


class SageMakerCreateModelOperator(StepInputs, SageMakerModelOperator):
    """Step 6: register the model; an existing model of the run's name is replaced, as in the original."""

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = (
        *SageMakerModelOperator.template_fields,
        *INPUT_FIELDS,
        "training",
        "registered",
        "tuning",
    )
    operator_extra_links = MODEL_LINKS

    def __init__(
        self,
        *,
        plan: Any = None,
        session: Any = None,
        tags: Any = None,
        images: Any = None,
        training: Any = None,
        registered: Any = None,
        tuning: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(config={}, **kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags, images=images)
        self.training = training
        self.tuning = tuning  # tune_model's XCom: its "Training" is the best job, when the run tuned
        self.registered = registered  # register_model's XCom: the version the model is built from

    def execute(self, context: Any) -> dict:
        plan = self.read_plan()
        skip_if_train_only(plan, "create_model")
        from sagelift.steps import model as models
        from sagelift.steps.promotion import promoted_artifact

        aws_session_fields(self, self.read_session())
        artifact = promoted_artifact(self.read_images()) or training.model_artifact(
            plan, (self.tuning or self.training or {}).get("Training")
        )
        if plan.params.multi_model.enabled:  # the team's shared model serves this artifact at its own key
            from sagelift.steps import multi_model

            with step_errors():
                clients = connection_clients(self.read_session())
                result = multi_model.create_model_here(clients("s3"), _client(self), plan, artifact)
            self.log.info("The model's artifact is %s on the shared endpoint.", result["MultiModel"])
            return serialize(result)
        package = (self.registered or {}).get("model_package_arn")
        self.config = models.model_request(plan, self.read_tags(), self.read_images(), artifact, package)
        with step_errors():
            described = models.replace_model(_client(self), self.config)
        return {"Model": serialize(described)}


class SageMakerDeployEndpointOperator(StepInputs, SageMakerEndpointOperator):
    """Step 7: make the model's endpoint serve this run's config; wait only when it changed."""

    aws_hook_class = SageMakerHook
    template_fields: Sequence[str] = (
        *SageMakerEndpointOperator.template_fields,
        *INPUT_FIELDS,
        "model",
        "recommendation",
    )
    operator_extra_links = ENDPOINT_LINKS

    def __init__(
        self,
        *,
        plan: Any = None,
        session: Any = None,
        tags: Any = None,
        model: Any = None,
        recommendation: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(config={}, **kwargs)
        self._store_inputs(plan=plan, session=session, tags=tags)
        self.model = model  # only orders this step after create_model
        self.recommendation = recommendation  # recommend_instance's answer: the type "auto" deploys

    def read_plan(self) -> Plan:
        """The run's plan with endpoint_instance_type "auto" resolved to recommend_instance's pick."""
        with step_errors():
            return Plan.from_xcom(resolve_instance_type(self.plan, self.recommendation))

    def execute(self, context: Any) -> dict:
        plan = self.read_plan()
        skip_if_train_only(plan, "deploy_endpoint")
        from sagelift.steps import multi_model, serving
        from sagelift.triggers.sagemaker import SageMakerEndpointCompleteTrigger

        aws_session_fields(self, self.read_session())
        settings = plan.platform.sagemaker
        with step_errors():
            clients = connection_clients(self.read_session())
            if plan.params.multi_model.enabled:  # the team's shared endpoint: create or adopt, never update
                shared = multi_model.begin_shared_deploy(_client(self), clients("s3"), plan)
                self.operation = "create" if shared.created else "adopt"
                name, wait = shared.endpoint_name, shared.wait
            else:
                change = serving.begin_deploy(_client(self), clients, plan, self.read_tags())
                self.operation = change.operation
                name, wait = change.endpoint_name, change.wait
            budget = endpoints.endpoint_wait_budget(plan)  # a guarded update's baking included
            if wait and settings.deferrable:
                self.defer(
                    timeout=datetime.timedelta(seconds=budget),
                    trigger=SageMakerEndpointCompleteTrigger(
                        job_name=name,
                        waiter_delay=settings.check_interval_seconds,
                        waiter_max_attempts=endpoints.attempts(budget, settings.check_interval_seconds),
                        aws_conn_id=self.aws_conn_id,
                        region_name=self.region_name,
                        verify=self.verify,
                        botocore_config=self.botocore_config,
                    ),
                    method_name="execute_complete",
                )
            if wait and plan.params.multi_model.enabled:
                multi_model.wait_for_shared_endpoint(_client(self), name, settings)
            elif wait:
                endpoints.wait_for_endpoint(_client(self), plan)
            return self._finish(plan)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        plan = self.read_plan()
        aws_session_fields(self, self.read_session())
        event = event or {}
        if event.get("status") not in ("success", "failed"):
            raise AirflowException(
                f"Waiting for endpoint {plan.names.endpoint} ended with {event.get('status')}: "
                f"{event.get('message', '')}"
            )
        with step_errors():
            return self._finish(plan)

    def _finish(self, plan: Plan) -> dict[str, Any]:
        from sagelift.steps import multi_model, serving

        if plan.params.multi_model.enabled:
            return serialize(multi_model.deploy_result(_client(self), multi_model.placement_of(self.model)))
        names = plan.names
        result = {
            "EndpointConfig": serialize(self.hook.describe_endpoint_config(names.endpoint_config)),
            "Endpoint": serialize(self.hook.describe_endpoint(names.endpoint)),
        }
        serving.end_deploy(_client(self), connection_clients(self.read_session()), plan, result["Endpoint"])
        return result
