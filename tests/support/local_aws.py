"""The local AWS: moto in server mode on 127.0.0.1, with the pieces sagelift's tests need added.

Started by test fixtures and by ``make demo``, stopped after; the product reaches it only through the
Airflow AWS connection's ``endpoint_url`` (and ``service_config.sts.endpoint_url`` so that even the
role-assumption calls never leave the machine).

Added on top of moto 5.2.5:
- ``UpdateEndpoint`` (moto lacks it): the endpoint switches to the new config and is InService.
- Application Auto Scaling of SageMaker variants as AWS does it (tests/support/local_aws_autoscaling.py)
  and InvokeEndpoint answers per endpoint (tests/support/sagemaker_runtime.py).
- AssumeRole honours trust policies (tests/support/local_aws_sts.py) and API Gateway REST API tagging
  (tests/support/local_aws_apigateway.py).
- S3 conditional writes made atomic: moto 5.2.5 answers ``If-None-Match: *`` and ``If-Match`` on
  PutObject and ``If-Match`` on DeleteObject (412 PreconditionFailed), but checks the condition and
  writes in two steps, so two threads of the server could both pass; object writes and deletes are
  serialized here, as S3 serializes them per key (the model locks of sagelift.steps.lock rely on it). S3's
  409 ConditionalRequestConflict (a conditional write racing another in flight) is never answered.
- A request log (``requests``) of every call that reached the server, for "no AWS call was made" checks.
- ``client(service, account)`` to look into any account, as an administrator of that account would.

What it does not emulate: IAM policy evaluation (any identity may do anything, except what a test's own
patch enforces), real job durations (training completes at once unless a test's lifecycle emulation
says otherwise), CloudWatch logs of training jobs (only an installed lifecycle emulation writes them), or
the regional service endpoints (one URL serves all).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import make_server

REGION = "us-east-1"
RUNNER_ACCOUNT = "111111111111"
MASTER_ACCOUNT = "222222222222"
SCIENTIST_ACCOUNT = "333333333333"
_S3_OBJECT_WRITES = threading.Lock()


@dataclass
class LoggedRequest:
    method: str
    path: str
    target: str
    account_header: str | None


def _patch_moto() -> None:
    """Give moto's SageMaker the operations sagelift's tests need; idempotent."""
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    if getattr(SageMakerModelBackend, "_sagelift_patched", False):
        return

    def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> Any:
        from moto.sagemaker.exceptions import ValidationError

        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise ValidationError(message=f'Could not find endpoint "{endpoint_name}".')
        config = self.describe_endpoint_config(endpoint_config_name)
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.endpoint_status = "InService"
        from moto.core.utils import utcnow

        endpoint.last_modified_time = utcnow()
        return endpoint

    def update_endpoint_response(self: Any) -> Any:
        from moto.core.responses import ActionResult

        endpoint = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": endpoint.arn})

    from moto.s3.responses import S3Response

    from tests.support import (
        local_aws_apigateway,
        local_aws_autoscaling,
        local_aws_sts,
        sagemaker_monitoring,
        sagemaker_multi_model,
        sagemaker_runtime,
    )

    def serialized(original: Callable[..., Any]) -> Callable[..., Any]:
        def handler(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _S3_OBJECT_WRITES:  # the condition's check and the write, as one step
                return original(self, *args, **kwargs)

        return handler

    S3Response.put_object = serialized(S3Response.put_object)  # type: ignore[method-assign]
    S3Response.delete_object = serialized(S3Response.delete_object)  # type: ignore[method-assign]
    local_aws_apigateway.install()
    local_aws_sts.install()
    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = update_endpoint_response  # type: ignore[attr-defined]
    local_aws_autoscaling.install()  # wraps the backend's UpdateEndpoint just set
    sagemaker_runtime.install()
    sagemaker_multi_model.install()  # wraps sagemaker_runtime's InvokeEndpoint
    sagemaker_monitoring.patch_monitoring()  # schedules exist with or without a scripted lifecycle
    SageMakerModelBackend._sagelift_patched = True  # type: ignore[attr-defined]


class LocalAws:
    """One moto server on loopback; use as a context manager or call start()/stop()."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        # Set by tests.support.sagemaker_lifecycle: returns a WSGI app that answers instead of moto
        # (an injected fault), or None to let moto answer.
        self.request_hook: Callable[[dict[str, Any]], Any] | None = None
        # One boto3 session makes every administrator client: a new session parses the service's model
        # again (~0.1 CPU-s a client, a dozen clients a test), one session's loader parses it once. Each
        # client still has its own event hooks (its account header); making one is not thread-safe.
        self._admin_session: Any = None
        self._admin_lock = threading.Lock()

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> LocalAws:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        _patch_moto()
        app = DomainDispatcherApplication(create_backend_app)

        def logging_app(environ: dict[str, Any], start_response: Any) -> Any:
            path = environ.get("PATH_INFO", "")
            if not path.startswith("/moto-api"):
                with self._lock:
                    self.requests.append(
                        LoggedRequest(
                            method=environ.get("REQUEST_METHOD", ""),
                            path=path,
                            target=environ.get("HTTP_X_AMZ_TARGET", ""),
                            account_header=environ.get("HTTP_X_MOTO_ACCOUNT_ID"),
                        )
                    )
            hook = self.request_hook
            fault = hook(environ) if hook is not None and not path.startswith("/moto-api") else None
            if fault is not None:
                return fault(environ, start_response)
            return app(environ, start_response)

        class QuietHandler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server(
            "127.0.0.1", self._port, logging_app, threaded=True, request_handler=QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    region = REGION

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        """Forget every resource in every account (moto's reset API) and the request log."""
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()
        from tests.support import sagemaker_runtime

        sagemaker_runtime.clear()
        with self._lock:
            self.requests.clear()

    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    # --- looking into accounts ---------------------------------------------------------------------
    def client(self, service: str, account: str = SCIENTIST_ACCOUNT, region: str = REGION) -> Any:
        """A client acting as an administrator of ``account`` (moto's account header)."""
        with self._admin_lock:
            if self._admin_session is None:
                self._admin_session = boto3.session.Session(
                    aws_access_key_id="FAKEADMINKEY", aws_secret_access_key="fake-admin-secret"
                )
            client = self._admin_session.client(
                service,
                region_name=region,
                endpoint_url=self.url,
                config=Config(retries={"mode": "standard", "max_attempts": 2}),
            )

        def add_account(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account

        client.meta.events.register("before-sign.*.*", add_account)
        return client

    def create_access_key(self, account: str, user: str = "sagelift-runner") -> tuple[str, str]:
        """An IAM user's key pair in ``account``; moto then attributes calls with it to that account."""
        iam = self.client("iam", account)
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]


def trust_policy(*principals: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "sts:AssumeRole"}
            ],
        }
    )


@contextmanager
def local_aws() -> Iterator[LocalAws]:
    with LocalAws() as aws:
        yield aws
