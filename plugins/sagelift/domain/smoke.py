"""The smoke test's pure parts: the InvokeEndpoint request from the conf's sample, and how its answer is
reported.

The body the endpoint answers is the model's, so it is untrusted text: the failure message carries only
its first ``EXCERPT_BYTES`` bytes, decoded leniently and escaped (control characters and non-ASCII as
Python escapes, in single quotes), so neither a huge nor a hostile answer reaches the task log or a
notification as it is.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sagelift.domain.endpoint_settings import SmokeTest
from sagelift.domain.errors import SageliftValidationError

EXCERPT_BYTES = 120


def sample_bytes(smoke: SmokeTest) -> bytes:
    """The bytes the smoke test sends: the body's text, or what its base64 decodes to."""
    if not smoke.body_base64:
        return smoke.body.encode("utf-8")
    try:
        return base64.b64decode(smoke.body, validate=True)
    except (binascii.Error, ValueError):
        raise SageliftValidationError.single(
            "endpoint.smoke_test.body", "is not valid base64 (body_base64 is true)"
        ) from None


def build_invoke_endpoint_request(endpoint_name: str, smoke: SmokeTest) -> dict[str, Any]:
    return {
        "EndpointName": endpoint_name,
        "Body": sample_bytes(smoke),
        "ContentType": smoke.content_type,
    }


def body_excerpt(body: bytes | str | None, limit: int = EXCERPT_BYTES) -> str:
    """The first ``limit`` bytes of an answer, escaped to printable ASCII, with ``...`` when cut."""
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else (body or b"")
    text = raw[:limit].decode("utf-8", "replace")
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in escaped)
    return "'" + escaped + ("..." if len(raw) > limit else "") + "'"


def describe_answer(status: int | None, body: bytes | str | None, error: str | None = None) -> str:
    """``status 500, body '...'``, or the error the call ended with when there was no answer."""
    if status is None:
        return f"no answer ({error or 'unknown error'})"
    return f"status {status}, body {body_excerpt(body)}"
