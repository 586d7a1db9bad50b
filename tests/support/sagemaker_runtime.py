"""InvokeEndpoint answers for the local AWS: what the smoke test (sagelift.steps.smoke) meets.

moto 5.2.5's sagemaker-runtime answers every InvokeEndpoint with HTTP 200 and a queue of canned
bodies, whether or not the endpoint exists; it cannot answer another status. ``install()`` (called by
tests/support/local_aws.py when the server starts) replaces it so that InvokeEndpoint:

- refuses an endpoint the account does not have (``ValidationError``: ``Endpoint <name> of account
  <id> not found.``, HTTP 400, as SageMaker words it) and one not serving (Creating, Failed, ...:
  ``ValidationError``, the endpoint "is not in service" wording is assumed);
- answers as the model behind the endpoint's current config would: HTTP 200 with the body when the
  container answers 200, otherwise SageMaker's ``ModelError`` (HTTP 424, ``OriginalStatusCode``,
  ``OriginalMessage``, ``LogStreamArn``), as SageMaker reports a container's other statuses;
- what the container answers is, first, what a test set with ``answer(endpoint, status, body)`` (for one
  config of the endpoint, or any), else what the model's container environment says:
  ``SAGELIFT_EMULATED_STATUS`` and ``SAGELIFT_EMULATED_BODY`` (so a scenario's conf scripts one run's
  model to misbehave while the earlier model, which a revert returns to, answers well), else 200 with
  ``{"predictions": [0.5]}``.

``requests`` records each invocation (account, endpoint, config served, content type, body).

What it does not emulate: the model's real inference, Accept negotiation, CustomAttributes, target
variants/models/containers, invocation timeouts (60 s in SageMaker), payload limits (6 MB), the
answers of an endpoint while Updating (the config being replaced answers), InvokeEndpointAsync or
InvokeEndpointWithResponseStream, and throttling (use the lifecycle's faults for that).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

DEFAULT_BODY = b'{"predictions": [0.5]}'
STATUS_ENV = "SAGELIFT_EMULATED_STATUS"
BODY_ENV = "SAGELIFT_EMULATED_BODY"


@dataclass(frozen=True)
class Invocation:
    account: str
    endpoint: str
    config: str
    content_type: str
    body: bytes


_LOCK = threading.Lock()
_ANSWERS: dict[tuple[str, str | None], tuple[int, bytes]] = {}
requests: list[Invocation] = []


def answer(endpoint: str, status: int, body: bytes | str = b"", *, config: str | None = None) -> None:
    """Script what the endpoint's container answers (only while it serves ``config``, when given)."""
    data = body.encode() if isinstance(body, str) else body
    with _LOCK:
        _ANSWERS[(endpoint, config)] = (status, data)


def clear() -> None:
    with _LOCK:
        _ANSWERS.clear()
        requests.clear()


def _error(code: str, status: int, message: str, **members: Any) -> tuple[int, dict[str, str], str]:
    # moto takes a handler's status from its headers' "status"
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "status": str(status)}
    return status, headers, json.dumps({"__type": code, "message": message, "Message": message, **members})


def _container_answer(backend: Any, endpoint_name: str, config_name: str) -> tuple[int, bytes]:
    with _LOCK:
        scripted = _ANSWERS.get((endpoint_name, config_name)) or _ANSWERS.get((endpoint_name, None))
    if scripted is not None:
        return scripted
    config = backend.endpoint_configs.get(config_name)
    variants = config.production_variants if config is not None else []
    model = backend._models.get(variants[0]["ModelName"]) if variants else None
    environment = ((model.primary_container or {}).get("Environment") or {}) if model else {}
    if STATUS_ENV in environment:
        return int(environment[STATUS_ENV]), str(environment.get(BODY_ENV, "")).encode()
    return 200, DEFAULT_BODY


def install() -> None:
    from moto.sagemaker.models import sagemaker_backends
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    if getattr(SageMakerRuntimeResponse, "_sagelift_runtime_patched", False):
        return

    def invoke_endpoint(self: Any) -> Any:
        name = self.path.split("/")[2]
        backend = sagemaker_backends[self.current_account][self.region]
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            return _error(
                "ValidationError", 400, f"Endpoint {name} of account {self.current_account} not found."
            )
        # DescribeEndpoint advances the lifecycle emulation's clock for this endpoint, as a reader would.
        described = backend.describe_endpoint(name)
        status = described.get("EndpointStatus") if isinstance(described, dict) else endpoint.endpoint_status
        if status not in ("InService", "Updating"):
            return _error("ValidationError", 400, f"Endpoint {name} is not in service (it is {status}).")
        config = endpoint.endpoint_config_name
        body = self.body if isinstance(self.body, bytes) else str(self.body or "").encode()
        with _LOCK:
            requests.append(
                Invocation(
                    self.current_account, name, config, str(self.headers.get("Content-Type", "")), body
                )
            )
        code, answer_body = _container_answer(backend, name, config)
        if code == 200:
            return (
                200,
                {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": "AllTraffic"},
                (answer_body),
            )
        log_stream = (
            f"arn:aws:logs:{self.region}:{self.current_account}:log-group:/aws/sagemaker/Endpoints/{name}"
        )
        return _error(
            "ModelError",
            424,
            f"Received server error ({code}) from primary with message "
            f'"{answer_body.decode("utf-8", "replace")}". See {log_stream} in account '
            f"{self.current_account} for more information.",
            OriginalStatusCode=code,
            OriginalMessage=answer_body.decode("utf-8", "replace"),
            LogStreamArn=log_stream,
        )

    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint  # type: ignore[method-assign]
    SageMakerRuntimeResponse._sagelift_runtime_patched = True  # type: ignore[attr-defined]
