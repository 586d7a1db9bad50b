"""The Airflow hook for step 8: ApiGatewayClient on the scientist account's connection.

Every call goes through the scientist account's Airflow AWS connection (the ``aws_conn_id`` that
``assume_role_chain`` pushed), so the API, its stage, usage plan and key all live in that account.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

from sagelift.hooks.caller import QuickCallerLookup
from sagelift.steps.api import ApiGatewayClient, ApiRemoval

__all__ = ["ApiGatewayHook", "ApiRemoval"]


class ApiGatewayHook(ApiGatewayClient, QuickCallerLookup, AwsBaseHook):  # type: ignore[misc]
    """``ApiGatewayClient`` on ``boto3.client("apigateway")`` of the connection; kwargs go to AwsBaseHook."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "apigateway"
        AwsBaseHook.__init__(self, *args, **kwargs)

    @property
    def client(self) -> Any:
        """The boto3 API Gateway client (AwsBaseHook caches it)."""
        return self.conn
