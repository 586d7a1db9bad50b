"""Real OCI registries on 127.0.0.1: Debian's ``docker-registry`` (CNCF distribution 2.8) processes.

A test starts a *source* registry (anonymous pulls and pushes) and an *ECR side* registry that asks for
the user ``AWS`` and the password moto's ``GetAuthorizationToken`` hands out for an account
(``<account>-auth-token``). Both serve TLS with a certificate for 127.0.0.1 signed by a throw-away test
CA (``TestCa``); the product trusts that CA only because the platform configuration names its file
(``platform.ecr.registry_ca_file``), exactly as it would trust a corporate CA.

``FlakyProxy`` sits in front of a registry to inject HTTP 503s and dropped connections.

Each registry's access log is parsed into ``requests()`` so a test can count blob uploads and
downloads ("a re-run moves zero layer bytes").

What it does not emulate: ECR itself. The ECR API (moto) and the ECR-side registry share no state:
images pushed to the registry are invisible to DescribeImages, repositories created through the API
do not gate pushes (distribution accepts any repository name), tag immutability and scan-on-push are
not enforced by the registry, and the password is fixed rather than expiring after 12 hours. Nor does
it emulate the token (``Bearer realm=``) flow that public registries use: the source is anonymous and the
ECR side uses HTTP basic auth, as ECR does (``tests.support.fake_registry`` puts a token flow in front).

The registries listen on 127.0.0.1, which the platform refuses as an image source by default; a test
platform allows them explicitly with ``RegistryPair.platform_ecr_settings()``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOCKER_REGISTRY = "/usr/bin/docker-registry"
# What a test platform lists in platform.ecr.allowed_source_registries to copy from these registries.
LOOPBACK_REGISTRIES = ("127.0.0.1:*",)
HTPASSWD = "/usr/bin/htpasswd"
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) (?P<size>\d+|-)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A name no resolver knows, also on the server certificate: reached only through a proxy stand-in that
# maps it to 127.0.0.1 (loopback itself is never proxied).
PROXIED_NAME = "registry.sagelift.test"


class TestCa:
    """A self-signed CA plus one server certificate for 127.0.0.1, localhost and ``PROXIED_NAME``."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sagelift test CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.DNSName(PROXIED_NAME),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_file = directory / "ca.pem"
        self.cert_file = directory / "server.crt"
        self.key_file = directory / "server.key"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.key_file.chmod(0o600)
        # skopeo reads CAs from a directory of *.crt files
        self.cert_dir = directory / "certs.d"
        self.cert_dir.mkdir(exist_ok=True)
        shutil.copy(self.ca_file, self.cert_dir / "ca.crt")


@dataclass
class AccessLogEntry:
    method: str
    path: str
    status: int


class OciRegistry:
    """One docker-registry process with filesystem storage under ``directory``."""

    def __init__(
        self, directory: Path, ca: TestCa, username: str | None = None, password: str | None = None
    ) -> None:
        self.directory = directory
        self.ca = ca
        self.username = username
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_file = directory / "registry.log"
        self._log_offset = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        storage = self.directory / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.username is not None:
            htpasswd = self.directory / "htpasswd"
            # -i: the password on stdin, never on a command line
            out = subprocess.run(
                [HTPASSWD, "-B", "-i", "-n", self.username],
                input=(self.password or "").encode(),
                check=True,
                capture_output=True,
            ).stdout
            htpasswd.write_bytes(out)
            auth = f"auth:\n  htpasswd:\n    realm: sagelift-test\n    path: {htpasswd}\n"
        config = self.directory / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: sagelift-test-{self.port}\n"
            f"  tls:\n    certificate: {self.ca.cert_file}\n    key: {self.ca.key_file}\n" + auth
        )
        return config

    def start(self) -> OciRegistry:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [DOCKER_REGISTRY, "serve", str(config)],
            stdout=log,
            stderr=log,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_file.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not listen on {self.host}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> OciRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what happened ------------------------------------------------------------------------------
    def requests(self) -> list[AccessLogEntry]:
        """Every request in the access log since the last ``mark()``."""
        with self.log_file.open("rb") as handle:
            handle.seek(self._log_offset)
            text = handle.read().decode(errors="replace")
        return [AccessLogEntry(m["method"], m["path"], int(m["status"])) for m in ACCESS_LINE.finditer(text)]

    def mark(self) -> None:
        """Start counting requests from now."""
        self.log_file.touch()
        self._log_offset = self.log_file.stat().st_size

    def blob_uploads(self) -> list[AccessLogEntry]:
        """Upload sessions started (POST .../blobs/uploads/) since the last mark, mounts included."""
        return [r for r in self.requests() if r.method == "POST" and "/blobs/uploads/" in r.path]

    def blob_downloads(self) -> list[AccessLogEntry]:
        return [
            r
            for r in self.requests()
            if r.method == "GET" and "/blobs/sha256:" in r.path and r.status in (200, 206, 307)
        ]

    def downloaded_blob_bytes(self) -> int:
        """Bytes of the blobs served (GET) since the last mark, sized from storage."""
        total = 0
        for entry in self.blob_downloads():
            match = re.search(r"/blobs/(sha256:[0-9a-f]{64})", entry.path)
            if match:
                total += self.blob_size(match.group(1))
        return total

    def uploaded_blob_bytes(self) -> int:
        """Bytes of the blobs whose uploads completed since the last mark, sized from storage."""
        total = 0
        for entry in self.requests():
            if entry.method == "PUT" and "/blobs/uploads/" in entry.path and entry.status == 201:
                match = re.search(r"digest=sha256(?::|%3A)([0-9a-f]{64})", entry.path)
                if match:
                    total += self.blob_size("sha256:" + match.group(1))
        return total

    def blob_size(self, digest: str) -> int:
        hexdigest = digest.split(":", 1)[1]
        data = (
            self.directory
            / "storage"
            / "docker"
            / "registry"
            / "v2"
            / "blobs"
            / "sha256"
            / hexdigest[:2]
            / hexdigest
            / "data"
        )
        return data.stat().st_size


