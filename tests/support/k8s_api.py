"""A loopback Kubernetes API server with a kubelet that runs pods as local processes.

No real cluster can be had in the test environment, so sagelift's step 1 (a KubernetesPodOperator
running ``sagelift/pod/ensure_pvc.py``) runs against this double instead. It speaks the core/v1 API
over HTTPS the way the kubernetes Python client, kubernetes_asyncio (the deferrable trigger) and
kubectl use it:

- discovery: ``/version``; the legacy documents (``/api``, ``/api/v1``, ``/apis``,
  ``/apis/rbac.authorization.k8s.io[/v1]``) and, when the Accept header negotiates it the way a 1.33
  server does, aggregated discovery on ``/api`` and ``/apis`` (apidiscovery.k8s.io/v2
  ``APIGroupDiscoveryList`` with the resources inline, an ETag and 304 on ``If-None-Match``). So
  Debian's kubectl 1.20 (legacy) and a current 1.30+ kubectl (aggregated) both resolve resources;
- pods: create, get, list (label selectors ``=``, ``==``, ``!=``, ``!key``, ``key``, ``in``, ``notin``;
  field selectors), watch, patch (merge, strategic-as-merge, JSON patch), delete, and ``/log`` with
  ``follow``, ``timestamps``, ``sinceSeconds``, ``tailLines``, streamed chunk by chunk;
- persistentvolumeclaims: create, get, list, watch, delete, with 404 / 409 semantics, the
  DefaultStorageClass admission and a provisioner that binds Immediate-class claims (and
  WaitForFirstConsumer-class claims once a pod that mounts them is scheduled);
- events (list and watch with field selectors), serviceaccounts, namespaces, roles, rolebindings;
- every object carries uid, resourceVersion and creationTimestamp; errors are ``Status`` objects with
  the API server's reasons and codes (400, 401, 403, 404, 405, 409, 415, 422);
- ``kubectl get`` receives server-side ``Table`` output, as from a real API server.

Every created or patched object is validated against the Kubernetes OpenAPI schema
(kubernetes-validate, strict: unknown fields are rejected) plus the API server's own field rules
(names, labels, required image, claim size and access modes), so a malformed pod or claim gets 422.

Authentication is by bearer token: the admin token in ``kubeconfig_path`` (group system:masters), or a
service-account token that the kubelet mounts into a pod (a JWT-shaped token whose ``sub`` is
``system:serviceaccount:<ns>:<name>``). Authorization allows everything unless a test calls ``deny``
or ``enforce_rbac`` (then service accounts get only what the stored Roles/RoleBindings grant).

The kubelet runs a pod's single container ``command + args`` as a local subprocess, in a private
mount namespace (``unshare --mount``, needs root) where the pod's service-account token, CA and
namespace are bind-mounted read-only at the container's mount path
(``/var/run/secrets/kubernetes.io/serviceaccount``) and ``KUBERNETES_SERVICE_HOST/PORT`` point back at
this server. It moves the pod Pending -> Running -> Succeeded/Failed from the real exit code, serves
the merged stdout/stderr as the pod log, emits Scheduled/Pulled/Created/Started events and, for
``terminationMessagePolicy: FallbackToLogsOnError``, copies the log tail into the termination message.

What it does NOT emulate:
- images: nothing is pulled; the command runs with the host's programs on a container-like PATH and a
  clean environment, so a pod without ``command`` (image entrypoint) fails with CreateContainerError;
- isolation beyond the mount namespace: no cgroups, resource limits, users, network namespace or
  security contexts; init containers and sidecars; volumes other than the service-account token
  (a mounted claim is only checked for existence); restarts (every restartPolicy behaves as Never);
- graceful deletion (deletionTimestamp, finalizers such as pvc-protection): deletes are immediate;
- the termination-message file (only FallbackToLogsOnError is honoured); activeDeadlineSeconds;
- PersistentVolumes and StorageClasses as API objects, volume expansion, quantity canonicalisation;
- admission beyond ServiceAccount and DefaultStorageClass; ClusterRoles and ClusterRoleBindings;
  apply (server-side apply), protobuf, HTTP/2, exec/attach/port-forward; OpenAPI endpoints;
- aggregated discovery v2beta1 (a 1.33 server stops serving it by default, gate
  AggregatedDiscoveryRemoveBetaType; so a 1.26-1.29 client reads the legacy documents, as there), ``Stale`` freshness, peer-aggregated discovery (``profile=nopeer`` gets the
  same document: there is one server); pods list only their ``log`` subresource;
- field validation modes: unknown fields are always rejected (a real server only warns by default);
- watch bookmarks and 410 Gone (the change journal is never compacted); watches end at timeoutSeconds
  (capped at 60s).
"""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate

KUBERNETES_VERSION = "1.33.2"
SCHEMA_VERSION = "1.33"
NODE_NAME = "sagelift-double-node"
SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ADMIN_USER = "kubernetes-admin"
MAX_WATCH_SECONDS = 60
RBAC_GROUP = "rbac.authorization.k8s.io"
# The one aggregated discovery form a 1.33 API server serves (AggregatedDiscoveryRemoveBetaType is on).
AGGREGATED_DISCOVERY_GVK = ("apidiscovery.k8s.io", "v2", "APIGroupDiscoveryList")
AGGREGATED_DISCOVERY_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|n|u|m|k|M|G|T|P|E)?$")
_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")


@dataclass(frozen=True)
class ResourceType:
    group: str
    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/v1" if self.group else "v1"


