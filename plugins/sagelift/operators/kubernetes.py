"""Step 1, ``ensure_pvc``: a KubernetesPodOperator that makes sure the pipeline's claim exists.

The work happens inside the cluster, with the pipeline's own service account, so the claim is created
with exactly the permissions the pipeline has (``include/k8s/rbac.yaml``) and in the namespace its pods
run in. The pod runs ``sagelift/pod/ensure_pvc.py`` on a stock ``python`` image (``python3 -c
<source>``): no image to build or scan, nothing installed at pod start, and the program is versioned
with the DAG that uses it.

Everything the pod needs is decided at run time from the run's plan (the ``validate`` task's XCom): the
platform's Kubernetes settings, with the claim's name, size and class overridable by the run's conf.
The provider's operator does the rest: creating the pod, streaming its log into the task log,
deferring when configured, and deleting the pod when it finishes.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value
from airflow.sdk.exceptions import AirflowSkipException
from kubernetes.client import models as k8s

from sagelift.operators.run_inputs import ENSURE_PVC, RunInputs, pull_run_inputs
from sagelift.pod import program_source

if TYPE_CHECKING:
    from sagelift.domain.platform import KubernetesSettings

PROGRAM = "ensure_pvc"


class KubernetesEnsurePvcOperator(KubernetesPodOperator):
    """Run the in-cluster program that ensures the pipeline's PersistentVolumeClaim exists.

    Skips (with the reason in the task log) when the platform has no Kubernetes cluster configured
    (``platform.kubernetes.enabled`` is false). Fails with the program's own explanation when the claim
    cannot be ensured: a missing permission, or an existing claim that differs from the request.
    """

    def __init__(self, *, task_id: str = ENSURE_PVC, **kwargs: Any) -> None:
        kwargs.setdefault("on_finish_action", "delete_pod")
        kwargs.setdefault("get_logs", True)
        kwargs.setdefault("log_events_on_failure", True)
        # The pod spec carries the whole program; the failure message should carry the reason instead.
        kwargs.setdefault("log_pod_spec_on_failure", False)
        # A non-zero exit copies the program's last log lines into the pod's termination message, which
        # the provider puts into the task's failure message.
        kwargs.setdefault("termination_message_policy", "FallbackToLogsOnError")
        kwargs.setdefault("random_name_suffix", False)
        super().__init__(task_id=task_id, **kwargs)

    def execute(self, context: Any) -> Any:
        inputs = pull_run_inputs(context)
        settings = inputs.platform.kubernetes
        if not settings.enabled:
            raise AirflowSkipException(
                "platform.kubernetes.enabled is false: no cluster is configured for this platform, so there "
                "is no claim to ensure; an ML engineer enables it in the sagelift_platform Variable"
            )
        self._configure(inputs, settings, context)
        self.log.info(
            "Ensuring claim %s (%s, %s, class %s) in namespace %s as service account %s",
            self._claim["name"],
            self._claim["size"],
            settings.pvc_access_mode,
            self._claim["storage_class"] or "cluster default",
            settings.namespace,
            settings.service_account_name,
        )
        return super().execute(context)

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        # A resumed deferral runs on a fresh operator: connect to the cluster the same way again.
        inputs = pull_run_inputs(context)
        self._configure(inputs, inputs.platform.kubernetes, context)
        return super().trigger_reentry(context, event)

    def _configure(self, inputs: RunInputs, settings: KubernetesSettings, context: Any) -> None:
        params = inputs.params
        claim_name = str(params.get("pvc_name") or settings.pvc_name)
        size = str(params.get("pvc_size") or settings.pvc_size)
        storage_class = params.get("pvc_storage_class") or settings.pvc_storage_class
        self._claim = {"name": claim_name, "size": size, "storage_class": storage_class}
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
        ti = context["ti"]
        self.name = derive_pod_name(ti.dag_id, context["run_id"], ti.try_number)
        self.labels = {
            "app.kubernetes.io/name": "sagelift-ensure-pvc",
            "app.kubernetes.io/part-of": "sagelift",
        }
        self.cmds = ["python3", "-c", program_source(PROGRAM)]
        self.arguments = build_ensure_pvc_arguments(
            claim_name=claim_name,
            size=size,
            storage_class=storage_class,
            access_mode=settings.pvc_access_mode,
            namespace=settings.namespace,
            service_account=settings.service_account_name,
            wait_for_bound_seconds=settings.wait_for_bound_seconds,
            labels=claim_labels(ti.dag_id, context["run_id"], params.get("model_name")),
        )


def derive_pod_name(dag_id: str, run_id: str, try_number: int) -> str:
    """Same run and try -> same pod (a resumed worker reattaches); a retry gets a fresh pod."""
    digest = hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()[:10]
    return f"sagelift-ensure-pvc-{digest}-{try_number}"


def claim_labels(dag_id: str, run_id: str, model_name: str | None) -> dict[str, str]:
    """Labels the claim is created with: who manages it and which run created it."""
    labels = {
        "app.kubernetes.io/managed-by": "sagelift",
        "app.kubernetes.io/part-of": "sagelift",
        "sagelift/created-by-dag": make_safe_label_value(dag_id),
        "sagelift/created-by-run": make_safe_label_value(run_id),
    }
    if model_name:
        labels["sagelift/model-name"] = make_safe_label_value(str(model_name))
    return labels


def build_ensure_pvc_arguments(
    *,
    claim_name: str,
    size: str,
    storage_class: str | None,
    access_mode: str,
    namespace: str,
    service_account: str,
    wait_for_bound_seconds: int,
    labels: dict[str, str],
) -> list[str]:
    """The in-pod program's command line."""
    args = [
        "--claim-name",
        claim_name,
        "--size",
        size,
        "--access-mode",
        access_mode,
        "--namespace",
        namespace,
        "--service-account",
        service_account,
        "--wait-for-bound-seconds",
        str(wait_for_bound_seconds),
    ]
    if storage_class:
        args += ["--storage-class", storage_class]
    for key, value in sorted(labels.items()):
        args += ["--label", f"{key}={value}"]
    return args
