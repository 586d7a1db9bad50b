"""API Gateway pieces that moto 5.2.5 lacks, added to the local AWS for sagelift's step 8 tests.

Call ``install()`` before the LocalAws server handles its first API Gateway request: moto's server
builds its per-service URL map once, on first use, so a route added later is never seen. Idempotent.

Added on top of moto 5.2.5:
- ``TagResource``, ``GetTags`` and ``UntagResource`` on a REST API's ARN
  (``arn:aws:apigateway:<region>::/restapis/<id>``). moto routes only stage ARNs and answers 404 for
  an API's ARN. Tags are merged, read and removed on the API exactly as ``CreateRestApi`` stores them.
- ``DeleteRestApi`` of an unknown id answers ``NotFoundException`` as AWS does (moto raises a KeyError,
  which reaches the client as a bare 500).
- ``CreateRestApi`` keeps its ``binaryMediaTypes`` (moto drops them).
- ``UpdateRestApi`` ``add``/``remove`` of ``/binaryMediaTypes/<type>`` names the media type in the path
  (JSON-pointer escaped, ``image~1png``), as AWS documents; moto reads it from ``value`` only.

What it does not emulate: tag limits (50 per resource) and the aws: prefix rule, tagging of any other
API Gateway resource type (API keys, usage plans, deployments), or the DeleteRestApi throttle
(one call per 30 seconds per account) real AWS applies.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

_REST_API_ARN_PATH = (
    "{0}/tags/arn:(?P<partition>[^/]+):apigateway:(?P<region_name>[^/]+)::/restapis/(?P<function_id>[^/]+)$"
)
_MEDIA_TYPES_PATH = "/binaryMediaTypes/"
_REST_API_ARN_RE = re.compile(r"^arn:[^:]+:apigateway:[^:]+::/restapis/(?P<api_id>[^/]+)$")


def install() -> None:
    from moto.apigateway import urls
    from moto.apigateway.exceptions import RestAPINotFound
    from moto.apigateway.models import APIGatewayBackend, RestAPI
    from moto.apigateway.responses import APIGatewayResponse

    if getattr(APIGatewayResponse, "_sagelift_apigateway_patched", False):
        return

    urls.url_paths[_REST_API_ARN_PATH] = APIGatewayResponse.dispatch

    original_get_tags = APIGatewayResponse.get_tags
    original_tag_resource = APIGatewayResponse.tag_resource
    original_untag_resource = APIGatewayResponse.untag_resource
    original_delete_rest_api = APIGatewayBackend.delete_rest_api
    original_rest_api_patch = RestAPI.apply_patch_operations
    original_create_rest_api = APIGatewayResponse.create_rest_api

    def create_rest_api(self: Any) -> Any:
        status, headers, body = original_create_rest_api(self)
        media_types = self._get_param("binaryMediaTypes")
        if status == 200 and media_types:
            api = self.backend.get_rest_api(json.loads(body)["id"])
            api.binaryMediaTypes = list(media_types)
            body = json.dumps(api.to_dict())
        return status, headers, body

    def _rest_api_id(response: Any) -> str | None:
        match = _REST_API_ARN_RE.match(unquote(response.path.split("/tags/", 1)[1]))
        return match.group("api_id") if match else None

    def get_tags(self: Any) -> str:
        api_id = _rest_api_id(self)
        if api_id is None:
            return original_get_tags(self)
        return json.dumps({"tags": dict(self.backend.get_rest_api(api_id).tags or {})})

    def tag_resource(self: Any) -> Any:
        api_id = _rest_api_id(self)
        if api_id is None:
            return original_tag_resource(self)
        api = self.backend.get_rest_api(api_id)
        api.tags = {**(api.tags or {}), **(self._get_param("tags") or {})}
        return 204, {}, ""

    def untag_resource(self: Any) -> Any:
        api_id = _rest_api_id(self)
        if api_id is None:
            return original_untag_resource(self)
        api = self.backend.get_rest_api(api_id)
        for key in self.querystring.get("tagKeys") or []:
            (api.tags or {}).pop(key, None)
        return 204, {}, ""

    def delete_rest_api(self: Any, function_id: str) -> Any:
        if function_id not in self.apis:
            raise RestAPINotFound()
        return original_delete_rest_api(self, function_id)

    def rest_api_patch(self: Any, patch_operations: list[dict[str, Any]]) -> None:
        ops = []
        for op in patch_operations:
            path = op.get("path", "")
            if op.get("op") in ("add", "remove") and path.startswith(_MEDIA_TYPES_PATH):
                segment = path[len(_MEDIA_TYPES_PATH) :]
                op = {**op, "value": segment.replace("~1", "/").replace("~0", "~")}
            ops.append(op)
        return original_rest_api_patch(self, ops)

    RestAPI.apply_patch_operations = rest_api_patch  # type: ignore[method-assign]
    APIGatewayResponse.create_rest_api = create_rest_api  # type: ignore[method-assign]
    APIGatewayResponse.get_tags = get_tags  # type: ignore[method-assign]
    APIGatewayResponse.tag_resource = tag_resource  # type: ignore[method-assign]
    APIGatewayResponse.untag_resource = untag_resource  # type: ignore[method-assign]
    APIGatewayBackend.delete_rest_api = delete_rest_api  # type: ignore[method-assign]
    APIGatewayResponse._sagelift_apigateway_patched = True  # type: ignore[attr-defined]
