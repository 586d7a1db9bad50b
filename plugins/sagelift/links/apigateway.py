"""Extra links on the expose_api task: the stage in the API Gateway console, and the invoke URL itself.

Both read one XCom value the operator stores with ``ApiGatewayStageLink.persist`` (region, console
domain, API id, stage and invoke URL; no credentials). Airflow 3 computes each link in the worker when
the task finishes and keeps the URL in XCom for the UI.
"""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

XCOM_KEY = "sagelift_apigateway_stage"


class ApiGatewayStageLink(BaseAwsLink):
    """The stage page in the console: invoke URL, deployment history, throttling and logs settings."""

    name = "API Gateway stage"
    key = XCOM_KEY
    format_str = (
        BASE_AWS_CONSOLE_LINK
        + "/apigateway/main/apis/{api_id}/stages?api={api_id}&region={region_name}&stage={stage}"
    )


class ApiGatewayInvokeUrlLink(BaseAwsLink):
    """The URL callers POST to; the same on every run of the same model."""

    name = "Model invoke URL"
    key = XCOM_KEY
    format_str = "{invoke_url}"