class FlakyProxy:
    """A TLS-terminating proxy in front of a registry that breaks chosen requests.

    ``fail_with_503`` answers the next N matching requests with 503 Service Unavailable;
    ``drop_after_bytes`` cuts the next matching request's connection after forwarding that many request
    bytes upstream (a dropped connection in the middle of a blob upload). Requests are matched by a
    substring of their request line. Everything else is relayed byte for byte.
    """

    def __init__(self, upstream: OciRegistry) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.fail_with_503 = 0
        self.drop_after_bytes: int | None = None
        self.match = ""
        self.injected: list[str] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_ctx.load_cert_chain(upstream.ca.cert_file, upstream.ca.key_file)
        self._client_ctx = ssl.create_default_context(cafile=str(upstream.ca.ca_file))
        self._stopped = False
        self._cut_line = ""
        self._thread = threading.Thread(target=self._serve, daemon=True, name="flaky-proxy")
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stopped = True
        self._server.close()

    def _serve(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _take(self, request_line: str) -> str | None:
        with self._lock:
            if self.match not in request_line:
                return None
            if self.fail_with_503 > 0:
                self.fail_with_503 -= 1
                self.injected.append(f"503 {request_line}")
                return "503"
            if self.drop_after_bytes is not None:
                return "drop"
        return None

    def _handle(self, raw: socket.socket) -> None:
        try:
            client = self._server_ctx.wrap_socket(raw, server_side=True)
            upstream = self._client_ctx.wrap_socket(
                socket.create_connection(("127.0.0.1", self.upstream.port)), server_hostname="127.0.0.1"
            )
        except (OSError, ssl.SSLError):
            raw.close()
            return
        self._relay(client, upstream)

    def _relay(self, client: ssl.SSLSocket, upstream: ssl.SSLSocket) -> None:
        """One thread per connection: an SSL socket must not be read and written from two threads."""
        budget: list[int | None] = [None]  # request bytes still to relay before this connection is cut
        try:
            while True:
                ready = [s for s in (client, upstream) if s.pending()]
                if not ready:
                    ready, _, _ = select.select([client, upstream], [], [], 30)
                    if not ready:
                        break
                for sock in ready:
                    # readable may mean only a TLS session ticket; never block on it while the other side waits
                    sock.settimeout(0.05)
                    try:
                        data = sock.recv(65536)
                    except (TimeoutError, ssl.SSLWantReadError):
                        continue
                    finally:
                        sock.settimeout(None)
                    if not data:
                        return
                    if sock is upstream:
                        client.sendall(data)
                    elif not self._forward_request_bytes(data, client, upstream, budget):
                        return
        except (OSError, ssl.SSLError):
            pass
        finally:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def _forward_request_bytes(
        self, data: bytes, client: ssl.SSLSocket, upstream: ssl.SSLSocket, budget: list[int | None]
    ) -> bool:
        """Relay client bytes upstream unless a fault is due; False when the connection must end."""
        if b"\r\n" in data[:8192] and data[:1].isalpha():
            line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            if line.split(" ")[0] in ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE") and " HTTP/1" in line:
                action = self._take(line)
                if action == "503":
                    client.sendall(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    return False
                budget[0] = self.drop_after_bytes if action == "drop" else None
                if action == "drop":
                    self._cut_line = line
        remaining = budget[0]
        if remaining is not None:
            allowed = min(len(data), remaining)
            upstream.sendall(data[:allowed])
            budget[0] = remaining - allowed
            if budget[0] > 0:
                return True
            with self._lock:
                if self.drop_after_bytes is None:  # another connection was cut first
                    budget[0] = None
                    upstream.sendall(data[allowed:])
                    return True
                self.drop_after_bytes = None
                self.injected.append(f"drop {self._cut_line}")
            return False
        upstream.sendall(data)
        return True


class RegistryPair:
    """The two registries step 4's tests need: an anonymous source and a password-protected ECR side.

    ``ecr_password`` is what the local ECR API's GetAuthorizationToken returns for the account
    (moto 5.2.5: ``<account>-auth-token`` for the user ``AWS``).
    """

    def __init__(self, root: Path, ecr_password: str) -> None:
        self.ca = TestCa(root / "ca")
        self.source = OciRegistry(root / "source", self.ca).start()
        try:
            self.ecr = OciRegistry(root / "ecr", self.ca, "AWS", ecr_password).start()
        except RuntimeError:
            self.source.stop()
            raise

    def platform_ecr_settings(self, **overrides: object) -> dict[str, object]:
        """``platform.ecr`` for step 4 against this pair: the ECR side as the account's registry, the test
        CA trusted, and the loopback registries allowed as sources (refused by default)."""
        return {
            "registry_endpoint": self.ecr.host,
            "registry_ca_file": str(self.ca.ca_file),
            "allowed_source_registries": list(LOOPBACK_REGISTRIES),
            **overrides,
        }

    def push(self, image_reference: str, repository: str, tag: str) -> str:
        """Push an OCI layout (``oci:<dir>:<tag>``) to the source with skopeo, as a CI job would."""
        ref = f"{self.source.host}/{repository}:{tag}"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-cert-dir",
                str(self.ca.cert_dir),
                image_reference,
                f"docker://{ref}",
            ],
            check=True,
            capture_output=True,
        )
        return ref

    def stop(self) -> None:
        self.source.stop()
        self.ecr.stop()
