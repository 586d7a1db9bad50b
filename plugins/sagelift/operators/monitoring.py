"""monitor_endpoint on Airflow: the data-quality monitor as a ``SageMakerJobOperator`` over
``sagelift.steps.monitoring`` (which the KFP engine calls too).

The task skips unless the conf sets ``monitoring`` (``Plan.skip_reason``). It runs after deploy_endpoint:
the schedule needs the endpoint, capturing. Its job is the baseline processing job (named as the run's
model) over the training channel: started or adopted, waited for deferred like training
(``SageMakerJobTrigger``; in the worker when the platform's ``deferrable`` is off), cancelled by stopping
it (``on_kill`` in the worker, the trigger's ``on_kill`` when the deferred task is marked failed). Only a
Completed baseline goes on; Failed and Stopped fail the task for good, naming SageMaker's reason. Then
``finish`` applies the run's data-quality job definition, the endpoint's schedule (created, or updated by
a re-run) and the drift alarms.

The return value: ``{"Monitoring": <the monitor's facts>, "Baseline": {name, ARN}}``, read by the links
(the schedule and the baseline job in the console) and summarize_run.
"""

from __future__ import annotations

from typing import Any

from sagelift.domain.plan import Plan
from sagelift.links.sagemaker import MONITORING_LINKS
from sagelift.operators.base import INPUT_FIELDS
from sagelift.operators.jobs import SageMakerJobOperator
from sagelift.steps import jobs, monitoring


class SageMakerMonitorEndpointOperator(SageMakerJobOperator):
    """Baseline, schedule and alarms of a data-quality monitor on the run's endpoint; skipped without
    ``monitoring``."""

    job_kind = jobs.PROCESSING_JOB
    template_fields = (*INPUT_FIELDS, "endpoint")  # type: ignore[assignment]
    operator_extra_links = MONITORING_LINKS
    ui_color = "#e1d5e7"

    def __init__(self, *, endpoint: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint  # only orders this step after deploy_endpoint

    def build_request(self, plan: Plan, context: Any) -> dict[str, Any]:
        return monitoring.baseline_request(plan, self.read_tags())

    def _service_client(self, kind: str) -> Any:
        from sagelift.hooks.caller import AwsHook as AwsBaseHook

        return AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type=kind).conn

    def finish(self, description: dict[str, Any], plan: Plan) -> dict[str, Any]:
        facts = monitoring.apply_monitoring(
            self.client,
            self._service_client("cloudwatch"),
            self._service_client("s3"),
            plan,
            self.read_tags(),
            self.log.info,
        )
        baseline = {
            "ProcessingJobName": description.get("ProcessingJobName"),
            "ProcessingJobArn": description.get("ProcessingJobArn"),
        }
        return {"Monitoring": facts, "Baseline": baseline}
