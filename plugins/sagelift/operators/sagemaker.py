"""Steps 5-7: the Amazon provider's SageMaker operators, fed with requests built at run time.

Each class here is the stock operator (its create calls, waiters and log streaming are unchanged) plus
what a static DAG cannot know at parse time -- the request body, built by sagelift.domain.sagemaker from
the run's plan and the upstream steps' facts -- and the outcomes the stock operators get wrong:

- a ``Stopped`` training job is a failure (the provider's non-deferrable wait returns it as success);
- a ``Failed`` endpoint fails the task with SageMaker's ``FailureReason``, and an update SageMaker rolled
  back (the endpoint InService on another config) fails saying so;
- killing the task, or marking the deferred task failed, stops the run's training job
  (``on_kill`` here and in sagelift.triggers.sagemaker);
- every wait's attempt count derives from the platform's wall-clock budget, and the waits defer by
  default, with the triggers of sagelift.triggers.sagemaker;
- the training log reaches the task log in both waits (``stream_training_logs``): the stock in-worker
  wait prints it (``print_log``), the deferred wait's trigger streams it; only one of them prints, so a
  line appears once (the stock deferrable path's one read before deferring is turned off);
- re-running any step converges: the run's training job is adopted, not duplicated; an endpoint already
  serving this run's config is left as it is; old endpoint configs and models of the model beyond
  ``keep_endpoint_configs`` are deleted after a successful deploy.

The AWS connection and region are the stock templated fields, rendered from assume_role_chain's XCom so
every call, the deferred triggers' included, runs in the scientist account.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerModelOperator,
    SageMakerTrainingOperator,
    serialize,
)
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from botocore.exceptions import ClientError, WaiterError

from sagelift.domain.plan import plan_names, plan_params
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_endpoint_request,
    build_model_request,
    build_training_job_request,
    expected_model_artifact,
)
from sagelift.domain.tags import RUN_TAG_PREFIX
from sagelift.links.sagemaker import ENDPOINT_LINKS, MODEL_LINKS, TRAINING_LINKS
from sagelift.operators.run_inputs import (
    AWS_CONN_ID_TEMPLATE,
    REGION_TEMPLATE,
    TRAIN_MODEL,
    RunInputs,
    pull_run_inputs,
)
from sagelift.triggers.sagemaker import (
    SageMakerEndpointCompleteTrigger,
    SageMakerTrainingCompleteTrigger,
    stop_training_job_if_running,
)

TRAINING_RUNNING = ("InProgress", "Stopping")
ENDPOINT_CHANGING = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
MODEL_NAME_TAG = f"{RUN_TAG_PREFIX}model-name"


def _not_found(err: ClientError) -> bool:
    # SageMaker answers Describe* on a missing resource with ValidationException "Could not find ...".
    return err.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound")


def _aws_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("aws_conn_id", AWS_CONN_ID_TEMPLATE)
    kwargs.setdefault("region_name", REGION_TEMPLATE)
    return kwargs


def _attempts(budget_seconds: int, interval_seconds: int) -> int:
    return max(1, -(-budget_seconds // interval_seconds))


class SageMakerTrainModelOperator(SageMakerTrainingOperator):
    """Step 5: train on SageMaker; skipped when the run deploys an existing artifact.

    A retry of the same run finds its training job by its deterministic name and follows it instead of
    starting a second one. The wait's attempt count derives from the platform's wall-clock budget
    (48 hours by default), never from the provider's 60-attempt default. Only ``Completed`` succeeds;
    ``Failed`` and ``Stopped`` fail the task without retries (the job's name is fixed for the run, so a
    retry could only find the same ended job).
    """

    operator_extra_links = TRAINING_LINKS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(config={}, check_if_job_exists=False, **_aws_defaults(kwargs))
        self.job_name: str | None = None
        self.stream_training_logs = True

    def execute(self, context: Any) -> dict:
        inputs = pull_run_inputs(context)
        params, names = plan_params(inputs.plan), plan_names(inputs.plan)
        if not params.trains:
            raise AirflowSkipException(
                f"Training skipped: model_artifact_s3_path is set, so the existing artifact "
                f"{params.model_artifact_s3_path} is deployed as it is."
            )
        settings = inputs.platform.sagemaker
        self.deferrable = settings.deferrable
        self.stream_training_logs = settings.stream_training_logs
        self.print_log = settings.stream_training_logs and not settings.deferrable
        self.check_interval = settings.check_interval_seconds
        self.max_attempts = _attempts(settings.training_wait_budget_seconds, settings.check_interval_seconds)
        self.max_ingestion_time = settings.training_wait_budget_seconds
        self.config = build_training_job_request(
            params,
            names,
            region=inputs.region,
            role_arn=inputs.platform.training_role_arn(params.account_id),
            tags=inputs.tag_list(),
            settings=settings,
            copied_images=inputs.images,
        )
        self.job_name = names.training_job
        existing = self._describe_existing(names.training_job)
        if existing is None:
            return self._check_completed(super().execute(context))
        return self._check_completed(self._follow_existing(existing))

    def defer(self, *, trigger: Any, method_name: str, kwargs: Any = None, timeout: Any = None) -> Any:
        # The stock operator defers with the provider's trigger; wait with ours, which stops the job
        # when the deferred task is marked failed.
        if isinstance(trigger, SageMakerTrigger) and not isinstance(
            trigger, SageMakerTrainingCompleteTrigger
        ):
            trigger = self._trigger(trigger.job_name)
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def _trigger(self, job_name: str) -> SageMakerTrainingCompleteTrigger:
        return SageMakerTrainingCompleteTrigger(
            job_name=job_name,
            waiter_delay=self.check_interval,
            waiter_max_attempts=self.max_attempts,
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            botocore_config=self.botocore_config,
            print_log=self.stream_training_logs,
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        event = event or {}
        name = str(event.get("job_name") or plan_names(pull_run_inputs(context).plan).training_job)
        status = event.get("status")
        if status == "success":
            return self._check_completed(self.serialize_result(name))
        if status in ("failed", "stopped"):
            description = self.hook.describe_training_job(name)
            raise AirflowFailException(_training_ended_message(description))
        raise AirflowException(
            f"Waiting for training job {name} ended with {status}: {event.get('message', '')}. "
            f"The job may still be running; clear this task to follow it again."
        )

    def on_kill(self) -> None:
        """The task was killed while waiting in the worker: stop the run's training job."""
        if self.job_name:
            stop_training_job_if_running(self.hook, self.job_name, self.log)

    def _check_completed(self, result: dict[str, Any]) -> dict[str, Any]:
        description = result.get("Training", {})
        if description.get("TrainingJobStatus") != "Completed":
            raise AirflowFailException(_training_ended_message(description))
        return result

    def _describe_existing(self, job_name: str) -> dict[str, Any] | None:
        try:
            return self.hook.describe_training_job(job_name)
        except ClientError as err:
            if _not_found(err):
                return None
            raise

    def _follow_existing(self, description: dict[str, Any]) -> dict:
        name, status = description["TrainingJobName"], description["TrainingJobStatus"]
        self.log.info(
            "Training job %s of this run already exists (%s); following it instead of starting another.",
            name,
            status,
        )
        if status == "Completed":
            return self.serialize_result(name)
        if status in TRAINING_RUNNING:
            if self.deferrable:
                self.defer(
                    timeout=datetime.timedelta(seconds=self.max_ingestion_time or 0) or None,
                    trigger=self._trigger(name),
                    method_name="execute_complete",
                )
            self.hook.check_status(
                name,
                "TrainingJobStatus",
                self.hook.describe_training_job,
                self.check_interval,
                max_ingestion_time=self.max_ingestion_time,
            )
            return self.serialize_result(name)
        raise AirflowFailException(_training_ended_message(description))


