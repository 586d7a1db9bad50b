"""Copying images between OCI registries, done by skopeo.

Why skopeo (Debian package ``skopeo``) and not python-dxf or oras: a copy into ECR has to keep digests
exactly, copy multi-platform indexes, skip blobs the target already holds, stream multi-gigabyte layers
with bounded memory, speak both basic auth and the ``Bearer realm=`` token flow, and retry transient
failures. skopeo (containers/image, maintained by the Podman/CRI-O team and used by OpenShift's mirroring)
does all of that (``--preserve-digests``, ``--multi-arch all|index-only``, HEAD before upload,
``--retry-times``) in a separate process, so the worker's memory stays flat whatever the layer size and
throughput is Go's, not Python's. python-dxf would leave manifest lists, cross-registry streaming and
retries to us; oras targets OCI artifacts, is not in Debian stable and has no digest-preserving copy
of docker schema 2 lists.

Credentials never touch a file system or a command line: the auth document lives in an anonymous memory
file (``memfd_create``) that skopeo reads through ``/proc/self/fd/<n>``; it disappears with the last
process holding it, even when the worker is killed mid-copy. skopeo dies with its parent (``setpriv
--pdeathsig``) and bounds itself (``--command-timeout``). Each operation's private directory (0700: CA
copies, the digest file, skopeo's temporary blobs) carries its owner's pid; every operation removes the
directories of owners that are gone. TLS verification is always on; extra CAs come from a PEM file
copied into a private ``--cert-dir``.

A source registry chosen by a run's conf (``RegistryAccess.realm_rules`` set) is probed before skopeo
talks to it: ``GET /v2/`` with a bounded time and size and no redirects, whose ``Bearer realm=`` must pass
the platform's rules (``TokenRealmRules``), so skopeo is never sent to fetch a token from a metadata
service or a cluster-internal URL. Its network failures (closed port, plain HTTP, TLS, DNS, no answer)
all read as one message, so a task log is no port scanner. Every operation ends within
``CopyLimits.bound_seconds(size)`` of its start, retries included, and a timeout names the registries.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import io
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import tenacity

from sagelift.domain.images import (
    CopyLimits,
    TokenRealmRules,
    image_blob_bytes,
    index_entries,
    is_index,
    is_metadata_or_link_local,
    manifest_digest,
    parse_manifest,
    parse_www_authenticate,
    split_host_port,
)

log = logging.getLogger(__name__)

SKOPEO = "skopeo"
WORKSPACE_PREFIX = "sagelift-registry-"
# A workspace without an owner file predates owner files (or is seconds old): older than the longest
# copy the previous version allowed, nobody uses it any more.
LEGACY_WORKSPACE_MAX_AGE_SECONDS = 6 * 3600
PROBE_TIMEOUT_SECONDS = 60.0
PROBE_MAX_HEADER_BYTES = 64 * 1024
MAX_INDEX_ENTRIES_MEASURED = 64


class RegistryError(RuntimeError):
    """A registry operation failed; the message names the image or the registry."""


class ImageNotFoundError(RegistryError):
    """The image, its repository or its tag does not exist."""


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (or their absence)."""


class RegistryTlsError(RegistryError):
    """The platform's registry presented a certificate that is not trusted."""


class RegistryPolicyError(RegistryError):
    """The platform's rules refuse what a registry asked for (a token realm elsewhere): final."""


class RegistryTimeoutError(RegistryError):
    """An operation ran out of its time bound; the message names the registries."""


class RegistryTransientError(RegistryError):
    """A 5xx, a throttle or a dropped connection: worth retrying."""


class RegistryUnreachableError(RegistryTransientError):
    """A conf-chosen registry did not answer as an OCI registry over HTTPS; why is deliberately not said."""


@dataclass(frozen=True)
class RegistryCredentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach one registry: its host[:port], optional credentials (anonymous when None), extra CAs.

    ``realm_rules`` marks a registry a run's conf chose: it is probed before each operation, its token
    realm must pass these rules, and its network failures are reported without detail.
    """

    host: str
    credentials: RegistryCredentials | None = field(default=None, repr=False)
    ca_file: str | None = None
    realm_rules: TokenRealmRules | None = None


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as served (``raw``), with its parsed and checked ``document``."""

    raw: bytes
    digest: str
    media_type: str | None
    document: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, raw: bytes, reference: str) -> Manifest:
        """Bounded and shape-checked (sagelift.domain.images.parse_manifest); ManifestError otherwise."""
        document = parse_manifest(raw, reference)
        return cls(raw, manifest_digest(raw), document.get("mediaType"), document)


