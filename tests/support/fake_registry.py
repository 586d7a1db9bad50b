"""Hostile and broken registries on 127.0.0.1 for step 4's isolation tests, and a metadata-service stand-in.

``FakeRegistry`` is a small HTTPS server (the test CA's certificate) that speaks just enough of the
distribution API to drive skopeo:

- ``realm``: ``GET /v2/`` and every unauthenticated request answer 401 with
  ``WWW-Authenticate: Bearer realm="<realm>"``; a request carrying any Bearer token is relayed to the
  ``upstream`` registry (a real docker-registry), so a copy through an allowed realm really completes.
  ``/token`` on the fake itself hands out ``FAKE_TOKEN``, so ``realm=<its own URL>/token`` is the
  ordinary same-origin token flow.
- ``hang``: ``"all"`` accepts TCP and TLS and never answers; ``"after_ping"`` answers ``/v2/`` with 200
  and never answers anything else; ``"blobs"`` relays everything but blob downloads, which never answer.
- ``not_a_registry``: every request gets a 404 HTML page (an HTTPS service that is no registry).
- ``manifest``: every manifest request (``/v2/<name>/manifests/<reference>``) is answered with these
  bytes as ``manifest_type``, whatever the reference (a list, a string, a deeply nested document, an
  index with bad entries); ``/v2/`` answers 200 and blobs 404.

Every request is recorded (method, path, Authorization header) in ``requests``.

``ConnectProxy`` is the HTTPS proxy a worker may sit behind (CONNECT tunnels only).

``MetadataStandIn`` is a plain-HTTP server answering every GET like a cloud metadata endpoint handing
out a credential (``METADATA_TOKEN``), and recording each request. The tests assert it sees none.

What they do not emulate: pushes through the fake (it relays GET and HEAD only), token scopes and
expiry (any Bearer token is accepted), HTTP/2, real metadata paths or IMDSv2 session tokens.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.oci_registry import OciRegistry, TestCa

FAKE_TOKEN = "fake-registry-token"
METADATA_TOKEN = "metadata-service-secret-token"
_RELAYED_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Docker-Content-Digest",
    "Docker-Distribution-Api-Version",
)


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    authorization: str | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Dropped, refused and released connections are what these servers are for: no tracebacks."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _record(self) -> None:
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(SeenRequest(self.command, self.path, self.headers.get("Authorization")))

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class MetadataStandIn:
    """Plain HTTP on 127.0.0.1 answering every GET with a credential document."""

    def __init__(self) -> None:
        self.requests: list[SeenRequest] = []
        self.lock = threading.Lock()

        class Handler(_Handler):
            def do_GET(self) -> None:
                self._record()
                body = json.dumps({"token": METADATA_TOKEN, "access_token": METADATA_TOKEN}).encode()
                self._send(200, body, "application/json")

        self._server = _Server(Handler, self)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True, name="metadata-stand-in").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/latest/meta-data/iam/security-credentials/worker"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class FakeRegistry:
    """An HTTPS registry front that is hostile or broken in one chosen way (see the module docstring)."""

    def __init__(
        self,
        ca: TestCa,
        *,
        realm: str | None = None,
        upstream: OciRegistry | None = None,
        hang: str | None = None,
        not_a_registry: bool = False,
        manifest: bytes | None = None,
        manifest_type: str = "application/vnd.oci.image.manifest.v1+json",
    ) -> None:
        if hang not in (None, "all", "after_ping", "blobs"):
            raise ValueError(f"unknown hang mode {hang!r}")
        self.ca = ca
        self.realm = realm
        self.upstream = upstream
        self.hang = hang
        self.not_a_registry = not_a_registry
        self.manifest = manifest
        self.manifest_type = manifest_type
        self.requests: list[SeenRequest] = []
        self.hung = 0  # connections or requests left unanswered so far
        self.lock = threading.Lock()
        self._released = threading.Event()
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._tls.load_cert_chain(ca.cert_file, ca.key_file)
        self._upstream_tls = ssl.create_default_context(cafile=str(ca.ca_file))
        fake = self

        class Handler(_Handler):
            def setup(self) -> None:
                self.request.settimeout(60)
                self.request = fake._tls.wrap_socket(self.request, server_side=True)
                if fake.hang == "all":
                    fake._hold()
                super().setup()

            def do_GET(self) -> None:
                fake._handle(self)

            def do_HEAD(self) -> None:
                fake._handle(self)

        self._server = _Server(Handler, self)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-registry").start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def token_url(self) -> str:
        return f"https://{self.host}/token"

    def stop(self) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def authorizations(self) -> list[str]:
        with self.lock:
            return [r.authorization for r in self.requests if r.authorization]

    # --- behaviour ----------------------------------------------------------------------------------
    def _hold(self) -> None:
        """Never answer: keep the connection open until the fake stops."""
        with self.lock:
            self.hung += 1
        self._released.wait()
        raise ConnectionAbortedError("released")

    def _handle(self, handler: _Handler) -> None:
        handler._record()
        path = handler.path
        if self.not_a_registry:
            handler._send(404, b"<html><body>Not Found</body></html>", "text/html")
            return
        if path.startswith("/token"):
            handler._send(200, json.dumps({"token": FAKE_TOKEN}).encode(), "application/json")
            return
        if self.manifest is not None and path != "/v2/":
            if "/manifests/" in path:
                digest = "sha256:" + hashlib.sha256(self.manifest).hexdigest()
                handler._send(200, self.manifest, self.manifest_type, {"Docker-Content-Digest": digest})
            else:
                handler._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}', "application/json")
            return
        if self.hang == "after_ping" and path != "/v2/":
            self._hold()
        authorization = handler.headers.get("Authorization") or ""
        if self.realm is not None and not authorization.startswith("Bearer "):
            challenge = f'Bearer realm="{self.realm}",service="fake-registry"'
            handler._send(
                401,
                b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                "application/json",
                {
                    "WWW-Authenticate": challenge,
                    "Docker-Distribution-Api-Version": "registry/2.0",
                },
            )
            return
        if self.hang == "blobs" and "/blobs/" in path and handler.command == "GET":
            self._hold()
        if self.upstream is None or path == "/v2/":
            handler._send(200, b"{}", "application/json", {"Docker-Distribution-Api-Version": "registry/2.0"})
            return
        self._relay(handler)

    def _relay(self, handler: _Handler) -> None:
        assert self.upstream is not None
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.upstream.port, context=self._upstream_tls, timeout=60
        )
        try:
            headers = {
                name: ", ".join(handler.headers.get_all(name) or [])
                for name in ("Accept", "Range")
                if handler.headers.get(name) is not None
            }
            connection.request(handler.command, handler.path, headers=headers)
            answer = connection.getresponse()
            handler.send_response(answer.status)
            for name in _RELAYED_HEADERS:
                value = answer.getheader(name)
                if value is not None:
                    handler.send_header(name, value)
            if answer.getheader("Content-Length") is None:
                handler.send_header("Content-Length", "0")
            handler.end_headers()
            if handler.command != "HEAD":
                while chunk := answer.read(65536):
                    handler.wfile.write(chunk)
        finally:
            connection.close()


class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), sending every tunnel to 127.0.0.1 on the asked port,
    whatever host was asked for; records each CONNECT target. No authentication, no plain requests."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True, name="connect-proxy").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while not head.endswith(b"\r\n\r\n") and len(head) < 8192:
                chunk = client.recv(1)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b" ")[:2]
            if method != b"CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.targets.append(target.decode())
            port = int(target.rsplit(b":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), timeout=60) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
                pump.start()
                _pump(client, upstream)
                pump.join(timeout=5)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def closed_port() -> Any:
    """A 127.0.0.1 port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port
