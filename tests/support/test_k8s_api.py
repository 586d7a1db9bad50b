"""The Kubernetes API double answers the way clients nobody here wrote expect: the kubernetes Python
client (used by KubernetesPodOperator) and kubectl."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.support.k8s_api import AGGREGATED_DISCOVERY_TYPE, KubernetesApiDouble, can_run_pods

NS = "sagelift"
needs_kubelet = pytest.mark.skipif(
    not can_run_pods(), reason="the double's kubelet needs root and unshare --mount"
)


@pytest.fixture
def k8s() -> Any:
    with KubernetesApiDouble(namespaces=("default", NS)) as api:
        yield api


@pytest.fixture
def v1(k8s: KubernetesApiDouble) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(k8s.kubeconfig_path))


def pod_body(name: str, command: list[str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [{"name": "base", "image": "python:3.12-slim", "command": command}],
        },
    }


def claim_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Mi"}}, **spec},
    }


def test_claim_get_create_conflict_and_binding(k8s: KubernetesApiDouble, v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_persistent_volume_claim("data", NS)
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["reason"] == "NotFound"

    created = v1.create_namespaced_persistent_volume_claim(NS, claim_body("data"))
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    assert created.status.phase == "Pending"

    with pytest.raises(ApiException) as again:
        v1.create_namespaced_persistent_volume_claim(NS, claim_body("data"))
    assert again.value.status == 409
    assert json.loads(again.value.body)["reason"] == "AlreadyExists"

    k8s.wait_for(lambda: k8s.pvcs(NS)[0]["status"].get("phase") == "Bound", 5, "claim bound")
    bound = v1.read_namespaced_persistent_volume_claim("data", NS)
    assert bound.status.capacity == {"storage": "50Mi"}
    assert [c.metadata.name for c in v1.list_namespaced_persistent_volume_claim(NS).items] == ["data"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (pod_body("no-image", ["true"]) | {"spec": {"containers": [{"name": "base"}]}}, "image"),
        (pod_body("Bad_Name", ["true"]), "metadata.name"),
        (
            {
                **pod_body("unknown", ["true"]),
                "spec": {"containers": [{"name": "b", "image": "x", "colour": 1}]},
            },
            "colour",
        ),
        (pod_body("bad-label", ["true"], {"run": "manual__2025-01-01T00:00:00+00:00"}), "metadata.labels"),
    ],
)
def test_malformed_pods_are_rejected_with_422(v1: client.CoreV1Api, body: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiException) as rejected:
        v1.create_namespaced_pod(NS, body)
    assert rejected.value.status == 422
    assert field in json.loads(rejected.value.body)["message"]


def test_malformed_claims_are_rejected_with_422(v1: client.CoreV1Api) -> None:
    for body in (
        claim_body("no-size", resources={}),
        claim_body("no-modes", accessModes=[]),
        claim_body("zero", resources={"requests": {"storage": "0"}}),
    ):
        with pytest.raises(ApiException) as rejected:
            v1.create_namespaced_persistent_volume_claim(NS, body)
        assert rejected.value.status == 422


def test_authentication_and_denials(k8s: KubernetesApiDouble) -> None:
    anonymous = client.Configuration()
    anonymous.host = k8s.url
    anonymous.ssl_ca_cert = k8s.ca_path
    with pytest.raises(ApiException) as unauthorized:
        client.CoreV1Api(client.ApiClient(anonymous)).list_namespaced_pod(NS)
    assert unauthorized.value.status == 401

    k8s.deny("list", "pods")
    v1 = client.CoreV1Api(config.new_client_from_config(k8s.kubeconfig_path))
    with pytest.raises(ApiException) as forbidden:
        v1.list_namespaced_pod(NS)
    assert forbidden.value.status == 403
    assert 'cannot list resource "pods"' in json.loads(forbidden.value.body)["message"]


def test_pod_in_missing_namespace_or_with_unknown_service_account(v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as no_ns:
        v1.create_namespaced_pod("nowhere", pod_body("p", ["true"]))
    assert no_ns.value.status == 404
    body = pod_body("p", ["true"])
    body["spec"]["serviceAccountName"] = "ghost"
    with pytest.raises(ApiException) as no_sa:
        v1.create_namespaced_pod(NS, body)
    assert no_sa.value.status == 403


@needs_kubelet
def test_pod_lifecycle_labels_patch_logs_events_delete(
    k8s: KubernetesApiDouble, v1: client.CoreV1Api
) -> None:
    script = "import sys; print('hello from the pod'); print('on stderr', file=sys.stderr); sys.exit(3)"
    v1.create_namespaced_pod(NS, pod_body("worker", ["python3", "-c", script], {"app": "a", "tier": "x"}))
    v1.create_namespaced_pod(NS, pod_body("other", ["true"], {"app": "b"}))

    lines = list(
        v1.read_namespaced_pod_log(
            "worker", NS, container="base", follow=True, timestamps=True, _preload_content=False
        ).stream()
    )
    text = b"".join(lines).decode()
    assert "Z hello from the pod\n" in text and "Z on stderr\n" in text

    k8s.wait_for(lambda: k8s.get("pods", NS, "worker")["status"]["phase"] == "Failed", 10, "pod failed")
    pod = v1.read_namespaced_pod("worker", NS)
    assert pod.status.container_statuses[0].state.terminated.exit_code == 3

    def names(selector: str) -> list[str]:
        return sorted(p.metadata.name for p in v1.list_namespaced_pod(NS, label_selector=selector).items)

    assert names("app=a") == ["worker"]
    assert names("app!=a") == ["other"]
    assert names("tier") == ["worker"]
    assert names("!tier") == ["other"]
    assert names("app in (a,b),!tier") == ["other"]

    v1.patch_namespaced_pod("worker", NS, {"metadata": {"labels": {"already_checked": "True"}}})
    assert names("already_checked!=True") == ["other"]

    reasons = [
        e.reason for e in v1.list_namespaced_event(NS, field_selector="involvedObject.name=worker").items
    ]
    assert reasons[:4] == ["Scheduled", "Pulled", "Created", "Started"]

    v1.delete_namespaced_pod("worker", NS, body=client.V1DeleteOptions())
    assert names("") == ["other"]


@needs_kubelet
def test_service_account_files_are_mounted_where_real_pods_find_them(k8s: KubernetesApiDouble) -> None:
    script = (
        "import os; d='/var/run/secrets/kubernetes.io/serviceaccount';"
        "print(open(d+'/namespace').read(), sorted(os.listdir(d)), os.environ['KUBERNETES_SERVICE_PORT'])"
    )
    pod = k8s.run_pod(NS, "reader", ["python3", "-c", script])
    assert pod["status"]["phase"] == "Succeeded"
    assert k8s.pod_log(NS, "reader").split() == [NS, "['ca.crt',", "'namespace',", "'token']", str(k8s.port)]


def test_event_watch_streams_new_events(k8s: KubernetesApiDouble, v1: client.CoreV1Api) -> None:
    seen: list[str] = []

    def consume() -> None:
        for event in watch.Watch().stream(
            v1.list_namespaced_event, NS, timeout_seconds=5, field_selector="involvedObject.name=late"
        ):
            seen.append(event["object"].reason)
            return

    thread = threading.Thread(target=consume)
    thread.start()
    v1.create_namespaced_persistent_volume_claim(NS, claim_body("late", storageClassName="local-wait"))
    thread.join(10)
    assert seen == ["WaitForFirstConsumer"]


def kubectl_minor(user_agent: str) -> int:
    """The client's minor version from its User-Agent, ``kubectl/v1.33.1 (linux/amd64) ...``."""
    match = re.match(r"kubectl/v1\.(\d+)\.", user_agent)
    assert match, f"not a kubectl User-Agent: {user_agent!r}"
    return int(match.group(1))