_ALL_VERBS = ("create", "delete", "get", "list", "patch", "watch")
RESOURCES: dict[tuple[str, str], ResourceType] = {
    (r.group, r.plural): r
    for r in (
        ResourceType("", "pods", "Pod", True, _ALL_VERBS, ("po",)),
        ResourceType("", "persistentvolumeclaims", "PersistentVolumeClaim", True, _ALL_VERBS, ("pvc",)),
        ResourceType("", "events", "Event", True, ("create", "get", "list", "watch"), ("ev",)),
        ResourceType(
            "", "serviceaccounts", "ServiceAccount", True, ("create", "delete", "get", "list"), ("sa",)
        ),
        ResourceType("", "namespaces", "Namespace", False, ("create", "get", "list"), ("ns",)),
        ResourceType(RBAC_GROUP, "roles", "Role", True, ("create", "delete", "get", "list")),
        ResourceType(RBAC_GROUP, "rolebindings", "RoleBinding", True, ("create", "delete", "get", "list")),
    )
}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES.values()}
_FIELD_LABELS = {
    "pods": {
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
    },
    "events": {
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
}


class ApiError(Exception):
    """An API failure, rendered as a ``Status`` object with the API server's reason and code."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rfc3339_nano(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _positive_quantity(value: Any) -> bool:
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    if not match:
        return False
    try:
        return Decimal(match.group(1)) > 0
    except InvalidOperation:
        return False


def _label_errors(path: str, labels: Any) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if (
            (prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)))
            or len(name) > 63
            or not _LABEL_NAME.match(name)
        ):
            errors.append(
                (
                    path,
                    f"Invalid value: {key!r}: name part must consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or (value and not _LABEL_NAME.match(value)):
            errors.append(
                (
                    f"{path}",
                    f"Invalid value: {value!r}: a valid label must be an empty string or "
                    "consist of alphanumeric characters, '-', '_' or '.', and must start and "
                    "end with an alphanumeric character (max 63 characters)",
                )
            )
    return errors


def _semantic_errors(kind: str, obj: dict[str, Any]) -> list[tuple[str, str]]:
    """The API server's own validation rules that the OpenAPI schema does not express."""
    meta = obj.get("metadata") or {}
    errors: list[tuple[str, str]] = []
    name = meta.get("name")
    if not name and not meta.get("generateName"):
        errors.append(("metadata.name", "Required value: name or generateName is required"))
    elif name and (len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name)):
        errors.append(
            (
                "metadata.name",
                f"Invalid value: {name!r}: a lowercase RFC 1123 subdomain must "
                "consist of lower case alphanumeric characters, '-' or '.'",
            )
        )
    errors += _label_errors("metadata.labels", meta.get("labels"))
    spec = obj.get("spec") or {}
    if kind == "Pod":
        containers = spec.get("containers") or []
        if not containers:
            errors.append(("spec.containers", "Required value"))
        volumes = {v.get("name") for v in spec.get("volumes") or []}
        for i, container in enumerate(containers):
            cname = container.get("name") or ""
            if not _DNS1123_LABEL.match(cname) or len(cname) > 63:
                errors.append((f"spec.containers[{i}].name", f"Invalid value: {cname!r}: a DNS-1123 label"))
            if not container.get("image"):
                errors.append((f"spec.containers[{i}].image", "Required value"))
            for j, mount in enumerate(container.get("volumeMounts") or []):
                if mount.get("name") not in volumes:
                    errors.append(
                        (f"spec.containers[{i}].volumeMounts[{j}].name", f"Not found: {mount.get('name')!r}")
                    )
        if spec.get("restartPolicy", "Always") not in ("Always", "OnFailure", "Never"):
            errors.append(("spec.restartPolicy", "Unsupported value: " + repr(spec.get("restartPolicy"))))
    elif kind == "PersistentVolumeClaim":
        modes = spec.get("accessModes") or []
        if not modes:
            errors.append(("spec.accessModes", "Required value: at least 1 access mode is required"))
        for mode in modes:
            if mode not in _ACCESS_MODES:
                errors.append(("spec.accessModes", f"Unsupported value: {mode!r}"))
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if storage is None:
            errors.append(("spec.resources[storage]", "Required value"))
        elif not _positive_quantity(storage):
            errors.append(
                ("spec.resources[storage]", f"Invalid value: {storage!r}: must be greater than zero")
            )
        sc = spec.get("storageClassName")
        if sc and not _DNS1123_SUBDOMAIN.match(sc):
            errors.append(("spec.storageClassName", f"Invalid value: {sc!r}"))
    return errors


def validate_object(obj: dict[str, Any]) -> None:
    """Raise the API server's 422 for an object that breaks the schema or the server's field rules."""
    kind = obj.get("kind", "")
    name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName", "")
    causes: list[tuple[str, str]] = []
    try:
        kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path) or "<root>"
        causes.append((path, exc.message))
    causes += _semantic_errors(kind, obj)
    if causes:
        rendered = [f"{f}: {m}" for f, m in causes]
        text = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
        raise ApiError(
            422,
            "Invalid",
            f"{kind} {name!r} is invalid: {text}".replace("'", '"'),
            {
                "name": name,
                "kind": kind,
                "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
            },
        )


def _truthy(value: str | None) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (the Python client sends "True")."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _lookup(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def label_selector(text: str | None) -> Callable[[dict[str, str]], bool]:
    """A matcher for a Kubernetes label selector; raises 400 for one the API server would refuse."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for term in _split_selector(text or ""):
        if m := re.fullmatch(r"([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)", term):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif m := re.fullmatch(r"([^\s!=]+)\s*(==|=|!=)\s*([^\s!=,]*)", term):
            key, op, value = m.groups()
            if op == "!=":
                tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif m := re.fullmatch(r"!\s*([^\s!=]+)", term):
            absent = m.group(1)
            tests.append(lambda labels, k=absent: k not in labels)
        elif re.fullmatch(r"[^\s!=(),]+", term):
            tests.append(lambda labels, k=term: k in labels)
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
    return lambda labels: all(t(labels) for t in tests)


def field_selector(plural: str, text: str | None) -> Callable[[dict[str, Any]], bool]:
    supported = _FIELD_LABELS.get(plural, {"metadata.name", "metadata.namespace"})
    tests: list[Callable[[dict[str, Any]], bool]] = []
    for term in _split_selector(text or ""):
        m = re.fullmatch(r"([^\s!=]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid selector: {term!r}")
        path, op, value = m.groups()
        if path not in supported:
            raise ApiError(
                400,
                "BadRequest",
                f'"{path}" is not a known field selector: only "{", ".join(sorted(supported))}"',
            )
        getter = (
            (lambda o: _lookup(o, "source.component"))
            if path == "source"
            else (lambda o, p=path: _lookup(o, p))
        )
        if op == "!=":
            tests.append(lambda o, g=getter, v=value: str(g(o) or "") != v)
        else:
            tests.append(lambda o, g=getter, v=value: str(g(o) or "") == v)
    return lambda obj: all(t(obj) for t in tests)


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _json_patch(target: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path", "")).split("/")[1:]]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else ""
        kind = op.get("op")
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, op.get("value"))
                else:
                    parent[index] = op.get("value")
            else:
                parent[last] = op.get("value")
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last, None)
        elif kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise ApiError(422, "Invalid", f"the test operation failed on {op.get('path')}")
        else:
            raise ApiError(400, "BadRequest", f"unsupported JSON patch operation {kind!r}")
    return doc


# --- TLS material: one CA and one server certificate per test process -------------------------------
_TLS_LOCK = threading.Lock()
_TLS: tuple[bytes, bytes, bytes] | None = None


def _tls_material() -> tuple[bytes, bytes, bytes]:
    """(ca_pem, server_cert_pem, server_key_pem) for 127.0.0.1 / localhost / kubernetes.default.svc."""
    global _TLS
    with _TLS_LOCK:
        if _TLS is not None:
            return _TLS
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        start = _now() - datetime.timedelta(hours=1)
        end = start + datetime.timedelta(days=2)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sagelift-double-ca")])
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(1)
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(2)
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.DNSName("localhost"),
                        x509.DNSName("kubernetes.default.svc"),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False)
            .sign(ca_key, hashes.SHA256())
        )
        _TLS = (
            ca.public_bytes(serialization.Encoding.PEM),
            cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        return _TLS


def can_run_pods() -> bool:
    """Whether this machine lets the kubelet mount service-account files (root + ``unshare --mount``)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return probe.returncode == 0


@dataclass
class _Container:
    """What the kubelet knows about a running or finished container."""

    log: list[tuple[str, str]] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    done: bool = False


@dataclass
class LoggedRequest:
    method: str
    path: str
    user: str
    code: int
    content_type: str = ""  # of the response: tells aggregated discovery from the legacy documents
    user_agent: str = ""


