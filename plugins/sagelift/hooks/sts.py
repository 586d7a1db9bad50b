"""The two-hop cross-account role chain, as an Amazon provider session factory.

Why a session factory: every AWS call of steps 3-8 must run in the scientist account, including those
the provider's own SageMaker operators and their deferred triggers make. Those accept only an
``aws_conn_id``. So each onboarded account has one Airflow AWS connection, ``sagelift_aws_<account>``,
and this factory (configured once with ``[aws] session_factory =
sagelift.hooks.sts.RoleChainSessionFactory``) turns it into a session that performs the chain:

    worker's own identity (IRSA, instance profile, or the connection's keys)
      -> each role in the connection extra ``role_chain`` (the master pipeline role)
      -> the connection's ``role_arn`` (the scientist account's pipeline execution role)

Every hop's credentials are botocore RefreshableCredentials whose refresh assumes the hop again from
the hop before it, so sessions renew themselves before expiry (AWS caps chained sessions at one hour;
training runs for many hours), in workers and in the triggerer alike. No credential is ever written
anywhere: they live only inside the session objects.

Connections without ``role_chain`` behave exactly as the stock factory does.

Extras read (key by key): ``role_arn``, ``assume_role_kwargs.ExternalId`` (final hop), ``role_chain``:
``[{"role_arn": ..., "external_id": ...}]``, ``session_duration_seconds`` (900-3600, default 3600).

Retries: every client made from these sessions (the role-chain STS clients, the hooks' clients in
workers, the aiobotocore clients in the triggerer) defaults to botocore's ``standard`` retry mode with
``DEFAULT_RETRIES["max_attempts"]`` retries after the first attempt (botocore's meaning of
``max_attempts``), so throttling, 5xx answers and dropped connections are
retried with jittered exponential backoff. A connection's own ``config_kwargs.retries`` (the provider's
extra, e.g. ``{"mode": "adaptive", "max_attempts": 12}``) takes precedence.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

import boto3
import botocore.session
from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError

from sagelift.domain.plan import derive_run_key

DEFAULT_RETRIES: Any = {"mode": "standard", "max_attempts": 10}
SESSION_NAME_MAX = 64
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")
DEFAULT_DURATION = 3600


class RoleChainError(PermissionError):
    """A hop of the chain was refused; the message names the hop and the role."""


def derive_session_name(dag_id: str | None, run_id: str | None, fallback: str) -> str:
    """RoleSessionName traceable to the run: 'sagelift-<run key>-<dag id>', within STS's 64 characters.

    The run key is the same 8 hex characters that suffix the run's resource names.
    """
    if dag_id and run_id:
        name = f"sagelift-{derive_run_key(dag_id, run_id)}-{dag_id}"
    else:
        name = f"sagelift-{fallback}"
    return _SESSION_NAME_BAD.sub("-", name)[:SESSION_NAME_MAX]


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

    def _sts_endpoint(self) -> str | None:
        return self.conn.get_service_endpoint_url("sts", sts_connection_assume=True)

    def _hop_label(self, index: int) -> str:
        names = ["runner identity"] + [h["role_arn"] for h in self.chain] + [str(self.role_arn)]
        return f"hop {index + 1} of {len(names) - 1} ({names[index]} -> {names[index + 1]})"

    def _assume(
        self, source: boto3.session.Session, index: int, role_arn: str, external_id: str | None
    ) -> dict[str, Any]:
        sts = source.client("sts", config=self.config, endpoint_url=self._sts_endpoint())
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.duration_seconds,
        }
        if external_id:
            kwargs["ExternalId"] = external_id
        try:
            response = sts.assume_role(**kwargs)
        except ClientError as err:
            error = err.response.get("Error", {})
            raise RoleChainError(
                f"{self._hop_label(index)}: {error.get('Code', 'Error')} assuming {role_arn}: "
                f"{error.get('Message', '')}".rstrip(": ")
            ) from None
        credentials = response["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    def _refreshable_session(
        self, source: boto3.session.Session, index: int, role_arn: str, external_id: str | None
    ) -> boto3.session.Session:
        def refresh() -> dict[str, Any]:
            return self._assume(source, index, role_arn, external_id)

        credentials = RefreshableCredentials.create_from_metadata(
            metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
        )
        core = botocore.session.get_session()
        core._credentials = credentials  # type: ignore[attr-defined]  # as the provider's own factory does
        core.set_config_variable("region", self.basic_session.region_name)
        _default_retries(core)
        return boto3.session.Session(botocore_session=core)

    @cached_property
    def basic_session(self) -> boto3.session.Session:
        session = super().basic_session
        _default_retries(session._session)  # type: ignore[attr-defined]
        return session

    def create_session(self, deferrable: bool = False) -> Any:
        session = super().create_session(deferrable=deferrable)
        _default_retries(session._session if isinstance(session, boto3.session.Session) else session)
        return session

    @cached_property
    def source_session(self) -> boto3.session.Session:
        """The session of the last hop before the connection's role_arn (each hop self-refreshing)."""
        session = self.basic_session
        for index, hop in enumerate(self.chain):
            session = self._refreshable_session(session, index, hop["role_arn"], hop.get("external_id"))
        return session

    def _refresh_credentials(self) -> dict[str, Any]:
        if not self.chain:
            return super()._refresh_credentials()
        external_id = (self.conn.assume_role_kwargs or {}).get("ExternalId")
        return self._assume(self.source_session, len(self.chain), str(self.role_arn), external_id)


def _default_retries(core: Any) -> None:
    """Make ``DEFAULT_RETRIES`` the default of every client of a botocore/aiobotocore session."""
    default = core.get_default_client_config()
    retries = Config(retries=DEFAULT_RETRIES.copy())
    core.set_default_client_config(default.merge(retries) if default is not None else retries)