def test_kubectl_lists_the_claim(k8s: KubernetesApiDouble, tmp_path: Path) -> None:
    """Whichever kubectl is on PATH (system-deps guarantees one): Debian's 1.20 reads the legacy discovery
    documents; a 1.30+ client asks for aggregated discovery and must get it, with no request per group
    version; 1.26-1.29 ask only for v2beta1, which a 1.33 server no longer serves."""
    k8s.create_claim(NS, "pipeline-data", "50Mi")
    k8s.wait_for(lambda: k8s.pvcs(NS)[0]["status"].get("phase") == "Bound", 5, "claim bound")

    def kubectl(*args: str) -> str:
        done = subprocess.run(
            ["kubectl", "--kubeconfig", k8s.kubeconfig_path, "--cache-dir", str(tmp_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    table = kubectl("get", "pvc", "-n", NS)
    header, row = table.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "STATUS", "VOLUME"]
    assert row.split()[:2] == ["pipeline-data", "Bound"]
    assert json.loads(kubectl("get", "pvc", "pipeline-data", "-n", NS, "-o", "json"))["spec"][
        "resources"
    ] == {"requests": {"storage": "50Mi"}}

    discovery = [r for r in k8s.requests if r.path in ("/api", "/apis", "/api/v1")]
    assert discovery, "kubectl made no discovery request"
    aggregated = kubectl_minor(discovery[0].user_agent) >= 30
    assert {r.path for r in discovery} == ({"/api", "/apis"} if aggregated else {"/api", "/apis", "/api/v1"})
    served = {r.content_type for r in discovery if r.path in ("/api", "/apis")}
    assert served == {AGGREGATED_DISCOVERY_TYPE if aggregated else "application/json"}


KUBECTL_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)


def discovery_get(
    k8s: KubernetesApiDouble, path: str, accept: str, etag: str | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        k8s.url + path, headers={"Accept": accept, "Authorization": f"Bearer {k8s.admin_token}"}
    )
    if etag:
        request.add_header("If-None-Match", etag)
    context = ssl.create_default_context(cafile=k8s.ca_path)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), None