def _training_ended_message(description: dict[str, Any]) -> str:
    name = description.get("TrainingJobName", "?")
    status = description.get("TrainingJobStatus", "in an unknown state")
    if status == "Stopped":
        detail = "it was stopped before it completed (StopTrainingJob, or the Airflow task was stopped)"
    else:
        detail = description.get("FailureReason") or "SageMaker gave no reason"
    return (
        f"Training job {name} ended {status}: {detail}. "
        f"Its name is fixed for this run, so trigger a new run to train again."
    )


class SageMakerCreateModelOperator(SageMakerModelOperator):
    """Step 6: register the model; an existing model of the same name is replaced, as in the original."""

    operator_extra_links = MODEL_LINKS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(config={}, **_aws_defaults(kwargs))

    def execute(self, context: Any) -> dict:
        inputs = pull_run_inputs(context)
        params, names = plan_params(inputs.plan), plan_names(inputs.plan)
        self.config = build_model_request(
            params,
            names,
            region=inputs.region,
            role_arn=inputs.platform.model_role_arn(params.account_id),
            model_data_url=_model_data_url(context, inputs),
            tags=inputs.tag_list(),
            copied_images=inputs.images,
        )
        try:
            self.hook.describe_model(names.model)
        except ClientError as err:
            if not _not_found(err):
                raise
        else:
            self.log.info("Model %s exists already; deleting it before creating it again.", names.model)
            self.hook.delete_model(names.model)
        return super().execute(context)


