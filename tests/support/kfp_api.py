"""A Kubeflow Pipelines API (v2beta1 REST) double on 127.0.0.1, strict about what it is sent.

Serves what sagelift's KFP hook calls: healthz; pipelines list, upload and upload_version; pipeline
versions list; experiments list and create; runs list, create, get and terminate; plus an OAuth 2.0
client-credentials token endpoint (``/oauth/token``) for the connection's token_url.

Strictness, so that a body real KFP would reject, or silently misread, cannot pass:
- every JSON request body is checked against the kfp-server-api model of that endpoint (``V2beta1Run``,
  ``V2beta1Experiment``): unknown fields, wrong types, enum values outside the model and output-only
  fields are answered 400, as are missing fields KFP requires (a run's display_name and its pipeline
  version reference or v2 pipeline spec, an experiment's display_name);
- a run's ``runtime_config.parameters`` must match the root inputs of the pipeline version's spec: no
  unknown name, no missing input that has no default, values of the declared parameterType;
- uploaded packages must be KFP v2 pipeline specs (IR YAML); list filters other than EQUALS on
  display_name/name and sort orders other than created_at are answered 400, so a hook that relies on
  something the double does not emulate fails loudly instead of passing;
- every response is checked against its response model too.
- with ``token`` or ``oauth_clients`` set, a request without a valid bearer token gets 401 with KFP's
  error body; OAuth tokens expire after ``token_lifetime`` seconds of ``clock``.

Faults a client must survive, switched on with ``misbehave``:
- ``endless_page_tokens``: every list answer carries a fresh, never repeated next_page_token (the
  pages after the first are empty), as a broken or hostile server could;
- ``login_page``: what an authenticating proxy in front of KFP does to a client without a session:
  every request is redirected (302) to ``/oauth2/sign_in``, which answers 200 with an HTML login page.

What it does not emulate: executing pipelines (a run's state follows ``set_run_outcome``: RUNNING until
it has been read N times, then the chosen final state), task details and artifacts, pipeline runs
other than v2 IR (v1 Argo workflows are rejected), archive/delete/retry, recurring runs, multi-user
authorization (a namespace is only a label that list calls filter on), KFP's own checks that run
parameters are valid (real KFP reports some of them only when the run starts; the double answers 400 at
creation), the exact wording of KFP's error messages, and the KFP UI.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kfp_server_api.models as kfp_models
import yaml
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

API = "/apis/v2beta1"
FAULTS = ("endless_page_tokens", "login_page")
SIGN_IN = "/oauth2/sign_in"
LOGIN_HTML = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
    '<form method="post" action="/oauth2/start"><button>Sign in with your identity provider</button>'
    "</form></body></html>"
)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELED", "SKIPPED"}

# Fields the server fills in; a client that sends them is confused about the model.
OUTPUT_ONLY = {
    "V2beta1Run": {
        "run_id",
        "created_at",
        "scheduled_at",
        "finished_at",
        "state",
        "error",
        "run_details",
        "state_history",
        "storage_state",
        "plugins_output",
    },
    "V2beta1Experiment": {"experiment_id", "created_at", "storage_state", "last_run_created_at"},
}

PARAMETER_TYPES: dict[str, Callable[[Any], bool]] = {
    "STRING": lambda v: isinstance(v, str),
    "NUMBER_INTEGER": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "NUMBER_DOUBLE": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "BOOLEAN": lambda v: isinstance(v, bool),
    "LIST": lambda v: isinstance(v, list),
    "STRUCT": lambda v: isinstance(v, dict),
}


class BadRequest(Exception):
    """Answered as 400 with a google.rpc.Status body (code 3, INVALID_ARGUMENT)."""


def model_errors(data: Any, type_name: str, path: str = "") -> list[str]:
    """Every way ``data`` (parsed JSON) departs from kfp-server-api's model ``type_name``."""
    where = path or type_name
    if type_name == "object":
        return []
    if type_name.startswith("list["):
        if not isinstance(data, list):
            return [f"{where}: expected a list"]
        inner = type_name[5:-1]
        return [e for i, item in enumerate(data) for e in model_errors(item, inner, f"{where}[{i}]")]
    if type_name.startswith("dict("):
        if not isinstance(data, dict):
            return [f"{where}: expected an object"]
        inner = type_name[5:-1].split(", ", 1)[1]
        return [e for k, v in data.items() for e in model_errors(v, inner, f"{where}.{k}")]
    primitive_checks: dict[str, Callable[[Any], bool]] = {
        "str": lambda v: isinstance(v, str),
        # proto3 JSON renders int64 as a string
        "int": lambda v: (
            (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.isdigit())
        ),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "datetime": _is_datetime,
        "date": lambda v: isinstance(v, str),
    }
    if type_name in primitive_checks:
        return [] if primitive_checks[type_name](data) else [f"{where}: expected {type_name}, got {data!r}"]
    klass = getattr(kfp_models, type_name)
    if not klass.openapi_types:  # an enum
        allowed = getattr(klass, "allowable_values", [])
        return [] if data in allowed else [f"{where}: {data!r} is not one of {allowed}"]
    if not isinstance(data, dict):
        return [f"{where}: expected a {type_name} object"]
    by_json_name = {json_name: attr for attr, json_name in klass.attribute_map.items()}
    errors = [f"{where}: unknown field '{key}'" for key in data if key not in by_json_name]
    for key, value in data.items():
        if key in by_json_name and value is not None:
            errors += model_errors(value, klass.openapi_types[by_json_name[key]], f"{where}.{key}")
    return errors


