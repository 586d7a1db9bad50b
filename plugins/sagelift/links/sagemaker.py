"""Extra links from the SageMaker steps to the AWS consoles: training job, model, endpoint, transform job, logs.

Each link reads the task's own return value (the stock operators push the Describe* result: the job's,
model's or endpoint's name and ARN), so the stock operators need no extra XCom push. Region and console
domain come from the resource's ARN, which is the scientist account's. A task that was skipped or pushed
nothing shows no link.

Airflow 3 computes every extra link in the worker each time a try ends, deferrals, skips and failures
included, and keeps the URL in XCom for the UI. Only a successful try has a return value to read: asking
for a missing one makes the execution API answer 404, which Airflow logs as an error-level "XCom not
found" line in the task log of a task that is merely deferred. So a try that did not succeed is given no
link without asking.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink
from airflow.sdk import BaseOperatorLink, TaskInstanceState
from airflow.sdk.execution_time.xcom import XCom

SAGEMAKER_CONSOLE = BASE_AWS_CONSOLE_LINK + "/sagemaker/home?region={region_name}#"
LOGS_CONSOLE = (
    BASE_AWS_CONSOLE_LINK + "/cloudwatch/home?region={region_name}#logsV2:log-groups/log-group/{group}"
)


def arn_location(arn: str) -> dict[str, str] | None:
    """``{"region_name", "aws_domain"}`` from an ARN like arn:aws:sagemaker:us-east-1:123...:model/x."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    domain = BaseAwsLink.get_aws_domain(parts[1])
    if domain is None:
        return None
    return {"region_name": parts[3], "aws_domain": domain}


class _SageMakerResultLink(BaseOperatorLink):
    """A console link built from one resource in the task's return value (``{section: Describe*}``)."""

    name: ClassVar[str]
    section: ClassVar[str]
    name_key: ClassVar[str]
    arn_key: ClassVar[str]
    format_str: ClassVar[str]

    def format_result(self, result: Any) -> str:
        if not isinstance(result, dict) or not isinstance(result.get(self.section), dict):
            return ""
        resource = result[self.section]
        name, arn = resource.get(self.name_key), resource.get(self.arn_key)
        location = arn_location(str(arn or ""))
        if not name or location is None:
            return ""
        return self.format_str.format(
            name=quote(str(name), safe=""), group=quote_plus(self.log_group(str(name))), **location
        )

    def log_group(self, name: str) -> str:
        return ""

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # In the worker ti_key is the running task instance, with the state its try ended in.
        if getattr(ti_key, "state", TaskInstanceState.SUCCESS) != TaskInstanceState.SUCCESS:
            return ""
        return self.format_result(XCom.get_value(key="return_value", ti_key=ti_key))


class SageMakerTrainingJobLink(_SageMakerResultLink):
    name = "SageMaker training job"
    section, name_key, arn_key = "Training", "TrainingJobName", "TrainingJobArn"
    format_str = SAGEMAKER_CONSOLE + "/jobs/{name}"


class SageMakerTrainingLogsLink(_SageMakerResultLink):
    """The training job's log streams (``<job name>/algo-<n>-...``) in CloudWatch Logs."""

    name = "Training logs (CloudWatch)"
    section, name_key, arn_key = "Training", "TrainingJobName", "TrainingJobArn"
    format_str = LOGS_CONSOLE + "$3FlogStreamNameFilter$3D{name}"

    def log_group(self, name: str) -> str:
        return "/aws/sagemaker/TrainingJobs"


class SageMakerModelLink(_SageMakerResultLink):
    name = "SageMaker model"
    section, name_key, arn_key = "Model", "ModelName", "ModelArn"
    format_str = SAGEMAKER_CONSOLE + "/models/{name}"


class SageMakerEndpointLink(_SageMakerResultLink):
    name = "SageMaker endpoint"
    section, name_key, arn_key = "Endpoint", "EndpointName", "EndpointArn"
    format_str = SAGEMAKER_CONSOLE + "/endpoints/{name}"


class SageMakerEndpointLogsLink(_SageMakerResultLink):
    name = "Endpoint logs (CloudWatch)"
    section, name_key, arn_key = "Endpoint", "EndpointName", "EndpointArn"
    format_str = LOGS_CONSOLE

    def log_group(self, name: str) -> str:
        return f"/aws/sagemaker/Endpoints/{name}"


class SageMakerTransformJobLink(_SageMakerResultLink):
    name = "SageMaker transform job"
    section, name_key, arn_key = "Transform", "TransformJobName", "TransformJobArn"
    format_str = SAGEMAKER_CONSOLE + "/transform-jobs/{name}"


class SageMakerTransformLogsLink(_SageMakerResultLink):
    """The transform job's log streams (``<job name>/<instance>-...``) in CloudWatch Logs."""

    name = "Transform logs (CloudWatch)"
    section, name_key, arn_key = "Transform", "TransformJobName", "TransformJobArn"
    format_str = LOGS_CONSOLE + "$3FlogStreamNameFilter$3D{name}"

    def log_group(self, name: str) -> str:
        return "/aws/sagemaker/TransformJobs"


class SageMakerTuningJobLink(_SageMakerResultLink):
    name = "SageMaker tuning job"
    section, name_key, arn_key = "Tuning", "HyperParameterTuningJobName", "HyperParameterTuningJobArn"
    format_str = SAGEMAKER_CONSOLE + "/hyper-tuning-jobs/{name}"


class SageMakerMonitoringScheduleLink(_SageMakerResultLink):
    """monitor_endpoint's schedule on the endpoint (its executions, reports and violations)."""

    name = "SageMaker monitoring schedule"
    section, name_key, arn_key = "Monitoring", "schedule", "schedule_arn"
    format_str = SAGEMAKER_CONSOLE + "/monitoring-schedules/{name}"


class SageMakerProcessingJobLink(_SageMakerResultLink):
    """monitor_endpoint's baseline processing job."""

    name = "SageMaker baseline job"
    section, name_key, arn_key = "Baseline", "ProcessingJobName", "ProcessingJobArn"
    format_str = SAGEMAKER_CONSOLE + "/processing-jobs/{name}"


class SageMakerLabelingJobLink(_SageMakerResultLink):
    """label_data's Ground Truth labeling job (its progress, the workteam's tasks, the labeled manifest)."""

    name = "SageMaker labeling job"
    section, name_key, arn_key = "Labeling", "LabelingJobName", "LabelingJobArn"
    format_str = (
        BASE_AWS_CONSOLE_LINK + "/sagemaker/groundtruth?region={region_name}#/labeling-jobs/details/{name}"
    )


TRAINING_LINKS = (SageMakerTrainingJobLink(), SageMakerTrainingLogsLink())
# tune_model's result holds the tuning job and its best training job ("Training"), whose links follow it
TUNING_LINKS = (SageMakerTuningJobLink(), *TRAINING_LINKS)
TRANSFORM_LINKS = (SageMakerTransformJobLink(), SageMakerTransformLogsLink())
LABELING_LINKS = (SageMakerLabelingJobLink(),)
MODEL_LINKS = (SageMakerModelLink(),)
ENDPOINT_LINKS = (SageMakerEndpointLink(), SageMakerEndpointLogsLink())
MONITORING_LINKS = (SageMakerMonitoringScheduleLink(), SageMakerProcessingJobLink())
