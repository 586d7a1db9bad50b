"""The final task of sagemaker_deploy, ``summarize_run``: print what the run created or updated.

Reads only XCom the earlier steps pushed (no remote call), so it cannot fail a deployment that worked.
Its return value is the summary, which the REST API serves and scripts/submit_run.py prints.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from sagelift.domain.summary import build_run_summary, render_run_summary
from sagelift.operators.run_inputs import (
    CREATE_MODEL,
    DEPLOY_ENDPOINT,
    EXPOSE_API,
    TRAIN_MODEL,
    pull_run_inputs,
)


class RunSummaryOperator(BaseOperator):
    ui_color = "#e8f5e9"

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        ti = context["ti"]
        summary = build_run_summary(
            inputs.plan,
            images=inputs.images,
            training=ti.xcom_pull(task_ids=TRAIN_MODEL),
            model=ti.xcom_pull(task_ids=CREATE_MODEL),
            endpoint=ti.xcom_pull(task_ids=DEPLOY_ENDPOINT),
            api=ti.xcom_pull(task_ids=EXPOSE_API),
        )
        self.log.info("Run summary\n%s", render_run_summary(summary))
        return summary
