"""Make sure the pipeline's PersistentVolumeClaim exists in this pod's namespace (pipeline step 1).

Runs inside a pod, as ``python3 -c <this source> --claim-name ... --size ...``, on a stock Python image:
standard library only, so there is no image to build and nothing to install at pod start. It talks to
the Kubernetes API the way every in-cluster client does: ``https://$KUBERNETES_SERVICE_HOST:
$KUBERNETES_SERVICE_PORT`` with the pod's service-account token and CA from
``/var/run/secrets/kubernetes.io/serviceaccount``. The namespace comes from that directory too, so the
claim lands where the pipeline's pods run; ``--namespace`` is only the fallback for a pod whose token
is not mounted.

Behaviour, in order:
1. read the claim; when it exists, compare it with the request: a different size, storage class or a
   missing access mode is reported and fails the step instead of silently running on the wrong volume;
2. on 404 create it (name, size, access mode, optional storage class, labels from the run); a 409
   from a concurrent creator counts as success once the winner's claim matches the request;
3. optionally wait until the claim is Bound (``--wait-for-bound-seconds``; 0 does not wait, because a
   WaitForFirstConsumer storage class keeps a claim Pending until a pod mounts it).

It exits 0 only when the claim exists. Every failure prints one line saying what is wrong and what to
do, which the task log shows (the pod uses terminationMessagePolicy FallbackToLogsOnError, so it is
also the task's failure message). The token is never printed.

Exit codes: 0 ok, 1 API unreachable or unexpected answer, 2 bad arguments, 3 existing claim differs
from the request, 4 permission missing (403) or token rejected (401), 5 not Bound in time.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal, InvalidOperation
from typing import Any

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
RBAC_FILE = "sagelift/assets/k8s/rbac.yaml"
BOUND_POLL_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 30.0

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_MISMATCH, EXIT_FORBIDDEN, EXIT_NOT_BOUND = 0, 1, 2, 3, 4, 5

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|n|u|m|k|M|G|T|P|E)?$")


class StepFailed(Exception):
    """Ends the program with a one-line explanation and an exit code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def say(message: str, level: str = "INFO") -> None:
    # A leading level word lets the Airflow task log show the line at that level.
    print(f"{level}: ensure_pvc: {message}", flush=True)


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes resource quantity (``50Mi``, ``1G``, ``1.5Gi``, ``1e9``) as a number of units."""
    match = _QUANTITY.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from exc
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _DECIMAL[suffix]


def service_account_name(token: str) -> str | None:
    """The service account a projected token belongs to (its ``sub`` claim), without verifying it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (binascii.Error, ValueError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    if isinstance(subject, str) and subject.startswith("system:serviceaccount:"):
        return subject.rsplit(":", 1)[-1]
    return None


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return None


class KubernetesApi:
    """The few core/v1 calls this step needs, over HTTPS with the pod's service-account identity."""

    def __init__(self, sa_dir: str, fallback_namespace: str | None, fallback_sa: str | None):
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise StepFailed(
                EXIT_API,
                "KUBERNETES_SERVICE_HOST/PORT are not set: this program must run inside a Kubernetes pod",
            )
        if ":" in host:
            host = f"[{host}]"
        self.base = f"https://{host}:{port}"
        token = read_text(os.path.join(sa_dir, "token"))
        if not token:
            raise StepFailed(
                EXIT_FORBIDDEN,
                f"no service-account token at {sa_dir}/token; the pod needs "
                "automountServiceAccountToken (see " + RBAC_FILE + ")",
            )
        self._token = token
        namespace = read_text(os.path.join(sa_dir, "namespace")) or fallback_namespace
        if not namespace:
            raise StepFailed(
                EXIT_USAGE, f"no namespace: {sa_dir}/namespace is missing and --namespace was not given"
            )
        self.namespace = namespace
        self.service_account = service_account_name(token) or fallback_sa or "this pod's service account"
        ca_file = os.path.join(sa_dir, "ca.crt")
        if not os.path.isfile(ca_file):
            raise StepFailed(EXIT_API, f"no cluster CA certificate at {ca_file}")
        self._tls = ssl.create_default_context(cafile=ca_file)

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=self._tls, timeout=REQUEST_TIMEOUT_SECONDS) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = {"message": raw.decode("utf-8", "replace")[:500]}
            return err.code, payload if isinstance(payload, dict) else {}
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise StepFailed(EXIT_API, f"cannot reach the Kubernetes API at {self.base}: {reason}") from err

    def claim_path(self, name: str | None = None) -> str:
        path = f"/api/v1/namespaces/{urllib.parse.quote(self.namespace)}/persistentvolumeclaims"
        return f"{path}/{urllib.parse.quote(name)}" if name else path

    def refuse(self, status: int, payload: dict[str, Any], verb: str) -> StepFailed:
        """Turn an unexpected answer into a failure that says what to do about it."""
        message = payload.get("message") or payload.get("reason") or "no message"
        if status == 403:
            return StepFailed(
                EXIT_FORBIDDEN,
                f"serviceaccount {self.service_account} cannot {verb} persistentvolumeclaims in namespace "
                f"{self.namespace}: grant {verb} on persistentvolumeclaims ({RBAC_FILE}). "
                f"API server said: {message}",
            )
        if status == 401:
            return StepFailed(
                EXIT_FORBIDDEN,
                f"the API server rejected this pod's service-account token (401 Unauthorized): {message}",
            )
        return StepFailed(EXIT_API, f"{verb} persistentvolumeclaims failed with HTTP {status}: {message}")


