"""Step 0, validate: every rule a user or the platform can break, checked before any remote call."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.params import default_conf
from sagelift.domain.plan import build_plan
from sagelift.hooks.platform import load_platform_config_raw


class ValidateRunOperator(BaseOperator):
    """Build the run's plan from its conf and the platform configuration, or fail naming field and rule.

    A validation failure is final (AirflowFailException): retrying the same conf cannot succeed.
    """

    ui_color = "#e8f4fd"

    def execute(self, context: Any) -> dict[str, Any]:
        dag_run = context["dag_run"]
        # The conf is the user's input; defaults come from the one parameter definition. (Not from
        # context["params"]: it hides unknown keys, which are typos more often than not.)
        raw = default_conf()
        raw.update(dict(dag_run.conf or {}))
        try:
            plan = build_plan(raw, load_platform_config_raw(), dag_run.dag_id, dag_run.run_id)
        except SageliftValidationError as err:
            raise AirflowFailException(f"Invalid run configuration. {err}") from None
        names = plan["names"]
        self.log.info(
            "Run plan for model %s in account %s: training job %s, model %s, endpoint config %s, endpoint %s",
            plan["params"]["model_name"],
            plan["params"]["account_id"],
            names["training_job"],
            names["model"],
            names["endpoint_config"],
            names["endpoint"],
        )
        return plan
