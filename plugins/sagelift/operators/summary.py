"""The final task of sagemaker_deploy, ``summarize_run``: print what the run created or updated.

Reads only what the earlier steps returned (no remote call), so it cannot fail a deployment that worked.
Its return value is the summary, which the REST API serves and scripts/submit_run.py prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, AssetAlias, BaseOperator

from sagelift.domain.notes import ENDPOINTS_ALIAS, endpoint_asset, outcome_note, training_data_uris
from sagelift.domain.summary import build_run_summary, render_run_summary
from sagelift.hooks.airflow_api import AirflowApiHook
from sagelift.operators.base import StepInputs


class RunSummaryOperator(StepInputs, BaseOperator):
    template_fields: Sequence[str] = (
        "plan",
        "images",
        "training",
        "model",
        "endpoint",
        "api",
        "registered",
        "batch",
        "tuning",
        "approval",
        "monitoring",
        "labeling",
        "recommendation",
    )
    ui_color = "#e8f5e9"

    def __init__(
        self,
        *,
        plan: Any = None,
        images: Any = None,
        training: Any = None,
        model: Any = None,
        endpoint: Any = None,
        api: Any = None,
        registered: Any = None,
        batch: Any = None,
        tuning: Any = None,
        approval: Any = None,
        monitoring: Any = None,
        labeling: Any = None,
        recommendation: Any = None,
        **kwargs: Any,
    ) -> None:
        # Each run's endpoint becomes an Asset event through this alias: the Assets view shows the
        # endpoints the DAG produced, each downstream of the training data its extra lists.
        kwargs.setdefault("outlets", [AssetAlias(ENDPOINTS_ALIAS)])
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, images=images)
        self.training = training
        self.model = model
        self.endpoint = endpoint
        self.api = api
        self.registered = registered
        self.batch = batch
        self.tuning = tuning
        self.approval = approval
        self.monitoring = monitoring
        self.labeling = labeling
        self.recommendation = recommendation

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.read_plan()
        summary = build_run_summary(
            plan.to_xcom(),
            images=self.read_images(),
            training=self.training,
            model=self.model,
            endpoint=self.endpoint,
            api=self.api,
            registered=self.registered,
            batch=self.batch,
            tuning=self.tuning,
            approval=self.approval,
            monitoring=self.monitoring,
            labeling=self.labeling,
            recommendation=self.recommendation,
        )
        self.log.info("Run summary\n%s", render_run_summary(summary))
        asset = endpoint_asset(summary, training_data_uris(plan.params.training_channels))
        if asset is not None:
            context["outlet_events"][AssetAlias(ENDPOINTS_ALIAS)].add(
                Asset(name=asset["name"], uri=asset["uri"], group="sagelift"), extra=asset["extra"]
            )
        AirflowApiHook().set_run_note(plan.dag_id, plan.run_id, outcome_note(summary))
        return summary
