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
from sagelift.operators.run_inputs import pull_run_inputs


class StsAssumeRoleChainOperator(BaseOperator):
    ui_color = "#fff4e5"

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        platform = inputs.platform
        account_id = plan_params(inputs.plan).account_id
        conn_id = platform.aws_conn_id(account_id)
        try:
            BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            # The provider would silently fall back to the worker's own credentials: never do that.
            raise AirflowFailException(
                f"account_id: account {account_id} is onboarded but its AWS connection {conn_id!r} does not "
                "exist; an ML engineer creates it (README 'Onboarding a scientist account')."
            ) from None
        hook = StsHook(aws_conn_id=conn_id, region_name=platform.region)
        client: Any = hook.conn
        identity = client.get_caller_identity()
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
        }
        self.log.info("Acting in account %s as %s (session %s).", account_id, arn, session_name)
        return facts
