"""label_data on Airflow: the run's Ground Truth labeling job as a ``SageMakerJobOperator`` over
``sagelift.steps.labeling`` (which the KFP engine calls too).

The task skips unless the conf sets ``labeling`` (``Plan.skip_reason``). Otherwise it writes the job's
worker UI template and label categories beside its output, starts the run's labeling job or adopts it (a
retry, a resumed deferral, a lost answer), and waits deferred like training (``SageMakerJobTrigger``; in
the worker when the platform's ``deferrable`` is off). Only Completed succeeds; Failed and Stopped fail
the task for good, naming SageMaker's reason. Cancelling stops the job (``on_kill`` in the worker, the
trigger's ``on_kill`` when the deferred task is marked failed). The labeled manifest is already a
training channel in the plan, so train_model and tune_model need nothing from this task but its order;
its return value is the job's facts (counts, the output manifest) for the log and the summary, and
``Labeling``: the job's name and ARN, which its console link reads.
"""

from __future__ import annotations

from typing import Any

from sagelift.domain.plan import Plan
from sagelift.links.sagemaker import LABELING_LINKS
from sagelift.operators.jobs import SageMakerJobOperator
from sagelift.steps import jobs, labeling


class SageMakerLabelingOperator(SageMakerJobOperator):
    """Label the conf's manifest with the account's workteam before training; skipped without ``labeling``."""

    job_kind = jobs.LABELING_JOB
    ui_color = "#fff2cc"
    operator_extra_links = LABELING_LINKS

    def build_request(self, plan: Plan, context: Any) -> dict[str, Any]:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()
        return labeling.prepare_labeling(s3, plan, self.read_tags())

    def wait_budget_seconds(self, plan: Plan) -> int:
        """People label for days: the job's own longest run (its tasks' availability and time limit)."""
        return plan.params.labeling.wait_seconds

    def finish(self, description: dict[str, Any], plan: Plan) -> dict[str, Any]:
        facts = labeling.report_labeling(description, self.log.info)
        # the job's identifiers for its console link (sagelift.links.sagemaker.SageMakerLabelingJobLink)
        job = {key: description.get(key) for key in ("LabelingJobName", "LabelingJobArn")}
        return {**facts, "Labeling": job}
