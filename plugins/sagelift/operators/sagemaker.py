"""Steps 5-7: the Amazon provider's SageMaker operators, fed with requests built at run time.

Each class here is the stock operator (its create calls, waiters, deferrable triggers and log
streaming are unchanged) plus the one thing a static DAG cannot know at parse time: the request body,
built by sagelift.domain.sagemaker from the run's plan and the upstream steps' facts. The AWS connection
and region are the stock templated fields, rendered from assume_role_chain's XCom so every call, the
deferred triggers' included, runs in the scientist account.
"""

from __future__ import annotations

import datetime
from typing import Any

from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerModelOperator,
    SageMakerTrainingOperator,
)
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from botocore.exceptions import ClientError

from sagelift.domain.plan import plan_names, plan_params
from sagelift.domain.sagemaker import (
    build_endpoint_config_request,
    build_endpoint_request,
    build_model_request,
    build_training_job_request,
    expected_model_artifact,
)
from sagelift.operators.run_inputs import (
    AWS_CONN_ID_TEMPLATE,
    REGION_TEMPLATE,
    TRAIN_MODEL,
    RunInputs,
    pull_run_inputs,
)

TRAINING_RUNNING = ("InProgress", "Stopping")


def _not_found(err: ClientError) -> bool:
    # SageMaker answers Describe* on a missing resource with ValidationException "Could not find ...".
    return err.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound")


def _aws_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("aws_conn_id", AWS_CONN_ID_TEMPLATE)
    kwargs.setdefault("region_name", REGION_TEMPLATE)
    return kwargs


class SageMakerTrainModelOperator(SageMakerTrainingOperator):
    """Step 5: train on SageMaker; skipped when the run deploys an existing artifact.

    A retry of the same run finds its training job by its deterministic name and follows it instead of
    starting a second one. The wait's attempt count derives from the platform's wall-clock budget
    (48 hours by default), never from the provider's 60-attempt default.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(config={}, check_if_job_exists=False, **_aws_defaults(kwargs))

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
        self.check_interval = settings.check_interval_seconds
        self.max_attempts = max(1, settings.training_wait_budget_seconds // settings.check_interval_seconds)
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
        existing = self._describe_existing(names.training_job)
        if existing is None:
            return super().execute(context)
        return self._follow_existing(existing)

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
                    trigger=SageMakerTrigger(
                        job_name=name,
                        job_type="Training",
                        waiter_delay=self.check_interval,
                        waiter_max_attempts=self.max_attempts,
                        aws_conn_id=self.aws_conn_id,
                        region_name=self.region_name,
                        verify=self.verify,
                        botocore_config=self.botocore_config,
                    ),
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
        reason = description.get("FailureReason", "no reason given")
        raise AirflowException(
            f"Training job {name} of this run ended {status}: {reason}. Trigger a new run to train again."
        )


class SageMakerCreateModelOperator(SageMakerModelOperator):
    """Step 6: register the model; an existing model of the same name is replaced, as in the original."""

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
    an endpoint found on another config (SageMaker rolled the update back) fails the task.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(config={}, **_aws_defaults(kwargs))

    def execute(self, context: Any) -> dict:
        inputs = pull_run_inputs(context)
        params, names = plan_params(inputs.plan), plan_names(inputs.plan)
        settings = inputs.platform.sagemaker
        self.deferrable = settings.deferrable
        self.check_interval = settings.check_interval_seconds
        self.max_ingestion_time = settings.endpoint_wait_budget_seconds
        tags = inputs.tag_list()
        endpoint = build_endpoint_request(names, tags=tags)
        config: dict[str, Any] = {"Endpoint": endpoint}
        if not self._exists(self.hook.describe_endpoint_config, names.endpoint_config):
            config["EndpointConfig"] = build_endpoint_config_request(
                params, names, tags=tags, settings=settings
            )
        current = self._exists(self.hook.describe_endpoint, names.endpoint)
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
        result = super().execute(context)
        return self._check_outcome(result, names.endpoint_config)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, dict]:
        result = super().execute_complete(context, event)
        return self._check_outcome(result, plan_names(pull_run_inputs(context).plan).endpoint_config)

    def _check_outcome(self, result: dict[str, Any], expected_config: str) -> dict[str, Any]:
        endpoint = result["Endpoint"]
        if endpoint.get("EndpointStatus") == "Failed":
            raise AirflowException(
                f"Endpoint {endpoint['EndpointName']} failed: "
                f"{endpoint.get('FailureReason', 'no reason given')}"
            )
        if endpoint.get("EndpointConfigName") != expected_config:
            raise AirflowException(
                f"Endpoint {endpoint['EndpointName']} is serving config {endpoint.get('EndpointConfigName')}, "
                f"not this run's {expected_config}: SageMaker rolled the update back. "
                f"{endpoint.get('FailureReason', '')}".strip()
            )
        return result

    @staticmethod
    def _exists(describe: Any, name: str) -> dict[str, Any] | None:
        try:
            return describe(name)
        except ClientError as err:
            if _not_found(err):
                return None
            raise
