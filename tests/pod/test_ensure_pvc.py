"""The in-pod program, run as a pod by the Kubernetes API double's kubelet with the shipped RBAC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sagelift.pod import program_source
from tests.support.k8s_api import KubernetesApiDouble, can_run_pods

pytestmark = pytest.mark.skipif(
    not can_run_pods(), reason="the double's kubelet needs root and unshare --mount"
)

NS = "sagelift"
SA = "sagelift-pipeline"
RBAC = Path(__file__).resolve().parents[2] / "plugins/sagelift/assets/k8s/rbac.yaml"
SA_USER = f"system:serviceaccount:{NS}:{SA}"


@pytest.fixture
def k8s() -> Any:
    with KubernetesApiDouble(namespaces=("default", NS), enforce_rbac=True) as api:
        api.apply_manifest(RBAC)
        yield api


def run(
    k8s: KubernetesApiDouble, *args: str, name: str = "ensure", service_account: str = SA
) -> dict[str, Any]:
    command = ["python3", "-c", program_source("ensure_pvc"), "--claim-name", "pipeline-data", *args]
    return k8s.run_pod(NS, name, command, service_account=service_account)


def exit_code(pod: dict[str, Any]) -> int:
    return pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"]


def termination_message(pod: dict[str, Any]) -> str:
    return pod["status"]["containerStatuses"][0]["state"]["terminated"].get("message", "")


def claim_posts(k8s: KubernetesApiDouble) -> list[int]:
    return [
        r.code
        for r in k8s.requests
        if r.method == "POST" and r.path.endswith("/persistentvolumeclaims") and r.user == SA_USER
    ]


def test_missing_claim_is_created_with_defaults_and_run_labels(k8s: KubernetesApiDouble) -> None:
    pod = run(k8s, "--label", "sagelift/created-by-run=manual__2025-01-01", "--access-mode", "ReadWriteOnce")

    assert pod["status"]["phase"] == "Succeeded"
    [claim] = k8s.pvcs(NS)
    assert claim["metadata"]["name"] == "pipeline-data"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Mi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == "standard"  # the cluster default, set by admission
    assert claim["metadata"]["labels"] == {"sagelift/created-by-run": "manual__2025-01-01"}
    assert claim_posts(k8s) == [201]


def test_requested_storage_class_and_size_are_used(k8s: KubernetesApiDouble) -> None:
    pod = run(k8s, "--size", "1Gi", "--storage-class", "local-wait")

    assert exit_code(pod) == 0
    [claim] = k8s.pvcs(NS)
    assert claim["spec"]["storageClassName"] == "local-wait"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_existing_claim_is_left_untouched(k8s: KubernetesApiDouble) -> None:
    before = k8s.create_claim(NS, "pipeline-data", "1Gi")

    pod = run(k8s, "--size", "1024Mi")  # the same size in other units

    assert exit_code(pod) == 0
    [after] = k8s.pvcs(NS)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"] == k8s.get("persistentvolumeclaims", NS, "pipeline-data")["spec"]
    assert after["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim_posts(k8s) == []


def test_conflict_from_a_concurrent_create_counts_as_success(k8s: KubernetesApiDouble) -> None:
    k8s.inject_conflict_on_create("persistentvolumeclaims")

    pod = run(k8s)

    assert exit_code(pod) == 0
    assert claim_posts(k8s) == [409]
    assert [c["metadata"]["name"] for c in k8s.pvcs(NS)] == ["pipeline-data"]


def test_missing_create_permission_fails_naming_the_permission(k8s: KubernetesApiDouble) -> None:
    k8s.deny("create", "persistentvolumeclaims")

    pod = run(k8s)

    assert pod["status"]["phase"] == "Failed"
    assert exit_code(pod) == 4
    message = termination_message(pod)
    for fact in ("create", "persistentvolumeclaims", SA, NS, "sagelift/assets/k8s/rbac.yaml"):
        assert fact in message
    assert k8s.pvcs(NS) == []


def test_service_account_without_the_role_cannot_even_read_the_claim(k8s: KubernetesApiDouble) -> None:
    # The fixture's RoleBinding names only sagelift-pipeline.
    k8s.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "unbound", "namespace": NS}}
    )

    pod = run(k8s, service_account="unbound")

    assert exit_code(pod) == 4
    assert "unbound cannot get persistentvolumeclaims" in termination_message(pod)


def test_existing_claim_with_a_different_size_is_reported_not_accepted(k8s: KubernetesApiDouble) -> None:
    k8s.create_claim(NS, "pipeline-data", "10Mi")

    pod = run(k8s, "--size", "50Mi")

    assert exit_code(pod) == 3
    message = termination_message(pod)
    assert "10Mi" in message and "50Mi" in message
    assert k8s.pvcs(NS)[0]["spec"]["resources"]["requests"]["storage"] == "10Mi"


def test_existing_claim_with_a_different_class_is_reported(k8s: KubernetesApiDouble) -> None:
    k8s.create_claim(NS, "pipeline-data", "50Mi", storage_class="standard")

    pod = run(k8s, "--storage-class", "local-wait")

    assert exit_code(pod) == 3
    assert "local-wait" in termination_message(pod)


def test_namespace_comes_from_the_service_account_not_the_argument(k8s: KubernetesApiDouble) -> None:
    pod = run(k8s, "--namespace", "default")

    assert exit_code(pod) == 0
    assert k8s.pvcs("default") == []
    assert len(k8s.pvcs(NS)) == 1


def test_waits_for_bound_when_asked(k8s: KubernetesApiDouble) -> None:
    pod = run(k8s, "--wait-for-bound-seconds", "20")

    assert exit_code(pod) == 0
    assert k8s.pvcs(NS)[0]["status"]["phase"] == "Bound"


def test_wait_for_first_consumer_claim_times_out_when_waiting(k8s: KubernetesApiDouble) -> None:
    pod = run(k8s, "--storage-class", "local-wait", "--wait-for-bound-seconds", "1")

    assert exit_code(pod) == 5
    assert "WaitForFirstConsumer" in termination_message(pod)
    assert k8s.pvcs(NS)[0]["status"]["phase"] == "Pending"


def test_bad_size_is_a_usage_error(k8s: KubernetesApiDouble) -> None:
    pod = run(k8s, "--size", "lots")

    assert exit_code(pod) == 2
    assert k8s.pvcs(NS) == []
