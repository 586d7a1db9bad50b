"""Start sagemaker_deploy from another DAG (a registered retrain) with a stored conf, passed as data;
and, for a staged retrain, each later stage's run promoting the version the stage before registered."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk.exceptions import AirflowFailException

from sagelift.domain.bounded_json import whole_number
from sagelift.domain.promotion import PromoteFrom, Stage, stage_conf

# The sagemaker_deploy task whose XCom names the version a run registered (steps/model_registry.py).
REGISTER_TASK_ID = "register_model"


class TriggerDeployRunOperator(TriggerDagRunOperator):
    """TriggerDagRunOperator that passes ``conf`` through verbatim: never rendered, never augmented.

    ``conf`` is left out of the templated fields (so it is neither rendered nor stored as a rendered
    field), and OpenLineage's parent-run keys are not injected (sagemaker_deploy refuses unknown keys).
    """

    template_fields: Sequence[str] = tuple(f for f in TriggerDagRunOperator.template_fields if f != "conf")
    template_fields_renderers: ClassVar[dict[str, str]] = {}

    def __init__(self, *, conf: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(conf=conf, openlineage_inject_parent_info=False, **kwargs)


class TriggerPromotionRunOperator(TriggerDeployRunOperator):
    """Start a later stage's sagemaker_deploy run: promote the version the previous stage's run registered.

    The conf is built at execute from the registered conf (``stage_conf``: its serving settings, into
    the stage's account) and the version number in the previous run's register_model XCom; it is data,
    never rendered. A previous run that registered nothing, or a Rejected version, fails the task.
    """

    template_fields: Sequence[str] = (*TriggerDeployRunOperator.template_fields, "previous_run_id")

    def __init__(
        self,
        *,
        registered_conf: dict[str, Any],
        stage: dict[str, str],
        previous_stage: dict[str, str],
        previous_run_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(conf={}, **kwargs)
        self.registered_conf = registered_conf
        self.stage = stage
        self.previous_stage = previous_stage
        self.previous_run_id = previous_run_id

    def execute(self, context: Any) -> Any:
        registered = context["ti"].xcom_pull(
            task_ids=REGISTER_TASK_ID, dag_id=self.trigger_dag_id, run_id=self.previous_run_id
        )
        registered = registered if isinstance(registered, dict) else {}
        version = whole_number(registered.get("version"), signed=False)
        previous = self.previous_stage["name"]
        if not version or registered.get("skipped"):
            raise AirflowFailException(
                f"promote_from: the {previous} run {self.previous_run_id} registered no model package "
                f"version ({REGISTER_TASK_ID} returned {json.dumps(registered)[:80]}); nothing to promote"
            )
        if registered.get("status") == "Rejected":
            raise AirflowFailException(
                f"promote_from: version {version} registered by the {previous} run is Rejected; not promoted"
            )
        promote = PromoteFrom(self.previous_stage["account_id"], version)
        self.conf = stage_conf(self.registered_conf, Stage(**self.stage), promote)
        self.log.info(
            "Promoting version %s of %s from %s (%s) to %s (%s).",
            version,
            self.registered_conf.get("model_name"),
            previous,
            promote.account_id,
            self.stage["name"],
            self.stage["account_id"],
        )
        return super().execute(context)
