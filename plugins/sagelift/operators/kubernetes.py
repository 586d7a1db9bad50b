"""Step 1, ``ensure_pvc``: a KubernetesPodOperator that makes sure the pipeline's claim exists.

The work happens inside the cluster, with the pipeline's own service account, so the claim is created
with exactly the permissions the pipeline has (``sagelift/assets/k8s/rbac.yaml``) and in the namespace its pods
run in. The pod runs ``sagelift/pod/ensure_pvc.py`` on a stock ``python`` image (``python3 -c
<source>``): no image to build or scan, nothing installed at pod start, and the program is versioned
with the DAG that uses it.

Everything the pod needs is decided at run time from the run's plan: the claim (the core's
``sagelift.steps.pvc.claim_spec``, the same one the KFP engine ensures: the platform's Kubernetes
settings, with the claim's name, size and class overridable by the run's conf, and the run's labels).
The provider's operator does the rest: creating the pod, streaming its log into the task log,
deferring when configured, and deleting the pod when it finishes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from kubernetes.client import models as k8s

from sagelift.domain.plan import Plan
from sagelift.operators.base import StepInputs
from sagelift.pod import program_source
from sagelift.steps.pvc import FINAL_EXIT_CODES, PROGRAM, claim_spec, derive_pod_name


class KubernetesEnsurePvcOperator(StepInputs, KubernetesPodOperator):
    """Run the in-cluster program that ensures the pipeline's PersistentVolumeClaim exists.

    Skips (with the reason in the task log) when the platform has no Kubernetes cluster configured
    (``platform.kubernetes.enabled`` is false). Fails with the program's own explanation when the claim
    cannot be ensured: a missing permission, or an existing claim that differs from the request.
    """

    template_fields: Sequence[str] = (*KubernetesPodOperator.template_fields, "plan")

    def __init__(self, *, plan: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("on_finish_action", "delete_pod")
        kwargs.setdefault("get_logs", True)
        kwargs.setdefault("log_events_on_failure", True)
        # The pod spec carries the whole program; the failure message should carry the reason instead.
        kwargs.setdefault("log_pod_spec_on_failure", False)
        # A non-zero exit copies the program's last log lines into the pod's termination message, which
        # the provider puts into the task's failure message.
        kwargs.setdefault("termination_message_policy", "FallbackToLogsOnError")
        kwargs.setdefault("random_name_suffix", False)
        super().__init__(**kwargs)
        self._store_inputs(plan=plan)

    def execute(self, context: Any) -> Any:
        plan = self.read_plan()
        settings = plan.platform.kubernetes
        if not settings.enabled:
            raise AirflowSkipException(
                "platform.kubernetes.enabled is false: no cluster is configured for this platform, so there "
                "is no claim to ensure; an ML engineer enables it in the sagelift_platform Variable"
            )
        spec = self._configure(plan, context)
        self.log.info(
            "Ensuring claim %s (%s, %s, class %s) in namespace %s as service account %s",
            spec.name,
            spec.size,
            spec.access_mode,
            spec.storage_class or "cluster default",
            spec.namespace,
            spec.service_account,
        )
        return super().execute(context)

    def cleanup(
        self, pod: k8s.V1Pod, remote_pod: k8s.V1Pod, xcom_result: dict | None = None, context: Any = None
    ) -> None:
        """The provider fails any failed pod as retryable; the program's refusals (RBAC, a claim of the
        name with other settings, bad arguments: sagelift.steps.pvc.FINAL_EXIT_CODES) are final."""
        try:
            super().cleanup(pod, remote_pod, xcom_result, context)
        except AirflowException as err:
            if _exit_code(remote_pod, self.base_container_name) in FINAL_EXIT_CODES:
                raise AirflowFailException(str(err)) from None
            raise

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        # A resumed deferral runs on a fresh operator: connect to the cluster the same way again.
        self._configure(self.read_plan(), context)
        return super().trigger_reentry(context, event)

    def _configure(self, plan: Plan, context: Any) -> Any:
        settings = plan.platform.kubernetes
        spec = claim_spec(plan)
        self.kubernetes_conn_id = settings.kubernetes_conn_id
        self.in_cluster = settings.in_cluster
        self.namespace = settings.namespace
        self.image = settings.image
        self.service_account_name = settings.service_account_name
        self.automount_service_account_token = True
        self.deferrable = settings.deferrable
        self.startup_timeout_seconds = settings.startup_timeout_seconds
        self.schedule_timeout_seconds = settings.startup_timeout_seconds
        self.container_resources = k8s.V1ResourceRequirements(
            requests=dict(settings.resources.get("requests") or {}) or None,
            limits=dict(settings.resources.get("limits") or {}) or None,
        )
        self.name = derive_pod_name(plan.dag_id, plan.run_id, context["ti"].try_number)
        self.labels = {
            "app.kubernetes.io/name": "sagelift-ensure-pvc",
            "app.kubernetes.io/part-of": "sagelift",
        }
        self.cmds = ["python3", "-c", program_source(PROGRAM)]
        self.arguments = spec.arguments()
        return spec


def _exit_code(remote_pod: Any, container: str) -> int | None:
    statuses = getattr(getattr(remote_pod, "status", None), "container_statuses", None) or []
    for status in statuses:
        terminated = getattr(getattr(status, "state", None), "terminated", None)
        if status.name == container and terminated is not None:
            return int(terminated.exit_code)
    return None