class KubernetesApiDouble:
    """``with KubernetesApiDouble() as k8s:`` -> ``k8s.url``, ``k8s.kubeconfig_path``, ``k8s.pvcs(ns)`` ..."""

    def __init__(
        self,
        namespaces: Iterable[str] = ("default", "sagelift"),
        *,
        storage_classes: dict[str, str] | None = None,
        default_storage_class: str | None = "standard",
        enforce_rbac: bool = False,
    ):
        self.storage_classes = dict(
            storage_classes
            if storage_classes is not None
            else {"standard": "Immediate", "local-wait": "WaitForFirstConsumer"}
        )
        self.default_storage_class = default_storage_class
        self.enforce_rbac = enforce_rbac
        self.requests: list[LoggedRequest] = []
        self._initial_namespaces = tuple(namespaces)
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._journal: list[tuple[int, str, tuple[str, str, str, str], dict[str, Any]]] = []
        self._rv = itertools.count(1000)
        self._names = itertools.count(1)
        self._cond = threading.Condition(threading.RLock())
        self._containers: dict[tuple[str, str], _Container] = {}
        self._denials: list[tuple[str, str, str | None, str | None]] = []
        self._conflicts: dict[str, int] = {}
        self._tokens: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._workdir: Path | None = None
        self.admin_token = ""

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> KubernetesApiDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="sagelift-k8s-"))
        ca_pem, cert_pem, key_pem = _tls_material()
        (self._workdir / "ca.crt").write_bytes(ca_pem)
        (self._workdir / "server.crt").write_bytes(cert_pem)
        (self._workdir / "server.key").write_bytes(key_pem)
        self.admin_token = self._issue_token(ADMIN_USER, ("system:masters", "system:authenticated"))
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(self._workdir / "server.crt", self._workdir / "server.key")
        tls.set_alpn_protocols(["http/1.1"])
        handler = type("Handler", (_Handler,), {"api": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="k8s-api-double", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        for ns in self._initial_namespaces:
            self.create_namespace(ns)
        self._write_kubeconfig()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            containers = list(self._containers.values())
        for container in containers:
            self._kill(container)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the double is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> str:
        return str(self._path("ca.crt"))

    @property
    def kubeconfig_path(self) -> str:
        return str(self._path("kubeconfig"))

    def _path(self, name: str) -> Path:
        if self._workdir is None:
            raise RuntimeError("the double is not started")
        return self._workdir / name

    def _write_kubeconfig(self) -> None:
        ca_pem = Path(self.ca_path).read_bytes()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "sagelift-double",
            "clusters": [
                {
                    "name": "sagelift-double",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                    },
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": self.admin_token}}],
            "contexts": [
                {
                    "name": "sagelift-double",
                    "context": {"cluster": "sagelift-double", "user": ADMIN_USER, "namespace": "default"},
                }
            ],
        }
        path = Path(self.kubeconfig_path)
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)

    def airflow_connection_env(self, conn_id: str, namespace: str | None = None) -> dict[str, str]:
        """``{"AIRFLOW_CONN_<ID>": <json>}`` for a kubernetes connection to this double."""
        extra: dict[str, Any] = {"kube_config_path": self.kubeconfig_path, "in_cluster": False}
        if namespace:
            extra["namespace"] = namespace
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({"conn_type": "kubernetes", "extra": extra})}

    # --- test controls -----------------------------------------------------------------------------
    def deny(
        self, verb: str, resource: str, *, namespace: str | None = None, user: str | None = None
    ) -> None:
        """Answer 403 to ``verb`` on ``resource`` (e.g. "create", "persistentvolumeclaims") from now on."""
        self._denials.append((verb, resource, namespace, user))

    def inject_conflict_on_create(self, resource: str = "persistentvolumeclaims", times: int = 1) -> None:
        """The next create of ``resource`` loses a race: a concurrent client's object is stored first
        (the same request, as another client would have sent it) and this request gets 409."""
        self._conflicts[resource] = self._conflicts.get(resource, 0) + times

    def create_namespace(self, name: str) -> dict[str, Any]:
        ns = self._create(
            ("", "namespaces"),
            "",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            ADMIN_USER,
        )
        self._create(
            ("", "serviceaccounts"),
            name,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
            ADMIN_USER,
        )
        return ns

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create one object as an administrator (validated and admitted like any API request)."""
        resource = _BY_KIND.get((str(obj.get("apiVersion")), str(obj.get("kind"))))
        if resource is None:
            raise ApiError(
                404, "NotFound", f"the double does not serve {obj.get('apiVersion')} {obj.get('kind')}"
            )
        ns = (obj.get("metadata") or {}).get("namespace", "default") if resource.namespaced else ""
        return self._create((resource.group, resource.plural), ns, obj, ADMIN_USER)

    def apply_manifest(self, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Create every object of a YAML manifest (as an administrator would with kubectl create -f)."""
        import yaml

        return [self.create(doc) for doc in yaml.safe_load_all(Path(path).read_text()) if doc]

    def create_claim(
        self,
        namespace: str,
        name: str,
        size: str = "50Mi",
        *,
        storage_class: str | None = None,
        access_mode: str = "ReadWriteOnce",
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"accessModes": [access_mode], "resources": {"requests": {"storage": size}}}
        if storage_class:
            spec["storageClassName"] = storage_class
        return self._create(
            ("", "persistentvolumeclaims"),
            namespace,
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name},
                "spec": spec,
            },
            ADMIN_USER,
        )

    def run_pod(
        self,
        namespace: str,
        name: str,
        command: list[str],
        *,
        service_account: str = "default",
        labels: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> dict[str, Any]:
        """Create a single-container pod as an administrator and wait until it finishes."""
        self._create(
            ("", "pods"),
            namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "labels": labels or {}},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account,
                    "containers": [
                        {
                            "name": "base",
                            "image": "python:3.12-slim",
                            "command": command,
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                        }
                    ],
                },
            },
            ADMIN_USER,
        )
        return self.wait_for(lambda: self._terminal_pod(namespace, name), timeout, f"pod {namespace}/{name}")

    def _terminal_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        pod = self.get("pods", namespace, name)
        if pod and pod["status"].get("phase") in ("Succeeded", "Failed"):
            return pod
        return None

    def wait_for(self, probe: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = probe()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{what} not reached within {timeout}s")
                self._cond.wait(min(remaining, 0.5))

    # --- reading state (as an administrator would) -------------------------------------------------
    def get(self, plural: str, namespace: str, name: str, group: str = "") -> dict[str, Any] | None:
        with self._cond:
            obj = self._objects.get((group, plural, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def objects(self, plural: str, namespace: str | None = None, group: str = "") -> list[dict[str, Any]]:
        with self._cond:
            return [
                copy.deepcopy(o)
                for (g, p, ns, _), o in sorted(self._objects.items())
                if g == group and p == plural and (namespace is None or ns == namespace)
            ]

    def pvcs(self, namespace: str) -> list[dict[str, Any]]:
        return self.objects("persistentvolumeclaims", namespace)

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        return self.objects("pods", namespace)

    def events(self, namespace: str) -> list[dict[str, Any]]:
        return self.objects("events", namespace)

    def pod_log(self, namespace: str, name: str) -> str:
        with self._cond:
            container = self._containers.get((namespace, name))
            return "".join(line for _, line in container.log) if container else ""

    def created(self, plural: str) -> list[dict[str, Any]]:
        """Every object of ``plural`` ever created, including deleted ones (from the change journal)."""
        with self._cond:
            return [
                copy.deepcopy(o) for _, kind, key, o in self._journal if kind == "ADDED" and key[1] == plural
            ]

    # --- authentication and authorization ----------------------------------------------------------
    def _issue_token(self, user: str, groups: tuple[str, ...]) -> str:
        def part(data: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

        serial = next(self._names)
        token = ".".join(
            [
                part({"alg": "none", "kid": "sagelift-double"}),
                part({"iss": "https://kubernetes.default.svc", "sub": user, "jti": str(serial)}),
                base64.urlsafe_b64encode(f"double-{serial}".encode()).decode().rstrip("="),
            ]
        )
        self._tokens[token] = (user, groups)
        return token

    def authenticate(self, header: str | None) -> tuple[str, tuple[str, ...]]:
        token = header[7:].strip() if header and header.startswith("Bearer ") else None
        if token is None or token not in self._tokens:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return self._tokens[token]

    def authorize(
        self,
        user: str,
        groups: tuple[str, ...],
        verb: str,
        resource: ResourceType,
        sub: str,
        namespace: str,
        name: str | None,
    ) -> None:
        target = f"{resource.plural}/{sub}" if sub else resource.plural
        denied = any(
            v in (verb, "*")
            and r in (target, "*")
            and (n is None or n == namespace)
            and (u is None or u == user)
            for v, r, n, u in self._denials
        )
        if not denied and self.enforce_rbac and user.startswith("system:serviceaccount:"):
            denied = not self._rbac_allows(user, verb, resource.group, target, namespace)
        if denied:
            what = f'{resource.plural} "{name}"' if name else resource.plural
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            raise ApiError(
                403,
                "Forbidden",
                f'{what} is forbidden: User "{user}" cannot {verb} resource '
                f'"{target}" in API group "{resource.group}"{where}',
                {"name": name or "", "group": resource.group, "kind": resource.plural},
            )

    def _rbac_allows(self, user: str, verb: str, group: str, target: str, namespace: str) -> bool:
        _, _, sa_ns, sa_name = user.split(":", 3)
        with self._cond:
            for binding in self.objects("rolebindings", namespace, RBAC_GROUP):
                if not any(
                    s.get("kind") == "ServiceAccount"
                    and s.get("name") == sa_name
                    and s.get("namespace", namespace) == sa_ns
                    for s in binding.get("subjects") or []
                ):
                    continue
                role = self.get("roles", namespace, binding["roleRef"]["name"], RBAC_GROUP)
                for rule in (role or {}).get("rules") or []:
                    if (
                        (set(rule.get("verbs", ())) & {verb, "*"})
                        and (set(rule.get("apiGroups", ())) & {group, "*"})
                        and (set(rule.get("resources", ())) & {target, "*"})
                    ):
                        return True
        return False

    # --- storage -----------------------------------------------------------------------------------
    def _record(self, kind: str, key: tuple[str, str, str, str], obj: dict[str, Any]) -> None:
        with self._cond:
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
            if kind == "DELETED":
                self._objects.pop(key, None)
            else:
                self._objects[key] = obj
            self._journal.append((int(obj["metadata"]["resourceVersion"]), kind, key, copy.deepcopy(obj)))
            self._cond.notify_all()

    def _create(self, rkey: tuple[str, str], namespace: str, body: Any, user: str) -> dict[str, Any]:
        resource = RESOURCES[rkey]
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        if not body.get("kind") or not body.get("apiVersion"):
            raise ApiError(400, "BadRequest", "Object 'Kind' is missing in the request body")
        if (body["apiVersion"], body["kind"]) != (resource.api_version, resource.kind):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body['apiVersion']}) does not "
                f"match the expected API version ({resource.api_version}) "
                f"or kind {body['kind']} is not {resource.kind}",
            )
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if resource.namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
        for server_field in ("uid", "resourceVersion", "creationTimestamp", "selfLink"):
            meta.pop(server_field, None)
        obj.pop("status", None)
        validate_object(obj)
        with self._cond:
            if resource.namespaced and ("", "namespaces", "", namespace) not in self._objects:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"},
                )
            if not meta.get("name"):
                meta["name"] = f"{meta['generateName']}{next(self._names):05x}"[:253]
            key = (resource.group, resource.plural, namespace, meta["name"])
            if resource.plural == "pods":
                self._admit_pod(obj, namespace)
            elif resource.plural == "persistentvolumeclaims":
                self._admit_claim(obj)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_rfc3339(_now()))
            if self._conflicts.get(resource.plural) and key not in self._objects:
                self._conflicts[resource.plural] -= 1
                self._record("ADDED", key, copy.deepcopy(obj))
                self._after_create(resource, obj)
                meta["uid"] = str(uuid.uuid4())
            if key in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{resource.plural} "{meta["name"]}" already exists',
                    {"name": meta["name"], "kind": resource.plural},
                )
            self._record("ADDED", key, obj)
            self._after_create(resource, obj)
            return copy.deepcopy(obj)

    def _after_create(self, resource: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if resource.plural == "pods":
            self._spawn(self._kubelet, meta["namespace"], meta["name"])
        elif resource.plural == "persistentvolumeclaims":
            mode = self.storage_classes.get(obj["spec"].get("storageClassName") or "")
            if mode == "Immediate":
                self._spawn(self._bind_claim, meta["namespace"], meta["name"])
            elif mode is None:
                self._event(
                    obj,
                    "Warning",
                    "ProvisioningFailed",
                    "persistentvolume-controller",
                    f'storageclass.storage.k8s.io "{obj["spec"].get("storageClassName")}" not found',
                )
            else:
                self._event(
                    obj,
                    "Normal",
                    "WaitForFirstConsumer",
                    "persistentvolume-controller",
                    "waiting for first consumer to be created before binding",
                )

    def _admit_pod(self, pod: dict[str, Any], namespace: str) -> None:
        spec = pod["spec"]
        sa_name = spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec["serviceAccount"] = sa_name
        sa = self._objects.get(("", "serviceaccounts", namespace, sa_name))
        if sa is None:
            raise ApiError(
                403,
                "Forbidden",
                f'pods "{pod["metadata"]["name"]}" is forbidden: error looking up '
                f"service account {namespace}/{sa_name}: serviceaccount "
                f'"{sa_name}" not found',
            )
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault("priority", 0)
        automount = spec.get("automountServiceAccountToken", sa.get("automountServiceAccountToken", True))
        volume_name = f"kube-api-access-{next(self._names):05x}"
        if automount is not False:
            spec.setdefault("volumes", []).append(
                {
                    "name": volume_name,
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {
                                            "path": "namespace",
                                            "fieldRef": {
                                                "apiVersion": "v1",
                                                "fieldPath": "metadata.namespace",
                                            },
                                        }
                                    ]
                                }
                            },
                        ],
                    },
                }
            )
        for container in spec["containers"]:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
            container.setdefault(
                "imagePullPolicy",
                "Always"
                if container["image"].endswith(":latest") or ":" not in container["image"].rsplit("/", 1)[-1]
                else "IfNotPresent",
            )
            if automount is not False and not any(
                m.get("mountPath") == SA_MOUNT_PATH for m in container.get("volumeMounts") or []
            ):
                container.setdefault("volumeMounts", []).append(
                    {"name": volume_name, "readOnly": True, "mountPath": SA_MOUNT_PATH}
                )
        requests = any(
            c.get("resources", {}).get("requests") or c.get("resources", {}).get("limits")
            for c in spec["containers"]
        )
        pod["status"] = {"phase": "Pending", "qosClass": "Burstable" if requests else "BestEffort"}

    def _admit_claim(self, claim: dict[str, Any]) -> None:
        spec = claim["spec"]
        if "storageClassName" not in spec and self.default_storage_class:
            spec["storageClassName"] = self.default_storage_class
        spec.setdefault("volumeMode", "Filesystem")
        claim["metadata"].setdefault("finalizers", ["kubernetes.io/pvc-protection"])
        claim["status"] = {"phase": "Pending"}

    def _bind_claim(self, namespace: str, name: str) -> None:
        with self._cond:
            key = ("", "persistentvolumeclaims", namespace, name)
            claim = copy.deepcopy(self._objects.get(key))
            if claim is None or claim["status"].get("phase") == "Bound":
                return
            claim["spec"]["volumeName"] = f"pvc-{claim['metadata']['uid']}"
            claim["metadata"].setdefault("annotations", {}).update(
                {"pv.kubernetes.io/bind-completed": "yes", "pv.kubernetes.io/bound-by-controller": "yes"}
            )
            claim["status"] = {
                "phase": "Bound",
                "accessModes": list(claim["spec"]["accessModes"]),
                "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
            }
            self._record("MODIFIED", key, claim)
            self._event(
                claim,
                "Normal",
                "ProvisioningSucceeded",
                "persistentvolume-controller",
                f"Successfully provisioned volume {claim['spec']['volumeName']}",
            )

    def _event(
        self,
        obj: dict[str, Any],
        type_: str,
        reason: str,
        component: str,
        message: str,
        field_path: str | None = None,
    ) -> None:
        meta = obj["metadata"]
        stamp = _rfc3339(_now())
        involved = {
            "kind": obj["kind"],
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": obj["apiVersion"],
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        event: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{next(self._names):016x}",
                "namespace": meta["namespace"],
                "uid": str(uuid.uuid4()),
                "creationTimestamp": stamp,
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component, **({"host": NODE_NAME} if component == "kubelet" else {})},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": NODE_NAME if component == "kubelet" else "",
        }
        self._record("ADDED", ("", "events", meta["namespace"], event["metadata"]["name"]), event)

    # --- kubelet -----------------------------------------------------------------------------------
    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"k8s-double-{target.__name__}")
        self._threads.append(thread)
        thread.start()

    def _update_pod(
        self, namespace: str, name: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        with self._cond:
            key = ("", "pods", namespace, name)
            pod = copy.deepcopy(self._objects.get(key))
            if pod is None:
                return None
            change(pod)
            self._record("MODIFIED", key, pod)
            return pod

    def _kubelet(self, namespace: str, name: str) -> None:
        pod = self.get("pods", namespace, name)
        if pod is None:
            return
        spec = pod["spec"]
        for volume in spec.get("volumes") or []:
            claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim_name:
                continue
            claim = self.get("persistentvolumeclaims", namespace, claim_name)
            if claim is None:
                self._event(
                    pod,
                    "Warning",
                    "FailedScheduling",
                    "default-scheduler",
                    f'0/1 nodes are available: persistentvolumeclaim "{claim_name}" not found.',
                )
                return
            if (
                self.storage_classes.get(claim["spec"].get("storageClassName") or "")
                == "WaitForFirstConsumer"
            ):
                self._bind_claim(namespace, claim_name)
        started = _now()
        container_spec = spec["containers"][0]
        cname, image = container_spec["name"], container_spec["image"]
        waiting = {
            "name": cname,
            "image": image,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": "ContainerCreating"}},
        }

        def scheduled(p: dict[str, Any]) -> None:
            p["spec"]["nodeName"] = NODE_NAME
            p["status"].update(
                hostIP="127.0.0.1",
                podIP="127.0.0.1",
                podIPs=[{"ip": "127.0.0.1"}],
                startTime=_rfc3339(started),
                containerStatuses=[waiting],
                conditions=self._conditions(started, ready=False),
            )

        pod = self._update_pod(namespace, name, scheduled)
        if pod is None:
            return
        self._event(
            pod,
            "Normal",
            "Scheduled",
            "default-scheduler",
            f"Successfully assigned {namespace}/{name} to {NODE_NAME}",
        )
        container = _Container()
        with self._cond:
            self._containers[(namespace, name)] = container
        try:
            argv, env, sa_dir = self._container_process(pod, container_spec)
        except ApiError as exc:
            self._fail_to_start(namespace, name, pod, waiting, exc.reason, exc.message)
            return
        field_path = f"spec.containers{{{cname}}}"
        self._event(
            pod,
            "Normal",
            "Pulled",
            "kubelet",
            f'Container image "{image}" already present on machine',
            field_path,
        )
        self._event(pod, "Normal", "Created", "kubelet", f"Created container {cname}", field_path)
        try:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=container_spec.get("workingDir") or "/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._fail_to_start(namespace, name, pod, waiting, "StartError", str(exc))
            return
        container.process = process
        running_since = _now()
        container_id = f"sagelift-double://{process.pid}"

        def running(p: dict[str, Any]) -> None:
            p["status"].update(
                phase="Running",
                conditions=self._conditions(started, ready=True),
                containerStatuses=[
                    {
                        **waiting,
                        "ready": True,
                        "started": True,
                        "containerID": container_id,
                        "state": {"running": {"startedAt": _rfc3339(running_since)}},
                    }
                ],
            )

        self._update_pod(namespace, name, running)
        self._event(pod, "Normal", "Started", "kubelet", f"Started container {cname}", field_path)
        if process.stdout is not None:
            for raw in iter(process.stdout.readline, b""):
                with self._cond:
                    container.log.append((_rfc3339_nano(_now()), raw.decode("utf-8", "replace")))
                    self._cond.notify_all()
        code = process.wait()
        if sa_dir is not None:
            shutil.rmtree(sa_dir, ignore_errors=True)
        finished = _now()
        policy = container_spec.get("terminationMessagePolicy", "File")
        message = None
        if code != 0 and policy == "FallbackToLogsOnError":
            with self._cond:
                tail = "".join(line for _, line in container.log[-80:])
            message = tail.encode()[-2048:].decode("utf-8", "replace")

        def terminated(p: dict[str, Any]) -> None:
            state: dict[str, Any] = {
                "exitCode": code,
                "reason": "Completed" if code == 0 else "Error",
                "startedAt": _rfc3339(running_since),
                "finishedAt": _rfc3339(finished),
                "containerID": container_id,
            }
            if code < 0:
                state.update(exitCode=128 - code, signal=-code)
            if message:
                state["message"] = message
            p["status"].update(
                phase="Succeeded" if code == 0 else "Failed",
                conditions=self._conditions(started, ready=False),
                containerStatuses=[
                    {**waiting, "containerID": container_id, "started": False, "state": {"terminated": state}}
                ],
            )

        with self._cond:
            container.done = True
            self._update_pod(namespace, name, terminated)

    def _fail_to_start(
        self,
        namespace: str,
        name: str,
        pod: dict[str, Any],
        waiting: dict[str, Any],
        reason: str,
        message: str,
    ) -> None:
        self._event(pod, "Warning", "Failed", "kubelet", f"Error: {message}")

        def failed(p: dict[str, Any]) -> None:
            p["status"]["containerStatuses"] = [
                {**waiting, "state": {"waiting": {"reason": reason, "message": message}}}
            ]

        with self._cond:
            container = self._containers.get((namespace, name))
            if container:
                container.done = True
            self._update_pod(namespace, name, failed)

    @staticmethod
    def _conditions(since: datetime.datetime, *, ready: bool) -> list[dict[str, Any]]:
        stamp = _rfc3339(since)
        return [
            {
                "type": t,
                "status": "True" if ok else "False",
                "lastProbeTime": None,
                "lastTransitionTime": stamp,
            }
            for t, ok in (
                ("PodReadyToStartContainers", True),
                ("Initialized", True),
                ("Ready", ready),
                ("ContainersReady", ready),
                ("PodScheduled", True),
            )
        ]

    def _container_process(
        self, pod: dict[str, Any], container: dict[str, Any]
    ) -> tuple[list[str], dict[str, str], Path | None]:
        """argv and environment for the container, and the service-account dir it mounts (if any)."""
        if not container.get("command"):
            raise ApiError(
                0,
                "CreateContainerError",
                "the double cannot run an image's entrypoint: give the container a command",
            )
        meta, spec = pod["metadata"], pod["spec"]
        env = {
            "PATH": CONTAINER_PATH,
            "HOSTNAME": meta["name"],
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.port),
            "KUBERNETES_PORT": f"tcp://127.0.0.1:{self.port}",
            "KUBERNETES_PORT_443_TCP": f"tcp://127.0.0.1:{self.port}",
            "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
            "KUBERNETES_PORT_443_TCP_ADDR": "127.0.0.1",
            "KUBERNETES_PORT_443_TCP_PORT": str(self.port),
        }
        fields = {
            "metadata.name": meta["name"],
            "metadata.namespace": meta["namespace"],
            "metadata.uid": meta["uid"],
            "spec.nodeName": NODE_NAME,
            "spec.serviceAccountName": spec["serviceAccountName"],
            "status.podIP": "127.0.0.1",
            "status.hostIP": "127.0.0.1",
        }
        for var in container.get("env") or []:
            if "value" in var or "valueFrom" not in var:
                env[var["name"]] = str(var.get("value", ""))
                continue
            path = ((var["valueFrom"] or {}).get("fieldRef") or {}).get("fieldPath")
            if path not in fields:
                raise ApiError(
                    0,
                    "CreateContainerConfigError",
                    f"the double resolves only fieldRef env vars ({', '.join(sorted(fields))})",
                )
            env[var["name"]] = fields[path]
        argv = [*container["command"], *(container.get("args") or [])]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        sa_mounts = [
            m for m in container.get("volumeMounts") or [] if "projected" in volumes.get(m["name"], {})
        ]
        if not sa_mounts:
            return argv, env, None
        mount_path = sa_mounts[0]["mountPath"]
        if not mount_path.startswith(("/var/run/", "/run/")):
            raise ApiError(
                0, "CreateContainerConfigError", "the double mounts service-account files only under /var/run"
            )
        if not can_run_pods():
            raise ApiError(
                0,
                "CreateContainerError",
                "the double's kubelet needs root and `unshare --mount` to mount the service-account files",
            )
        sa_dir = Path(tempfile.mkdtemp(prefix="sa-", dir=self._workdir))
        user = f"system:serviceaccount:{meta['namespace']}:{spec['serviceAccountName']}"
        token = self._issue_token(
            user,
            ("system:serviceaccounts", f"system:serviceaccounts:{meta['namespace']}", "system:authenticated"),
        )
        (sa_dir / "token").write_text(token)
        (sa_dir / "namespace").write_text(meta["namespace"])
        shutil.copyfile(self.ca_path, sa_dir / "ca.crt")
        target = "/run/" + mount_path.split("/run/", 1)[1]
        script = (
            'set -e; mount -t tmpfs -o mode=755 tmpfs /run; mkdir -p "$2"; mount --bind "$1" "$2"; '
            'mount -o remount,bind,ro "$2"; shift 2; exec "$@"'
        )
        wrapper = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            script,
            "kubelet",
            str(sa_dir),
            target,
        ]
        return [*wrapper, *argv], env, sa_dir

    def _kill(self, container: _Container) -> None:
        process = container.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return

    # --- API operations used by the HTTP handler ---------------------------------------------------
    def read(self, rkey: tuple[str, str], namespace: str, name: str) -> dict[str, Any]:
        with self._cond:
            obj = self._objects.get((rkey[0], rkey[1], namespace, name))
            if obj is None:
                raise ApiError(
                    404, "NotFound", f'{rkey[1]} "{name}" not found', {"name": name, "kind": rkey[1]}
                )
            return copy.deepcopy(obj)

    def select(
        self, rkey: tuple[str, str], namespace: str | None, query: dict[str, str]
    ) -> list[dict[str, Any]]:
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(rkey[1], query.get("fieldSelector"))
        with self._cond:
            return [
                copy.deepcopy(o)
                for (g, p, ns, _), o in sorted(self._objects.items())
                if (g, p) == rkey
                and (namespace is None or ns == namespace)
                and labels(o["metadata"].get("labels") or {})
                and fields(o)
            ]

    def current_rv(self) -> str:
        with self._cond:
            return str(self._journal[-1][0]) if self._journal else "1"

    def patch(
        self, rkey: tuple[str, str], namespace: str, name: str, content_type: str, body: Any
    ) -> dict[str, Any]:
        with self._cond:
            current = self.read(rkey, namespace, name)
            if content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                patched = _merge_patch(current, body)
            elif content_type == "application/json-patch+json":
                if not isinstance(body, list):
                    raise ApiError(400, "BadRequest", "a JSON patch must be a list of operations")
                patched = _json_patch(current, body)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format "
                    "- accepted media types include: application/json-"
                    "patch+json, application/merge-patch+json, "
                    "application/strategic-merge-patch+json",
                )
            for key in ("name", "namespace", "uid", "creationTimestamp"):
                patched.setdefault("metadata", {})[key] = current["metadata"].get(key)
            patched["status"] = current.get("status")
            if rkey[1] == "pods" and patched.get("spec") != current.get("spec"):
                raise ApiError(
                    422,
                    "Invalid",
                    f'Pod "{name}" is invalid: spec: Forbidden: pod updates may not '
                    "change fields other than image, activeDeadlineSeconds, "
                    "tolerations (the double allows none of them)",
                )
            check = copy.deepcopy(patched)
            check.pop("status", None)
            for key in ("uid", "resourceVersion", "creationTimestamp"):
                check["metadata"].pop(key, None)
            validate_object(check)
            self._record("MODIFIED", (rkey[0], rkey[1], namespace, name), patched)
            return copy.deepcopy(patched)

    def delete(self, rkey: tuple[str, str], namespace: str, name: str) -> dict[str, Any]:
        with self._cond:
            obj = self.read(rkey, namespace, name)
            container = self._containers.get((namespace, name)) if rkey == ("", "pods") else None
        if container is not None:
            self._kill(container)
        with self._cond:
            obj = self._objects.get((rkey[0], rkey[1], namespace, name)) or obj
            obj = copy.deepcopy(obj)
            obj["metadata"]["deletionTimestamp"] = _rfc3339(_now())
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            self._record("DELETED", (rkey[0], rkey[1], namespace, name), obj)
            return copy.deepcopy(obj)

    def watch(
        self, rkey: tuple[str, str], namespace: str | None, query: dict[str, str]
    ) -> Iterator[dict[str, Any]]:
        labels = label_selector(query.get("labelSelector"))
        fields = field_selector(rkey[1], query.get("fieldSelector"))
        timeout = min(float(query.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        deadline = time.monotonic() + timeout
        since = int(query["resourceVersion"]) if query.get("resourceVersion", "0") not in ("", "0") else None

        def matches(key: tuple[str, str, str, str], obj: dict[str, Any]) -> bool:
            return (
                (key[0], key[1]) == rkey
                and (namespace is None or key[2] == namespace)
                and labels(obj["metadata"].get("labels") or {})
                and fields(obj)
            )

        with self._cond:
            if since is None:
                pending = [
                    {"type": "ADDED", "object": copy.deepcopy(o)}
                    for k, o in sorted(self._objects.items())
                    if matches(k, o)
                ]
                position = len(self._journal)
            else:
                pending = []
                position = next(
                    (i for i, entry in enumerate(self._journal) if entry[0] > since), len(self._journal)
                )
        while True:
            yield from pending
            with self._cond:
                while position >= len(self._journal):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopping:
                        return
                    self._cond.wait(min(remaining, 0.5))
                entries = self._journal[position:]
                position = len(self._journal)
            pending = [
                {"type": kind, "object": copy.deepcopy(obj)}
                for _, kind, key, obj in entries
                if matches(key, obj)
            ]

    def log_lines(self, namespace: str, name: str, query: dict[str, str]) -> Iterator[str]:
        pod = self.read(("", "pods"), namespace, name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        cname = query.get("container")
        if not cname:
            if len(names) != 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: {names}",
                )
            cname = names[0]
        if cname not in names:
            raise ApiError(400, "BadRequest", f"container {cname} is not valid for pod {name}")
        if _truthy(query.get("previous")):
            raise ApiError(
                400, "BadRequest", f'previous terminated container "{cname}" in pod "{name}" not found'
            )
        status = (pod.get("status") or {}).get("containerStatuses") or []
        state = status[0]["state"] if status else {"waiting": {"reason": "ContainerCreating"}}
        with self._cond:
            container = self._containers.get((namespace, name))
        if "waiting" in state or container is None:
            reason = state.get("waiting", {}).get("reason", "ContainerCreating")
            raise ApiError(
                400, "BadRequest", f'container "{cname}" in pod "{name}" is waiting to start: {reason}'
            )
        follow = _truthy(query.get("follow"))
        stamps = _truthy(query.get("timestamps"))
        cutoff = None
        if query.get("sinceSeconds"):
            cutoff = _rfc3339_nano(_now() - datetime.timedelta(seconds=int(query["sinceSeconds"])))
        position = 0
        with self._cond:
            if query.get("tailLines"):
                position = max(0, len(container.log) - int(query["tailLines"]))
        while True:
            with self._cond:
                while (
                    position >= len(container.log)
                    and follow
                    and not container.done
                    and not self._stopping
                    and ("", "pods", namespace, name) in self._objects
                ):
                    self._cond.wait(0.5)
                lines = container.log[position:]
                position = len(container.log)
                finished = (
                    not follow
                    or container.done
                    or self._stopping
                    or ("", "pods", namespace, name) not in self._objects
                )
            for stamp, text in lines:
                if cutoff is None or stamp >= cutoff:
                    yield f"{stamp} {text}" if stamps else text
            if finished and position >= len(container.log):
                return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: KubernetesApiDouble
    _code = 200
    _content_type = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read api.requests instead
        return

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(30)

    def handle(self) -> None:
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # --- plumbing ----------------------------------------------------------------------------------
    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"invalid JSON in the request body: {exc}") from exc

    def _send_json(
        self,
        code: int,
        payload: Any,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(payload).encode()
        self._code, self._content_type = code, content_type
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_aggregated_discovery(self, document: dict[str, Any]) -> None:
        """As the API server's aggregated discovery handler: an ETag over the document, 304 on a match."""
        etag = '"' + hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest().upper() + '"'
        headers = {"ETag": etag, "Vary": "Accept", "Cache-Control": "public"}
        if self.headers.get("If-None-Match") == etag:
            self._code, self._content_type = 304, AGGREGATED_DISCOVERY_TYPE
            self.send_response(304)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        self._send_json(200, document, AGGREGATED_DISCOVERY_TYPE, headers)

    def _stream(self, content_type: str, chunks: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in chunks:
                if chunk:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        user = "-"
        self._code, self._content_type = 200, ""
        try:
            if parts.path in ("/version", "/healthz", "/livez", "/readyz"):
                self._send_json(200, _version() if parts.path == "/version" else "ok")
                return
            user, groups = self.api.authenticate(self.headers.get("Authorization"))
            self._route(method, parts.path, query, user, groups)
        except ApiError as exc:
            # The body may be unread: close the connection, and say so, so the client does not reuse it
            # (as Go's HTTP server does when it cannot drain a request body).
            closing = method in ("POST", "PATCH", "PUT") and bool(self.headers.get("Content-Length"))
            self._send_json(exc.code, exc.status(), headers={"Connection": "close"} if closing else None)
        finally:
            self.api.requests.append(
                LoggedRequest(
                    method,
                    parts.path,
                    user,
                    self._code,
                    self._content_type,
                    self.headers.get("User-Agent") or "",
                )
            )

    def _route(
        self, method: str, path: str, query: dict[str, str], user: str, groups: tuple[str, ...]
    ) -> None:
        discovery = _discovery(path, self.api)
        if discovery is not None:
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
            if path in ("/api", "/apis") and _wants_aggregated_discovery(self.headers.get("Accept")):
                self._send_aggregated_discovery(_aggregated_discovery(path))
            else:
                self._send_json(200, discovery)
            return
        m = re.fullmatch(
            r"/api/v1(?:/namespaces/([^/]+))?/([^/]+)(?:/([^/]+))?(?:/([^/]+))?", path
        ) or re.fullmatch(r"/apis/([^/]+)/v1(?:/namespaces/([^/]+))?/([^/]+)(?:/([^/]+))?(?:/([^/]+))?", path)
        if m is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if path.startswith("/apis/"):
            group, namespace, plural, name, sub = m.groups()
        else:
            group = ""
            namespace, plural, name, sub = m.groups()
        resource = RESOURCES.get((group, plural or ""))
        if resource is None or (sub and not (plural == "pods" and sub == "log")):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        rkey = (resource.group, resource.plural)
        ns = namespace or ""
        if method == "GET" and sub == "log":
            verb = "get"
        elif method == "GET":
            verb = "get" if name else ("watch" if _truthy(query.get("watch")) else "list")
        else:
            verb = {"POST": "create", "PATCH": "patch", "DELETE": "delete", "PUT": "update"}[method]
        if (
            (method == "POST" and name)
            or (method in ("PATCH", "DELETE", "PUT") and not name)
            or verb not in resource.verbs
        ):
            raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method on {plural}")
        self.api.authorize(user, groups, verb, resource, sub or "", ns, name)
        accept = self.headers.get("Accept", "")
        if sub == "log":
            lines = self.api.log_lines(ns, name or "", query)
            self._stream("text/plain", (line.encode() for line in lines))
        elif verb == "get":
            obj = self.api.read(rkey, ns if resource.namespaced else "", name or "")
            self._send_json(
                200, _table(resource, [obj], self.api.current_rv()) if "as=Table" in accept else obj
            )
        elif verb == "list":
            items = self.api.select(rkey, namespace if resource.namespaced else None, query)
            rv = self.api.current_rv()
            if "as=Table" in accept:
                self._send_json(200, _table(resource, items, rv))
            else:
                self._send_json(
                    200,
                    {
                        "kind": f"{resource.kind}List",
                        "apiVersion": resource.api_version,
                        "metadata": {"resourceVersion": rv},
                        "items": items,
                    },
                )
        elif verb == "watch":
            events = self.api.watch(rkey, namespace if resource.namespaced else None, query)
            self._stream("application/json", (json.dumps(e).encode() + b"\n" for e in events))
        elif verb == "create":
            created = self.api._create(rkey, ns, self._body(), user)
            self._send_json(201, created)
        elif verb == "patch":
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            self._send_json(200, self.api.patch(rkey, ns, name or "", content_type, self._body()))
        elif verb == "delete":
            self._body()
            self._send_json(200, self.api.delete(rkey, ns, name or ""))
        else:
            raise ApiError(405, "MethodNotAllowed", "the double does not support update (PUT)")


def _version() -> dict[str, str]:
    major, minor, _ = KUBERNETES_VERSION.split(".")
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{KUBERNETES_VERSION}",
        "gitCommit": "sagelift-double",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _served(group: str) -> list[ResourceType]:
    """A group's resources in the order the API server lists them: its handlers are installed by path."""
    return sorted((r for r in RESOURCES.values() if r.group == group), key=lambda r: r.plural)


def _discovery(path: str, api: KubernetesApiDouble) -> dict[str, Any] | None:
    """The legacy (unaggregated) discovery documents, one request per group and per group version."""
    if path == "/api":
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{api.port}"}
            ],
        }
    group_entry = {
        "name": RBAC_GROUP,
        "versions": [{"groupVersion": f"{RBAC_GROUP}/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": f"{RBAC_GROUP}/v1", "version": "v1"},
    }
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_entry]}
    if path == f"/apis/{RBAC_GROUP}":
        return {"kind": "APIGroup", "apiVersion": "v1", **group_entry}
    for group, prefix in (("", "/api/v1"), (RBAC_GROUP, f"/apis/{RBAC_GROUP}/v1")):
        if path == prefix:
            listed = []
            for r in _served(group):
                entry: dict[str, Any] = {
                    "name": r.plural,
                    "singularName": r.kind.lower(),
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": list(r.verbs),
                }
                if r.short_names:
                    entry["shortNames"] = list(r.short_names)
                if r.plural == "pods":
                    entry["categories"] = ["all"]
                listed.append(entry)
                if r.plural == "pods":
                    listed.append(
                        {
                            "name": "pods/log",
                            "singularName": "",
                            "namespaced": True,
                            "kind": "Pod",
                            "verbs": ["get"],
                        }
                    )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/v1" if group else "v1",
                "resources": listed,
            }
    return None


