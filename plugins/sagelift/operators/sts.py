"""Step 2, assume_role_chain: prove the run can act in the scientist account, and say as whom.

The chain itself is performed by the AWS connection of the scientist account (see
sagelift.hooks.sts); this step exercises it once, checks with GetCallerIdentity that the final identity
is the expected execution role in the expected account, and pushes only non-secret facts (connection id,
region, role ARNs, session name, expiry) for the later steps.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.sts import StsHook
from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from sagelift.domain.plan import plan_params
from sagelift.hooks.sts import RoleChainError
from sagelift.operators.run_inputs import pull_run_inputs


class StsAssumeRoleChainOperator(BaseOperator):
    ui_color = "#fff4e5"

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        platform = inputs.platform
        account_id = plan_params(inputs.plan).account_id
        conn_id = platform.aws_conn_id(account_id)
        try:
            connection = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            # The provider would silently fall back to the worker's own credentials: never do that.
            raise AirflowFailException(
                f"account_id: account {account_id} is onboarded but its AWS connection {conn_id!r} does not "
                "exist; an ML engineer creates it (README 'Onboarding a scientist account')."
            ) from None
        chain = [hop["role_arn"] for hop in (connection.extra_dejson.get("role_chain") or [])]
        if platform.master_role_arn and chain != [platform.master_role_arn]:
            raise AirflowFailException(
                f"assume_role_chain: connection {conn_id!r} chains through {chain or 'no role'}, but the platform's "
                f"master pipeline role is {platform.master_role_arn}; re-render the connection with "
                "`make onboard` (README 'Onboarding a scientist account')."
            )
        hook = StsHook(aws_conn_id=conn_id, region_name=platform.region)
        try:
            client: Any = hook.conn
            identity = client.get_caller_identity()
        except RoleChainError as err:
            # A trust policy or an ExternalId is wrong: retrying cannot help, the message says where.
            raise AirflowFailException(f"assume_role_chain: {err}") from None
        expected_role = platform.execution_role_arn(account_id)
        role_name = expected_role.split(":role/", 1)[1].split("/")[-1]
        arn = identity["Arn"]
        if identity["Account"] != account_id or f":assumed-role/{role_name}/" not in arn:
            raise AirflowFailException(
                f"assume_role_chain: expected to act as {expected_role} in account {account_id}, but the "
                f"connection {conn_id!r} acts as {arn}; fix the connection (README 'Onboarding')."
            )
        session_name = arn.rsplit("/", 1)[-1]
        facts = {
            "aws_conn_id": conn_id,
            "region": platform.region,
            "account_id": account_id,
            "master_role_arn": platform.master_role_arn,
            "execution_role_arn": expected_role,
            "caller_arn": arn,
            "session_name": session_name,
            "expiration": _expiry(client),
        }
        self.log.info("Acting in account %s as %s (session %s).", account_id, arn, session_name)
        return facts


def _expiry(client: Any) -> str | None:
    """When the session's credentials expire (they refresh themselves before then); never the keys."""
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    expiry = getattr(credentials, "_expiry_time", None)
    return expiry.isoformat() if expiry is not None else None
