"""sagelift.client against a scripted Airflow REST API on loopback: what a data scientist sees while a run
goes on (progress lines, the tqdm bar), what a failure tells them, what list_models, invoke and teardown
send and return. tests/live/test_client.py drives the same client against a real Airflow.

The fake answers only the endpoints the client calls, with the shapes Airflow 3.3's API gives them
(dagRuns, taskInstances, logs with continuation tokens, xcomEntries); it does not check permissions,
paginate beyond one page, or stream NDJSON logs.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sagelift.client import LineProgress, RunFailed, SageliftClient, SageliftError, TqdmProgress
from tests.conftest import ROOT

ACCOUNT = "333333333333"
SUMMARY = {
    "model_name": "churn-predictor",
    "account_id": ACCOUNT,
    "region": "eu-west-1",
    "invoke_url": None,  # set per test to the fake's own URL
    "authorization": "AWS_IAM",
    "resources": [{"kind": "endpoint", "name": "churn-predictor", "status": "InService"}],
}
WAITER = "airflow.providers.amazon.aws.utils.waiter_with_logging"
CREDENTIALS = Credentials("AKIDEXAMPLE", "secret-for-tests-only")


def ev(text: str, **extra: Any) -> dict[str, Any]:
    """A log event as Airflow 3 serves it; sagelift's own logger unless ``extra`` says otherwise."""
    return {
        "timestamp": "2026-12-02T10:00:00Z",
        "event": text,
        "level": "info",
        "logger": "sagelift.steps.training",
        **extra,
    }


class FakeAirflow:
    """One scripted run: each GET of the run moves to the next step of ``timeline``."""

    def __init__(self) -> None:
        self.timeline: list[dict[str, Any]] = []
        self.step = -1
        self.logs: dict[str, list[dict[str, Any]]] = {}  # task_id -> every event so far, by step
        self.triggered: list[tuple[str, dict[str, Any]]] = []
        self.xcoms: dict[tuple[str, str, str], Any] = {}
        self.runs: dict[str, list[dict[str, Any]]] = {}  # dag_id -> successful runs, newest first
        self.invocations: list[dict[str, Any]] = []
        self.error: tuple[int, str] | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def now(self) -> dict[str, Any]:
        return self.timeline[max(0, min(self.step, len(self.timeline) - 1))]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path
                if path == "/auth/token":
                    return self._answer(201, {"access_token": "jwt-for-tests"})
                if path == "/prod/invocations":
                    fake.invocations.append(
                        {"headers": dict(self.headers), "body": body, "url": fake.url + path}
                    )
                    return self._answer(200, {"predictions": [0.8]})
                if fake.error:
                    return self._answer(fake.error[0], {"detail": fake.error[1]})
                dag_id = path.split("/")[4]
                payload = json.loads(body)
                fake.triggered.append((dag_id, payload))
                return self._answer(
                    200, {"dag_run_id": payload.get("dag_run_id") or "manual__x", "state": "queued"}
                )

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path, query = parts.path.split("/"), parse_qs(parts.query)
                if self.headers.get("Authorization") != "Bearer jwt-for-tests":
                    return self._answer(401, {"detail": "Not authenticated"})
                if len(path) == 6 and path[-1] == "dagRuns":  # the runs list
                    runs = fake.runs.get(path[4], [])
                    return self._answer(200, {"dag_runs": runs, "total_entries": len(runs)})
                if len(path) == 7:  # one run
                    fake.step += 1
                    return self._answer(200, {"dag_run_id": path[6], "state": fake.now()["state"]})
                if path[-1] == "taskInstances":
                    tasks = [
                        {"task_id": t, "state": s, "try_number": 1, "start_date": f"2026-12-02T10:00:0{i}Z"}
                        for i, (t, s) in enumerate(fake.now()["tasks"].items())
                    ]
                    return self._answer(200, {"task_instances": tasks, "total_entries": len(tasks)})
                if "logs" in path:
                    task_id = path[8]
                    events = fake.logs.get(task_id, [])[: fake.now().get("log_upto", {}).get(task_id, 10**6)]
                    start = int(query.get("token", ["0"])[0])
                    return self._answer(
                        200, {"content": events[start:], "continuation_token": str(len(events))}
                    )
                if "xcomEntries" in path:
                    value = fake.xcoms.get((path[4], path[6], path[8]))
                    return self._answer(
                        200 if value is not None else 404, {"value": value, "detail": "no XCom"}
                    )
                return self._answer(404, {"detail": "not found"})

        return Handler

    def client(self, **kwargs: Any) -> SageliftClient:
        return SageliftClient(self.url, username="bob", password="pw", **kwargs)


