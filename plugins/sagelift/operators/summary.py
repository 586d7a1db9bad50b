"""The final task of sagemaker_deploy, ``summarize_run``: print what the run created or updated.

Reads only what the earlier steps returned (no remote call), so it cannot fail a deployment that worked.
Its return value is the summary, which the REST API serves and scripts/submit_run.py prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from sagelift.domain.summary import build_run_summary, render_run_summary
from sagelift.operators.base import StepInputs


class RunSummaryOperator(StepInputs, BaseOperator):
    template_fields: Sequence[str] = ("plan", "images", "training", "model", "endpoint", "api")
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, images=images)
        self.training = training
        self.model = model
        self.endpoint = endpoint
        self.api = api

    def execute(self, context: Any) -> dict[str, Any]:
        summary = build_run_summary(
            self.read_plan().to_xcom(),
            images=self.read_images(),
            training=self.training,
            model=self.model,
            endpoint=self.endpoint,
            api=self.api,
        )
        self.log.info("Run summary\n%s", render_run_summary(summary))
        return summary
