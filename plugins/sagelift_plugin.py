"""The only module Airflow's plugin scanner imports: registers sagelift's operator extra links.

Everything else lives in the sagelift package, which plugins/.airflowignore hides from the scanner.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from sagelift.links.apigateway import ApiGatewayInvokeUrlLink, ApiGatewayStageLink
from sagelift.links.howto import MOUNT_PREFIX, how_to_call_app
from sagelift.links.kfp import KubeflowPipelinesRunLink
from sagelift.links.sagemaker import (
    SageMakerEndpointLink,
    SageMakerEndpointLogsLink,
    SageMakerLabelingJobLink,
    SageMakerModelLink,
    SageMakerMonitoringScheduleLink,
    SageMakerProcessingJobLink,
    SageMakerTrainingJobLink,
    SageMakerTrainingLogsLink,
    SageMakerTransformJobLink,
    SageMakerTransformLogsLink,
    SageMakerTuningJobLink,
)


class SageliftPlugin(AirflowPlugin):
    name = "sagelift"
    operator_extra_links = [
        ApiGatewayStageLink(),
        ApiGatewayInvokeUrlLink(),
        KubeflowPipelinesRunLink(),
        SageMakerTrainingJobLink(),
        SageMakerTrainingLogsLink(),
        SageMakerModelLink(),
        SageMakerEndpointLink(),
        SageMakerEndpointLogsLink(),
        SageMakerTransformJobLink(),
        SageMakerTransformLogsLink(),
        SageMakerTuningJobLink(),
        SageMakerLabelingJobLink(),
        SageMakerMonitoringScheduleLink(),
        SageMakerProcessingJobLink(),
    ]
    # The page the "How to call the model" link opens, served by the API server (plain ASGI, static).
    fastapi_apps = [{"app": how_to_call_app, "url_prefix": MOUNT_PREFIX, "name": "sagelift how to call"}]