@dataclass(frozen=True)
class _Deadline:
    at: float
    minutes: float

    @classmethod
    def after(cls, seconds: float) -> _Deadline:
        return cls(time.monotonic() + seconds, seconds / 60)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def shown(self) -> str:
        return f"{self.minutes:.3g} min"


def unreachable(host: str, deadline: _Deadline | None = None) -> RegistryUnreachableError:
    """The one message for every network failure of a conf-chosen registry."""
    within = f" within {deadline.shown}" if deadline is not None else ""
    return RegistryUnreachableError(
        f"cannot reach registry {host}: no OCI registry answered over HTTPS{within} (refused, timed out, "
        "DNS, TLS or not a registry; details withheld)"
    )


_NOT_FOUND = re.compile(
    r"manifest unknown|name unknown|repository name not known|not found|"
    r"no such manifest|does not exist",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"unauthorized|authentication required|access denied|denied:|invalid username|"
    r"status 401|status 403|401 Unauthorized|403 Forbidden",
    re.IGNORECASE,
)
_TLS = re.compile(r"x509:|certificate signed by unknown authority|tls: failed to verify", re.IGNORECASE)
_TRANSIENT = re.compile(
    r"\b50[0-4]\b|\b429\b|too many requests|service unavailable|bad gateway|"
    r"connection reset|connection refused|broken pipe|unexpected EOF|\bEOF\b|i/o timeout|"
    r"TLS handshake timeout|timeout awaiting|server closed",
    re.IGNORECASE,
)
_NETWORK = re.compile(
    r"connection refused|connection reset|broken pipe|\bEOF\b|i/o timeout|no such host|"
    r"server misbehaving|network is unreachable|no route to host|dial tcp|x509:|tls:|"
    r"certificate|handshake|HTTP response to HTTPS client|malformed HTTP|pinging container registry",
    re.IGNORECASE,
)
_DEADLINE = re.compile(r"context deadline exceeded|context canceled", re.IGNORECASE)


def classify_failure(
    stderr: str, image: str, registries: Sequence[str], opaque: Collection[str] = ()
) -> RegistryError:
    """Turn skopeo's error text into an error that names what a user has to fix.

    Network failures involving an ``opaque`` registry (one a run's conf chose) get the one generic
    message of ``unreachable``, whatever skopeo said.
    """
    message = stderr.strip().splitlines()[-1] if stderr.strip() else "skopeo failed without a message"
    named = [r for r in registries if r in stderr] or list(registries)
    registry = named[0] if named else "the registry"
    if _DEADLINE.search(stderr):
        return RegistryTimeoutError(
            f"{image}: registry {' or '.join(named)} stopped answering before the time bound "
            "(platform.ecr.copy_timeout_*)"
        )
    if _NETWORK.search(stderr) and any(r in opaque for r in named):
        return unreachable(next(r for r in named if r in opaque))
    if _AUTH.search(stderr):
        return RegistryAuthError(
            f"registry {registry} refused authentication while copying {image}: {message}"
        )
    if _TLS.search(stderr):
        return RegistryTlsError(
            f"registry {registry} presented a certificate that is not trusted (add its CA to "
            f"platform.ecr.registry_ca_file): {message}"
        )
    if _TRANSIENT.search(stderr):
        return RegistryTransientError(f"transient failure talking to {registry} for {image}: {message}")
    if _NOT_FOUND.search(stderr):
        return ImageNotFoundError(f"image {image} not found: {message}")
    return RegistryError(f"copying {image} failed: {message}")