def _wants_aggregated_discovery(accept: str | None) -> bool:
    """Content negotiation on /api and /apis as the API server does it.

    The Accept clauses are tried by quality (goautoneg's order); the first JSON clause wins. It selects
    aggregated discovery when its ``g``/``v``/``as`` parameters name apidiscovery.k8s.io/v2
    APIGroupDiscoveryList; a clause that asks for any other conversion (v2beta1, Table) is skipped;
    a plain ``application/json`` (or ``*/*``) clause selects the legacy documents. Unknown parameters
    (``profile=nopeer``) are ignored. Protobuf clauses are skipped: the double only speaks JSON.
    """
    clauses: list[tuple[float, bool, bool, str, str, dict[str, str]]] = []
    for part in (accept or "").split(","):
        media, *raw_params = (p.strip() for p in part.strip().split(";"))
        kind, _, sub = media.partition("/")
        if not sub and kind != "*":
            continue
        params, quality = {}, 1.0
        for raw in raw_params:
            key, eq, value = raw.partition("=")
            if not eq:
                continue
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
            else:
                params[key.strip()] = value.strip()
        clauses.append((-quality, kind == "*", (sub or "*") == "*", kind, sub or "*", params))
    clauses.sort(key=lambda c: c[:3])
    for _, _, _, kind, sub, params in clauses:
        if (kind, sub) not in (("application", "json"), ("application", "*"), ("*", "*")):
            continue
        if params.get("sv") or params.get("stream") not in (None, "", "watch"):
            continue
        convert = (params.get("g"), params.get("v"), params.get("as"))
        if convert == (None, None, None):
            return False
        if convert == AGGREGATED_DISCOVERY_GVK:
            return True
    return False


