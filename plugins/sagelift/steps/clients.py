"""How a step gets its AWS clients: a factory of ``(service, region) -> boto3 client`` in the run's account.

A step that needs clients of several services or regions (the image copy reads another account's ECR
in its own region) takes one of these instead of a session, so each engine keeps its own way of making
clients: Airflow's hooks honour the connection's ``endpoint_url`` and ``service_config`` per service, a
KFP component makes them from the chained session.
"""

from __future__ import annotations

from typing import Any, Protocol

import boto3


class Clients(Protocol):
    def __call__(self, service: str, region: str | None = None) -> Any: ...


def session_clients(session: boto3.session.Session) -> Clients:
    def client(service: str, region: str | None = None) -> Any:
        return session.client(service, region_name=region)  # type: ignore[call-overload]

    return client


def autoscaling_client(clients: Clients) -> Any:
    """Application Auto Scaling in the run's account and region (the endpoint variant's scaling)."""
    return clients("application-autoscaling")


def runtime_client(clients: Clients) -> Any:
    """SageMaker Runtime in the run's account and region (the smoke test's InvokeEndpoint)."""
    return clients("sagemaker-runtime")
