"""The steps of sagemaker_teardown: check the request, delete the model's resources, report what went.

Teardown reuses sagemaker_deploy's own role-chain step (``assume_role_chain``) and API removal
(``ApiGatewayRemoveOperator``): ``TeardownValidateOperator`` pushes a plan shaped like the deploy's, so
those operators run unchanged in the scientist account. Every delete is idempotent: a second teardown
finds nothing and succeeds, reporting that nothing was deleted.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.platform import PlatformConfig
from sagelift.domain.teardown import (
    TEARDOWN_PARAMETERS,
    TeardownReport,
    build_teardown_plan,
    copied_image_location,
    is_owned,
    is_per_run_name,
    parse_teardown_conf,
)
from sagelift.hooks.ecr_cleanup import EcrCleanupHook
from sagelift.hooks.platform import load_platform_config_raw
from sagelift.hooks.sagemaker_cleanup import SageMakerCleanupHook
from sagelift.operators.run_inputs import pull_run_inputs

REMOVE_API = "remove_api"
DELETE_SAGEMAKER = "delete_sagemaker_resources"
DELETE_IMAGES = "delete_images"
DELETE_PVC = "delete_pvc"


def teardown_params() -> dict[str, Param]:
    return {
        spec.name: Param(spec.default, title=spec.title, description=spec.description, **spec.schema)
        for spec in TEARDOWN_PARAMETERS
    }


def _request(inputs: Any) -> dict[str, Any]:
    return dict(inputs.plan["teardown"])


class TeardownValidateOperator(BaseOperator):
    """Refuse a teardown whose confirm value is not the model name, before any remote call."""

    ui_color = "#fde8e8"

    def execute(self, context: Any) -> dict[str, Any]:
        dag_run = context["dag_run"]
        raw = {spec.name: spec.default for spec in TEARDOWN_PARAMETERS}
        raw.update(dict(dag_run.conf or {}))
        try:
            request = parse_teardown_conf(raw)
            plan = build_teardown_plan(request, load_platform_config_raw(), dag_run.dag_id, dag_run.run_id)
            PlatformConfig.from_dict(plan["platform"]).account(request.account_id)
        except SageliftValidationError as err:
            raise AirflowFailException(f"Teardown refused. {err}") from None
        self.log.info("Tearing down model %s in account %s.", request.model_name, request.account_id)
        return plan


class SageMakerTeardownOperator(BaseOperator):
    """Delete the model's endpoint (and wait until it is gone), then its endpoint configs and models.

    Pushes what it deleted and the images the deleted models used, for ``delete_images``. Training jobs
    cannot be deleted in SageMaker; they stay in the account's history.
    """

    ui_color = "#fde8e8"

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        model_name = str(inputs.params["model_name"])
        hook = SageMakerCleanupHook(aws_conn_id=inputs.aws_conn_id, region_name=inputs.region)
        settings = inputs.platform.sagemaker
        deleted: dict[str, list[str]] = {"endpoint": [], "endpoint_configs": [], "models": []}

        endpoint = hook.describe_endpoint(model_name)
        owned = endpoint is not None and is_owned(hook.list_tags(endpoint["EndpointArn"]), model_name)
        if owned and hook.delete_endpoint(model_name):
            hook.wait_for_endpoint_deleted(
                model_name,
                delay=settings.check_interval_seconds,
                max_attempts=max(1, settings.endpoint_wait_budget_seconds // settings.check_interval_seconds),
            )
            deleted["endpoint"].append(model_name)

        for name in hook.list_endpoint_config_names(model_name):
            config = hook.describe_endpoint_config(name) if is_per_run_name(name, model_name) else None
            owned = config is not None and is_owned(hook.list_tags(config["EndpointConfigArn"]), model_name)
            if owned and hook.delete_endpoint_config(name):
                deleted["endpoint_configs"].append(name)

        images: list[str] = []
        for name in hook.list_model_names(model_name):
            model = hook.describe_model(name) if is_per_run_name(name, model_name) else None
            if model and is_owned(hook.list_tags(model["ModelArn"]), model_name):
                for container in [model.get("PrimaryContainer"), *model.get("Containers", [])]:
                    if container and container.get("Image"):
                        images.append(container["Image"])
                if hook.delete_model(name):
                    deleted["models"].append(name)
        for kind, names in deleted.items():
            self.log.info("Deleted %s: %s", kind, ", ".join(names) or "none left")
        return {**deleted, "model_images": sorted(set(images))}


class EcrTeardownImagesOperator(BaseOperator):
    """Delete the images sagelift copied into the account's ECR for the deleted models (if requested)."""

    ui_color = "#fde8e8"

    def execute(self, context: Any) -> list[str]:
        inputs = pull_run_inputs(context)
        if not _request(inputs)["delete_images"]:
            raise AirflowSkipException("delete_images is false: copied images are kept.")
        used = (context["ti"].xcom_pull(task_ids=DELETE_SAGEMAKER) or {}).get("model_images", [])
        prefix = inputs.platform.ecr.repository_prefix
        hook = EcrCleanupHook(aws_conn_id=inputs.aws_conn_id, region_name=inputs.region)
        deleted = []
        for image in used:
            location = copied_image_location(image, inputs.account_id, inputs.region, prefix)
            if location is None:
                self.log.info("Keeping %s: not an image sagelift copied (outside %s).", image, prefix)
            elif hook.delete_image(*location):
                deleted.append(image)
        return deleted


