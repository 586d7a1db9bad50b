"""The cross-account role chain for pipeline components: runner -> master role -> execution role.

The Airflow side performs the same chain in ``sagelift.hooks.sts.RoleChainSessionFactory`` from an
Airflow connection; a KFP component has no connections, so it starts from the pod's own identity
(IRSA or the node role in production, the process environment in tests) and reads the hops from the
platform configuration. Each hop's credentials are self-refreshing botocore credentials that live only
inside the session object: no component returns, logs or writes them.
"""

from __future__ import annotations

import re
from typing import Any

import boto3
import botocore.session
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError

from sagelift.domain.plan import derive_run_key
from sagelift.domain.platform import PlatformConfig

SESSION_NAME_MAX = 64
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]")


class RoleChainError(PermissionError):
    """A hop of the chain was refused; the message names the hop and the role."""


def derive_session_name(dag_id: str, run_id: str) -> str:
    """'sagelift-<run key>-<pipeline>', the rule of sagelift.hooks.sts, within STS's 64 characters."""
    return _SESSION_NAME_BAD.sub("-", f"sagelift-{derive_run_key(dag_id, run_id)}-{dag_id}")[
        :SESSION_NAME_MAX
    ]


def role_chain(platform: PlatformConfig, account_id: str) -> list[tuple[str, str | None]]:
    """The (role ARN, external id) hops from the runner identity to the account's execution role."""
    hops: list[tuple[str, str | None]] = []
    if platform.master_role_arn:
        hops.append((platform.master_role_arn, platform.master_external_id))
    hops.append((platform.execution_role_arn(account_id), platform.account(account_id).execution_external_id))
    return hops


def _hop(
    source: boto3.session.Session,
    role_arn: str,
    external_id: str | None,
    *,
    label: str,
    session_name: str,
    duration: int,
    region: str,
) -> boto3.session.Session:
    def refresh() -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": duration,
        }
        if external_id:
            kwargs["ExternalId"] = external_id
        try:
            credentials = source.client("sts", region_name=region).assume_role(**kwargs)["Credentials"]
        except ClientError as err:
            error = err.response.get("Error", {})
            raise RoleChainError(
                f"{label}: {error.get('Code', 'Error')} assuming {role_arn}: {error.get('Message', '')}"
            ) from None
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    core = botocore.session.get_session()
    core._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
        metadata=refresh(), refresh_using=refresh, method="sts-assume-role"
    )
    core.set_config_variable("region", region)
    return boto3.session.Session(botocore_session=core)


def chained_session(
    platform: PlatformConfig,
    account_id: str,
    session_name: str,
    runner: boto3.session.Session | None = None,
) -> boto3.session.Session:
    """A session acting as the account's execution role, reached through the platform's master role."""
    session = runner or boto3.session.Session(region_name=platform.region)
    hops = role_chain(platform, account_id)
    roles = ["runner identity"] + [arn for arn, _ in hops]
    for index, (role_arn, external_id) in enumerate(hops):
        session = _hop(
            session,
            role_arn,
            external_id,
            label=f"hop {index + 1} of {len(hops)} ({roles[index]} -> {roles[index + 1]})",
            session_name=session_name,
            duration=platform.session_duration_seconds,
            region=platform.region,
        )
    return session
