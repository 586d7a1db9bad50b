"""What a deployed REST API does to a payload on its way to SageMaker and back, read from its configuration.

moto stores an API's configuration but never runs a request through an AWS integration, so the tests
cannot send bytes through the local API. This model applies API Gateway's documented rules to the
configuration read back from the emulated account instead (developer guide, "Content type conversions in
API Gateway", the request and response tables; "binaryMediaTypes" matching):

- a body is binary when its Content-Type (the request) or the integration response's Content-Type (the
  answer) matches one of the API's ``binaryMediaTypes`` (``type/*`` and ``*/*`` wildcards), text
  otherwise;
- the integration's (or integration response's) ``contentHandling`` then converts: CONVERT_TO_TEXT
  base64-encodes binary, CONVERT_TO_BINARY base64-decodes text, undefined passes binary as bytes and
  text as UTF-8 text (binary read as text loses every byte that is not UTF-8);
- for the answer, the caller's first Accept type decides too: text sent to a binary Accept, or binary to
  a text Accept, is base64-encoded when contentHandling is undefined;
- a mapping template for the Content-Type, or passthroughBehavior NEVER without one, means the body is
  not passed through at all (None here);
- integration request headers come from the method request headers the method declares, by the
  integration's ``requestParameters``.

What it does not model: mapping templates themselves (VTL), context parameter mappings (static header
values in quotes are modelled), content encoding (gzip), payload size limits (10 MB), and the Accept list
beyond its first type.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].split(",", 1)[0].strip().lower()


def is_binary(header: str | None, binary_media_types: Sequence[str]) -> bool:
    kind = _media_type(header)
    if not kind or "/" not in kind:
        return False
    major = kind.split("/", 1)[0]
    for pattern in binary_media_types:
        pattern = pattern.lower()
        if pattern in ("*/*", kind) or pattern == f"{major}/*":
            return True
    return False


def _as_text(body: bytes) -> bytes:
    """What reading bytes as UTF-8 text leaves of them."""
    return body.decode("utf-8", errors="replace").encode("utf-8")


def _convert(body: bytes, binary: bool, handling: str | None) -> bytes | None:
    if handling == "CONVERT_TO_TEXT":
        return base64.b64encode(body) if binary else _as_text(body)
    if handling == "CONVERT_TO_BINARY":
        if binary:
            return body
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None  # API Gateway answers 500 for text that is not base64
    return body if binary else _as_text(body)


def integration_request_body(
    api: Mapping[str, Any], integration: Mapping[str, Any], body: bytes, content_type: str | None
) -> bytes | None:
    """The body SageMaker receives, or None when the API would not pass it through."""
    templates = integration.get("requestTemplates") or {}
    if _media_type(content_type) in {k.lower() for k in templates}:
        return None
    if templates and integration.get("passthroughBehavior") == "WHEN_NO_TEMPLATES":
        return None
    if integration.get("passthroughBehavior") == "NEVER":
        return None
    binary = is_binary(content_type, api.get("binaryMediaTypes") or [])
    return _convert(body, binary, integration.get("contentHandling"))


def integration_request_headers(
    method: Mapping[str, Any], integration: Mapping[str, Any], headers: Mapping[str, str]
) -> dict[str, str]:
    """The headers SageMaker receives from the caller's: only those mapped from declared method headers."""
    declared = method.get("requestParameters") or {}
    by_name = {k.lower(): v for k, v in headers.items()}
    sent: dict[str, str] = {}
    for target, source in (integration.get("requestParameters") or {}).items():
        if (
            target.startswith("integration.request.header.")
            and len(source) > 1
            and source[0] == source[-1] == "'"
        ):
            sent[target.removeprefix("integration.request.header.")] = source[1:-1]  # a static value
            continue
        if not (target.startswith("integration.request.header.") and source in declared):
            continue
        if not source.startswith("method.request.header."):
            continue
        value = by_name.get(source.removeprefix("method.request.header.").lower())
        if value is not None:
            sent[target.removeprefix("integration.request.header.")] = value
    return sent


def method_response_body(
    api: Mapping[str, Any],
    integration_response: Mapping[str, Any],
    body: bytes,
    content_type: str | None,
    accept: str | None,
) -> bytes | None:
    """The body the caller receives for SageMaker's ``body`` of ``content_type``."""
    if integration_response.get("responseTemplates"):
        return None
    types = api.get("binaryMediaTypes") or []
    binary, wants_binary = is_binary(content_type, types), is_binary(accept, types)
    handling = integration_response.get("contentHandling")
    if handling is None and types and binary != wants_binary:
        return base64.b64encode(body)
    return _convert(body, binary, handling)
