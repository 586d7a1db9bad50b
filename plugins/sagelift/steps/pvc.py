"""Step 1, ensure_pvc: what the in-pod program ``sagelift/pod/ensure_pvc.py`` is asked to ensure.

Both engines run the same stdlib-only program with the same arguments, built here from the run's plan:
Airflow in a pod of its own (``KubernetesEnsurePvcOperator``, as the pipeline's service account), KFP
in the component's own pod (the KFP run is submitted with the same service account). Either way the
claim carries the same labels (who manages it, which DAG or pipeline and run created it, for which
model), so teardown recognises a claim whichever engine created it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sagelift.domain.plan import Plan
from sagelift.pod.ensure_pvc import EXIT_FORBIDDEN, EXIT_MISMATCH, EXIT_USAGE
from sagelift.steps.errors import StepFailed, StepRetry

PROGRAM = "ensure_pvc"
# The program's refusals; its other failures (the API server unreachable or answering 5xx, a claim not
# bound in time) may pass on a later try.
FINAL_EXIT_CODES = (EXIT_USAGE, EXIT_MISMATCH, EXIT_FORBIDDEN)
MODEL_LABEL = "sagelift/model-name"
MAX_LABEL_LEN = 63


def safe_label_value(value: str) -> str:
    """A valid Kubernetes label value; a changed or long one gets a hash suffix (the provider's rule)."""
    safe = re.sub(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$", "", value)
    if len(safe) > MAX_LABEL_LEN or value != safe:
        digest = hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()[:9]
        safe = safe[: MAX_LABEL_LEN - len(digest) - 1] + "-" + digest
    return safe


def claim_labels(dag_id: str, run_id: str, model_name: str | None) -> dict[str, str]:
    """Labels the claim is created with: who manages it, which run created it, for which model."""
    labels = {
        "app.kubernetes.io/managed-by": "sagelift",
        "app.kubernetes.io/part-of": "sagelift",
        "sagelift/created-by-dag": safe_label_value(dag_id),
        "sagelift/created-by-run": safe_label_value(run_id),
    }
    if model_name:
        labels[MODEL_LABEL] = safe_label_value(model_name)
    return labels


@dataclass(frozen=True)
class ClaimSpec:
    name: str
    size: str
    storage_class: str | None
    access_mode: str
    namespace: str
    service_account: str
    wait_for_bound_seconds: int
    labels: dict[str, str]

    def arguments(self) -> list[str]:
        """The in-pod program's command line."""
        args = [
            "--claim-name",
            self.name,
            "--size",
            self.size,
            "--access-mode",
            self.access_mode,
            "--namespace",
            self.namespace,
            "--service-account",
            self.service_account,
            "--wait-for-bound-seconds",
            str(self.wait_for_bound_seconds),
        ]
        if self.storage_class:
            args += ["--storage-class", self.storage_class]
        for key, value in sorted(self.labels.items()):
            args += ["--label", f"{key}={value}"]
        return args


def claim_spec(plan: Plan) -> ClaimSpec:
    """The claim this run ensures: the platform's settings, narrowed by the run's pvc_* parameters."""
    settings = plan.platform.kubernetes
    params = plan.params
    return ClaimSpec(
        name=params.pvc_name or settings.pvc_name,
        size=params.pvc_size or settings.pvc_size,
        storage_class=params.pvc_storage_class or settings.pvc_storage_class,
        access_mode=settings.pvc_access_mode,
        namespace=settings.namespace,
        service_account=settings.service_account_name,
        wait_for_bound_seconds=settings.wait_for_bound_seconds,
        labels=claim_labels(plan.dag_id, plan.run_id, plan.model_name),
    )


def derive_pod_name(dag_id: str, run_id: str, try_number: int) -> str:
    """Same run and try -> same pod (a resumed worker reattaches); a retry gets a fresh pod."""
    digest = hashlib.sha256(f"{dag_id}\n{run_id}".encode()).hexdigest()[:10]
    return f"sagelift-ensure-pvc-{digest}-{try_number}"


def ensure_claim_here(spec: ClaimSpec) -> str:
    """Run the in-pod program in this process (a KFP component is itself the pod); the claim's name."""
    from sagelift.pod import ensure_pvc as program

    code = program.main(spec.arguments())
    if code != 0:
        message = f"ensure_pvc: claim {spec.name} could not be ensured (exit code {code}; see the log)"
        raise StepFailed(message) if code in FINAL_EXIT_CODES else StepRetry(message)
    return spec.name


def claim_is_models(labels: dict[str, str] | None, model_name: str) -> bool:
    """A claim teardown may delete: created by sagelift for this model."""
    labels = labels or {}
    return labels.get(MODEL_LABEL) == safe_label_value(model_name)
