"""The Amazon provider session factory that performs the role chain for an account's connection.

Why a session factory: every AWS call of steps 3-8 must run in the scientist account, including those
the provider's own SageMaker operators and their deferred triggers make. Those accept only an
``aws_conn_id``. So each onboarded account has one Airflow AWS connection, ``sagelift_aws_<account>``,
and this factory (configured once with ``[aws] session_factory =
sagelift.hooks.session_factory.RoleChainSessionFactory``; the older path
``sagelift.hooks.sts.RoleChainSessionFactory`` still works) turns it into a session that performs the
chain:

    worker's own identity (IRSA, instance profile, or the connection's keys)
      -> each role in the connection extra ``role_chain`` (the master pipeline role)
      -> the connection's ``role_arn`` (the scientist account's pipeline execution role)

The chain itself (shared credentials per process, refresh margins, sync and async sessions, error
classification) is the Airflow-free core ``sagelift.steps.role_chain``, which the KFP components use too.
Connections without ``role_chain`` behave exactly as the stock factory does.

Extras read (key by key): ``role_arn``, ``assume_role_kwargs.ExternalId`` (final hop), ``role_chain``:
``[{"role_arn": ..., "external_id": ...}]``, ``session_duration_seconds`` (900-3600, default 3600).
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any

import boto3
from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory

from sagelift.steps.role_chain import (
    _LOADER,
    DEFAULT_DURATION,
    RoleChain,
    _default_retries,
    derive_session_name,
    shared_chain,
)


def _current_run() -> tuple[str | None, str | None]:
    """(dag_id, run_id) of the task running in this process, or (None, None) in the triggerer."""
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
    except (RuntimeError, ImportError, KeyError):
        return None, None
    dag_run = context.get("dag_run")
    if dag_run is None:
        return None, None
    return dag_run.dag_id, dag_run.run_id


class RoleChainSessionFactory(BaseSessionFactory):
    @cached_property
    def chain(self) -> list[dict[str, str]]:
        hops = self.extra_config.get("role_chain") or []
        return [
            {
                "role_arn": str(h["role_arn"]),
                **({"external_id": str(h["external_id"])} if h.get("external_id") else {}),
            }
            for h in hops
        ]

    @cached_property
    def duration_seconds(self) -> int:
        return int(self.extra_config.get("session_duration_seconds", DEFAULT_DURATION))

    @cached_property
    def session_name(self) -> str:
        dag_id, run_id = _current_run()
        return derive_session_name(dag_id, run_id, fallback=str(self.conn.conn_id or "session"))

    @cached_property
    def basic_session(self) -> boto3.session.Session:
        session = super().basic_session
        _default_retries(session._session)  # type: ignore[attr-defined]
        return session

    def _uses_chain(self) -> bool:
        if not (self.conn and self.chain and self.role_arn):
            return False
        return (self.conn.assume_role_method or "assume_role") == "assume_role"

    def _chain_source(self) -> boto3.session.Session:
        """The runner identity's session, for the first hop's STS client (a chain keeps it)."""
        session = self.basic_session
        session._session.register_component("data_loader", _LOADER)  # type: ignore[attr-defined]
        return session

    @cached_property
    def role_chain(self) -> RoleChain:
        """This connection's chain, shared with every other session of the process that has the same key."""
        conn = self.conn
        region = conn.region_name
        final_external_id = (conn.assume_role_kwargs or {}).get("ExternalId")
        roles = [(hop["role_arn"], hop.get("external_id")) for hop in self.chain]
        roles.append((str(self.role_arn), final_external_id))
        # Everything the chain depends on; the connection's secrets only through the digest.
        identity = json.dumps(
            {
                "conn_id": str(conn.conn_id),
                "session_kwargs": conn.session_kwargs,
                "extra": conn.extra_config,
                "roles": roles,
                "region": region,
                "session_name": self.session_name,
            },
            sort_keys=True,
            default=str,
        )
        key = hashlib.sha256(identity.encode()).hexdigest()
        return shared_chain(
            key,
            lambda: RoleChain(
                source=self._chain_source,
                roles=roles,
                session_name=self.session_name,
                duration_seconds=self.duration_seconds,
                region=region or self.basic_session.region_name,
                sts_endpoint=conn.get_service_endpoint_url("sts", sts_connection_assume=True),
                config=self.config,
            ),
        )

    def create_session(self, deferrable: bool = False) -> Any:
        if self._uses_chain():
            return self.role_chain.async_session() if deferrable else self.role_chain.sync_session()
        session = super().create_session(deferrable=deferrable)
        _default_retries(session._session if isinstance(session, boto3.session.Session) else session)
        return session


FACTORY_SETTING = "[aws] session_factory"
FACTORY_PATH = "sagelift.hooks.session_factory.RoleChainSessionFactory"


def role_chain_factory_problem(extra: dict[str, Any]) -> str | None:
    """Why a connection with a ``role_chain`` cannot work in this process, else None.

    The provider picks its session factory once, from ``[aws] session_factory``; without ours, the stock
    factory ignores ``role_chain`` and assumes the execution role straight from the runner's identity,
    which the role does not trust: a raw AccessDenied, retried three times over minutes. So the first
    AWS task asks first, and fails at once naming the setting.
    """
    from airflow.providers.amazon.aws.hooks import base_aws

    if not extra.get("role_chain"):
        return None
    factory = base_aws.SessionFactory
    if isinstance(factory, type) and issubclass(factory, RoleChainSessionFactory):
        return None
    return (
        f"{FACTORY_SETTING} is not sagelift's RoleChainSessionFactory (found {factory.__name__}), so the "
        f"connection's role_chain cannot be performed\nAn ML engineer sets {FACTORY_SETTING} = {FACTORY_PATH} (or "
        "AIRFLOW__AWS__SESSION_FACTORY) on every worker and triggerer (README 'Pointing sagelift at real AWS')."
    )
