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

Secrets never reach a command line: credentials go into an auth file (0600) inside a private temporary
directory (0700) removed as soon as skopeo exits, and only the file's path is passed. TLS verification
is always on; extra CAs come from a PEM file copied into a private ``--cert-dir``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tenacity

from sagelift.domain.images import manifest_digest

log = logging.getLogger(__name__)

SKOPEO = "skopeo"


class RegistryError(RuntimeError):
    """A registry operation failed; the message names the image or the registry."""


class ImageNotFoundError(RegistryError):
    """The image, its repository or its tag does not exist."""


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (or their absence)."""


class RegistryTlsError(RegistryError):
    """The registry's certificate is not trusted."""


class RegistryTransientError(RegistryError):
    """A 5xx, a throttle or a dropped connection: worth retrying."""


@dataclass(frozen=True)
class RegistryCredentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class RegistryAccess:
    """How to reach one registry: its host[:port], optional credentials (anonymous when None), extra CAs."""

    host: str
    credentials: RegistryCredentials | None = field(default=None, repr=False)
    ca_file: str | None = None


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    digest: str
    media_type: str | None

    @property
    def document(self) -> dict[str, object]:
        return json.loads(self.raw)


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


def classify_failure(stderr: str, image: str, registries: Sequence[str]) -> RegistryError:
    """Turn skopeo's error text into an error that names what a user has to fix."""
    message = stderr.strip().splitlines()[-1] if stderr.strip() else "skopeo failed without a message"
    named = [r for r in registries if r in stderr] or list(registries)
    registry = named[0] if named else "the registry"
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
    """skopeo, run once per operation with a private auth file and cert dirs.

    ``retry_times`` is skopeo's own retry of each step (connection errors); ``attempts`` re-runs a
    failed skopeo command on a transient error (5xx, throttling), with exponential backoff. A re-run is
    cheap: blobs already in the target are skipped.
    """

    def __init__(
        self,
        skopeo: str = SKOPEO,
        retry_times: int = 3,
        attempts: int = 3,
        backoff_seconds: float = 2.0,
        timeout_seconds: float = 6 * 3600,
    ) -> None:
        self.skopeo = skopeo
        self.retry_times = retry_times
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds

    # --- operations ---------------------------------------------------------------------------------
    def inspect(self, reference: str, access: RegistryAccess) -> Manifest:
        """The manifest (or index) ``reference`` names, exactly as served; raises ImageNotFoundError."""
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
            raw = self._run(args, reference, [access.host], ws.root)
        try:
            media_type = json.loads(raw).get("mediaType")
        except ValueError as err:
            raise RegistryError(f"{reference}: the registry served a manifest that is not JSON") from err
        return Manifest(raw=raw, digest=manifest_digest(raw), media_type=media_type)

    def digest_if_present(self, reference: str, access: RegistryAccess) -> str | None:
        """The digest ``reference`` resolves to in its registry, or None when it does not exist yet."""
        try:
            return self.inspect(reference, access).digest
        except ImageNotFoundError:
            return None

    def copy(
        self,
        source: str,
        source_access: RegistryAccess,
        destination: str,
        destination_access: RegistryAccess,
        *,
        all_platforms: bool = False,
    ) -> str:
        """Copy ``source`` to ``destination`` byte for byte; returns the digest written."""
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
            self._run(args, source, [source_access.host, destination_access.host], ws.root)
            return Path(ws.digestfile).read_text().strip()

    def push_index(self, index: bytes, destination: str, access: RegistryAccess) -> str:
        """Push an index whose platform manifests are already in the destination repository."""
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
            self._run(args, destination, [access.host], ws.root)
            return Path(ws.digestfile).read_text().strip()

    # --- plumbing -----------------------------------------------------------------------------------
    def _run(self, args: list[str], image: str, registries: list[str], home: Path) -> bytes:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(RegistryTransientError),
            stop=tenacity.stop_after_attempt(max(1, self.attempts)),
            wait=tenacity.wait_exponential(multiplier=self.backoff_seconds, max=60),
            before_sleep=lambda state: log.warning(
                "Retrying after: %s", state.outcome.exception() if state.outcome else "?"
            ),
            reraise=True,
        )
        return retrying(self._run_once, args, image, registries, home)

    def _run_once(self, args: list[str], image: str, registries: list[str], home: Path) -> bytes:
        log.info("skopeo %s", " ".join(args[:1] + [a for a in args[1:] if a.startswith("docker://")]))
        try:
            done = subprocess.run(
                [self.skopeo, *args],
                capture_output=True,
                timeout=self.timeout_seconds,
                env=_skopeo_env(home),
                check=False,
            )
        except FileNotFoundError as err:
            raise RegistryError(
                f"skopeo is not installed on this worker ({self.skopeo!r}); "
                "install the Debian package 'skopeo'"
            ) from err
        except subprocess.TimeoutExpired as err:
            raise RegistryTransientError(
                f"copying {image} took longer than {self.timeout_seconds:.0f} s"
            ) from err
        stderr = done.stderr.decode(errors="replace")
        if done.returncode != 0:
            raise classify_failure(stderr, image, registries)
        if args[0] == "copy":
            for line in done.stdout.decode(errors="replace").splitlines():
                log.info("%s", line)
        return done.stdout

    @contextlib.contextmanager
    def _workspace(self, accesses: Sequence[RegistryAccess]) -> Iterator[_Workspace]:
        root = Path(tempfile.mkdtemp(prefix="sagelift-registry-"))  # mode 0700
        try:
            yield _Workspace(root, accesses)
        finally:
            shutil.rmtree(root, ignore_errors=True)


class _Workspace:
    """A private directory holding one auth file, one cert dir per CA file and the digest file."""

    def __init__(self, root: Path, accesses: Sequence[RegistryAccess]) -> None:
        self.root = root
        self.authfile = str(root / "auth.json")
        self.digestfile = str(root / "digest")
        auths: dict[str, dict[str, str]] = {}
        for access in accesses:
            creds = access.credentials
            if creds is None:
                continue
            entry: dict[str, str] = {}
            if creds.username or creds.password:
                import base64

                entry["auth"] = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            if creds.identity_token:
                entry["identitytoken"] = creds.identity_token
            auths[access.host] = entry
        fd = os.open(self.authfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"auths": auths}, handle)
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
