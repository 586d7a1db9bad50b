"""ensure_pvc's operator, executed against the Kubernetes API double with the run's plan in XCom."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowException, AirflowSkipException, TaskDeferred
from kubernetes.client import ApiClient

from sagelift.operators.kubernetes import KubernetesEnsurePvcOperator
from sagelift.steps.pvc import derive_pod_name
from tests.support.k8s_api import KubernetesApiDouble, can_run_pods, validate_object
from tests.support.task_context import FakeTaskInstance, step_plan

pytestmark = pytest.mark.skipif(
    not can_run_pods(), reason="the double's kubelet needs root and unshare --mount"
)

NS = "sagelift"
CONN_ID = "sagelift_k8s_test"
DAG_ID = "sagemaker_deploy"
RUN_ID = "manual__2025-06-01T10:00:00+00:00"
RBAC = Path(__file__).resolve().parents[2] / "plugins/sagelift/assets/k8s/rbac.yaml"


class FakeDag:
    dag_id = DAG_ID


def make_context(*, enabled: bool = True, deferrable: bool = False, **params: Any) -> dict[str, Any]:
    platform = {
        "region": "us-east-1",
        "accounts": {"333333333333": {}},
        "kubernetes": {
            "enabled": enabled,
            "namespace": NS,
            "kubernetes_conn_id": CONN_ID,
            "deferrable": deferrable,
            "startup_timeout_seconds": 30,
            "allowed_storage_classes": ["local-wait"],
        },
    }
    conf = {"model_name": "churn-model", **{k: v for k, v in params.items() if v is not None}}
    plan = step_plan(conf, platform, dag_id=DAG_ID, run_id=RUN_ID)
    ti = FakeTaskInstance({}, dag_id=DAG_ID, task_id="ensure_pvc", run_id=RUN_ID)
    return {"ti": ti, "task_instance": ti, "run_id": RUN_ID, "dag": FakeDag(), "plan": plan}


@pytest.fixture
def k8s(monkeypatch: pytest.MonkeyPatch) -> Any:
    with KubernetesApiDouble(namespaces=("default", NS), enforce_rbac=True) as api:
        api.apply_manifest(RBAC)
        for key, value in api.airflow_connection_env(CONN_ID).items():
            monkeypatch.setenv(key, value)
        yield api


def operator(context: dict[str, Any]) -> KubernetesEnsurePvcOperator:
    """ensure_pvc wired with the context's plan, as the DAG wires it with validate's output."""
    return KubernetesEnsurePvcOperator(
        task_id="ensure_pvc",
        plan=context["plan"],
        startup_check_interval_seconds=0.2,
        base_container_status_polling_interval=0.2,
        poll_interval=0.2,
    )


def run(context: dict[str, Any]) -> Any:
    return operator(context).execute(context)


def test_creates_the_claim_in_a_pod_that_is_deleted_afterwards(
    k8s: KubernetesApiDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    run(make_context())

    [claim] = k8s.pvcs(NS)
    assert claim["metadata"]["name"] == "sagelift-pipeline"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Mi"
    assert claim["metadata"]["labels"]["sagelift/created-by-dag"] == DAG_ID
    assert claim["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sagelift"
    [pod] = k8s.created("pods")
    assert pod["metadata"]["name"] == derive_pod_name(DAG_ID, RUN_ID, 1)
    assert pod["spec"]["serviceAccountName"] == "sagelift-pipeline"
    assert pod["spec"]["containers"][0]["image"] == "python:3.12-slim"
    assert pod["spec"]["containers"][0]["command"][:2] == ["python3", "-c"]
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"memory": "128Mi"}
    assert k8s.pods(NS) == []  # on_finish_action=delete_pod
    program_output = [line for line in k8s.pod_log(NS, pod["metadata"]["name"]).splitlines() if line]
    assert program_output
    task_log = capsys.readouterr().out
    for line in program_output:
        assert line in task_log


def test_conf_overrides_choose_the_claim(k8s: KubernetesApiDouble) -> None:
    run(make_context(pvc_name="team-scratch", pvc_size="1Gi", pvc_storage_class="local-wait"))

    [claim] = k8s.pvcs(NS)
    assert claim["metadata"]["name"] == "team-scratch"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["spec"]["storageClassName"] == "local-wait"


def test_existing_claim_is_untouched(k8s: KubernetesApiDouble) -> None:
    before = k8s.create_claim(NS, "sagelift-pipeline", "50Mi")

    run(make_context())

    [after] = k8s.pvcs(NS)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]


def test_missing_permission_fails_the_task_naming_it(k8s: KubernetesApiDouble) -> None:
    k8s.deny("create", "persistentvolumeclaims")

    with pytest.raises(AirflowException) as failure:
        run(make_context())

    assert "cannot create persistentvolumeclaims" in str(failure.value)
    assert "sagelift/assets/k8s/rbac.yaml" in str(failure.value)
    assert k8s.pvcs(NS) == []
    assert k8s.pods(NS) == []


def test_mismatched_size_fails_the_task(k8s: KubernetesApiDouble) -> None:
    k8s.create_claim(NS, "sagelift-pipeline", "10Mi")

    with pytest.raises(AirflowException) as failure:
        run(make_context(pvc_size="50Mi"))

    assert "10Mi" in str(failure.value)
    assert k8s.pvcs(NS)[0]["spec"]["resources"]["requests"]["storage"] == "10Mi"


def test_skips_when_the_platform_has_no_cluster(k8s: KubernetesApiDouble) -> None:
    with pytest.raises(AirflowSkipException, match=r"kubernetes\.enabled"):
        run(make_context(enabled=False))
    assert k8s.requests == []


def test_a_plan_only_run_ensures_no_claim(k8s: KubernetesApiDouble) -> None:
    with pytest.raises(AirflowSkipException, match=r"^plan_only: "):
        run(make_context(plan_only=True))
    assert k8s.requests == [] and k8s.pvcs(NS) == []


def test_the_pod_spec_sent_passes_schema_validation(k8s: KubernetesApiDouble) -> None:
    context = make_context()
    op = operator(context)
    pod = op._pod_operator(op.read_plan(), context)

    body = ApiClient().sanitize_for_serialization(pod.build_pod_request_obj(context))

    validate_object(body)  # raises the API server's 422 on a malformed pod
    assert body["spec"]["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_deferrable_run_resumes_and_finishes(
    k8s: KubernetesApiDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    context = make_context(deferrable=True)

    with pytest.raises(TaskDeferred) as deferred:
        run(context)

    trigger = deferred.value.trigger

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success"
    resumed = operator(context)  # a resumed deferral runs on a fresh operator
    getattr(resumed, deferred.value.method_name)(context, event)

    assert [c["metadata"]["name"] for c in k8s.pvcs(NS)] == ["sagelift-pipeline"]
    assert k8s.pods(NS) == []
    [pod] = k8s.created("pods")
    task_log = capsys.readouterr().out
    for line in filter(None, k8s.pod_log(NS, pod["metadata"]["name"]).splitlines()):
        assert line in task_log


def test_runs_the_providers_pod_operator_built_at_execute() -> None:
    # The DAG file holds a plain operator (no kubernetes client imported at parse); the pod is the
    # provider's KubernetesPodOperator, made when the task executes.
    context = make_context()
    op = operator(context)

    assert not issubclass(KubernetesEnsurePvcOperator, KubernetesPodOperator)
    pod = op._pod_operator(op.read_plan(), context)
    assert isinstance(pod, KubernetesPodOperator)
    assert (pod.task_id, pod.poll_interval, pod.on_finish_action.value) == ("ensure_pvc", 0.2, "delete_pod")
