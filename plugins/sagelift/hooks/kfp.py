"""Kubeflow Pipelines API (v2beta1) through the kfp-server-api client, which installs next to Airflow.

The client (~0.15 s of imports) is imported by the methods that call the API, not with this module, which
the DAG file imports: a parse of the DAG needs none of it.

The Airflow connection (conn_type ``kubeflow_pipelines``; ``http`` works the same):

- ``host``: the KFP API base URL, e.g. ``https://kubeflow.example.com/pipeline`` (``/apis/v2beta1/...``
  is appended). A bare host name gets ``schema`` (default ``https``) and ``port`` added.
- Authentication, chosen by the extras:

  * bearer token: ``password`` holds the token (e.g. a service-account token). Sent as is.
  * OAuth 2.0 client credentials (what the original notebook did): extras ``token_url`` and
    ``client_id`` (optional ``scope``), ``password`` holds the client secret. A token is fetched from
    ``token_url`` (client id and secret sent with HTTP Basic, RFC 6749 section 2.3.1) on first use and
    fetched again shortly before its ``expires_in`` runs out, so a run waiting for hours keeps working.
  * neither: no Authorization header (a KFP standalone install without authentication).
- Optional extras: ``namespace`` (the Kubeflow profile namespace in multi-user mode), ``ui_url`` (the
  KFP UI base for run links; default: the API base URL, where the UI is served in standard installs),
  ``ssl_ca_cert`` (a CA bundle path), ``verify_ssl`` (default true).

The token and the client secret live only inside the client's configuration object of this process:
never returned, logged, pushed to XCom or put in trigger arguments.

Every answer is bounded before it is believed: a body is read up to ``max_response_bytes`` (decoded),
a successful answer must be a JSON object (an authenticating proxy's HTML login page, answered 200,
would otherwise read as "no pipelines" and lead to an upload), and list calls stop after ``max_pages``
pages or ``max_items`` items (a server handing out fresh page tokens forever would otherwise be asked
forever). Each refusal names the URL and what was wrong.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowException

if TYPE_CHECKING:
    import kfp_server_api
    from kfp_server_api.exceptions import ApiException

from sagelift.domain.kfp import (
    derive_package_digest,
    derive_pipeline_version_description,
    derive_pipeline_version_name,
    name_filter,
    version_holds_package,
)

# Refresh an OAuth token this long before it expires, so a request never carries a token that dies
# on the way.
TOKEN_REFRESH_MARGIN_SECONDS = 60
DEFAULT_PAGE_SIZE = 100
REQUEST_TIMEOUT = (10, 120)  # (connect, read) seconds
# A page of 100 pipeline versions, each with its ~25 KB spec, is about 2.5 MB.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
# Far above any real installation's pipelines, versions, experiments or same-named runs.
MAX_LIST_PAGES = 200
MAX_LIST_ITEMS = 20_000
API_PREFIX = "/apis/v2beta1"


class KubeflowPipelinesError(AirflowException):
    """A KFP API call failed; the message says which call, against which server, and why.

    ``retryable`` is true when asking again later may succeed (server errors, throttling, network).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class PipelineVersionRef:
    pipeline_id: str
    pipeline_version_id: str
    # "found", "uploaded pipeline" or "uploaded version": what ensure_pipeline_version had to do.
    action: str


@dataclass
class _ClientCredentialsToken:
    """OAuth 2.0 client-credentials grant with a cached token; thread-safe (triggers call from threads)."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None
    conn_id: str = ""
    _token: str | None = field(default=None, repr=False)
    _expires_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bearer(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at - TOKEN_REFRESH_MARGIN_SECONDS:
                self._token, lifetime = self._fetch()
                self._expires_at = time.monotonic() + lifetime
            return self._token

    def _fetch(self) -> tuple[str, float]:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        try:
            with requests.post(
                self.token_url,
                data=data,
                auth=(self.client_id, self.client_secret),
                timeout=30,
                stream=True,
            ) as response:
                body = _read_bounded(response.raw, MAX_TOKEN_RESPONSE_BYTES)
        except (requests.RequestException, urllib3.exceptions.HTTPError) as err:
            raise KubeflowPipelinesError(
                f"Cannot reach the token URL {self.token_url} of connection '{self.conn_id}': "
                f"{type(err).__name__}"
            ) from None
        if body is None:
            raise KubeflowPipelinesError(
                f"The token URL {self.token_url} answered more than {MAX_TOKEN_RESPONSE_BYTES} bytes"
            )
        if response.status_code != 200:
            raise KubeflowPipelinesError(
                f"The token URL {self.token_url} refused the client credentials of connection "
                f"'{self.conn_id}' (HTTP {response.status_code}{_oauth_error(body)}). Check the extra "
                "client_id and the client secret in the connection's password."
            )
        try:
            answer = json.loads(body)
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise KubeflowPipelinesError(
                f"The token URL {self.token_url} answered without an access_token for connection "
                f"'{self.conn_id}'"
            ) from None
        return str(token), lifetime


def _oauth_error(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(body, dict) or "error" not in body:
        return ""
    # RFC 6749 error fields describe the failure and never echo the secret.
    description = body.get("error_description")
    return (f": {body['error']}" + (f" - {description}" if description else ""))[:300]


def _read_bounded(response: Any, limit: int) -> bytes | None:
    """The decoded body of a streamed urllib3 response, or None when it is longer than ``limit``."""
    body = response.read(limit + 1, decode_content=True)
    return None if len(body) > limit else body


@dataclass(frozen=True)
class _ReadResponse:
    """A urllib3 response whose body has been read, boundedly: what kfp-server-api's client consumes."""

    status: int
    reason: str | None
    data: bytes
    headers: Any

    def getheaders(self) -> Any:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


