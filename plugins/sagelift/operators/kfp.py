"""Run the compiled sagelift pipeline on Kubeflow Pipelines and wait for it, deferred.

For teams that keep KFP as the executor: the same validated parameters the Airflow DAG uses are sent
as KFP v2 runtime parameters to the compiled pipeline, and the Airflow task mirrors the KFP run.
"""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import UTC, datetime, timedelta
from functools import cached_property
from importlib import resources
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import TriggerEvent

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.kfp import FAILED_STATES, build_run_parameters, derive_run_display_name
from sagelift.domain.plan import Plan
from sagelift.hooks.kfp import KubeflowPipelinesError, KubeflowPipelinesHook
from sagelift.links.kfp import KubeflowPipelinesRunLink
from sagelift.triggers.kfp import KubeflowPipelinesRunCompleteTrigger

# The compiled pipeline is package data (``make kfp-compile`` writes it there).
DEFAULT_PACKAGE = resources.files("sagelift").joinpath("assets", "kfp", "sagemaker_deploy.yaml")


class KubeflowPipelinesRunOperator(BaseOperator):
    """Submit one KFP run of the pipeline per DAG run and succeed or fail with it.

    ``execute`` makes sure the pipeline holds the package (uploads it, or a new version of it, when
    the content differs from every existing version), gets or creates the experiment, submits the run
    (or picks up the unfinished run an earlier try of this DAG run submitted), records the run id and
    the UI link, then defers. SUCCEEDED passes; FAILED, CANCELED and SKIPPED fail the task with the
    run's error. Stopping the task terminates the run: ``on_kill`` while it runs on a worker, the
    trigger's ``on_kill`` while it is deferred.

    :param kfp_conn_id: Airflow connection of the KFP API (see ``KubeflowPipelinesHook``).
    :param pipeline_name: name of the pipeline in KFP.
    :param pipeline_package_path: compiled pipeline YAML; default: the one shipped in the package.
    :param experiment_name: KFP experiment the run belongs to.
    :param parameters: runtime parameters; default: the ``params`` of ``plan``.
    :param plan: the run's plan (``validate.output``), whose validated parameters are sent.
    :param deferrable: wait in the triggerer (default) or in the worker slot.
    :param poll_interval: seconds between reads of the run's state.
    :param wait_timeout: how long the run may take before the task terminates it and fails.
    """

    template_fields = (
        "kfp_conn_id",
        "pipeline_name",
        "pipeline_package_path",
        "experiment_name",
        "parameters",
        "plan",
    )
    operator_extra_links = (KubeflowPipelinesRunLink(),)
    ui_color = "#4285f4"

    def __init__(
        self,
        *,
        pipeline_name: str,
        experiment_name: str,
        kfp_conn_id: str = KubeflowPipelinesHook.default_conn_name,
        pipeline_package_path: str | None = None,
        parameters: dict[str, Any] | None = None,
        plan: Any = None,
        deferrable: bool = True,
        poll_interval: float = 30.0,
        wait_timeout: timedelta = timedelta(hours=12),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.kfp_conn_id = kfp_conn_id
        self.pipeline_name = pipeline_name
        self.pipeline_package_path = pipeline_package_path
        self.experiment_name = experiment_name
        self.parameters = parameters
        self.plan = plan
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self._run_id: str | None = None

    @cached_property
    def hook(self) -> KubeflowPipelinesHook:
        return KubeflowPipelinesHook(kfp_conn_id=self.kfp_conn_id)

    def execute(self, context: Any) -> str:
        if importlib.util.find_spec("kfp_server_api") is None:
            # an installation without the kfp extra parses the DAG; only this task needs the client
            raise KubeflowPipelinesError(
                "The Kubeflow Pipelines API client (kfp-server-api) is not installed on this worker: "
                "install sagelift[kfp] where sagemaker_deploy_kfp's tasks run"
            )
        plan = Plan.from_xcom(self.plan) if self.plan is not None else None
        if self.parameters is not None:
            parameters = self.parameters
        elif plan is not None:
            parameters = build_run_parameters(plan.params.to_dict())
        else:
            raise SageliftValidationError.single("plan", "give the run's plan or the parameters")
        # The pipeline's pods (ensure_pvc's among them) run as the platform's pipeline service account,
        # as the Airflow DAG's ensure_pvc pod does.
        kubernetes = plan.platform.kubernetes if plan is not None else None
        service_account = kubernetes.service_account_name if kubernetes and kubernetes.enabled else None
        if not isinstance(parameters, dict):
            raise SageliftValidationError.single(
                "parameters", "must be a mapping of pipeline parameter names to values"
            )
        with resources.as_file(DEFAULT_PACKAGE) as default:  # a real path unless installed zipped
            package = self.pipeline_package_path or str(default)
            pipeline = self.hook.ensure_pipeline_version(self.pipeline_name, package)
        self.log.info(
            "Pipeline '%s' version %s (%s)", self.pipeline_name, pipeline.pipeline_version_id, pipeline.action
        )
        experiment_id = self.hook.get_or_create_experiment(self.experiment_name)
        display_name = derive_run_display_name(context["ti"].dag_id, context["run_id"])
        unfinished = [
            run
            for run in self.hook.find_runs(experiment_id, display_name)
            if run.state not in FAILED_STATES and run.state != "SUCCEEDED"
        ]
        if unfinished:
            run_id = str(unfinished[0].run_id)
            self.log.info("Resuming the wait for KFP run %s submitted by an earlier try", run_id)
        else:
            run = self.hook.create_run(
                experiment_id=experiment_id,
                pipeline=pipeline,
                display_name=display_name,
                parameters=parameters,
                service_account=service_account,
            )
            run_id = str(run.run_id)
            self.log.info("Submitted KFP run %s '%s'", run_id, display_name)
        self._run_id = run_id
        context["ti"].xcom_push(key="run_id", value=run_id)
        url = KubeflowPipelinesRunLink.persist(context, ui_url=self.hook.ui_url, run_id=run_id)
        self.log.info("KFP run: %s", url)

        trigger = KubeflowPipelinesRunCompleteTrigger(
            run_id=run_id,
            kfp_conn_id=self.kfp_conn_id,
            poll_interval=self.poll_interval,
            timeout_at=(datetime.now(UTC) + self.wait_timeout).isoformat(),
        )
        if self.deferrable:
            self.defer(trigger=trigger, method_name="execute_complete")
        # Not deferrable: the same wait, held in this worker slot.
        event = asyncio.run(_first_event(trigger))
        return self.execute_complete(context, event.payload)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> str:
        run_id = str(event["run_id"])
        status = event["status"]
        if status == "success":
            self.log.info("KFP run %s succeeded", run_id)
            return run_id
        if status == "failed":
            raise KubeflowPipelinesError(
                f"Kubeflow Pipelines run {run_id} ended {event['state']}: {event['message']}"
            )
        if status == "timeout":
            self.hook.terminate_run(run_id)
            raise KubeflowPipelinesError(
                f"Kubeflow Pipelines run {run_id} was terminated: {event['message']} (wait_timeout "
                f"{self.wait_timeout})"
            )
        raise KubeflowPipelinesError(
            f"Waiting for Kubeflow Pipelines run {run_id} failed: {event['message']}"
        )

    def on_kill(self) -> None:
        if self._run_id:
            self.log.info("Terminating KFP run %s because the task was killed", self._run_id)
            self.hook.terminate_run(self._run_id)


async def _first_event(trigger: KubeflowPipelinesRunCompleteTrigger) -> TriggerEvent:
    async for event in trigger.run():
        return event
    raise KubeflowPipelinesError(f"The wait for KFP run {trigger.run_id} ended without an outcome")
