"""Multi-model serving for the local AWS: InvokeEndpoint with TargetModel on a MultiModel endpoint.

``install()`` (called by tests/support/local_aws.py after sagemaker_runtime's) wraps moto's InvokeEndpoint
so that, on an endpoint whose model's container is in ``Mode: MultiModel``:

- a request without the ``X-Amzn-SageMaker-Target-Model`` header is refused (``ValidationError``, HTTP
  400), as SageMaker refuses it on a multi-model endpoint;
- the target is read from the model's ``ModelDataUrl`` prefix in the emulated S3 of the endpoint's
  account: a missing object is SageMaker's ``ValidationError`` "Failed to download model data";
- otherwise the container answers HTTP 200 with ``{"target_model": <key>, "artifact": <the object's
  bytes as text>}``, so a test tells which model (and which version of it) answered;
- ``requests`` records each such invocation (endpoint, target model).

Any other endpoint is answered by tests/support/sagemaker_runtime.py as before.

What it does not emulate: loading and unloading models from the instance's memory or disk (cold starts,
eviction, the ``X-Amzn-SageMaker-Target-Model`` caching of a deleted object, which SageMaker may still
serve until it unloads it), per-model CloudWatch metrics, TargetModel length and character limits, and
multi-model endpoints with several containers (multi-container endpoints are another SageMaker feature).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

TARGET_HEADER = "X-Amzn-SageMaker-Target-Model"


@dataclass(frozen=True)
class Invocation:
    account: str
    endpoint: str
    target_model: str


_LOCK = threading.Lock()
requests: list[Invocation] = []


def clear() -> None:
    with _LOCK:
        requests.clear()


def _error(status: int, message: str) -> tuple[int, dict[str, str], str]:
    headers = {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": "ValidationError",
        "status": str(status),
    }
    return status, headers, json.dumps({"__type": "ValidationError", "message": message, "Message": message})


def _multi_model_prefix(backend: Any, endpoint_name: str) -> str | None:
    endpoint = backend.endpoints.get(endpoint_name)
    config = backend.endpoint_configs.get(endpoint.endpoint_config_name) if endpoint else None
    variants = config.production_variants if config is not None else []
    model = backend._models.get(variants[0]["ModelName"]) if variants else None
    container = (model.primary_container or {}) if model else {}
    if container.get("Mode") != "MultiModel":
        return None
    return str(container.get("ModelDataUrl") or "")


def _read(account: str, uri: str) -> bytes | None:
    from moto.s3.models import s3_backends

    bucket_name, _, key = uri.removeprefix("s3://").partition("/")
    backend = s3_backends[account]["aws"]
    bucket = backend.buckets.get(bucket_name)
    found = bucket.keys.get(key) if bucket is not None else None
    return None if found is None else bytes(found.value)


def install() -> None:
    from moto.sagemaker.models import sagemaker_backends
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    if getattr(SageMakerRuntimeResponse, "_sagelift_multi_model_patched", False):
        return
    single_model = SageMakerRuntimeResponse.invoke_endpoint

    def invoke_endpoint(self: Any) -> Any:
        name = self.path.split("/")[2]
        backend = sagemaker_backends[self.current_account][self.region]
        prefix = _multi_model_prefix(backend, name)
        if prefix is None:
            return single_model(self)
        target = self.headers.get(TARGET_HEADER)
        if not target:
            return _error(400, f"Endpoint {name} is a multi-model endpoint: {TARGET_HEADER} is required.")
        body = _read(self.current_account, prefix + target)
        if body is None:
            return _error(
                400,
                f"Failed to download model data(bucket: {prefix.removeprefix('s3://').split('/')[0]}, key: "
                f"{target}). Please ensure that there is an object located at the URL and that the role "
                "passed to CreateModel has permissions to download the model.",
            )
        described = backend.describe_endpoint(name)
        if described.get("EndpointStatus") not in ("InService", "Updating"):
            return _error(400, f"Endpoint {name} is not in service.")
        with _LOCK:
            requests.append(Invocation(self.current_account, name, target))
        answer = json.dumps({"target_model": target, "artifact": body.decode("utf-8", "replace")})
        headers = {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        return 200, headers, answer

    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]
    SageMakerRuntimeResponse._sagelift_multi_model_patched = True  # type: ignore[attr-defined]


def invoke_through_api(aws: Any, path: str, body: bytes, content_type: str = "text/csv") -> dict[str, Any]:
    """Call the model's API at ``path`` as API Gateway would pass the call on (its integration's endpoint
    and headers, tests/support/apigateway_payloads.py), and return SageMaker's decoded answer."""
    from tests.support.apigateway_payloads import integration_request_headers

    client = aws.client("apigateway")
    [api] = client.get_rest_apis()["items"]
    by_path = {r["path"]: r["id"] for r in client.get_resources(restApiId=api["id"])["items"]}
    method = client.get_method(restApiId=api["id"], resourceId=by_path[path], httpMethod="POST")
    integration = method["methodIntegration"]
    endpoint = integration["uri"].split("/endpoints/")[1].split("/")[0]
    headers = integration_request_headers(method, integration, {"Content-Type": content_type})
    kwargs: dict[str, Any] = {"EndpointName": endpoint, "Body": body, "ContentType": headers["Content-Type"]}
    if TARGET_HEADER in headers:
        kwargs["TargetModel"] = headers[TARGET_HEADER]
    answer = aws.client("sagemaker-runtime").invoke_endpoint(**kwargs)
    return dict(json.loads(answer["Body"].read()))