class RegistryHook:
    """skopeo, run once per operation with its credentials in memory and a private workspace.

    ``retry_times`` is skopeo's own retry of each step (connection errors); ``attempts`` re-runs a
    failed skopeo command on a transient error (5xx, throttling), with exponential backoff, as long as
    the operation's time bound (``limits``) lasts. A re-run is cheap: blobs already in the target are
    skipped.
    """

    def __init__(
        self,
        skopeo: str = SKOPEO,
        retry_times: int = 3,
        attempts: int = 3,
        backoff_seconds: float = 2.0,
        limits: CopyLimits | None = None,
        probe_timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
    ) -> None:
        self.skopeo = skopeo
        self.retry_times = retry_times
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.limits = limits or CopyLimits()
        self.probe_timeout_seconds = probe_timeout_seconds

    # --- operations ---------------------------------------------------------------------------------
    def inspect(self, reference: str, access: RegistryAccess) -> Manifest:
        """The manifest (or index) ``reference`` names, exactly as served; raises ImageNotFoundError."""
        return self._inspect(reference, access, _Deadline.after(self.limits.bound_seconds(0)))

    def digest_if_present(self, reference: str, access: RegistryAccess) -> str | None:
        """The digest ``reference`` resolves to in its registry, or None when it does not exist yet."""
        try:
            return self.inspect(reference, access).digest
        except ImageNotFoundError:
            return None

    def image_bytes(self, reference: str, access: RegistryAccess, *, all_platforms: bool = False) -> int:
        """The blob bytes a copy of ``reference`` moves at most, from its manifests (for the time bound).

        For an index: the sum over its platforms when all are copied, else the largest one.
        """
        return self._image_bytes(
            reference, access, all_platforms, _Deadline.after(self.limits.bound_seconds(0))
        )

    def _image_bytes(
        self, reference: str, access: RegistryAccess, all_platforms: bool, deadline: _Deadline
    ) -> int:
        manifest = self._inspect(reference, access, deadline)
        document = manifest.document
        if not is_index(manifest.media_type, document):
            return image_blob_bytes(document)
        name = _repository_of(reference)
        sizes = [
            image_blob_bytes(self._inspect(f"{name}@{entry['digest']}", access, deadline).document)
            for entry in index_entries(reference, document)[:MAX_INDEX_ENTRIES_MEASURED]
        ]
        return sum(sizes) if all_platforms else max(sizes, default=0)

    def copy(
        self,
        source: str,
        source_access: RegistryAccess,
        destination: str,
        destination_access: RegistryAccess,
        *,
        all_platforms: bool = False,
        size_bytes: int | None = None,
    ) -> str:
        """Copy ``source`` to ``destination`` byte for byte; returns the digest written.

        The time bound grows with ``size_bytes`` (measured from the source's manifests when None).
        """
        started = time.monotonic()
        if size_bytes is None:
            measuring = _Deadline.after(self.limits.bound_seconds(0))
            size_bytes = self._image_bytes(source, source_access, all_platforms, measuring)
        bound = self.limits.bound_seconds(size_bytes)
        deadline = _Deadline(started + bound, bound / 60)  # measuring counts against the copy's bound
        with self._workspace([source_access, destination_access]) as ws:
            args = [
                "copy",
                "--preserve-digests",
                "--retry-times",
                str(self.retry_times),
                "--authfile",
                ws.authfile,
                "--digestfile",
                ws.digestfile,
                "--multi-arch",
                "all" if all_platforms else "system",
                *ws.cert_args("--src-cert-dir", source_access),
                *ws.cert_args("--dest-cert-dir", destination_access),
                f"docker://{source}",
                f"docker://{destination}",
            ]
            self._run(args, source, [source_access, destination_access], ws, deadline)
            return Path(ws.digestfile).read_text().strip()

    def push_index(self, index: bytes, destination: str, access: RegistryAccess) -> str:
        """Push an index whose platform manifests are already in the destination repository."""
        deadline = _Deadline.after(self.limits.bound_seconds(len(index)))
        with self._workspace([access]) as ws:
            layout = ws.root / "layout"
            blobs = layout / "blobs" / "sha256"
            blobs.mkdir(parents=True)
            digest = manifest_digest(index)
            (blobs / digest.split(":", 1)[1]).write_bytes(index)
            media_type = json.loads(index).get("mediaType", "application/vnd.oci.image.index.v1+json")
            (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
            (layout / "index.json").write_text(
                json.dumps(
                    {
                        "schemaVersion": 2,
                        "manifests": [
                            {
                                "mediaType": media_type,
                                "digest": digest,
                                "size": len(index),
                                "annotations": {"org.opencontainers.image.ref.name": "index"},
                            }
                        ],
                    }
                )
            )
            args = [
                "copy",
                "--preserve-digests",
                "--multi-arch",
                "index-only",
                "--retry-times",
                str(self.retry_times),
                "--authfile",
                ws.authfile,
                "--digestfile",
                ws.digestfile,
                *ws.cert_args("--dest-cert-dir", access),
                f"oci:{layout}:index",
                f"docker://{destination}",
            ]
            self._run(args, destination, [access], ws, deadline)
            return Path(ws.digestfile).read_text().strip()

    def probe(self, access: RegistryAccess, deadline: _Deadline | None = None) -> None:
        """Ask the registry's API root who issues its tokens; refuse a realm its rules do not allow.

        One ``GET /v2/``: bounded in time and header size, redirects not followed. 200 (anonymous) and
        401 with its challenges are registry answers; anything else, or no answer, is ``unreachable``.
        """
        rules = access.realm_rules or TokenRealmRules()
        deadline = deadline or _Deadline.after(self.probe_timeout_seconds)
        host, port = split_host_port(access.host)
        connect_to = "registry-1.docker.io" if host == "docker.io" else host
        try:
            status, headers = _get_api_root(
                connect_to, port or 443, access.ca_file, min(self.probe_timeout_seconds, deadline.remaining())
            )
        except _ResolvesInside as err:
            raise RegistryPolicyError(
                f"registry {access.host} resolves to {err}, a link-local or metadata address"
            ) from None
        except (OSError, ssl.SSLError, ValueError, http.client.HTTPException):
            raise unreachable(access.host, deadline) from None
        if status == 200:
            return
        if status != 401:
            raise unreachable(access.host, deadline)
        for scheme, params in parse_www_authenticate(headers.get_all("WWW-Authenticate") or []):
            if scheme == "bearer":
                reason = rules.refusal(params.get("realm", ""), access.host)
                if reason is not None:
                    raise RegistryPolicyError(reason)

    # --- plumbing -----------------------------------------------------------------------------------
    def _inspect(self, reference: str, access: RegistryAccess, deadline: _Deadline) -> Manifest:
        with self._workspace([access]) as ws:
            args = [
                "inspect",
                "--raw",
                "--retry-times",
                str(self.retry_times),
                "--authfile",
                ws.authfile,
                *ws.cert_args("--cert-dir", access),
                f"docker://{reference}",
            ]
            raw = self._run(args, reference, [access], ws, deadline)
        return Manifest.parse(raw, reference)

    def _run(
        self,
        args: list[str],
        image: str,
        accesses: Sequence[RegistryAccess],
        ws: _Workspace,
        deadline: _Deadline,
    ) -> bytes:
        exponential = tenacity.wait_exponential(multiplier=self.backoff_seconds, max=60)

        def wait(state: tenacity.RetryCallState) -> float:
            return max(0.0, min(exponential(state), deadline.remaining()))

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RegistryTransientError),
            stop=lambda state: state.attempt_number >= max(1, self.attempts) or deadline.remaining() <= 0,
            wait=wait,
            before_sleep=lambda state: log.warning(
                "Retrying after: %s", state.outcome.exception() if state.outcome else "?"
            ),
            reraise=True,
        )
        return retrying(self._run_once, args, image, accesses, ws, deadline)

    def _skopeo_missing(self, image: str) -> RegistryError:
        # Amazon MWAA cannot install Debian packages: its runs use images that need no copy.
        return RegistryError(
            f"skopeo is not installed on this worker ({self.skopeo!r}), which copying {image} needs: "
            "install the Debian package 'skopeo' on the workers, or, where that is impossible "
            "(Amazon MWAA), push the image to the scientist account's ECR first or use an AWS-owned "
            "image; copy_images copies neither (README: Amazon MWAA)"
        )

    def _run_once(
        self,
        args: list[str],
        image: str,
        accesses: Sequence[RegistryAccess],
        ws: _Workspace,
        deadline: _Deadline,
    ) -> bytes:
        hosts = [a.host for a in accesses]
        for access in accesses:
            if access.realm_rules is not None:
                self.probe(access, deadline)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise _timed_out(image, hosts, deadline)
        if shutil.which(self.skopeo) is None:  # checked first: setpriv would only say it cannot run it
            raise self._skopeo_missing(image)
        log.info("skopeo %s", " ".join(args[:1] + [a for a in args[1:] if a.startswith("docker://")]))
        command = [
            self.skopeo,
            # skopeo's own bound, should this process die and leave it behind without --pdeathsig
            "--command-timeout",
            f"{int(remaining) + 30}s",
            "--tmpdir",
            str(ws.tmp),
            *args,
        ]
        try:
            done = subprocess.run(
                _die_with_parent(command),
                capture_output=True,
                timeout=remaining,
                env=_skopeo_env(ws.root),
                pass_fds=(ws.auth_fd,),
                check=False,
            )
        except FileNotFoundError as err:
            raise self._skopeo_missing(image) from err
        except subprocess.TimeoutExpired:
            raise _timed_out(image, hosts, deadline) from None
        stderr = done.stderr.decode(errors="replace")
        if done.returncode != 0:
            opaque = [a.host for a in accesses if a.realm_rules is not None]
            raise classify_failure(stderr, image, hosts, opaque)
        if args[0] == "copy":
            for line in done.stdout.decode(errors="replace").splitlines():
                log.info("%s", line)
        return done.stdout

    @contextlib.contextmanager
    def _workspace(self, accesses: Sequence[RegistryAccess]) -> Iterator[_Workspace]:
        sweep_stale_workspaces()
        root = Path(tempfile.mkdtemp(prefix=WORKSPACE_PREFIX))  # mode 0700
        workspace: _Workspace | None = None
        try:
            workspace = _Workspace(root, accesses)
            yield workspace
        finally:
            if workspace is not None:
                workspace.close()
            shutil.rmtree(root, ignore_errors=True)


