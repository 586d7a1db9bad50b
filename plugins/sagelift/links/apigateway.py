"""Extra links on the expose_api task: the stage in the API Gateway console, and how to call the model.

Both read one XCom value the operator stores with ``ApiGatewayStageLink.persist`` (region, console
domain, API id, stage and invoke URL; no credentials). Airflow 3 computes each link in the worker when
the task finishes and keeps the URL in XCom for the UI. The invoke URL itself is no link: it takes a
signed POST, and a browser opening it gets "Missing Authentication Token"; the how-to-call page
(sagelift.links.howto) shows it with the ways to call it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

from sagelift.links.howto import URL_PREFIX

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
    """The how-to-call page, with the model's invoke URL (the same on every run of the model) in its
    fragment: the page shows it as text. On the API server's base URL (``[api] base_url``) when one is
    set, else relative to the UI's own host, which serves the page too."""

    name = "How to call the model"
    key = XCOM_KEY
    format_str = "{invoke_url}"

    def format_link(self, **kwargs: Any) -> str:
        invoke_url = kwargs.get("invoke_url")
        if not isinstance(invoke_url, str) or not invoke_url:
            return ""
        from airflow.configuration import conf

        base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
        return f"{base}{URL_PREFIX}#{quote(invoke_url, safe='')}"