@pytest.fixture
def fake() -> Iterator[FakeAirflow]:
    airflow = FakeAirflow()
    thread = threading.Thread(target=airflow.server.serve_forever, daemon=True)
    thread.start()
    yield airflow
    airflow.server.shutdown()
    airflow.server.server_close()


TASKS = ("validate", "assume_role_chain", "train_model", "deploy_endpoint", "summarize_run")


def states(*done: str, current: str | None = None, current_state: str = "running") -> dict[str, str]:
    out = {}
    for task in TASKS:
        out[task] = "success" if task in done else current_state if task == current else ""
    return out


def a_successful_run(fake: FakeAirflow) -> None:
    fake.logs["train_model"] = [
        ev("Filling up the DagBag from dags/sagemaker_deploy.py", logger="airflow.dag_processing.dagbag"),
        ev("Started training job churn-predictor-1a2b3c4d."),
        ev("Training job not done yet: InProgress", logger=WAITER),
        ev("epoch 1 loss 0.52"),
        ev("Training job not done yet: InProgress", logger=WAITER),
        ev("epoch 2 loss 0.31"),
        ev("Training job not done yet: Completed", logger=WAITER),  # logged after the last look
        ev("instance algo-2 is slow", level="warning", logger="airflow.providers.amazon"),
    ]
    fake.timeline = [
        {"state": "queued", "tasks": states()},
        {"state": "running", "tasks": states("validate", current="assume_role_chain")},
        {
            "state": "running",
            "tasks": states("validate", "assume_role_chain", current="train_model", current_state="deferred"),
            "log_upto": {"train_model": 4},
        },
        {
            "state": "running",
            "tasks": states("validate", "assume_role_chain", current="train_model", current_state="deferred"),
            "log_upto": {"train_model": 6},
        },
        {"state": "success", "tasks": states(*TASKS)},
    ]


def test_submit_shows_task_states_training_status_and_new_log_lines_then_returns_the_summary(fake):
    a_successful_run(fake)
    out = io.StringIO()
    client = fake.client()

    original = client.xcom
    client.xcom = lambda dag_id, run_id, task_id, key="return_value": (  # type: ignore[method-assign]
        SUMMARY if task_id == "summarize_run" else original(dag_id, run_id, task_id, key)
    )
    summary = client.submit(
        {"model_name": "churn-predictor", "account_id": ACCOUNT}, poll=0.01, progress=LineProgress(out)
    )

    assert summary == SUMMARY
    ((dag_id, body),) = fake.triggered
    assert dag_id == "sagemaker_deploy" and body["logical_date"] is None
    assert body["dag_run_id"].startswith("churn-predictor__manual__2")
    assert (
        body["note"]
        == f"Model churn-predictor into account {ACCOUNT}, submitted by bob with sagelift.client."
    )
    shown = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert shown == [
        "validate: success",
        "assume_role_chain: running",
        "assume_role_chain: success",
        "train_model: deferred",
        "training job: InProgress",
        "  train_model | Started training job churn-predictor-1a2b3c4d.",
        "  train_model | epoch 1 loss 0.52",
        "  train_model | epoch 2 loss 0.31",  # each line once: the next look asks from its token on
        "train_model: success",
        "deploy_endpoint: success",
        "summarize_run: success",
        "training job: Completed",
        "  train_model | instance algo-2 is slow",  # read once more after it stopped running
        "run success",
    ]


def test_a_failed_run_raises_with_validate_s_reason_and_a_short_log_tail(fake):
    message = (
        "Invalid run configuration. training_instance_type: 'ml.x9.huge' is not a SageMaker training "
        "instance type; did you mean ml.m5.large?"
    )
    fake.logs["validate"] = [ev("x" * 2000) for _ in range(30)] + [
        ev(
            "Task failed with exception",
            level="error",
            error_detail=[{"exc_type": "AirflowFailException", "exc_value": message + " " + "y" * 5000}],
        )
    ]
    fake.timeline = [
        {"state": "running", "tasks": states(current="validate")},
        {
            "state": "failed",
            "tasks": {**states(), "validate": "failed", "assume_role_chain": "upstream_failed"},
        },
    ]
    with pytest.raises(RunFailed) as raised:
        fake.client().submit(
            {"model_name": "churn-predictor"}, poll=0.01, progress=LineProgress(io.StringIO())
        )

    failed = raised.value
    assert failed.task_id == "validate" and failed.failed_tasks == ["validate"]
    assert failed.reason.startswith(message)
    text = str(failed)
    assert text.splitlines()[0].startswith("run churn-predictor__manual__") and text.splitlines()[0].endswith(
        " of sagemaker_deploy failed at validate"
    )
    assert text.splitlines()[1].startswith(message)
    assert len(text) < 2000, len(text)  # never the 2,000-character dump of the old script
    assert len(failed.log_tail) == 6 and all(len(line) <= 120 for line in failed.log_tail)