def _timed_out(image: str, hosts: Sequence[str], deadline: _Deadline) -> RegistryTimeoutError:
    return RegistryTimeoutError(
        f"{image}: registry {' or '.join(hosts)} did not finish within {deadline.shown} "
        "(platform.ecr.copy_timeout_*)"
    )


def _repository_of(reference: str) -> str:
    """``host/repo:tag`` or ``host/repo@sha256:...`` -> ``host/repo``."""
    name = reference.split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    return name[:colon] if colon > slash else name


class _ResolvesInside(ValueError):
    """The registry's name resolves to a link-local or metadata address (the message is the address)."""


def _get_api_root(
    host: str, port: int, ca_file: str | None, timeout: float
) -> tuple[int, http.client.HTTPMessage]:
    """``GET /v2/`` over TLS; the status and headers, read within ``timeout`` seconds and 64 KiB.

    Through the HTTPS proxy the environment names, as skopeo does (Go's rules: ``https_proxy``,
    ``no_proxy``, never for loopback); without one, a name resolving to a link-local or metadata
    address is refused before connecting.
    """
    if timeout <= 0:
        raise TimeoutError
    until = time.monotonic() + timeout
    proxy = https_proxy_for(host)
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if proxy is None:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        for *_, address in addresses:
            if is_metadata_or_link_local(str(address[0])):
                raise _ResolvesInside(str(address[0]))
        raw = socket.socket(addresses[0][0], socket.SOCK_STREAM)
        raw.settimeout(max(0.001, until - time.monotonic()))
        try:
            raw.connect(addresses[0][4])
        except OSError:
            raw.close()
            raise
    else:
        raw = socket.create_connection(proxy.address, timeout=max(0.001, until - time.monotonic()))
    with raw:
        if proxy is not None:
            authorization = f"Proxy-Authorization: Basic {proxy.credentials}\r\n" if proxy.credentials else ""
            raw.sendall(f"CONNECT {hostport} HTTP/1.1\r\nHost: {hostport}\r\n{authorization}\r\n".encode())
            status, _ = _read_head(raw, until)
            if status != 200:
                raise ConnectionError(f"the proxy answered CONNECT with {status}")
        with context.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(
                f"GET /v2/ HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: sagelift-probe\r\n"
                "Accept: application/json\r\nConnection: close\r\n\r\n".encode()
            )
            return _read_head(tls, until)