def _is_json(content_type: str) -> bool:
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or mimetype.endswith("+json")


class _BoundedPoolManager:
    """Stands in for the kfp-server-api client's urllib3 pool: reads every body up to a size bound and
    refuses a successful answer that is not a JSON object, before the client can misread it.

    The generated client would read any body whole, and deserialize an HTML page or an empty body into
    an empty model without complaint.
    """

    def __init__(self, inner: Any, *, max_bytes: int, server: str) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._server = server

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def request(self, method: str, url: str, **kwargs: Any) -> _ReadResponse:
        kwargs["preload_content"] = False
        response = self._inner.request(method, url, **kwargs)
        where = f"{method} {url.split('?', 1)[0]}"
        try:
            body = _read_bounded(response, self._max_bytes)
        finally:
            response.release_conn()
        if body is None:
            raise KubeflowPipelinesError(
                f"Kubeflow Pipelines answered {where} with more than {self._max_bytes} bytes; refused"
            )
        content_type = response.headers.get("Content-Type") or "none"
        if 200 <= response.status <= 299:
            if not _is_json(content_type):
                final = (response.geturl() or url).split("?", 1)[0]
                redirected = f" (redirected to {final[:200]})" if final != url.split("?", 1)[0] else ""
                raise KubeflowPipelinesError(
                    f"Kubeflow Pipelines answered {where} with content type {content_type[:60]!r}, not JSON "
                    f"(HTTP {response.status}).\nAn authenticating proxy's login page{redirected}? Check "
                    f"the host and the credentials of the connection to {self._server}."
                )
            try:
                parsed = json.loads(body)
            except (ValueError, RecursionError):
                parsed = None
            if not isinstance(parsed, dict):
                raise KubeflowPipelinesError(
                    f"Kubeflow Pipelines answered {where} with a body that is not a JSON object "
                    f"(HTTP {response.status}, {len(body)} bytes)"
                )
        return _ReadResponse(response.status, response.reason, body, response.headers)


