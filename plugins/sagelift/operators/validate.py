"""Step 0, validate: every rule a user or the platform can break, checked before any remote call.

It also decides who the run acts for (``acting_user``) and refuses a user who is not one of the
account's deployers: the triggering user Airflow records for the run, or, for a scheduled or
asset-triggered retrain (no triggering user), the owner named in the retrain's registration. A run with
neither is refused, so no way of starting a run skips the check.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from sagelift.config import load_platform_config_raw, registered_retrain
from sagelift.domain.errors import PLATFORM_HEADING, SageliftValidationError, headed_message
from sagelift.domain.notes import start_note
from sagelift.domain.params import default_conf
from sagelift.domain.plan import Plan, build_plan
from sagelift.domain.platform import NO_USER_FIELD, NO_USER_RULE
from sagelift.hooks.airflow_api import AirflowApiHook


def triggering_user(dag_run: Any) -> str | None:
    """The Airflow user who triggered the run (UI, REST API, CLI), as Airflow recorded it; None for runs
    nobody triggered (a schedule, an asset event, another DAG's task started by a schedule)."""
    user = getattr(dag_run, "triggering_user_name", None)
    return str(user) if user else None


def acting_user(dag_run: Any, conf: dict[str, Any]) -> tuple[str, str]:
    """(user, why) the run acts for: its triggering user, else a registered retrain's owner.

    Raises SageliftValidationError for a run with neither.
    """
    user = triggering_user(dag_run)
    if user is not None:
        return user, "triggering user"
    run_type = getattr(dag_run, "run_type", "")
    # The Task SDK's DagRunType is a str enum whose str() is its name: compare its value.
    run_type = str(getattr(run_type, "value", run_type))
    retrain = registered_retrain(run_type, dag_run.run_id, conf)
    if retrain is not None:
        return retrain.owner, f"owner of the retrain registration {retrain.model_name}"
    raise SageliftValidationError.single(NO_USER_FIELD, NO_USER_RULE)


def check_account_connection(account_id: str, conn_id: str) -> None:
    """Refuse a run whose onboarded account has no AWS connection, before any step needs it.

    Called after the deployer check, so only a user who may deploy there learns the connection is missing.
    """
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise AirflowFailException(
            f"{PLATFORM_HEADING} account_id: account {account_id} is onboarded but its AWS connection "
            f"{conn_id!r} does not exist\nAn ML engineer creates it with `make onboard` (README 'Onboarding "
            "a scientist account'); the run's conf is not at fault."
        ) from None


class ValidateRunOperator(BaseOperator):
    """Build the run's plan from its conf and the platform configuration, or fail naming field and rule.

    A validation failure is final (AirflowFailException): retrying the same conf cannot succeed.
    ``require_aws_connection``: whether the account's Airflow AWS connection must exist (the Airflow
    engine's steps act through it; the KFP engine's components chain from the platform configuration).
    ``engine``: which engine runs the steps ("airflow" or "kfp"; KFP refuses a run that needs approval).
    """

    ui_color = "#e8f4fd"

    def __init__(
        self, *, require_aws_connection: bool = True, engine: str = "airflow", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.require_aws_connection = require_aws_connection
        self.engine = engine

    def execute(self, context: Any) -> dict[str, Any]:
        dag_run = context["dag_run"]
        conf = dict(dag_run.conf or {})
        # The conf is the user's input; defaults come from the one parameter definition. (Not from
        # context["params"]: it hides unknown keys, which are typos more often than not.)
        raw = default_conf()
        raw.update(conf)
        # Here, not at the top: botocore's service model is for this check only, and every parse of the
        # DAG files (sagemaker_deploy_kfp's too) would import botocore (tests/dags/test_import_deny_list.py).
        from sagelift.steps.overrides import checked_plan

        try:
            user, why = acting_user(dag_run, conf)
            plan = build_plan(
                raw,
                load_platform_config_raw(),
                dag_run.dag_id,
                dag_run.run_id,
                triggered_by=user,
                engine=self.engine,
            )
            plan = checked_plan(plan)  # request overrides against botocore's SageMaker model
        except SageliftValidationError as err:
            raise AirflowFailException(headed_message(err)) from None
        if self.require_aws_connection:
            typed = Plan.from_xcom(plan)
            check_account_connection(typed.account_id, typed.platform.aws_conn_id(typed.account_id))
        names = plan["names"]
        self.log.info(
            "Run plan for model %s in account %s, acting for %s (%s): training job %s, model %s, "
            "endpoint config %s, endpoint %s",
            plan["params"]["model_name"],
            plan["params"]["account_id"],
            user,
            why,
            names["training_job"],
            names["model"],
            names["endpoint_config"],
            names["endpoint"],
        )
        # The run's page and the runs list say what it is doing; summarize_run or a failure replaces it.
        model, account = plan["params"]["model_name"], plan["params"]["account_id"]
        AirflowApiHook().set_run_note(dag_run.dag_id, dag_run.run_id, start_note(model, account, user, why))
        return plan