def _read_head(sock: socket.socket, until: float) -> tuple[int, http.client.HTTPMessage]:
    """An HTTP/1 response's status and headers, read byte by byte up to the blank line: nothing after
    it is consumed (a TLS handshake may follow a proxy's answer), bounded in time and size."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        remaining = until - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed before a complete HTTP response")
        data += chunk
        if len(data) > PROBE_MAX_HEADER_BYTES:
            raise ValueError("response headers too large")
    status_line, _, header_block = data.partition(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
        raise ValueError("not an HTTP/1 response")
    return int(rest[:3]), http.client.parse_headers(io.BytesIO(header_block))


@dataclass(frozen=True)
class _Proxy:
    address: tuple[str, int]
    credentials: str | None = field(default=None, repr=False)  # base64 of user:password


def https_proxy_for(host: str) -> _Proxy | None:
    """The HTTP proxy skopeo would tunnel a request to ``host`` through, from the environment."""
    if host == "localhost" or host.endswith(".localhost"):
        return None
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback:
            return None
    proxies = urllib.request.getproxies_environment()
    url = proxies.get("https")
    if not url or urllib.request.proxy_bypass(host):
        return None
    parsed = urlsplit(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        return None
    credentials = None
    if parsed.username is not None:
        pair = f"{unquote(parsed.username)}:{unquote(parsed.password or '')}"
        credentials = base64.b64encode(pair.encode()).decode()
    return _Proxy((parsed.hostname, parsed.port or 80), credentials)


class _Workspace:
    """A private directory (CA copies, digest file, skopeo's temporary files, the owner's pid) and the
    auth document in an anonymous memory file that skopeo reads as ``/proc/self/fd/<n>``."""

    def __init__(self, root: Path, accesses: Sequence[RegistryAccess]) -> None:
        self.root = root
        (root / "owner").write_text(_owner_stamp(os.getpid()) or "")
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        self.digestfile = str(root / "digest")
        auths: dict[str, dict[str, str]] = {}
        for access in accesses:
            creds = access.credentials
            if creds is None:
                continue
            entry: dict[str, str] = {}
            if creds.username or creds.password:
                entry["auth"] = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            if creds.identity_token:
                entry["identitytoken"] = creds.identity_token
            auths[access.host] = entry
        if not hasattr(os, "memfd_create"):
            raise RegistryError("copying images needs Linux (memfd_create keeps credentials off disk)")
        self.auth_fd = os.memfd_create("sagelift-registry-auth", os.MFD_CLOEXEC)
        os.fchmod(self.auth_fd, 0o600)
        os.write(self.auth_fd, json.dumps({"auths": auths}).encode())
        self.authfile = f"/proc/self/fd/{self.auth_fd}"
        self._cert_dirs: dict[str, str] = {}
        for access in accesses:
            if access.ca_file and access.ca_file not in self._cert_dirs:
                cert_dir = root / f"certs-{len(self._cert_dirs)}"
                cert_dir.mkdir()
                try:
                    shutil.copyfile(access.ca_file, cert_dir / "ca.crt")
                except OSError as err:
                    raise RegistryError(
                        f"cannot read the CA file {access.ca_file} for {access.host}: {err.strerror}"
                    ) from err
                self._cert_dirs[access.ca_file] = str(cert_dir)

    def cert_args(self, flag: str, access: RegistryAccess) -> list[str]:
        if access.ca_file:
            return [flag, self._cert_dirs[access.ca_file]]
        return []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.auth_fd)


def _owner_stamp(pid: int) -> str | None:
    """``<pid> <start time>`` of a live process (the start time tells a reused pid apart), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{pid} {fields[19]}" if len(fields) > 19 else None


