"""Step 2, assume_role_chain: prove the run can act in the scientist account, and say as whom.

The chain itself is performed by the scientist account's AWS connection (sagelift.hooks.session_factory,
over the core sagelift.steps.role_chain); this step checks the connection is the one the platform
expects, exercises the chain once (GetCallerIdentity, ``check_identity``) and pushes only non-secret
facts (connection id, region, role ARNs, session name, expiry) for the later steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.sts import StsHook
from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from sagelift.domain.plan import SessionFacts
from sagelift.domain.teardown import read_any_plan
from sagelift.operators.base import StepInputs, step_errors


class StsAssumeRoleChainOperator(StepInputs, BaseOperator):
    """Pushes ``SessionFacts``: identifiers only, never a credential. Works for deploy and teardown runs."""

    template_fields: Sequence[str] = ("plan",)
    ui_color = "#fff4e5"

    def __init__(self, *, plan: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan)

    def execute(self, context: Any) -> dict[str, Any]:
        # Imported here, not at the top: the DAG file's parse and every other task's process skip them.
        from sagelift.hooks.session_factory import role_chain_factory_problem
        from sagelift.steps.role_chain import check_identity

        with step_errors():
            plan = read_any_plan(self.plan)
        platform, account_id = plan.platform, plan.account_id
        conn_id = platform.aws_conn_id(account_id)
        try:
            connection = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            # The provider would silently fall back to the worker's own credentials: never do that.
            raise AirflowFailException(
                f"account_id: account {account_id} is onboarded but its AWS connection {conn_id!r} does not "
                "exist; an ML engineer creates it (README 'Onboarding a scientist account')."
            ) from None
        factory_problem = role_chain_factory_problem(connection.extra_dejson)
        if factory_problem is not None:
            raise AirflowFailException(f"Platform configuration error. {factory_problem}")
        chain = [hop.get("role_arn") for hop in (connection.extra_dejson.get("role_chain") or [])]
        if platform.master_role_arn and chain != [platform.master_role_arn]:
            raise AirflowFailException(
                f"assume_role_chain: connection {conn_id!r} chains through {chain or 'no role'}, but the "
                f"platform's master pipeline role is {platform.master_role_arn}; re-render the connection "
                "with `make onboard` (README 'Onboarding a scientist account')."
            )
        with step_errors("assume_role_chain: "):
            # Making the client performs the chain's AssumeRole hops: a refused hop is final, STS not
            # answering now is retried (sagelift.steps.role_chain).
            client: Any = StsHook(aws_conn_id=conn_id, region_name=platform.region).conn
            facts = check_identity(client, platform, account_id)
        session = SessionFacts(**facts, aws_conn_id=conn_id, expiration=_expiry(client))
        self.log.info(
            "Acting in account %s as %s (session %s).", account_id, session.caller_arn, session.session_name
        )
        return session.to_xcom()


def _expiry(client: Any) -> str | None:
    """When the session's credentials expire (they refresh themselves before then); never the keys."""
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    expiry = getattr(credentials, "_expiry_time", None)
    return expiry.isoformat() if expiry is not None else None
