"""A run's outcome at a glance (issue 18 item 5): the run's note, the endpoint as an Asset, the how-to-call
link.

Notes go through Airflow's REST API (a task cannot set one through the Task SDK): here a loopback
server records what the hook sends, as Airflow's API server would receive it; the note of a real run is
checked in tests/live/test_client.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest
from airflow.sdk import DAG, AssetAlias
from airflow.sdk.api.datamodels._generated import DagRunType
from airflow.sdk.execution_time.context import OutletEventAccessors

from sagelift.domain.notes import NOTE_MAX_CHARS, escape_markdown, failure_note, outcome_note
from sagelift.hooks.airflow_api import AirflowApiHook
from sagelift.notifications import SageliftNotifier
from sagelift.operators.summary import RunSummaryOperator
from sagelift.operators.validate import ValidateRunOperator
from tests.support.scenario import demo_conf
from tests.support.task_context import step_plan

ACCOUNT = "333333333333"
RUN_ID = "churn-predictor__manual__2026-12-02T10:00:00+00:00"
INVOKE_URL = "https://a1b2c3.execute-api.us-east-1.amazonaws.com/v1/invocations"


class FakeApiServer:
    """Answers POST /auth/token and PATCH of a run, recording each request; ``refuse`` answers 403."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.refuse = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append(
                    {
                        "method": self.command,
                        "path": unquote(self.path),
                        "auth": self.headers.get("Authorization"),
                        "body": json.loads(body or b"null"),
                    }
                )
                status = 403 if fake.refuse and self.command == "PATCH" else 200
                data = json.dumps({"access_token": "service-jwt"} if self.command == "POST" else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PATCH = _record

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def notes(self) -> list[tuple[str, str]]:
        return [(r["path"], r["body"]["note"]) for r in self.requests if r["method"] == "PATCH"]


@pytest.fixture
def api(monkeypatch) -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    connection = {"conn_type": "http", "host": server.url, "login": "sagelift-notes", "password": "pw"}
    monkeypatch.setenv("AIRFLOW_CONN_SAGELIFT_AIRFLOW_API", json.dumps(connection))
    yield server
    server.server.shutdown()
    server.server.server_close()


# --- the note's text ------------------------------------------------------------------------------------
def test_a_note_quoting_a_hostile_value_renders_no_link_image_or_html():
    hostile = "model_name: got '[re-enter your keys](https://evil.example) ![x](https://evil/p.png) <b>`"
    note = failure_note("validate", f"Invalid run configuration. {hostile}\n  - other: rule")
    assert "](" not in note.replace("\\](", "").replace("\\]\\(", "")
    for char in "[]()<>!`":
        assert f"{char}" not in note.replace(f"\\{char}", ""), char
    assert "other" not in note  # the first line only
    assert note.startswith("failed at validate.")


def test_a_note_stays_within_what_the_rest_api_accepts():
    assert len(failure_note("train_model", "x" * 50_000, "m" * 500)) <= NOTE_MAX_CHARS
    assert len(escape_markdown("[" * 5000)) <= 2 * 300


def test_the_outcome_note_names_the_endpoint_status_and_the_invoke_url_as_text():
    summary = {
        "model_name": "churn-predictor",
        "account_id": ACCOUNT,
        "invoke_url": INVOKE_URL,
        "authorization": "AWS_IAM",
        "resources": [{"kind": "endpoint", "name": "churn-predictor", "status": "InService"}],
    }
    note = outcome_note(summary)
    assert note.startswith(f"**churn\\-predictor** in account {ACCOUNT}: endpoint InService.")
    assert "\n\nInvoke: POST https\\:\\/\\/a1b2c3\\.execute\\-api" in note  # text: no link to click
    assert note.endswith(" (AWS\\_IAM)")


# --- who writes it ----------------------------------------------------------------------------------------
def test_the_hook_patches_the_run_s_note_as_the_service_user(api):
    assert AirflowApiHook().set_run_note("sagemaker_deploy", RUN_ID, "hello")
    token, patch = api.requests
    assert token == {
        "method": "POST",
        "path": "/auth/token",
        "auth": None,
        "body": {"username": "sagelift-notes", "password": "pw"},
    }
    assert patch == {
        "method": "PATCH",
        "path": f"/api/v2/dags/sagemaker_deploy/dagRuns/{RUN_ID}",
        "auth": "Bearer service-jwt",
        "body": {"note": "hello"},
    }


def test_without_the_connection_or_with_a_refusal_the_note_is_skipped_never_failing(api, monkeypatch):
    api.refuse = True
    assert AirflowApiHook().set_run_note("sagemaker_deploy", RUN_ID, "hello") is False
    monkeypatch.delenv("AIRFLOW_CONN_SAGELIFT_AIRFLOW_API")
    before = len(api.requests)
    assert AirflowApiHook().set_run_note("sagemaker_deploy", RUN_ID, "hello") is False
    assert len(api.requests) == before


def test_validate_writes_who_runs_which_model_where(api, monkeypatch):
    platform = {"region": "us-east-1", "accounts": {ACCOUNT: {"deployers": {"users": ["bob"]}}}}
    monkeypatch.setenv("AIRFLOW_VAR_SAGELIFT_PLATFORM", json.dumps(platform))
    monkeypatch.setenv(f"AIRFLOW_CONN_SAGELIFT_AWS_{ACCOUNT}", json.dumps({"conn_type": "aws"}))
    dag_run = SimpleNamespace(
        conf=demo_conf(),
        dag_id="sagemaker_deploy",
        run_id=RUN_ID,
        run_type=DagRunType("manual"),
        triggering_user_name="bob",
    )
    ValidateRunOperator(task_id="validate").execute({"dag_run": dag_run})
    assert api.notes() == [
        (
            f"/api/v2/dags/sagemaker_deploy/dagRuns/{RUN_ID}",
            f"**churn\\-predictor** into account {ACCOUNT} for bob (triggering user): running.",
        )
    ]


def test_a_failed_task_s_notifier_writes_the_task_and_the_field_and_rule(api):
    with DAG(dag_id="sagemaker_deploy", schedule=None) as dag:
        ValidateRunOperator(task_id="validate")
    context = {
        "dag_run": SimpleNamespace(dag_id="sagemaker_deploy", run_id=RUN_ID, conf={}),
        "ti": SimpleNamespace(task_id="validate", log_url="", xcom_pull=lambda **_: None),
        "dag": dag,
        "exception": RuntimeError(
            "Invalid run configuration. training_instance_count: must be at least 1, got 0\n  - x: y"
        ),
    }
    SageliftNotifier("failure").notify(context)
    ((_, note),) = api.notes()
    assert note == (
        "failed at validate.\n\nInvalid run configuration\\. training\\_instance\\_count\\: must be at least 1\\, "
        "got 0"
    )


def test_summarize_run_replaces_the_note_and_records_the_endpoint_as_an_asset_event(api):
    plan = step_plan(run_id=RUN_ID)
    endpoint = {"Endpoint": {"EndpointName": "churn-predictor", "EndpointStatus": "InService"}}
    api_facts = {"invoke_url": INVOKE_URL, "authorization": "AWS_IAM", "api_name": "churn-predictor"}
    operator = RunSummaryOperator(task_id="summarize_run", plan=plan, endpoint=endpoint, api=api_facts)
    assert operator.outlets == [AssetAlias("sagelift_model_endpoints")]
    events = OutletEventAccessors()

    summary = operator.execute({"outlet_events": events})

    (event,) = events[AssetAlias("sagelift_model_endpoints")].asset_alias_events
    assert event.dest_asset_key.name == f"sagemaker_endpoint/{ACCOUNT}/churn-predictor"
    assert event.dest_asset_key.uri == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/churn-predictor"
    assert event.extra["run_id"] == RUN_ID and event.extra["invoke_url"] == INVOKE_URL
    assert event.extra["training_data"] == [
        c["DataSource"]["S3DataSource"]["S3Uri"] for c in plan["params"]["training_channels"]
    ]
    ((_, note),) = api.notes()
    assert note == outcome_note(summary) and "InService" in note


# --- the how-to-call page -------------------------------------------------------------------------------
def _serve(method: str) -> tuple[int, dict[bytes, bytes], bytes]:
    import asyncio

    from sagelift.links.howto import how_to_call_app

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/how-to-call"}
    asyncio.run(how_to_call_app(scope, receive, send))
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


def test_the_invoke_link_opens_the_how_to_call_page_with_the_url_in_its_fragment():
    from urllib.parse import quote

    from sagelift_plugin import SageliftPlugin

    from sagelift.links.apigateway import ApiGatewayInvokeUrlLink

    link = ApiGatewayInvokeUrlLink().format_link(invoke_url=INVOKE_URL)
    assert link.endswith("/sagelift/how-to-call#" + quote(INVOKE_URL, safe=""))
    assert ApiGatewayInvokeUrlLink().format_link(invoke_url=None) == ""
    (app,) = SageliftPlugin.fastapi_apps
    assert app["url_prefix"] == "/sagelift"


def test_the_page_answers_at_the_link_s_path_before_the_ui_s_catch_all_route():
    """Mounted as Airflow's API server mounts a plugin app, ahead of the UI's catch-all route."""
    from sagelift_plugin import SageliftPlugin
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.testclient import TestClient

    from sagelift.links.howto import how_to_call_app

    (plugin,) = SageliftPlugin.fastapi_apps
    ui = Route("/{rest_of_path:path}", lambda request: PlainTextResponse("the UI"))
    server = TestClient(Starlette(routes=[Mount(plugin["url_prefix"], app=how_to_call_app), ui]))
    for path in ("/sagelift/how-to-call", "/sagelift/how-to-call/"):
        answer = server.get(path)
        assert answer.status_code == 200 and "How to call your model" in answer.text, path
    assert server.get("/sagelift/other").status_code == 404
    assert server.get("/dags").text == "the UI"


def test_the_page_is_static_and_its_policy_lets_only_its_own_script_run():
    import base64
    import hashlib
    import re

    status, headers, page = _serve("GET")
    assert status == 200 and headers[b"content-type"].startswith(b"text/html")
    text = page.decode()
    assert "sagelift.client" in text and "awscurl --service execute-api" in text
    (script,) = re.findall(r"<script>(.*?)</script>", text, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = headers[b"content-security-policy"].decode()
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert "textContent" in script and "innerHTML" not in script  # the URL is shown as text only
    assert _serve("POST")[0] == 405
