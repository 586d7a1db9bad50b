"""The steps of sagemaker_teardown: check the request, delete the model's resources, report what went.

Teardown shares sagemaker_deploy's role-chain step (``assume_role_chain``, which reads either kind of
plan) and its API removal (``ApiGatewayRemoveOperator``); the deletes are the core's
(sagelift.steps.teardown). Every delete is idempotent: a second teardown finds nothing and succeeds,
reporting that nothing was deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from sagelift.config import load_platform_config_raw
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.platform import NO_USER_FIELD, NO_USER_RULE, TEAR_DOWN, PlatformConfig
from sagelift.domain.teardown import (
    TEARDOWN_PARAMETERS,
    TeardownPlan,
    TeardownReport,
    build_teardown_plan,
    parse_teardown_conf,
)
from sagelift.hooks.ecr import EcrHook
from sagelift.hooks.sagemaker import SageMakerHook
from sagelift.operators.base import StepInputs, connection_clients, step_errors
from sagelift.operators.validate import triggering_user
from sagelift.steps.pvc import claim_is_models
from sagelift.steps.teardown import delete_copied_images, delete_sagemaker_resources


def teardown_params() -> dict[str, Param]:
    return {
        spec.name: Param(spec.default, title=spec.title, description=spec.description, **spec.schema)
        for spec in TEARDOWN_PARAMETERS
    }


class TeardownValidateOperator(BaseOperator):
    """Refuse a teardown whose confirm value is not the model name, or whose triggering user is not one
    of the account's deployers, before any remote call. A teardown nobody triggered is refused: no
    schedule or other DAG deletes a model."""

    ui_color = "#fde8e8"

    def execute(self, context: Any) -> dict[str, Any]:
        dag_run = context["dag_run"]
        raw = {spec.name: spec.default for spec in TEARDOWN_PARAMETERS}
        raw.update(dict(dag_run.conf or {}))
        user = triggering_user(dag_run)
        try:
            if user is None:
                raise SageliftValidationError.single(NO_USER_FIELD, NO_USER_RULE)
            request = parse_teardown_conf(raw)
            platform_raw = load_platform_config_raw()
            # Before the onboarding check: a user who may not act there learns nothing about the account.
            PlatformConfig.from_dict(platform_raw).check_deployer(user, request.account_id, TEAR_DOWN)
            plan = build_teardown_plan(request, platform_raw, dag_run.dag_id, dag_run.run_id)
        except SageliftValidationError as err:
            raise AirflowFailException(f"Teardown refused. {err}") from None
        self.log.info(
            "Tearing down model %s in account %s for %s.", request.model_name, request.account_id, user
        )
        return plan.to_xcom()


class _TeardownStep(StepInputs, BaseOperator):
    template_fields: Sequence[str] = ("plan", "session")
    ui_color = "#fde8e8"

    def __init__(self, *, plan: Any = None, session: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session)

    def read_teardown_plan(self) -> TeardownPlan:
        with step_errors():
            return TeardownPlan.from_xcom(self.plan)


class SageMakerTeardownOperator(_TeardownStep):
    """Delete the model's endpoint (and wait until it is gone; its variant's scalable target and scaling
    policy first), then its endpoint configs and models, and the CloudWatch alarms sagelift created to
    guard its updates.

    Returns what it deleted, by kind. Training jobs cannot be deleted in SageMaker; they stay in the
    account's history. On a team's shared multi-model endpoint only the model's artifacts go (its route
    goes with its API); the endpoint stays while another model is served, and goes with the last one
    (``multi_model``: sagelift.steps.multi_model.remove_from_shared_endpoints).
    """

    def execute(self, context: Any) -> dict[str, Any]:
        plan, session = self.read_teardown_plan(), self.read_session()
        hook = SageMakerHook(aws_conn_id=session.aws_conn_id, region_name=session.region)
        with step_errors():
            deleted = delete_sagemaker_resources(
                hook.client,
                plan.model_name,
                plan.platform.sagemaker,
                connection_clients(session)("cloudwatch"),
                connection_clients(session)("application-autoscaling"),
            )
            shared = plan.platform.account(plan.account_id).multi_model_endpoints
            if shared:
                from sagelift.steps.multi_model import remove_from_shared_endpoints

                deleted["multi_model"] = remove_from_shared_endpoints(
                    connection_clients(session)("s3"), hook.client, plan
                )
            return deleted


class EcrTeardownImagesOperator(_TeardownStep):
    """Delete the images sagelift copied for the model that nothing else holds (if ``delete_images``).

    The decision is the core's (sagelift.steps.teardown.delete_copied_images): only digests carrying this
    model's copy record, and none another model recorded or a remaining SageMaker model uses. Runs after
    ``delete_sagemaker_resources`` (``sagemaker`` is its result), so the model's own models are gone.
    Returns the images deleted, released (another model's record keeps them) and kept (still in use), and
    the repositories deleted (left empty, created by sagelift for the model).
    """

    template_fields: Sequence[str] = ("plan", "session", "sagemaker")

    def __init__(self, *, sagemaker: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sagemaker = sagemaker

    def execute(self, context: Any) -> dict[str, list[str]]:
        plan, session = self.read_teardown_plan(), self.read_session()
        if not plan.request.delete_images:
            raise AirflowSkipException("delete_images is false: copied images are kept.")
        ecr = EcrHook(aws_conn_id=session.aws_conn_id, region_name=session.region)
        sagemaker = SageMakerHook(aws_conn_id=session.aws_conn_id, region_name=session.region)
        with step_errors():
            return delete_copied_images(
                ecr.client,
                sagemaker.client,
                plan.model_name,
                plan.account_id,
                plan.region,
                plan.platform.ecr.repository_prefix,
            ).to_xcom()


class KubernetesTeardownPvcOperator(_TeardownStep):
    """Delete the pipeline's volume claim if requested and it is labelled as this model's."""

    template_fields: Sequence[str] = ("plan",)

    def execute(self, context: Any) -> list[str]:
        plan = self.read_teardown_plan()
        if not plan.request.delete_pvc:
            raise AirflowSkipException("delete_pvc is false: the volume claim is kept.")
        settings = plan.platform.kubernetes
        if not settings.enabled:
            raise AirflowSkipException("The platform has no Kubernetes step configured: no claim to delete.")
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client.exceptions import ApiException

        api = KubernetesHook(
            conn_id=settings.kubernetes_conn_id, in_cluster=settings.in_cluster
        ).core_v1_client
        try:
            claim = api.read_namespaced_persistent_volume_claim(settings.pvc_name, settings.namespace)
        except ApiException as err:
            if err.status == 404:
                return []
            raise
        labels = claim.metadata.labels or {}
        if not claim_is_models(labels, plan.model_name):
            self.log.info(
                "Keeping claim %s: it was created for model %s, not %s.",
                settings.pvc_name,
                labels.get("sagelift/model-name", "unknown"),
                plan.model_name,
            )
            return []
        api.delete_namespaced_persistent_volume_claim(settings.pvc_name, settings.namespace)
        return [f"{settings.namespace}/{settings.pvc_name}"]


class TeardownReportOperator(_TeardownStep):
    """Report what the teardown deleted (or that nothing was left); the report is the task's XCom."""

    template_fields: Sequence[str] = ("plan", "api", "sagemaker", "images", "pvc")
    ui_color = "#e8f5e9"

    def __init__(
        self, *, api: Any = None, sagemaker: Any = None, images: Any = None, pvc: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.api = api
        self.sagemaker = sagemaker
        self.images = images
        self.pvc = pvc

    def execute(self, context: Any) -> dict[str, Any]:
        plan = self.read_teardown_plan()
        sagemaker = self.sagemaker or {}
        images = self.images or {}
        report = TeardownReport(
            model_name=plan.model_name,
            account_id=plan.account_id,
            api=list((self.api or {}).get("api_ids", [])),
            endpoint=list(sagemaker.get("endpoint", [])),
            endpoint_configs=list(sagemaker.get("endpoint_configs", [])),
            models=list(sagemaker.get("models", [])),
            alarms=list(sagemaker.get("alarms", [])),
            monitoring=list(sagemaker.get("monitoring", [])),
            scalable_targets=list(sagemaker.get("scalable_targets", [])),
            images=list(images.get("deleted", [])),
            images_kept=list(images.get("released", [])) + list(images.get("kept", [])),
            pvc=list(self.pvc or []),
            repositories=list(images.get("repositories", [])),
        )
        self.log.info("%s", report.render())
        return report.to_dict()