def _aggregated_discovery(path: str) -> dict[str, Any]:
    """apidiscovery.k8s.io/v2 APIGroupDiscoveryList: /api lists the core group (name ""), /apis the named
    groups, each with its resources inline, so a client needs no request per group version."""

    def kind_of(r: ResourceType) -> dict[str, str]:
        return {"group": r.group, "version": "v1", "kind": r.kind}

    def resource(r: ResourceType) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "resource": r.plural,
            "responseKind": kind_of(r),
            "scope": "Namespaced" if r.namespaced else "Cluster",
            "singularResource": r.kind.lower(),
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.plural == "pods":
            entry["categories"] = ["all"]
            entry["subresources"] = [{"subresource": "log", "responseKind": kind_of(r), "verbs": ["get"]}]
        return entry

    groups = [""] if path == "/api" else sorted({r.group for r in RESOURCES.values()} - {""})
    items = []
    for group in groups:
        # ObjectMeta with only a name; Go's encoder writes the zero creationTimestamp as null
        metadata: dict[str, Any] = (
            {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None}
        )
        items.append(
            {
                "metadata": metadata,
                "versions": [
                    {
                        "version": "v1",
                        "resources": [resource(r) for r in _served(group)],
                        "freshness": "Current",
                    }
                ],
            }
        )
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def _age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    created = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = max(0, int((_now() - created).total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def _table(resource: ResourceType, items: list[dict[str, Any]], rv: str) -> dict[str, Any]:
    """Server-side printing, the ``Table`` that ``kubectl get`` asks for."""
    columns = [("Name", "string", "name")]
    if resource.plural == "persistentvolumeclaims":
        columns += [
            ("Status", "string", ""),
            ("Volume", "string", ""),
            ("Capacity", "string", ""),
            ("Access Modes", "string", ""),
            ("StorageClass", "string", ""),
            ("VolumeAttributesClass", "string", ""),
        ]
    elif resource.plural == "pods":
        columns += [("Ready", "string", ""), ("Status", "string", ""), ("Restarts", "string", "")]
    columns.append(("Age", "string", ""))
    rows = []
    for obj in items:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        cells: list[Any] = [meta["name"]]
        if resource.plural == "persistentvolumeclaims":
            short = {
                "ReadWriteOnce": "RWO",
                "ReadOnlyMany": "ROX",
                "ReadWriteMany": "RWX",
                "ReadWriteOncePod": "RWOP",
            }
            cells += [
                status.get("phase", ""),
                spec.get("volumeName", ""),
                (status.get("capacity") or {}).get("storage", ""),
                ",".join(short.get(m, m) for m in status.get("accessModes") or []),
                spec.get("storageClassName") or "",
                "<unset>",
            ]
        elif resource.plural == "pods":
            statuses = status.get("containerStatuses") or []
            ready = sum(1 for s in statuses if s.get("ready"))
            cells += [f"{ready}/{len(spec.get('containers') or [])}", status.get("phase", ""), "0"]
        cells.append(_age(meta.get("creationTimestamp")))
        rows.append(
            {
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": [
            {"name": n, "type": t, "format": f, "description": n, "priority": 0} for n, t, f in columns
        ],
        "rows": rows,
    }
