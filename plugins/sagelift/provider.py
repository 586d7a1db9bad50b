"""sagelift as an Airflow provider: what the ``apache_airflow_provider`` entry point tells Airflow.

An installed wheel needs no plugins folder: Airflow's providers manager reads this at start and
registers the connection type (the Kubeflow Pipelines API, with its form), the operator extra links
(so a task's links show in the UI) and the notifier. The work tree's plugins/sagelift_plugin.py
registers the same links for a checkout that mounts plugins/ instead of installing the wheel.
Imports nothing beyond the package's version: the providers manager calls it in every Airflow process.
"""

from __future__ import annotations

from typing import Any

from sagelift import __version__

CONNECTION_TYPES = (
    {
        "connection-type": "kubeflow_pipelines",
        "hook-class-name": "sagelift.hooks.kfp.KubeflowPipelinesHook",
        "hook-name": "Kubeflow Pipelines",
    },
)
EXTRA_LINKS = (
    "sagelift.links.apigateway.ApiGatewayStageLink",
    "sagelift.links.apigateway.ApiGatewayInvokeUrlLink",
    "sagelift.links.kfp.KubeflowPipelinesRunLink",
    "sagelift.links.sagemaker.SageMakerTrainingJobLink",
    "sagelift.links.sagemaker.SageMakerTrainingLogsLink",
    "sagelift.links.sagemaker.SageMakerModelLink",
    "sagelift.links.sagemaker.SageMakerEndpointLink",
    "sagelift.links.sagemaker.SageMakerEndpointLogsLink",
    "sagelift.links.sagemaker.SageMakerTransformJobLink",
    "sagelift.links.sagemaker.SageMakerTransformLogsLink",
    "sagelift.links.sagemaker.SageMakerTuningJobLink",
    "sagelift.links.sagemaker.SageMakerLabelingJobLink",
    "sagelift.links.sagemaker.SageMakerMonitoringScheduleLink",
    "sagelift.links.sagemaker.SageMakerProcessingJobLink",
)
NOTIFICATIONS = ("sagelift.notifications.SageliftNotifier",)
# The [sagelift] settings, so `airflow config list` shows them with their defaults.
CONFIG = {
    "sagelift": {
        "description": "sagelift's own settings (the platform itself is the Variable sagelift_platform).",
        "options": {
            "retrain_registry": {
                "description": "Folder of the retrain registrations, one <model_name>.json per model; the "
                "dag-processor and the workers must see the same path. Empty: no retrain DAGs.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "/opt/airflow/sagelift/retrain",
                "default": "",
            },
            "describe_log_streams_per_second": {
                "description": "CloudWatch Logs DescribeLogStreams calls a second one triggerer makes "
                "for training log tails (the account's quota is 5).",
                "version_added": "0.1.0",
                "type": "integer",
                "example": "4",
                "default": "2",
            },
            "get_log_events_per_second": {
                "description": "CloudWatch Logs GetLogEvents calls a second one triggerer makes for "
                "training log tails (the account's quota is 25).",
                "version_added": "0.1.0",
                "type": "integer",
                "example": "20",
                "default": "10",
            },
        },
    }
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "sagelift",
        "name": "sagelift",
        "description": "Train a SageMaker model and expose it as a secured endpoint in a data scientist's "
        "own AWS account.",
        "versions": [__version__],
        "connection-types": [dict(c) for c in CONNECTION_TYPES],
        "extra-links": list(EXTRA_LINKS),
        "notifications": list(NOTIFICATIONS),
        "config": CONFIG,
    }