def test_an_http_error_is_one_short_line(fake):
    fake.error = (400, "conf " + "z" * 5000)
    with pytest.raises(SageliftError) as raised:
        fake.client().submit({"model_name": "m"}, wait=False)
    message = str(raised.value)
    assert message.startswith("POST /api/v2/dags/sagemaker_deploy/dagRuns answered 400: conf zzz")
    assert len(message) < 400


def test_in_a_notebook_the_bar_counts_finished_tasks_and_names_the_training_status(fake):
    class FakeBar:
        def __init__(self, **kwargs: Any) -> None:
            self.total, self.n, self.descriptions, self.postfixes, self.closed = (
                kwargs["total"],
                0,
                [],
                [],
                False,
            )

        def set_description_str(self, text: str, refresh: bool = True) -> None:
            self.descriptions.append(text)

        def set_postfix_str(self, text: str, refresh: bool = True) -> None:
            self.postfixes.append(text)

        def refresh(self) -> None:
            pass

        def close(self) -> None:
            self.closed = True

    bars: list[FakeBar] = []

    def tqdm(**kwargs: Any) -> FakeBar:
        bars.append(FakeBar(**kwargs))
        return bars[-1]

    a_successful_run(fake)
    client = fake.client()
    client.xcom = lambda *a, **k: SUMMARY  # type: ignore[method-assign]
    client.submit({"model_name": "churn-predictor"}, poll=0.01, progress=TqdmProgress(tqdm))

    (bar,) = bars
    assert bar.total == len(TASKS) and bar.n == len(TASKS) and bar.closed
    assert "train_model (InProgress)" in bar.descriptions
    assert bar.postfixes[-2:] == ["epoch 2 loss 0.31", "instance algo-2 is slow"]
    assert bar.descriptions[-1] == "run success"


# --- models ---------------------------------------------------------------------------------------------
def _deployed(fake: FakeAirflow) -> None:
    fake.runs["sagemaker_deploy"] = [  # newest first
        {
            "dag_run_id": "churn-predictor__manual__3",
            "conf": {"model_name": "churn-predictor", "account_id": ACCOUNT},
            "run_after": "2026-12-02T10:00:00Z",
            "end_date": "2026-12-02T10:20:00Z",
        },
        {
            "dag_run_id": "fraud__manual__2",
            "conf": {"model_name": "fraud", "account_id": int(ACCOUNT)},
            "run_after": "2026-12-01T10:00:00Z",
            "end_date": "2026-12-01T10:20:00Z",
        },
        {
            "dag_run_id": "churn-predictor__manual__1",
            "conf": {"model_name": "churn-predictor", "account_id": ACCOUNT},
            "run_after": "2026-11-30T10:00:00Z",
        },
        {
            "dag_run_id": "other__manual__1",
            "conf": {"model_name": "other", "account_id": "444444444444"},
            "run_after": "2026-11-30T10:00:00Z",
        },
        {
            "dag_run_id": "gone__manual__1",
            "conf": {"model_name": "gone", "account_id": ACCOUNT},
            "run_after": "2026-11-29T10:00:00Z",
        },
    ]
    fake.runs["sagemaker_teardown"] = [
        {
            "dag_run_id": "teardown__gone",
            "conf": {"model_name": "gone", "account_id": ACCOUNT},
            "run_after": "2026-11-29T12:00:00Z",
        },
        {
            "dag_run_id": "teardown__fraud",
            "conf": {"model_name": "fraud", "account_id": ACCOUNT},
            "run_after": "2026-11-01T12:00:00Z",
        },  # torn down, then deployed again
    ]
    url = fake.url + "/prod/invocations"
    fake.xcoms[("sagemaker_deploy", "churn-predictor__manual__3", "summarize_run")] = {
        **SUMMARY,
        "invoke_url": url,
    }
    fake.xcoms[("sagemaker_deploy", "fraud__manual__2", "summarize_run")] = {
        **SUMMARY,
        "model_name": "fraud",
        "invoke_url": url + "?fraud",
        "resources": [],
    }