@pytest.mark.parametrize(
    ("accept", "aggregated"),
    [
        (KUBECTL_ACCEPT, True),  # client-go 1.30+
        (
            KUBECTL_ACCEPT.replace(
                ";as=APIGroupDiscoveryList", ";as=APIGroupDiscoveryList;profile=nopeer", 1
            ),
            True,
        ),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json", False),
        ("application/json, */*", False),  # client-go before 1.26, the Python client
        ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", False),
        (
            "application/json;q=0.5;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            False,
        ),
        (
            "application/vnd.kubernetes.protobuf,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            True,
        ),
    ],
)
def test_discovery_negotiates_the_aggregated_form(
    k8s: KubernetesApiDouble, accept: str, aggregated: bool
) -> None:
    for path, legacy_kind in (("/api", "APIVersions"), ("/apis", "APIGroupList")):
        code, headers, body = discovery_get(k8s, path, accept)
        assert code == 200
        if aggregated:
            assert headers["Content-Type"] == AGGREGATED_DISCOVERY_TYPE
            assert (body["kind"], body["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2")
            assert headers["Vary"] == "Accept" and headers["ETag"].startswith('"')
        else:
            assert headers["Content-Type"] == "application/json"
            assert body["kind"] == legacy_kind and "ETag" not in headers


def as_legacy(item: dict[str, Any]) -> list[tuple[Any, ...]]:
    """An aggregated group's resources the way client-go's SplitGroupsAndResources turns them into
    an APIResourceList, reduced to what kubectl uses to resolve and print a resource."""
    (version,) = item["versions"]
    rows: list[tuple[Any, ...]] = []
    for r in version["resources"]:
        namespaced = r["scope"] == "Namespaced"
        rows.append(
            (
                r["resource"],
                r["singularResource"],
                namespaced,
                r["responseKind"]["kind"],
                r["verbs"],
                r.get("shortNames", []),
                r.get("categories", []),
            )
        )
        for sub in r.get("subresources", []):
            rows.append(
                (
                    f"{r['resource']}/{sub['subresource']}",
                    "",
                    namespaced,
                    sub["responseKind"]["kind"],
                    sub["verbs"],
                    [],
                    [],
                )
            )
    return rows


def legacy_rows(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            r["name"],
            r["singularName"],
            r["namespaced"],
            r["kind"],
            r["verbs"],
            r.get("shortNames", []),
            r.get("categories", []),
        )
        for r in document["resources"]
    ]


def test_aggregated_discovery_describes_what_the_legacy_documents_do(k8s: KubernetesApiDouble) -> None:
    _, _, core = discovery_get(k8s, "/api", KUBECTL_ACCEPT)
    _, _, named = discovery_get(k8s, "/apis", KUBECTL_ACCEPT)
    assert [i["metadata"].get("name", "") for i in core["items"]] == [""]
    assert [i["metadata"]["name"] for i in named["items"]] == ["rbac.authorization.k8s.io"]
    assert all(v["freshness"] == "Current" for i in core["items"] + named["items"] for v in i["versions"])

    _, _, core_v1 = discovery_get(k8s, "/api/v1", "application/json")
    _, _, rbac_v1 = discovery_get(k8s, "/apis/rbac.authorization.k8s.io/v1", "application/json")
    assert as_legacy(core["items"][0]) == legacy_rows(core_v1)
    assert as_legacy(named["items"][0]) == legacy_rows(rbac_v1)
    pods = next(r for r in core["items"][0]["versions"][0]["resources"] if r["resource"] == "pods")
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert [s["subresource"] for s in pods["subresources"]] == ["log"]
    roles = next(r for r in named["items"][0]["versions"][0]["resources"] if r["resource"] == "roles")
    assert roles["responseKind"] == {"group": "rbac.authorization.k8s.io", "version": "v1", "kind": "Role"}


def test_aggregated_discovery_answers_304_to_its_etag(k8s: KubernetesApiDouble) -> None:
    _, first, _ = discovery_get(k8s, "/apis", KUBECTL_ACCEPT)
    code, again, body = discovery_get(k8s, "/apis", KUBECTL_ACCEPT, etag=first["ETag"])
    assert (code, body, again["ETag"]) == (304, None, first["ETag"])
    code, _, _ = discovery_get(k8s, "/apis", KUBECTL_ACCEPT, etag='"stale"')
    assert code == 200