class KubernetesTeardownPvcOperator(BaseOperator):
    """Delete the pipeline's volume claim if requested and it is labelled as this model's."""

    ui_color = "#fde8e8"

    def execute(self, context: Any) -> list[str]:
        inputs = pull_run_inputs(context)
        if not _request(inputs)["delete_pvc"]:
            raise AirflowSkipException("delete_pvc is false: the volume claim is kept.")
        settings = inputs.platform.kubernetes
        if not settings.enabled:
            raise AirflowSkipException("The platform has no Kubernetes step configured: no claim to delete.")
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client.exceptions import ApiException

        hook = KubernetesHook(conn_id=settings.kubernetes_conn_id, in_cluster=settings.in_cluster)
        api = hook.core_v1_client
        model_name = str(inputs.params["model_name"])
        try:
            claim = api.read_namespaced_persistent_volume_claim(settings.pvc_name, settings.namespace)
        except ApiException as err:
            if err.status == 404:
                return []
            raise
        labels = claim.metadata.labels or {}
        if labels.get("sagelift/model-name") != model_name:
            self.log.info(
                "Keeping claim %s: it was created for model %s, not %s.",
                settings.pvc_name,
                labels.get("sagelift/model-name", "unknown"),
                model_name,
            )
            return []
        api.delete_namespaced_persistent_volume_claim(settings.pvc_name, settings.namespace)
        return [f"{settings.namespace}/{settings.pvc_name}"]


class TeardownReportOperator(BaseOperator):
    """Report what the teardown deleted (or that nothing was left); the report is the task's XCom."""

    ui_color = "#e8f5e9"

    def execute(self, context: Any) -> dict[str, Any]:
        inputs = pull_run_inputs(context)
        ti = context["ti"]
        api = ti.xcom_pull(task_ids=REMOVE_API) or {}
        sagemaker = ti.xcom_pull(task_ids=DELETE_SAGEMAKER) or {}
        report = TeardownReport(
            model_name=str(inputs.params["model_name"]),
            account_id=inputs.account_id,
            api=list(api.get("api_ids", [])),
            endpoint=list(sagemaker.get("endpoint", [])),
            endpoint_configs=list(sagemaker.get("endpoint_configs", [])),
            models=list(sagemaker.get("models", [])),
            images=list(ti.xcom_pull(task_ids=DELETE_IMAGES) or []),
            pvc=list(ti.xcom_pull(task_ids=DELETE_PVC) or []),
        )
        self.log.info("%s", report.render())
        return report.to_dict()