def describe(claim: dict[str, Any]) -> str:
    spec = claim.get("spec") or {}
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    phase = (claim.get("status") or {}).get("phase", "unknown")
    modes = ",".join(spec.get("accessModes") or [])
    return (
        f"size {size}, access {modes or 'none'}, class {spec.get('storageClassName') or 'none'}, "
        f"phase {phase}, uid {(claim.get('metadata') or {}).get('uid')}"
    )


def differences(claim: dict[str, Any], args: argparse.Namespace) -> list[str]:
    spec = claim.get("spec") or {}
    found: list[str] = []
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    try:
        same_size = size is not None and parse_quantity(str(size)) == parse_quantity(args.size)
    except ValueError:
        same_size = False
    if not same_size:
        found.append(f"size is {size} but {args.size} was requested")
    if args.storage_class and spec.get("storageClassName") != args.storage_class:
        found.append(
            f"storage class is {spec.get('storageClassName') or 'none'} but "
            f"{args.storage_class} was requested"
        )
    if args.access_mode not in (spec.get("accessModes") or []):
        found.append(f"access modes are {spec.get('accessModes')} but {args.access_mode} was requested")
    return found


def check_existing(api: KubernetesApi, claim: dict[str, Any], args: argparse.Namespace) -> None:
    problems = differences(claim, args)
    if problems:
        raise StepFailed(
            EXIT_MISMATCH,
            f"claim {args.claim_name} in namespace {api.namespace} already exists and differs from the "
            f"request: {'; '.join(problems)}. Use the existing claim's values, or resize or delete the "
            "claim (its data goes with it) before running again.",
        )


def build_claim(args: argparse.Namespace, namespace: str) -> dict[str, Any]:
    labels: dict[str, str] = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise StepFailed(EXIT_USAGE, f"--label {item!r} is not KEY=VALUE")
        labels[key] = value
    spec: dict[str, Any] = {
        "accessModes": [args.access_mode],
        "resources": {"requests": {"storage": args.size}},
    }
    if args.storage_class:
        spec["storageClassName"] = args.storage_class
    metadata: dict[str, Any] = {"name": args.claim_name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}


def ensure_claim(api: KubernetesApi, args: argparse.Namespace) -> dict[str, Any]:
    status, claim = api.request("GET", api.claim_path(args.claim_name))
    if status == 200:
        check_existing(api, claim, args)
        say(
            f"claim {args.claim_name} already exists in namespace {api.namespace}, left untouched "
            f"({describe(claim)})"
        )
        return claim
    if status != 404:
        raise api.refuse(status, claim, "get")
    status, created = api.request("POST", api.claim_path(), build_claim(args, api.namespace))
    if status in (200, 201):
        say(f"created claim {args.claim_name} in namespace {api.namespace} ({describe(created)})")
        return created
    if status != 409:
        raise api.refuse(status, created, "create")
    status, claim = api.request("GET", api.claim_path(args.claim_name))
    if status != 200:
        raise api.refuse(status, claim, "get")
    check_existing(api, claim, args)
    say(f"claim {args.claim_name} was created concurrently by another run; using it ({describe(claim)})")
    return claim


def wait_for_bound(api: KubernetesApi, claim: dict[str, Any], args: argparse.Namespace) -> None:
    # The Role grants get, not watch, so this polls; the pod's own deadline bounds it as well.
    deadline = time.monotonic() + args.wait_for_bound_seconds
    while (claim.get("status") or {}).get("phase") != "Bound":
        if time.monotonic() >= deadline:
            phase = (claim.get("status") or {}).get("phase", "unknown")
            raise StepFailed(
                EXIT_NOT_BOUND,
                f"claim {args.claim_name} is {phase}, not Bound, "
                f"after {args.wait_for_bound_seconds}s. A WaitForFirstConsumer storage class binds only when "
                "a pod mounts the claim: set wait_for_bound_seconds to 0 for such classes, otherwise check "
                "the claim's events (kubectl describe pvc).",
            )
        time.sleep(BOUND_POLL_SECONDS)
        status, claim = api.request("GET", api.claim_path(args.claim_name))
        if status != 200:
            raise api.refuse(status, claim, "get")
    say(f"claim {args.claim_name} is Bound to volume {(claim.get('spec') or {}).get('volumeName')}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ensure_pvc", description="Ensure a PersistentVolumeClaim exists.")
    parser.add_argument("--claim-name", required=True)
    parser.add_argument("--size", default="50Mi")
    parser.add_argument("--access-mode", default="ReadWriteOnce")
    parser.add_argument("--storage-class", default=None)
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--namespace", default=None, help="used only when the pod has no namespace file")
    parser.add_argument("--service-account", default=None, help="named in messages when the token has none")
    parser.add_argument("--wait-for-bound-seconds", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        parse_quantity(args.size)
    except ValueError as exc:
        parser.error(str(exc))
    if args.wait_for_bound_seconds < 0:
        parser.error("--wait-for-bound-seconds must be 0 or more")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        api = KubernetesApi(SERVICE_ACCOUNT_DIR, args.namespace, args.service_account)
        claim = ensure_claim(api, args)
        if args.wait_for_bound_seconds:
            wait_for_bound(api, claim, args)
    except StepFailed as failure:
        say(str(failure), level="ERROR")
        return failure.code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