def _is_datetime(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@dataclass
class RunOutcome:
    state: str = "SUCCEEDED"
    error_message: str = ""
    after_polls: int = 1


@dataclass
class LoggedCall:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class _Pipeline:
    pipeline_id: str
    name: str
    display_name: str
    description: str
    namespace: str | None
    created_at: datetime
    versions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "pipeline_id": self.pipeline_id,
            "name": self.name,
            "display_name": self.display_name,
            "description": self.description,
            "created_at": _ts(self.created_at),
        }
        if self.namespace:
            body["namespace"] = self.namespace
        return body


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class KfpApiDouble:
    """The double; a context manager. ``token``: the one bearer token accepted (None: no auth), unless
    ``oauth_clients`` ({client_id: secret}) is given, then only tokens it issued and not yet expired."""

    def __init__(
        self,
        *,
        token: str | None = "kfp-test-token",
        oauth_clients: dict[str, str] | None = None,
        token_lifetime: int = 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.oauth_clients = dict(oauth_clients or {})
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.issued_tokens: dict[str, float] = {}  # token -> expiry on self.clock
        self.calls: list[LoggedCall] = []
        self.pipelines: list[_Pipeline] = []
        self.experiments: list[dict[str, Any]] = []
        self.runs: dict[str, dict[str, Any]] = {}
        self.terminated: list[str] = []
        self.default_outcome = RunOutcome()
        self.outcomes: dict[str, RunOutcome] = {}
        self._polls: dict[str, int] = {}
        self.fault: str | None = None
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._urls = Map(
            [
                Rule(f"{API}/healthz", methods=["GET"], endpoint="healthz"),
                Rule(f"{API}/pipelines", methods=["GET"], endpoint="list_pipelines"),
                Rule(f"{API}/pipelines/upload", methods=["POST"], endpoint="upload_pipeline"),
                Rule(f"{API}/pipelines/upload_version", methods=["POST"], endpoint="upload_version"),
                Rule(f"{API}/pipelines/<pipeline_id>/versions", methods=["GET"], endpoint="list_versions"),
                Rule(f"{API}/experiments", methods=["GET"], endpoint="list_experiments"),
                Rule(f"{API}/experiments", methods=["POST"], endpoint="create_experiment"),
                Rule(f"{API}/runs", methods=["GET"], endpoint="list_runs"),
                Rule(f"{API}/runs", methods=["POST"], endpoint="create_run"),
                Rule(f"{API}/runs/<run_id>", methods=["GET"], endpoint="get_run"),
                Rule(f"{API}/runs/<run_id>:terminate", methods=["POST"], endpoint="terminate_run"),
                Rule("/oauth/token", methods=["POST"], endpoint="oauth_token"),
            ]
        )

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> KfpApiDouble:
        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kfp-api-double",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> KfpApiDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token"

    def connection_json(self, *, password: str | None = None, **extra: Any) -> str:
        """An Airflow connection (AIRFLOW_CONN_<ID> JSON) to this double; password defaults to the token."""
        return json.dumps(
            {
                "conn_type": "kubeflow_pipelines",
                "host": self.url,
                "password": self.token if password is None else password,
                "extra": extra,
            }
        )

    # --- test control ------------------------------------------------------------------------------
    def set_run_outcome(
        self, state: str, error_message: str = "", *, after_polls: int = 1, run_id: str | None = None
    ) -> None:
        """How runs end: ``run_id`` None sets the default for runs created later. A run reads RUNNING
        until it has been read ``after_polls`` times, then ``state`` (with ``error_message``)."""
        if state not in TERMINAL:
            raise ValueError(f"state must be one of {sorted(TERMINAL)}")
        outcome = RunOutcome(state, error_message, after_polls)
        with self._lock:
            if run_id is None:
                self.default_outcome = outcome
            else:
                self.outcomes[run_id] = outcome

    def misbehave(self, fault: str | None) -> None:
        """Switch on one of the faults listed in the module docstring (None: behave)."""
        if fault not in (None, *FAULTS):
            raise ValueError(f"fault must be one of {FAULTS}")
        self.fault = fault

    def add_pipeline(self, name: str, package: bytes, *, description: str = "") -> str:
        """Seed a pipeline as if someone had uploaded it earlier; returns its id."""
        with self._lock:
            pipeline = self._new_pipeline(name, name, description, None)
            self._new_version(pipeline, name, name, description, self._parse_package(package))
            return pipeline.pipeline_id

    def add_version(self, pipeline_id: str, name: str, package: bytes, *, description: str = "") -> str:
        with self._lock:
            version = self._new_version(
                self._pipeline(pipeline_id), name, name, description, self._parse_package(package)
            )
            return str(version["pipeline_version_id"])

    def versions(self, pipeline_name: str) -> list[dict[str, Any]]:
        with self._lock:
            for pipeline in self.pipelines:
                if pipeline.display_name == pipeline_name:
                    return list(pipeline.versions)
        return []

    def calls_to(self, method: str, path_suffix: str) -> list[LoggedCall]:
        return [c for c in self.calls if c.method == method and c.path.endswith(path_suffix)]

    # --- WSGI --------------------------------------------------------------------------------------
    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        call = LoggedCall(request.method, request.path, dict(request.args), None)
        with self._lock:
            self.calls.append(call)
        if self.fault == "login_page":
            response = _login_page(request)
            call.status = response.status_code
            return response(environ, start_response)
        try:
            endpoint, values = self._urls.bind_to_environ(environ).match()
            if endpoint != "oauth_token" and not self._authorized(request):
                response = _status_response(401, 16, "Unauthenticated: missing or invalid bearer token")
            else:
                if request.mimetype == "application/json":
                    call.body = request.get_json(silent=True)
                with self._lock:
                    response = getattr(self, f"_{endpoint}")(request, **values)
        except BadRequest as err:
            response = _status_response(400, 3, str(err))
        except NotFound:
            response = _status_response(404, 5, f"no route for {request.method} {request.path}")
        except HTTPException as err:
            response = _status_response(err.code or 500, 2, str(err))
        call.status = response.status_code
        return response(environ, start_response)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return self.token is None and not self.oauth_clients
        presented = header.removeprefix("Bearer ")
        if self.oauth_clients:
            expiry = self.issued_tokens.get(presented)
            return expiry is not None and self.clock() < expiry
        return presented == self.token

    # --- endpoints ---------------------------------------------------------------------------------
    def _oauth_token(self, request: Request) -> Response:
        auth = request.authorization
        client_id = auth.username if auth else request.form.get("client_id")
        secret = auth.password if auth else request.form.get("client_secret")
        if request.form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        if not client_id or self.oauth_clients.get(client_id) != secret:
            return _json(
                {"error": "invalid_client", "error_description": "client authentication failed"}, 401
            )
        token = base64.urlsafe_b64encode(f"{client_id}:{next(self._ids)}".encode()).decode()
        self.issued_tokens[token] = self.clock() + self.token_lifetime
        return _json({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime})

    def _healthz(self, request: Request) -> Response:
        return self._respond({"multi_user": False, "pipeline_store": "database"}, "V2beta1GetHealthzResponse")

    def _list_pipelines(self, request: Request) -> Response:
        namespace = request.args.get("namespace")
        items = [p for p in self.pipelines if namespace is None or p.namespace == namespace]
        items = _filtered(request, items, lambda p: {"display_name": p.display_name, "name": p.name})
        items = _sorted(request, items, lambda p: p.created_at)
        page, token = self._page(request, items)
        return self._respond(
            {"pipelines": [p.to_json() for p in page], "total_size": len(items), "next_page_token": token},
            "V2beta1ListPipelinesResponse",
        )

    def _upload_pipeline(self, request: Request) -> Response:
        spec = self._uploaded_spec(request)
        name = request.args.get("name") or request.args.get("display_name")
        if not name:
            name = spec["pipelineInfo"]["name"]
        display_name = request.args.get("display_name") or name
        namespace = request.args.get("namespace")
        if any(p.name == name and p.namespace == namespace for p in self.pipelines):
            return _status_response(409, 6, f"pipeline with name {name} already exists")
        description = request.args.get("description", "")
        pipeline = self._new_pipeline(name, display_name, description, namespace)
        # Like KFP: the first version takes the pipeline's name and description.
        self._new_version(pipeline, name, display_name, description, spec)
        return self._respond(pipeline.to_json(), "V2beta1Pipeline")

    def _upload_version(self, request: Request) -> Response:
        spec = self._uploaded_spec(request)
        pipeline = self._pipeline(request.args.get("pipelineid", ""))
        name = request.args.get("name") or request.args.get("display_name")
        if not name:
            raise BadRequest("pipeline version name is required")
        if any(v["name"] == name for v in pipeline.versions):
            return _status_response(409, 6, f"pipeline version with name {name} already exists")
        version = self._new_version(
            pipeline,
            name,
            request.args.get("display_name") or name,
            request.args.get("description", ""),
            spec,
        )
        return self._respond(version, "V2beta1PipelineVersion")

    def _list_versions(self, request: Request, pipeline_id: str) -> Response:
        pipeline = self._pipeline(pipeline_id)
        items = _filtered(request, pipeline.versions, lambda v: v)
        items = _sorted(request, items, lambda v: v["created_at"])
        page, token = self._page(request, items)
        return self._respond(
            {"pipeline_versions": page, "total_size": len(items), "next_page_token": token},
            "V2beta1ListPipelineVersionsResponse",
        )

    def _list_experiments(self, request: Request) -> Response:
        namespace = request.args.get("namespace")
        items = [e for e in self.experiments if namespace is None or e.get("namespace") == namespace]
        items = _filtered(request, items, lambda e: e)
        items = _sorted(request, items, lambda e: e["created_at"])
        page, token = self._page(request, items)
        return self._respond(
            {"experiments": page, "total_size": len(items), "next_page_token": token},
            "V2beta1ListExperimentsResponse",
        )

    def _create_experiment(self, request: Request) -> Response:
        body = self._body(request, "V2beta1Experiment")
        if not body.get("display_name"):
            raise BadRequest("experiment display_name is required")
        if any(
            e["display_name"] == body["display_name"] and e.get("namespace") == body.get("namespace")
            for e in self.experiments
        ):
            return _status_response(409, 6, f"experiment {body['display_name']} already exists")
        experiment = {
            **body,
            "experiment_id": f"exp-{next(self._ids)}",
            "created_at": self._now(),
            "storage_state": "AVAILABLE",
        }
        self.experiments.append(experiment)
        return self._respond(experiment, "V2beta1Experiment")

    def _list_runs(self, request: Request) -> Response:
        experiment_id = request.args.get("experiment_id")
        items = [self._run_view(r) for r in self.runs.values()]
        items = [r for r in items if experiment_id is None or r.get("experiment_id") == experiment_id]
        items = _filtered(request, items, lambda r: r)
        items = _sorted(request, items, lambda r: r["created_at"])
        page, token = self._page(request, items)
        return self._respond(
            {"runs": page, "total_size": len(items), "next_page_token": token}, "V2beta1ListRunsResponse"
        )

    def _create_run(self, request: Request) -> Response:
        body = self._body(request, "V2beta1Run")
        if not body.get("display_name"):
            raise BadRequest("run display_name is required")
        experiment_id = body.get("experiment_id")
        if experiment_id and not any(e["experiment_id"] == experiment_id for e in self.experiments):
            raise BadRequest(f"experiment {experiment_id} does not exist")
        reference = body.get("pipeline_version_reference")
        if reference:
            pipeline = self._pipeline(reference.get("pipeline_id", ""), status=400)
            versions = [
                v
                for v in pipeline.versions
                if v["pipeline_version_id"] == reference.get("pipeline_version_id")
            ]
            if not versions:
                raise BadRequest(f"pipeline version {reference.get('pipeline_version_id')} does not exist")
            spec = versions[0]["pipeline_spec"]
        elif body.get("pipeline_spec"):
            spec = body["pipeline_spec"]
            _check_v2_spec(spec)
        else:
            raise BadRequest("a run needs pipeline_version_reference or pipeline_spec")
        _check_parameters(spec, (body.get("runtime_config") or {}).get("parameters") or {})
        run_id = f"run-{next(self._ids)}"
        run = {
            **body,
            "run_id": run_id,
            "created_at": self._now(),
            "storage_state": "AVAILABLE",
            "state": "PENDING",
        }
        self.runs[run_id] = run
        self._polls[run_id] = 0
        self.outcomes.setdefault(run_id, self.default_outcome)
        return self._respond(run, "V2beta1Run")

    def _get_run(self, request: Request, run_id: str) -> Response:
        if run_id not in self.runs:
            return _status_response(404, 5, f"run {run_id} not found")
        self._polls[run_id] += 1
        return self._respond(self._run_view(self.runs[run_id]), "V2beta1Run")

    def _terminate_run(self, request: Request, run_id: str) -> Response:
        if run_id not in self.runs:
            return _status_response(404, 5, f"run {run_id} not found")
        self.terminated.append(run_id)
        self.outcomes[run_id] = RunOutcome("CANCELED", "Run was terminated", after_polls=0)
        return _json({})

    # --- helpers -----------------------------------------------------------------------------------
    def _page(self, request: Request, items: list[Any]) -> tuple[list[Any], str]:
        if self.fault != "endless_page_tokens":
            return _page(request, items)
        token = request.args.get("page_token") or ""
        page = [] if token.startswith("endless-") else _page(request, items)[0]
        return page, f"endless-{next(self._ids)}"

    def _run_view(self, run: dict[str, Any]) -> dict[str, Any]:
        run_id = run["run_id"]
        outcome = self.outcomes[run_id]
        if self._polls[run_id] < outcome.after_polls:
            return {**run, "state": "RUNNING" if self._polls[run_id] else "PENDING"}
        view = {**run, "state": outcome.state, "finished_at": self._now()}
        if outcome.state != "SUCCEEDED":
            view["error"] = {"code": 2, "message": outcome.error_message or outcome.state.lower()}
        return view

    def _now(self) -> str:
        return _ts(EPOCH + timedelta(seconds=next(self._ids)))

    def _new_pipeline(
        self, name: str, display_name: str, description: str, namespace: str | None
    ) -> _Pipeline:
        pipeline = _Pipeline(
            pipeline_id=f"pipeline-{next(self._ids)}",
            name=name,
            display_name=display_name,
            description=description,
            namespace=namespace,
            created_at=EPOCH + timedelta(seconds=next(self._ids)),
        )
        self.pipelines.append(pipeline)
        return pipeline

    def _new_version(
        self, pipeline: _Pipeline, name: str, display_name: str, description: str, spec: dict[str, Any]
    ) -> dict[str, Any]:
        version = {
            "pipeline_id": pipeline.pipeline_id,
            "pipeline_version_id": f"version-{next(self._ids)}",
            "name": name,
            "display_name": display_name,
            "description": description,
            "created_at": self._now(),
            "pipeline_spec": spec,
        }
        pipeline.versions.append(version)
        return version

    def _pipeline(self, pipeline_id: str, status: int = 404) -> _Pipeline:
        for pipeline in self.pipelines:
            if pipeline.pipeline_id == pipeline_id:
                return pipeline
        if status == 400:
            raise BadRequest(f"pipeline {pipeline_id} does not exist")
        raise NotFound()

    def _uploaded_spec(self, request: Request) -> dict[str, Any]:
        upload = request.files.get("uploadfile")
        if upload is None:
            raise BadRequest("multipart field 'uploadfile' is required")
        if not (upload.filename or "").endswith((".yaml", ".yml", ".json")):
            raise BadRequest(f"unexpected package file name {upload.filename!r}")
        return self._parse_package(upload.read())

    @staticmethod
    def _parse_package(package: bytes) -> dict[str, Any]:
        try:
            documents = [d for d in yaml.safe_load_all(package) if d is not None]
        except yaml.YAMLError as err:
            raise BadRequest(f"package is not YAML: {err}") from None
        if not documents or not isinstance(documents[0], dict):
            raise BadRequest("package holds no pipeline spec")
        _check_v2_spec(documents[0])
        return documents[0]

    @staticmethod
    def _body(request: Request, model: str) -> dict[str, Any]:
        if request.mimetype != "application/json":
            raise BadRequest(f"expected a JSON {model} body")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise BadRequest(f"expected a JSON {model} object")
        errors = model_errors(body, model)
        errors += [f"{model}: '{key}' is output only" for key in OUTPUT_ONLY.get(model, ()) if key in body]
        if errors:
            raise BadRequest("; ".join(errors))
        return body

    @staticmethod
    def _respond(body: dict[str, Any], model: str) -> Response:
        errors = model_errors(body, model)
        if errors:  # the double itself is wrong; say so loudly
            raise AssertionError(f"double built an invalid {model}: {errors}")
        return _json(body)


def _check_v2_spec(spec: Any) -> None:
    if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
        raise BadRequest("not a KFP v2 pipeline spec (pipelineInfo and root are required)")
    if not str(spec.get("schemaVersion", "")).startswith("2."):
        raise BadRequest(f"unsupported schemaVersion {spec.get('schemaVersion')!r}")


def _check_parameters(spec: dict[str, Any], given: dict[str, Any]) -> None:
    declared = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    problems = [f"unknown pipeline parameter '{name}'" for name in given if name not in declared]
    for name, definition in declared.items():
        if name not in given:
            if not definition.get("isOptional") and "defaultValue" not in definition:
                problems.append(f"missing pipeline parameter '{name}'")
            continue
        kind = definition.get("parameterType", "STRING")
        if not PARAMETER_TYPES.get(kind, lambda v: True)(given[name]):
            problems.append(f"parameter '{name}' must be {kind}, got {type(given[name]).__name__}")
    if problems:
        raise BadRequest("; ".join(problems))


def _filtered(request: Request, items: list[Any], fields: Callable[[Any], dict[str, Any]]) -> list[Any]:
    raw = request.args.get("filter")
    if not raw:
        return items
    try:
        predicates = json.loads(urllib.parse.unquote(raw)).get("predicates", [])
    except (ValueError, AttributeError):
        raise BadRequest(f"filter is not filter.proto JSON: {raw!r}") from None
    for predicate in predicates:
        key, operation = predicate.get("key"), predicate.get("operation")
        if key not in ("display_name", "name") or operation not in ("EQUALS", 1):
            raise BadRequest(f"the double supports only EQUALS on display_name/name, not {predicate}")
        value = predicate.get("string_value")
        items = [item for item in items if fields(item).get(key) == value]
    return items


def _sorted(request: Request, items: list[Any], created_at: Callable[[Any], Any]) -> list[Any]:
    sort_by = request.args.get("sort_by", "")
    if sort_by in ("", "created_at", "created_at asc"):
        return sorted(items, key=created_at)
    if sort_by == "created_at desc":
        return sorted(items, key=created_at, reverse=True)
    raise BadRequest(f"the double supports sorting by created_at only, not {sort_by!r}")


def _page(request: Request, items: list[Any]) -> tuple[list[Any], str]:
    try:
        size = int(request.args.get("page_size") or 20)
        token = request.args.get("page_token")
        start = int(token.removeprefix("offset-")) if token else 0
    except ValueError:
        raise BadRequest("bad page_size or page_token") from None
    end = start + size
    return items[start:end], (f"offset-{end}" if end < len(items) else "")


def _login_page(request: Request) -> Response:
    """An authenticating proxy (oauth2-proxy style) answering a request that has no session cookie."""
    if request.path == SIGN_IN:
        return Response(LOGIN_HTML, status=200, mimetype="text/html")
    target = urllib.parse.quote(request.full_path, safe="")
    return Response("", status=302, headers={"Location": f"{SIGN_IN}?rd={target}"})


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _status_response(status: int, code: int, message: str) -> Response:
    # grpc-gateway's error body: google.rpc.Status plus the legacy "error" field.
    return _json({"error": message, "code": code, "message": message, "details": []}, status)