class KubeflowPipelinesHook(BaseHook):
    """Find or upload the pipeline, get or create the experiment, submit, read and terminate runs."""

    conn_name_attr = "kfp_conn_id"
    default_conn_name = "kubeflow_pipelines_default"
    conn_type = "kubeflow_pipelines"
    hook_name = "Kubeflow Pipelines"

    def __init__(
        self,
        kfp_conn_id: str = default_conn_name,
        page_size: int = DEFAULT_PAGE_SIZE,
        *,
        max_pages: int = MAX_LIST_PAGES,
        max_items: int = MAX_LIST_ITEMS,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        super().__init__()
        self.kfp_conn_id = kfp_conn_id
        self.page_size = page_size
        self.max_pages = max_pages
        self.max_items = max_items
        self.max_response_bytes = max_response_bytes

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"host": "KFP API URL", "password": "Bearer token or OAuth client secret"},
            "placeholders": {
                "host": "https://kubeflow.example.com/pipeline",
                "extra": '{"token_url": "https://idp.example.com/oauth2/token", "client_id": "sagelift", '
                '"namespace": "kubeflow-user", "ui_url": "https://kubeflow.example.com/pipeline"}',
            },
        }

    # --- connection --------------------------------------------------------------------------------

    @cached_property
    def _connection(self) -> Any:
        return self.get_connection(self.kfp_conn_id)

    @cached_property
    def _extras(self) -> dict[str, Any]:
        return self._connection.extra_dejson or {}

    @cached_property
    def base_url(self) -> str:
        conn = self._connection
        host = (conn.host or "").rstrip("/")
        if not host:
            raise KubeflowPipelinesError(f"Connection '{self.kfp_conn_id}' has no host (the KFP API URL)")
        if "://" in host:
            return host
        port = f":{conn.port}" if conn.port else ""
        return f"{conn.schema or 'https'}://{host}{port}"

    @property
    def ui_url(self) -> str:
        return str(self._extras.get("ui_url") or self.base_url).rstrip("/")

    @property
    def namespace(self) -> str | None:
        value = self._extras.get("namespace")
        return str(value) if value else None

    def get_conn(self) -> kfp_server_api.ApiClient:
        return self._api_client

    @cached_property
    def _api_client(self) -> kfp_server_api.ApiClient:
        import kfp_server_api

        configuration = kfp_server_api.Configuration(host=self.base_url)
        extras = self._extras
        if "verify_ssl" in extras:
            configuration.verify_ssl = str(extras["verify_ssl"]).lower() not in ("false", "0", "no")
        if extras.get("ssl_ca_cert"):
            configuration.ssl_ca_cert = str(extras["ssl_ca_cert"])
        secret = self._connection.password
        if extras.get("token_url"):
            if not extras.get("client_id") or not secret:
                raise KubeflowPipelinesError(
                    f"Connection '{self.kfp_conn_id}' has a token_url; it also needs the extra client_id "
                    "and the client secret in the password"
                )
            source = _ClientCredentialsToken(
                token_url=str(extras["token_url"]),
                client_id=str(extras["client_id"]),
                client_secret=secret,
                scope=str(extras["scope"]) if extras.get("scope") else None,
                conn_id=self.kfp_conn_id,
            )

            def refresh(config: kfp_server_api.Configuration) -> None:
                config.api_key["authorization"] = source.bearer()

            # The client consults the refresh hook only for a key that is present, so seed an empty one.
            configuration.api_key["authorization"] = ""
            configuration.api_key_prefix["authorization"] = "Bearer"
            configuration.refresh_api_key_hook = refresh
        elif secret:
            configuration.api_key["authorization"] = secret
            configuration.api_key_prefix["authorization"] = "Bearer"
        client = kfp_server_api.ApiClient(configuration)
        client.rest_client.pool_manager = _BoundedPoolManager(
            client.rest_client.pool_manager, max_bytes=self.max_response_bytes, server=self.base_url
        )
        return client

    @contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        """Turn client errors into one message naming the call, the server and the reason."""
        from kfp_server_api.exceptions import ApiException, OpenApiException

        try:
            yield
        except ApiException as err:
            if err.status in (401, 403):
                raise KubeflowPipelinesError(
                    f"Kubeflow Pipelines at {self.base_url} rejected the credentials of connection "
                    f"'{self.kfp_conn_id}' (HTTP {err.status} {err.reason}) while {action}. Check the "
                    "bearer token in the password, or the extras token_url and client_id and the client "
                    "secret in the password."
                ) from None
            raise KubeflowPipelinesError(
                f"Kubeflow Pipelines at {self.base_url} failed {action}: HTTP {err.status} {err.reason}: "
                f"{_api_error_message(err)}",
                retryable=err.status is not None and (err.status >= 500 or err.status == 429),
            ) from None
        except urllib3.exceptions.HTTPError as err:
            raise KubeflowPipelinesError(
                f"Cannot reach Kubeflow Pipelines at {self.base_url} while {action}: {err}",
                retryable=True,
            ) from None
        except OpenApiException as err:
            raise KubeflowPipelinesError(f"Bad request while {action}: {err}") from None

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.check_health()
        except KubeflowPipelinesError as err:
            return False, str(err)
        return True, "Kubeflow Pipelines API is reachable and accepted the credentials"

    def check_health(self) -> None:
        import kfp_server_api

        with self._calling("checking health"):
            kfp_server_api.HealthzServiceApi(self._api_client).healthz_service_get_healthz(
                _request_timeout=REQUEST_TIMEOUT
            )

    # --- pipelines ---------------------------------------------------------------------------------

    def find_pipeline(self, name: str) -> kfp_server_api.V2beta1Pipeline | None:
        """The pipeline with this name, looked for on every page (not only the first)."""
        import kfp_server_api

        api = kfp_server_api.PipelineServiceApi(self._api_client)
        for pipeline in self._list(
            f"listing pipelines to find '{name}'",
            "/pipelines",
            lambda token: api.pipeline_service_list_pipelines(
                namespace=self.namespace,
                page_size=self.page_size,
                page_token=token,
                _request_timeout=REQUEST_TIMEOUT,
            ),
            lambda page: page.pipelines,
        ):
            if name in (pipeline.display_name, pipeline.name):
                return pipeline
        return None

    def list_pipeline_versions(self, pipeline_id: str) -> Iterator[kfp_server_api.V2beta1PipelineVersion]:
        import kfp_server_api

        api = kfp_server_api.PipelineServiceApi(self._api_client)
        yield from self._list(
            f"listing versions of pipeline {pipeline_id}",
            f"/pipelines/{pipeline_id}/versions",
            lambda token: api.pipeline_service_list_pipeline_versions(
                pipeline_id,
                page_size=self.page_size,
                page_token=token,
                sort_by="created_at desc",
                _request_timeout=REQUEST_TIMEOUT,
            ),
            lambda page: page.pipeline_versions,
        )

    def upload_pipeline(
        self, name: str, package_path: str, description: str
    ) -> kfp_server_api.V2beta1Pipeline:
        import kfp_server_api

        api = kfp_server_api.PipelineUploadServiceApi(self._api_client)
        with self._calling(f"uploading pipeline '{name}'"):
            return api.upload_pipeline(
                package_path,
                name=name,
                display_name=name,
                description=description,
                namespace=self.namespace,
                _request_timeout=REQUEST_TIMEOUT,
            )

    def upload_pipeline_version(
        self, pipeline_id: str, version_name: str, package_path: str, description: str
    ) -> kfp_server_api.V2beta1PipelineVersion:
        import kfp_server_api

        api = kfp_server_api.PipelineUploadServiceApi(self._api_client)
        with self._calling(f"uploading version '{version_name}' of pipeline {pipeline_id}"):
            return api.upload_pipeline_version(
                package_path,
                name=version_name,
                display_name=version_name,
                pipelineid=pipeline_id,
                description=description,
                _request_timeout=REQUEST_TIMEOUT,
            )

    def ensure_pipeline_version(self, pipeline_name: str, package_path: str) -> PipelineVersionRef:
        """The pipeline version holding this package: found, or uploaded as a pipeline or a new version."""
        try:
            with open(package_path, "rb") as package:
                digest = derive_package_digest(package.read())
        except OSError as err:
            raise KubeflowPipelinesError(
                f"Cannot read the compiled pipeline package {package_path}: {err.strerror}"
            ) from None
        description = derive_pipeline_version_description(digest)
        pipeline = self.find_pipeline(pipeline_name)
        if pipeline is None:
            pipeline = self.upload_pipeline(pipeline_name, package_path, description)
            version = next(self.list_pipeline_versions(pipeline.pipeline_id), None)
            if version is None:
                raise KubeflowPipelinesError(
                    f"Kubeflow Pipelines at {self.base_url} created pipeline '{pipeline_name}' "
                    f"({pipeline.pipeline_id}) without a version"
                )
            return PipelineVersionRef(pipeline.pipeline_id, version.pipeline_version_id, "uploaded pipeline")
        for version in self.list_pipeline_versions(pipeline.pipeline_id):
            if version_holds_package(version.to_dict(), pipeline_name, digest):
                return PipelineVersionRef(pipeline.pipeline_id, version.pipeline_version_id, "found")
        version = self.upload_pipeline_version(
            pipeline.pipeline_id,
            derive_pipeline_version_name(pipeline_name, digest),
            package_path,
            description,
        )
        return PipelineVersionRef(pipeline.pipeline_id, version.pipeline_version_id, "uploaded version")

    # --- experiments -------------------------------------------------------------------------------

    def get_or_create_experiment(self, name: str) -> str:
        """The id of the experiment with this name, created if absent."""
        import kfp_server_api

        api = kfp_server_api.ExperimentServiceApi(self._api_client)
        for experiment in self._list(
            f"listing experiments to find '{name}'",
            "/experiments",
            lambda token: api.experiment_service_list_experiments(
                namespace=self.namespace,
                filter=name_filter(name),
                page_size=self.page_size,
                page_token=token,
                _request_timeout=REQUEST_TIMEOUT,
            ),
            lambda page: page.experiments,
        ):
            if experiment.display_name == name:
                return str(experiment.experiment_id)
        with self._calling(f"creating experiment '{name}'"):
            created = api.experiment_service_create_experiment(
                kfp_server_api.V2beta1Experiment(display_name=name, namespace=self.namespace),
                _request_timeout=REQUEST_TIMEOUT,
            )
        return str(created.experiment_id)

    # --- runs --------------------------------------------------------------------------------------

    def find_runs(self, experiment_id: str, display_name: str) -> list[kfp_server_api.V2beta1Run]:
        """Runs in the experiment with this display name, newest first."""
        import kfp_server_api

        api = kfp_server_api.RunServiceApi(self._api_client)
        return [
            run
            for run in self._list(
                f"listing runs named '{display_name}'",
                "/runs",
                lambda token: api.run_service_list_runs(
                    experiment_id=experiment_id,
                    filter=name_filter(display_name),
                    sort_by="created_at desc",
                    page_size=self.page_size,
                    page_token=token,
                    _request_timeout=REQUEST_TIMEOUT,
                ),
                lambda page: page.runs,
            )
            if run.display_name == display_name
        ]

    def create_run(
        self,
        *,
        experiment_id: str,
        pipeline: PipelineVersionRef,
        display_name: str,
        parameters: dict[str, Any],
        service_account: str | None = None,
    ) -> kfp_server_api.V2beta1Run:
        """Submit a run of the pipeline version; parameters go in the v2 runtime_config.

        ``service_account``: the Kubernetes service account the run's pods use (None: KFP's default).
        """
        import kfp_server_api

        body = kfp_server_api.V2beta1Run(
            display_name=display_name,
            service_account=service_account,
            experiment_id=experiment_id,
            pipeline_version_reference=kfp_server_api.V2beta1PipelineVersionReference(
                pipeline_id=pipeline.pipeline_id, pipeline_version_id=pipeline.pipeline_version_id
            ),
            runtime_config=kfp_server_api.V2beta1RuntimeConfig(parameters=dict(parameters)),
        )
        api = kfp_server_api.RunServiceApi(self._api_client)
        with self._calling(f"creating run '{display_name}'"):
            return api.run_service_create_run(body, _request_timeout=REQUEST_TIMEOUT)

    def get_run(self, run_id: str) -> kfp_server_api.V2beta1Run:
        import kfp_server_api

        api = kfp_server_api.RunServiceApi(self._api_client)
        with self._calling(f"reading run {run_id}"):
            return api.run_service_get_run(run_id, _request_timeout=REQUEST_TIMEOUT)

    def terminate_run(self, run_id: str) -> None:
        import kfp_server_api

        api = kfp_server_api.RunServiceApi(self._api_client)
        with self._calling(f"terminating run {run_id}"):
            api.run_service_terminate_run(run_id, _request_timeout=REQUEST_TIMEOUT)

    # --- helpers -----------------------------------------------------------------------------------

    def _list(self, action: str, path: str, fetch: Any, items: Any) -> Iterator[Any]:
        """Every item of a list call, page by page, following next_page_token within the caps.

        A token seen before, more than ``max_pages`` pages or more than ``max_items`` items stop the
        listing with an error naming the URL: a server that never stops paging is broken (or hostile),
        and every caller would otherwise loop forever.
        """
        url = f"{self.base_url}{API_PREFIX}{path}"
        token: str | None = None
        seen: set[str] = set()
        pages = count = 0
        while True:
            if pages >= self.max_pages:
                raise KubeflowPipelinesError(
                    f"Kubeflow Pipelines at {url} still had a next page after {pages} pages while "
                    f"{action}; stopped (at most {self.max_pages} pages)"
                )
            with self._calling(action):
                page = fetch(token)
            pages += 1
            found = items(page) or []
            count += len(found)
            if count > self.max_items:
                raise KubeflowPipelinesError(
                    f"Kubeflow Pipelines at {url} listed more than {self.max_items} items while "
                    f"{action}; stopped"
                )
            yield from found
            token = page.next_page_token or None
            if token is None:
                return
            if token in seen:
                raise KubeflowPipelinesError(
                    f"Kubeflow Pipelines at {url} returned a page token twice while {action}"
                )
            seen.add(token)


def _api_error_message(err: ApiException) -> str:
    """The server's own error text (google.rpc.Status JSON), without response headers."""
    try:
        body = json.loads(err.body or "")
    except (ValueError, TypeError):
        return str(err.body or "")[:500]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)[:500]
    return str(body)[:500]


def run_error_message(run: kfp_server_api.V2beta1Run) -> str:
    """What KFP says went wrong in a run, for the task's failure message."""
    if run.error is not None and run.error.message:
        return str(run.error.message)
    # Some failures are only recorded on the task that failed.
    details = run.run_details
    for task in (details.task_details or []) if details is not None else []:
        if task.error is not None and task.error.message:
            return f"task {task.display_name}: {task.error.message}"
    return "Kubeflow Pipelines reported no error message"