def _model_data_url(context: Any, inputs: RunInputs) -> str:
    params = plan_params(inputs.plan)
    if params.model_artifact_s3_path:
        return params.model_artifact_s3_path
    trained = context["ti"].xcom_pull(task_ids=TRAIN_MODEL) or {}
    artifact = trained.get("Training", {}).get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if artifact:
        return str(artifact)
    return expected_model_artifact(str(params.training_s3_output_path), plan_names(inputs.plan).training_job)


class SageMakerDeployEndpointOperator(SageMakerEndpointOperator):
    """Step 7: create the run's endpoint config, then create the model's endpoint or update it to it.

    The endpoint name is stable per model, so a new run updates the endpoint in place. After the wait,
    a Failed endpoint fails the task with SageMaker's reason, and an endpoint found on another config
    (SageMaker rolled the update back) fails it saying so. An endpoint already serving this run's config
    is left as it is; a Failed endpoint is deleted and created again. After a successful deploy, the
    model's older endpoint configs and models beyond ``keep_endpoint_configs`` are deleted.
    """

    operator_extra_links = ENDPOINT_LINKS

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(config={}, **_aws_defaults(kwargs))
        self.wait_attempts = 1

    def execute(self, context: Any) -> dict:
        inputs = pull_run_inputs(context)
        params, names = plan_params(inputs.plan), plan_names(inputs.plan)
        settings = inputs.platform.sagemaker
        self.deferrable = settings.deferrable
        self.check_interval = settings.check_interval_seconds
        self.max_ingestion_time = settings.endpoint_wait_budget_seconds
        self.wait_attempts = _attempts(settings.endpoint_wait_budget_seconds, settings.check_interval_seconds)
        tags = inputs.tag_list()
        endpoint = build_endpoint_request(names, tags=tags)
        config: dict[str, Any] = {"Endpoint": endpoint}
        if not self._exists(self.hook.describe_endpoint_config, names.endpoint_config):
            config["EndpointConfig"] = build_endpoint_config_request(
                params, names, tags=tags, settings=settings
            )
        current = self._exists(self.hook.describe_endpoint, names.endpoint)
        if current and current["EndpointStatus"] == "Failed":
            self.log.info("Endpoint %s is Failed; deleting it to create it again.", names.endpoint)
            sagemaker: Any = self.hook.conn
            sagemaker.delete_endpoint(EndpointName=names.endpoint)
            current = None
        if current and current["EndpointStatus"] in ENDPOINT_CHANGING:
            raise AirflowException(
                f"Endpoint {names.endpoint} is {current['EndpointStatus']} (another deploy is changing it); "
                f"this task retries and deploys once it is settled."
            )
        if current and current["EndpointConfigName"] == names.endpoint_config:
            self.log.info("Endpoint %s already serves %s.", names.endpoint, names.endpoint_config)
            if "EndpointConfig" in config:  # cannot happen: the endpoint serves it, so it exists
                raise AirflowException(f"Endpoint config {names.endpoint_config} vanished while in service")
            return self._finish(context, self._describe(names.endpoint, names.endpoint_config))
        if current:
            self.operation = "update"
            endpoint.pop("Tags")  # UpdateEndpoint takes no tags; keep the endpoint's tags current instead
            if tags:
                client: Any = self.hook.get_conn()
                client.add_tags(ResourceArn=current["EndpointArn"], Tags=tags)
            self.log.info(
                "Endpoint %s exists (on config %s); updating it to %s.",
                names.endpoint,
                current["EndpointConfigName"],
                names.endpoint_config,
            )
        else:
            self.operation = "create"
        self.config = config
        try:
            result = super().execute(context)
        except WaiterError as err:
            # The boto waiter's message names the matched state, not SageMaker's reason: describe.
            described = self._describe(names.endpoint, names.endpoint_config)
            if described["Endpoint"].get("EndpointStatus") != "Failed":
                raise
            result = described
            self.log.info("Waiting for endpoint %s ended: %s", names.endpoint, err)
        return self._finish(context, result)

    def defer(self, *, trigger: Any, method_name: str, kwargs: Any = None, timeout: Any = None) -> Any:
        # The stock operator's endpoint wait is fixed at 480 attempts; ours derives from the budget.
        if isinstance(trigger, SageMakerTrigger) and not isinstance(
            trigger, SageMakerEndpointCompleteTrigger
        ):
            trigger = SageMakerEndpointCompleteTrigger(
                job_name=trigger.job_name,
                waiter_delay=self.check_interval,
                waiter_max_attempts=self.wait_attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                verify=self.verify,
                botocore_config=self.botocore_config,
            )
        super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        names = plan_names(pull_run_inputs(context).plan)
        event = event or {}
        result = self._describe(names.endpoint, names.endpoint_config)
        if event.get("status") not in ("success", "failed"):
            raise AirflowException(
                f"Waiting for endpoint {names.endpoint} ended with {event.get('status')}: "
                f"{event.get('message', '')}"
            )
        return self._finish(context, result)

    def _describe(self, endpoint_name: str, config_name: str) -> dict[str, Any]:
        return {
            "EndpointConfig": serialize(self.hook.describe_endpoint_config(config_name)),
            "Endpoint": serialize(self.hook.describe_endpoint(endpoint_name)),
        }

    def _finish(self, context: Any, result: dict[str, Any]) -> dict[str, Any]:
        names = plan_names(pull_run_inputs(context).plan)
        self._check_outcome(result, names.endpoint_config)
        settings = pull_run_inputs(context).platform.sagemaker
        model_name = plan_params(pull_run_inputs(context).plan).model_name
        self._delete_old_revisions(model_name, names.endpoint_config, settings.keep_endpoint_configs)
        return result

    def _check_outcome(self, result: dict[str, Any], expected_config: str) -> dict[str, Any]:
        endpoint = result["Endpoint"]
        # Final: a retry would only repeat the deploy SageMaker just refused; clear the task to redo it.
        if endpoint.get("EndpointStatus") == "Failed":
            raise AirflowFailException(
                f"Endpoint {endpoint['EndpointName']} failed: "
                f"{endpoint.get('FailureReason') or 'SageMaker gave no reason'}"
            )
        if endpoint.get("EndpointConfigName") != expected_config:
            raise AirflowFailException(
                f"Endpoint {endpoint['EndpointName']} is serving config {endpoint.get('EndpointConfigName')}, "
                f"not this run's {expected_config}: SageMaker rolled the update back. "
                f"{endpoint.get('FailureReason') or ''}".strip()
            )
        return result

    def _delete_old_revisions(self, model_name: str, in_service: str, keep: int) -> None:
        """Delete this model's endpoint configs (and same-named models) beyond the newest ``keep``.

        Only resources named ``<model_name>-<8 hex>`` and tagged ``sagelift:model-name=<model_name>``
        are touched; the config in service is always kept.
        """
        client: Any = self.hook.conn
        own = re.compile(rf"^{re.escape(model_name)}-[0-9a-f]{{8}}$")
        configs = [
            c
            for page in client.get_paginator("list_endpoint_configs").paginate(NameContains=model_name)
            for c in page["EndpointConfigs"]
            if own.match(c["EndpointConfigName"])
            and self._tagged_for(client, c["EndpointConfigArn"], model_name)
        ]
        configs.sort(key=lambda c: (c["EndpointConfigName"] == in_service, c["CreationTime"]), reverse=True)
        kept = {c["EndpointConfigName"] for c in configs[:keep]} | {in_service}
        for c in configs[keep:]:
            if c["EndpointConfigName"] in kept:
                continue
            self.log.info(
                "Deleting endpoint config %s (older than the %d kept)", c["EndpointConfigName"], keep
            )
            client.delete_endpoint_config(EndpointConfigName=c["EndpointConfigName"])
        models = [
            m
            for page in client.get_paginator("list_models").paginate(NameContains=model_name)
            for m in page["Models"]
            if own.match(m["ModelName"]) and m["ModelName"] not in kept
        ]
        # A model newer than the config in service belongs to a run still deploying: leave it.
        newest_kept = max(
            (c["CreationTime"] for c in configs if c["EndpointConfigName"] in kept), default=None
        )
        for m in models:
            if newest_kept is not None and m["CreationTime"] > newest_kept:
                continue
            if not self._tagged_for(client, m["ModelArn"], model_name):
                continue
            self.log.info("Deleting model %s (its endpoint config is no longer kept)", m["ModelName"])
            client.delete_model(ModelName=m["ModelName"])

    @staticmethod
    def _tagged_for(client: Any, arn: str, model_name: str) -> bool:
        tags = client.list_tags(ResourceArn=arn).get("Tags", [])
        return any(t["Key"] == MODEL_NAME_TAG and t["Value"] == model_name for t in tags)

    @staticmethod
    def _exists(describe: Any, name: str) -> dict[str, Any] | None:
        try:
            return describe(name)
        except ClientError as err:
            if _not_found(err):
                return None
            raise