def sweep_stale_workspaces(parent: Path | None = None) -> list[Path]:
    """Remove this user's registry workspaces whose owner process is gone; returns what was removed."""
    parent = parent or Path(tempfile.gettempdir())
    removed = []
    for path in parent.glob(f"{WORKSPACE_PREFIX}*"):
        try:
            info = path.lstat()
        except OSError:  # removed since the listing (another process's sweep or its owner)
            continue
        if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid():
            continue
        try:
            stamp = (path / "owner").read_text().strip()
        except FileNotFoundError:  # an older workspace, or one whose owner has not written its stamp yet
            stamp = ""
        except OSError:
            continue
        if stamp:
            alive = _owner_stamp(int(stamp.split()[0])) == stamp if stamp.split()[0].isdigit() else False
        else:
            alive = time.time() - info.st_mtime < LEGACY_WORKSPACE_MAX_AGE_SECONDS
        if not alive:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            log.info("Removed the registry workspace %s left by a process that is gone", path)
    return removed


@functools.cache
def _setpriv() -> str | None:
    """util-linux's setpriv when it supports --pdeathsig (2.33+), else None."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    probe = subprocess.run([path, "--pdeathsig", "KILL", "--", "true"], capture_output=True, check=False)
    return path if probe.returncode == 0 else None


def _die_with_parent(command: list[str]) -> list[str]:
    """``command`` run so that the kernel kills it when the worker dies (no orphan keeps copying)."""
    setpriv = _setpriv()
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else command


def _skopeo_env(home: Path) -> dict[str, str]:
    """The worker's environment, with HOME in the private directory: skopeo falls back to
    ~/.docker/config.json and ~/.config/containers/auth.json, and a worker's own logins must not leak into
    (or change the identity of) a run's copy."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME")
    }
    env.setdefault("PATH", "/usr/bin:/bin")
    env["HOME"] = str(home)
    return env