def test_list_models_shows_each_model_s_latest_deploy_in_the_account_except_torn_down_ones(fake):
    _deployed(fake)
    models = fake.client().list_models(int(ACCOUNT))
    assert [(m["model_name"], m["run_id"], m["endpoint_status"]) for m in models] == [
        ("churn-predictor", "churn-predictor__manual__3", "InService"),
        ("fraud", "fraud__manual__2", None),
    ]
    assert models[0]["invoke_url"] == fake.url + "/prod/invocations"


def test_invoke_signs_the_call_with_the_caller_s_credentials_for_execute_api(fake):
    _deployed(fake)
    answer = fake.client().invoke(
        "churn-predictor", {"instances": [[0.3, 1.2]]}, account=ACCOUNT, credentials=CREDENTIALS
    )
    assert answer == {"predictions": [0.8]}
    (call,) = fake.invocations
    assert call["body"] == b'{"instances": [[0.3, 1.2]]}'
    sent = call["headers"]
    assert sent["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in sent["Authorization"]
    # The signature is the one botocore computes for this request and these credentials.
    again = AWSRequest(
        method="POST", url=call["url"], data=call["body"], headers={"Content-Type": "application/json"}
    )
    again.context["timestamp"] = sent["X-Amz-Date"]
    signer = SigV4Auth(CREDENTIALS, "execute-api", "eu-west-1")
    again.headers["X-Amz-Date"] = sent["X-Amz-Date"]
    canonical = signer.canonical_request(again)
    signature = signer.signature(signer.string_to_sign(again, canonical), again)
    assert sent["Authorization"].endswith(f"Signature={signature}")


def test_invoke_asks_for_the_account_when_a_model_name_is_in_two(fake):
    _deployed(fake)
    fake.runs["sagemaker_deploy"].append(
        {
            "dag_run_id": "x",
            "conf": {"model_name": "churn-predictor", "account_id": "444444444444"},
            "run_after": "0",
        }
    )
    with pytest.raises(SageliftError, match=r"deployed in accounts .*; pass account="):
        fake.client().invoke("churn-predictor", b"1,2", "text/csv", credentials=CREDENTIALS)


def test_teardown_triggers_the_teardown_dag_confirming_the_model_and_returns_its_report(fake):
    fake.timeline = [{"state": "success", "tasks": {"validate": "success", "report": "success"}}]
    client = fake.client()
    client.xcom = lambda dag_id, run_id, task_id, key="return_value": {"deleted": ["endpoint"]}  # type: ignore[method-assign]
    report = client.teardown("churn-predictor", ACCOUNT, poll=0.01, progress=LineProgress(io.StringIO()))
    assert report == {"deleted": ["endpoint"]}
    ((dag_id, body),) = fake.triggered
    assert dag_id == "sagemaker_teardown"
    assert body["conf"] == {
        "model_name": "churn-predictor",
        "account_id": ACCOUNT,
        "confirm": "churn-predictor",
        "delete_images": False,
    }
    assert body["dag_run_id"].startswith("teardown__churn-predictor__manual__")


# --- packaging and the command line -----------------------------------------------------------------------
def test_the_client_imports_without_airflow():
    code = "import sys; sys.modules['airflow'] = None; import sagelift.client; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_submit_run_script_exits_1_printing_the_failed_task_and_its_reason(
    fake, tmp_path, monkeypatch, capsys
):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import submit_run
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    fake.logs["validate"] = [ev("boom", level="error")]
    fake.timeline = [{"state": "failed", "tasks": {"validate": "failed", "train_model": "upstream_failed"}}]
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"model_name": "churn-predictor"}))
    monkeypatch.setenv("AIRFLOW_USERNAME", "bob")
    monkeypatch.setenv("AIRFLOW_PASSWORD", "pw")
    assert submit_run.main([str(conf), "--url", fake.url, "--poll", "0.01"]) == 1
    out, err = capsys.readouterr()
    outcome = json.loads(out)
    assert outcome["failed_tasks"] == ["validate"] and outcome["reason"] == "boom"
    assert "failed at validate" in err
