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

The provider's operator is built when the task executes, not when the DAG file is parsed: it imports
the ``kubernetes`` and ``kubernetes_asyncio`` clients (~1 s of imports with bytecode, ~2.7 s without),
which every parse and every task of the DAG would otherwise pay for a step most platforms leave
disabled. ``KubernetesEnsurePvcOperator`` is a plain operator holding the plan; ``execute`` makes the
pod operator (``_pod_operator``) and runs it, and a resumed deferral (``trigger_reentry``) makes it
again, as a resumed task gets a fresh operator anyway.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from sagelift.domain.plan import Plan
from sagelift.operators.base import StepInputs

# The step (sagelift.steps.pvc and the pod program it ships) is imported when the task executes: every
# parse of the DAG file and every other task's process loads this module without needing it.

# What BaseOperator takes; every other keyword goes to the pod operator (e.g. its poll intervals).
_BASE_OPERATOR_ARGS = frozenset(inspect.signature(BaseOperator.__init__).parameters) - {"self", "kwargs"}
_POD_DEFAULTS: dict[str, Any] = {
    "on_finish_action": "delete_pod",
    "get_logs": True,
    "log_events_on_failure": True,
    # The pod spec carries the whole program; the failure message should carry the reason instead.
    "log_pod_spec_on_failure": False,
    # A non-zero exit copies the program's last log lines into the pod's termination message, which
    # the provider puts into the task's failure message.
    "termination_message_policy": "FallbackToLogsOnError",
    "random_name_suffix": False,
}


class KubernetesEnsurePvcOperator(StepInputs, BaseOperator):
    """Run the in-cluster program that ensures the pipeline's PersistentVolumeClaim exists.

    Skips (with the reason in the task log) when the platform has no Kubernetes cluster configured
    (``platform.kubernetes.enabled`` is false). Fails with the program's own explanation when the claim
    cannot be ensured: a missing permission, or an existing claim that differs from the request.
    Keywords that BaseOperator does not take are the provider's KubernetesPodOperator's.
    """

    template_fields: Sequence[str] = ("plan",)

    def __init__(self, *, plan: Any = None, **kwargs: Any) -> None:
        self.pod_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key not in _BASE_OPERATOR_ARGS}
        super().__init__(**kwargs)
        self._store_inputs(plan=plan)
        self._pod: Any = None

    def execute(self, context: Any) -> Any:
        plan = self.read_plan()
        settings = plan.platform.kubernetes
        if not settings.enabled:
            raise AirflowSkipException(
                "platform.kubernetes.enabled is false: no cluster is configured for this platform, so there "
                "is no claim to ensure; an ML engineer enables it in the sagelift_platform Variable"
            )
        if plan.params.plan_only:
            raise AirflowSkipException("plan_only: the run changes nothing, so no claim is ensured")
        from sagelift.steps.pvc import claim_spec

        pod = self._pod_operator(plan, context)
        spec = claim_spec(plan)
        self.log.info(
            "Ensuring claim %s (%s, %s, class %s) in namespace %s as service account %s",
            spec.name,
            spec.size,
            spec.access_mode,
            spec.storage_class or "cluster default",
            spec.namespace,
            spec.service_account,
        )
        return pod.run_pod(context)

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        # The pod operator deferred naming its own trigger_reentry; the resumed task lands here.
        return self._pod_operator(self.read_plan(), context).trigger_reentry(context, event)

    def on_kill(self) -> None:
        if self._pod is not None:
            self._pod.on_kill()

    def _pod_operator(self, plan: Plan, context: Any) -> Any:
        """The provider's pod operator, configured from the plan for this try."""
        from kubernetes.client import models as k8s

        from sagelift.pod import program_source
        from sagelift.steps.pvc import PROGRAM, claim_spec, derive_pod_name

        settings = plan.platform.kubernetes
        spec = claim_spec(plan)

        pod = _pod_operator_class()(task_id=self.task_id, **{**_POD_DEFAULTS, **self.pod_kwargs})
        pod.kubernetes_conn_id = settings.kubernetes_conn_id
        pod.in_cluster = settings.in_cluster
        pod.namespace = settings.namespace
        pod.image = settings.image
        pod.service_account_name = settings.service_account_name
        pod.automount_service_account_token = True
        pod.deferrable = settings.deferrable
        pod.startup_timeout_seconds = settings.startup_timeout_seconds
        pod.schedule_timeout_seconds = settings.startup_timeout_seconds
        pod.container_resources = k8s.V1ResourceRequirements(
            requests=dict(settings.resources.get("requests") or {}) or None,
            limits=dict(settings.resources.get("limits") or {}) or None,
        )
        pod.name = derive_pod_name(plan.dag_id, plan.run_id, context["ti"].try_number)
        pod.labels = {
            "app.kubernetes.io/name": "sagelift-ensure-pvc",
            "app.kubernetes.io/part-of": "sagelift",
        }
        pod.cmds = ["python3", "-c", program_source(PROGRAM)]
        pod.arguments = spec.arguments()
        self._pod = pod
        return pod


@functools.cache
def _pod_operator_class() -> type[Any]:
    """The provider's KubernetesPodOperator with sagelift's failure rule; imported on first use."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from sagelift.steps.pvc import FINAL_EXIT_CODES

    class EnsurePvcPodOperator(KubernetesPodOperator):
        def run_pod(self, context: Any) -> Any:
            # The provider's execute, without the guard against operators run inside another operator.
            return KubernetesPodOperator.execute.__wrapped__(self, context)  # type: ignore[attr-defined]

        def cleanup(
            self, pod: Any, remote_pod: Any, xcom_result: dict | None = None, context: Any = None
        ) -> None:
            """The provider fails any failed pod as retryable; the program's refusals (RBAC, a claim of
            the name with other settings, bad arguments: sagelift.steps.pvc.FINAL_EXIT_CODES) are final."""
            try:
                super().cleanup(pod, remote_pod, xcom_result, context)
            except AirflowException as err:
                if _exit_code(remote_pod, self.base_container_name) in FINAL_EXIT_CODES:
                    raise AirflowFailException(str(err)) from None
                raise

    return EnsurePvcPodOperator


def _exit_code(remote_pod: Any, container: str) -> int | None:
    statuses = getattr(getattr(remote_pod, "status", None), "container_statuses", None) or []
    for status in statuses:
        terminated = getattr(getattr(status, "state", None), "terminated", None)
        if status.name == container and terminated is not None:
            return int(terminated.exit_code)
    return None
