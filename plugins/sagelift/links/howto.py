"""The "How to call the model" page the expose_api task's extra link opens.

The invoke URL itself takes a signed POST (AWS_IAM) or an API key: a browser that opens it gets "Missing
Authentication Token", which reads like a broken deployment. So the link opens this page instead,
served by Airflow's API server at ``/sagelift/how-to-call`` (registered by sagelift_plugin.py as a
plugin ASGI app mounted at ``/sagelift``). The page is static: the same bytes for everyone, nothing from a run is rendered by the
server. The link carries the invoke URL in its fragment (never sent to a server); a small script shows
it in the page as text, only when it is an API Gateway invoke URL, and the page's Content-Security-Policy
allows that one script and nothing else. Plain ASGI, so loading the plugin imports no web framework.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

MOUNT_PREFIX = "/sagelift"
PAGE_PATH = "/how-to-call"
URL_PREFIX = MOUNT_PREFIX + PAGE_PATH

_SCRIPT = (
    "(function(){var u='';try{u=decodeURIComponent(location.hash.slice(1));}catch(e){}"
    "if(!/^https:[/][/][a-z0-9-]+[.]execute-api[.][a-z0-9-]+[.]amazonaws[.]com(?:[.]cn)?[/][A-Za-z0-9_.~/-]*$/"
    ".test(u)){return;}"
    "document.querySelectorAll('.invoke-url').forEach(function(e){e.textContent=u;});})();"
)

PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>How to call a sagelift model</title>
<style>body{{font-family:sans-serif;max-width:52rem;margin:2rem auto;line-height:1.5}}
pre{{background:#f4f4f4;padding:.8rem;overflow-x:auto}}code{{background:#f4f4f4}}</style></head>
<body>
<h1>How to call your model</h1>
<p>Invoke URL: <code class="invoke-url">shown in the summarize_run task's log and the run's note</code></p>
<p>The URL takes a <strong>POST</strong> with your request body. It is protected: with the default
<code>AWS_IAM</code> authorization the request must be signed (AWS Signature Version 4, service
<code>execute-api</code>) with credentials allowed to call the API; opening it in a browser answers
"Missing Authentication Token".</p>
<h2>From a notebook</h2>
<pre>from sagelift.client import SageliftClient
client = SageliftClient()   # AIRFLOW_URL, AIRFLOW_USERNAME / AIRFLOW_PASSWORD or AIRFLOW_TOKEN
client.list_models("&lt;account id&gt;")      # each model's invoke URL and endpoint status
client.invoke("&lt;model name&gt;", {{"instances": [[0.3, 1.2]]}}, account="&lt;account id&gt;")</pre>
<p>invoke signs the call with your own AWS credentials (environment, profile, SSO or role).</p>
<h2>From a shell</h2>
<pre>awscurl --service execute-api --region &lt;region&gt; -X POST \\
  -H 'Content-Type: application/json' -d '{{"instances": [[0.3, 1.2]]}}' \\
  <span class="invoke-url">&lt;invoke URL&gt;</span></pre>
<p>An API with <code>API_KEY</code> authorization takes the key's value in the <code>x-api-key</code>
header instead; the platform team gives you the key.</p>
<p>More: the sagelift README, section "Calling a model's API".</p>
<script>{_SCRIPT}</script>
</body></html>
""".encode()

_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (
        b"content-security-policy",
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'".encode(),
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"public, max-age=3600"),
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def how_to_call_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Mounted at ``MOUNT_PREFIX``: the page at ``PAGE_PATH`` for GET and HEAD, 405 for another method,
    404 for any other path. (Lifespan and websocket scopes are ignored.)

    A mount at the page's own path would not do: Starlette matches a mount only below its path
    (``/prefix/...``), and the UI's catch-all route would answer ``/sagelift/how-to-call`` itself.
    """
    if scope["type"] != "http":
        return
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    if root and path.startswith(root):  # Starlette keeps the full path and sets root_path to the mount
        path = path[len(root) :]
    if path.rstrip("/") != PAGE_PATH:
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    method = scope.get("method", "GET")
    if method not in ("GET", "HEAD"):
        await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", b"GET, HEAD")]})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [*HEADERS, (b"content-length", str(len(PAGE)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else PAGE})
