"""sagelift from a notebook or a script: deploy, list, call and remove models through Airflow's REST API.

::

    from sagelift.client import SageliftClient
    client = SageliftClient("https://airflow.example.com", username="bob", password=...)
    summary = client.submit({"model_name": "churn-predictor", "account_id": "333333333333", ...})
    client.invoke("churn-predictor", {"instances": [[0.3, 1.2]]}, account="333333333333")

Why a client and not the Airflow UI: a data scientist works in a notebook. ``submit`` triggers
``sagemaker_deploy`` (Airflow 3 REST API, ``/api/v2``, a JWT from ``POST /auth/token``), shows the run's
progress while it waits (task states, the training job's status, the tail of the running task's log:
a tqdm bar in a notebook when tqdm is installed, else one line per change), and returns the run summary
(``summarize_run``'s return value) or raises ``RunFailed`` with the failed task's reason (validate's
message names the field and the rule) and the tail of its log, both bounded. ``list_models`` reads what
Airflow deployed into an account, ``invoke`` calls a model's API with the caller's own AWS credentials
(SigV4, service ``execute-api``) and ``teardown`` triggers ``sagemaker_teardown``.

Dependencies: the standard library, requests and botocore (for ``invoke`` only); no Airflow, so it runs
in any notebook. Every answer read is size-bounded and every message this module raises is short.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEPLOY_DAG = "sagemaker_deploy"
TEARDOWN_DAG = "sagemaker_teardown"
FINISHED = frozenset({"success", "failed"})
# An answer of the API larger than this is refused rather than read (a runaway log, a hostile proxy).
ANSWER_MAX_BYTES = 8 * 1024 * 1024
# SageMaker's real-time payload limit is 6 MB; an answer larger than that is not a model's.
INVOKE_ANSWER_MAX_BYTES = 6 * 1024 * 1024
REASON_MAX_CHARS = 600
LOG_LINE_MAX_CHARS = 120
LOG_TAIL_LINES = 6
DETAIL_MAX_CHARS = 300
RUNS_LISTED_MAX = 1000
_TRAINING_STATUS_RE = re.compile(r"^Training job not done yet: \[?'?([A-Za-z]+)'?\]?\s*$")
_API_HOST_RE = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


class SageliftError(RuntimeError):
    """The submission, a request or the wait failed (not the run itself: see ``RunFailed``)."""


class RunFailed(SageliftError):
    """A run ended failed: which task, why (its error, e.g. validate's field and rule) and its log's tail."""

    def __init__(
        self,
        dag_id: str,
        run_id: str,
        task_id: str | None,
        reason: str,
        log_tail: list[str],
        failed_tasks: list[str] | None = None,
    ) -> None:
        self.dag_id, self.run_id, self.task_id = dag_id, run_id, task_id
        self.reason, self.log_tail = reason, log_tail
        self.failed_tasks = failed_tasks if failed_tasks is not None else [task_id] if task_id else []
        lines = [f"run {run_id} of {dag_id} failed" + (f" at {task_id}" if task_id else "")]
        if reason:
            lines.append(reason)
        if log_tail:
            lines.append(f"last lines of {task_id}'s log:")
            lines.extend(f"  {line}" for line in log_tail)
        super().__init__("\n".join(lines))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(text: str, limit: int) -> str:
    return clip(" ".join(text.split()), limit)


def derive_run_id(model_name: str, now: datetime | None = None, prefix: str = "") -> str:
    """A run id that shows the model in the runs list: ``<model>__manual__<UTC time>``."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="microseconds")
    return f"{prefix}{model_name}__manual__{stamp}"


# --- progress -------------------------------------------------------------------------------------------
@dataclass
class RunProgress:
    """What a wait knows after one look at the run: shown by a ``Progress``."""

    run_id: str
    state: str
    tasks: dict[str, str] = field(default_factory=dict)  # task_id -> state, in the DAG's order
    training_status: str | None = None
    current_task: str | None = None
    new_log_lines: list[tuple[str, str]] = field(default_factory=list)  # (task_id, line)

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.tasks.values() if s in ("success", "skipped", "failed", "upstream_failed"))


class LineProgress:
    """One line per change, for a terminal or a CI log: a task's new state, the training status, new log lines."""

    def __init__(self, stream: IO[str] | None = None, max_log_lines: int = 5) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.max_log_lines = max_log_lines
        self._tasks: dict[str, str] = {}
        self._training: str | None = None

    def _say(self, text: str) -> None:
        print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", file=self.stream, flush=True)

    def update(self, progress: RunProgress) -> None:
        for task_id, state in progress.tasks.items():
            if state and self._tasks.get(task_id) != state:
                self._say(f"{task_id}: {state}")
        self._tasks = dict(progress.tasks)
        if progress.training_status and progress.training_status != self._training:
            self._training = progress.training_status
            self._say(f"training job: {progress.training_status}")
        lines = progress.new_log_lines[-self.max_log_lines :]
        for task_id, line in lines:
            self._say(f"  {task_id} | {line}")

    def close(self, state: str) -> None:
        self._say(f"run {state}")


class TqdmProgress:
    """A tqdm bar over the run's tasks (tqdm.auto: a widget in a notebook), described by the task running
    now and the training status, with the last log line after it."""

    def __init__(self, tqdm: Callable[..., Any]) -> None:
        self._tqdm = tqdm
        self._bar: Any = None

    def update(self, progress: RunProgress) -> None:
        if self._bar is None:
            self._bar = self._tqdm(total=len(progress.tasks) or None, desc=progress.run_id, unit="task")
        self._bar.total = len(progress.tasks) or self._bar.total
        self._bar.n = progress.done_count
        desc = progress.current_task or progress.state
        if progress.training_status and progress.current_task == "train_model":
            desc += f" ({progress.training_status})"
        self._bar.set_description_str(desc, refresh=False)
        if progress.new_log_lines:
            self._bar.set_postfix_str(one_line(progress.new_log_lines[-1][1], 80), refresh=False)
        self._bar.refresh()

    def close(self, state: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(f"run {state}", refresh=False)
            self._bar.close()


def default_progress() -> LineProgress | TqdmProgress:
    """tqdm's bar in a notebook when tqdm is installed, else one line per change on stderr."""
    if "ipykernel" in sys.modules:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return TqdmProgress(tqdm)
    return LineProgress()


# --- the client -----------------------------------------------------------------------------------------
class SageliftClient:
    """Airflow's REST API as a data scientist uses it. Arguments default to the environment:
    ``AIRFLOW_URL`` (http://localhost:8080), ``AIRFLOW_TOKEN`` (a JWT), else ``AIRFLOW_USERNAME`` and
    ``AIRFLOW_PASSWORD`` exchanged for one at ``POST /auth/token``."""

    def __init__(
        self,
        url: str | None = None,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = (url or os.environ.get("AIRFLOW_URL") or "http://localhost:8080").rstrip("/")
        self.timeout = timeout
        self.http = session or requests.Session()
        # Reads are retried through urllib3's policy (429, 5xx, dropped connections); a POST is not, so
        # a trigger never runs twice.
        retry = Retry(
            total=4,
            backoff_factor=1.0,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,
        )
        self.http.mount("http://", HTTPAdapter(max_retries=retry))
        self.http.mount("https://", HTTPAdapter(max_retries=retry))
        self.username = username or os.environ.get("AIRFLOW_USERNAME")
        token = token or os.environ.get("AIRFLOW_TOKEN")
        if not token:
            password = password or os.environ.get("AIRFLOW_PASSWORD")
            if not self.username or not password:
                raise SageliftError("set AIRFLOW_TOKEN, or AIRFLOW_USERNAME and AIRFLOW_PASSWORD")
            answer = self._request(
                "POST", "/auth/token", {"username": self.username, "password": password}, auth=False
            )
            token = str(answer["access_token"])
        self._token = token

    # -- transport --
    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self.http.request(
                method,
                self.url + path,
                json=body,
                params=params,
                headers=headers,
                timeout=self.timeout,
                stream=True,
            )
            raw = read_bounded(response, ANSWER_MAX_BYTES)
        except requests.RequestException as err:
            raise SageliftError(
                f"cannot reach Airflow at {self.url}: {one_line(str(err), DETAIL_MAX_CHARS)}"
            ) from None
        if response.status_code >= 400:
            raise SageliftError(f"{method} {path} answered {response.status_code}: {error_detail(raw)}")
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise SageliftError(f"{method} {path} answered {response.status_code} with no JSON") from None

    def _run_path(self, dag_id: str, run_id: str) -> str:
        return f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"

    # -- runs --
    def trigger(
        self, dag_id: str, conf: Mapping[str, Any], *, run_id: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None, "conf": dict(conf)}
        if run_id:
            body["dag_run_id"] = run_id
        if note:
            body["note"] = note
        return dict(self._request("POST", f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", body))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._request("GET", self._run_path(dag_id, run_id)))

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self._request("GET", self._run_path(dag_id, run_id) + "/taskInstances")
        return list(answer.get("task_instances") or [])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"{self._run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/xcomEntries/{key}"
        return self._request("GET", path, params={"deserialize": "true"}).get("value")

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, token: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The task try's log events since ``token`` (all of them without one), and the next token."""
        path = f"{self._run_path(dag_id, run_id)}/taskInstances/{quote(task_id, safe='')}/logs/{try_number}"
        answer = self._request("GET", path, params={"token": token} if token else None)
        events = [e if isinstance(e, dict) else {"event": str(e)} for e in answer.get("content") or []]
        return events, answer.get("continuation_token")

    def submit(
        self,
        conf: Mapping[str, Any],
        wait: bool = True,
        *,
        dag_id: str = DEPLOY_DAG,
        run_id: str | None = None,
        poll: float = 10.0,
        timeout: float = 6 * 3600.0,
        progress: Any = None,
    ) -> dict[str, Any]:
        """Trigger a deploy run of ``conf``; with ``wait``, show its progress and return its summary.

        Without ``wait`` it returns the run as Airflow created it (``dag_run_id``, ``state``). The run id
        carries the model name and the run's note says model, account and who submitted it.
        Raises ``RunFailed`` when the run fails, ``SageliftError`` when submitting or waiting does.
        """
        if not isinstance(conf, Mapping):
            raise SageliftError("the conf must be a JSON object (a dict)")
        model = conf.get("model_name")
        if run_id is None and isinstance(model, str) and re.fullmatch(r"[A-Za-z0-9-]{1,63}", model):
            run_id = derive_run_id(model)
        run = self.trigger(dag_id, conf, run_id=run_id, note=self._start_note(conf))
        if not wait:
            return run
        run_id = str(run["dag_run_id"])
        self.wait(dag_id, run_id, poll=poll, timeout=timeout, progress=progress)
        return dict(self.xcom(dag_id, run_id, "summarize_run") or {})

    def _start_note(self, conf: Mapping[str, Any]) -> str:
        who = f" by {self.username}" if self.username else ""
        model, account = conf.get("model_name"), conf.get("account_id")
        return clip(f"Model {model} into account {account}, submitted{who} with sagelift.client.", 1000)

    def wait(
        self,
        dag_id: str,
        run_id: str,
        *,
        poll: float = 10.0,
        timeout: float = 6 * 3600.0,
        progress: Any = None,
    ) -> dict[str, Any]:
        """Wait for a run, showing its progress; its final state, or RunFailed."""
        shown = progress if progress is not None else default_progress()
        watcher = _RunWatcher(self, dag_id, run_id)
        deadline = time.monotonic() + timeout
        while True:
            run = self.dag_run(dag_id, run_id)
            shown.update(watcher.look(str(run.get("state"))))
            if run.get("state") in FINISHED:
                break
            if time.monotonic() > deadline:
                raise SageliftError(f"run {run_id} still {run.get('state')} after {timeout:.0f} s")
            time.sleep(poll)
        shown.close(str(run["state"]))
        if run["state"] != "success":
            raise watcher.failure()
        return run

    # -- models --
    def list_models(self, account: str | int) -> list[dict[str, Any]]:
        """The models sagelift deployed into ``account`` and not torn down since, per Airflow's runs:
        name, invoke URL, endpoint status, the run that last deployed it and when."""
        account = str(account)
        removed = {
            str((run.get("conf") or {}).get("model_name")): str(run.get("run_after") or "")
            for run in self._successful_runs(TEARDOWN_DAG)
            if str((run.get("conf") or {}).get("account_id")) == account
        }
        latest: dict[str, dict[str, Any]] = {}
        for run in self._successful_runs(DEPLOY_DAG):
            conf = run.get("conf") or {}
            name = conf.get("model_name")
            if str(conf.get("account_id")) != account or not isinstance(name, str) or name in latest:
                continue
            latest[name] = run  # runs come newest first
        models = []
        for name, run in sorted(latest.items()):
            if removed.get(name, "") > str(run.get("run_after") or ""):
                continue
            summary = self.xcom(DEPLOY_DAG, str(run["dag_run_id"]), "summarize_run") or {}
            models.append(
                {
                    "model_name": name,
                    "account_id": account,
                    "invoke_url": summary.get("invoke_url"),
                    "authorization": summary.get("authorization"),
                    "region": summary.get("region"),
                    "endpoint_status": _endpoint_status(summary),
                    "run_id": run["dag_run_id"],
                    "deployed_at": run.get("end_date"),
                }
            )
        return models

    def _successful_runs(self, dag_id: str) -> Iterable[dict[str, Any]]:
        offset = 0
        while offset < RUNS_LISTED_MAX:
            answer = self._request(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns",
                params={"state": "success", "order_by": "-run_after", "limit": 100, "offset": offset},
            )
            runs = list(answer.get("dag_runs") or [])
            yield from runs
            offset += len(runs)
            if not runs or offset >= int(answer.get("total_entries") or 0):
                return

    def invoke(
        self,
        model_name: str,
        body: Any,
        content_type: str = "application/json",
        *,
        account: str | int | None = None,
        api_key: str | None = None,
        credentials: Any = None,
        timeout: float = 60.0,
    ) -> Any:
        """Call a deployed model through its API, signed with the caller's AWS credentials (SigV4).

        ``body``: bytes or a string as they are, anything else as JSON. The answer is parsed JSON when
        the model answers JSON, else bytes. ``credentials``: botocore credentials (default: botocore's
        chain, i.e. the environment, your profile or SSO session, or the instance role). ``api_key`` for
        an API that requires one.
        """
        model = self._find_model(model_name, account)
        url = model["invoke_url"]
        data = (
            body
            if isinstance(body, bytes)
            else body.encode()
            if isinstance(body, str)
            else json.dumps(body).encode()
        )
        headers = {"Content-Type": content_type}
        if api_key:
            headers["x-api-key"] = api_key
        if model.get("authorization") in (None, "AWS_IAM"):
            headers = sign_request("POST", url, data, headers, credentials, region_of(url, model))
        try:
            response = requests.post(url, data=data, headers=headers, timeout=timeout, stream=True)
            raw = read_bounded(response, INVOKE_ANSWER_MAX_BYTES)
        except requests.RequestException as err:
            raise SageliftError(f"cannot reach {url}: {one_line(str(err), DETAIL_MAX_CHARS)}") from None
        if response.status_code >= 400:
            raise SageliftError(f"{model_name} answered {response.status_code}: {error_detail(raw)}")
        if "json" in response.headers.get("Content-Type", ""):
            try:
                return json.loads(raw)
            except ValueError:
                return raw
        return raw

    def _find_model(self, model_name: str, account: str | int | None) -> dict[str, Any]:
        if account is not None:
            candidates = [m for m in self.list_models(account) if m["model_name"] == model_name]
        else:
            accounts = {
                str((run.get("conf") or {}).get("account_id"))
                for run in self._successful_runs(DEPLOY_DAG)
                if (run.get("conf") or {}).get("model_name") == model_name
            }
            if len(accounts) > 1:
                raise SageliftError(f"{model_name} is deployed in accounts {sorted(accounts)}; pass account=")
            candidates = [m for a in accounts for m in self.list_models(a) if m["model_name"] == model_name]
        if not candidates or not candidates[0].get("invoke_url"):
            where = f" in account {account}" if account is not None else ""
            raise SageliftError(f"no deployed model {model_name}{where} has an invoke URL")
        return candidates[0]

    def teardown(
        self,
        model_name: str,
        account: str | int,
        *,
        delete_images: bool = False,
        wait: bool = True,
        poll: float = 10.0,
        timeout: float = 3600.0,
        progress: Any = None,
    ) -> dict[str, Any]:
        """Delete a model's endpoint, API and SageMaker resources (sagemaker_teardown); its report."""
        conf = {
            "model_name": model_name,
            "account_id": str(account),
            "confirm": model_name,
            "delete_images": delete_images,
        }
        run_id = derive_run_id(model_name, prefix="teardown__")
        who = f" by {self.username}" if self.username else ""
        note = f"Teardown of {model_name} in account {account}, submitted{who} with sagelift.client."
        run = self.trigger(TEARDOWN_DAG, conf, run_id=run_id, note=note)
        if not wait:
            return run
        self.wait(TEARDOWN_DAG, str(run["dag_run_id"]), poll=poll, timeout=timeout, progress=progress)
        return dict(self.xcom(TEARDOWN_DAG, str(run["dag_run_id"]), "report") or {})


class _RunWatcher:
    """Follows one run: task states, the training status, and the running task's log since last look."""

    def __init__(self, client: SageliftClient, dag_id: str, run_id: str) -> None:
        self.client, self.dag_id, self.run_id = client, dag_id, run_id
        self.tasks: list[dict[str, Any]] = []
        self.training_status: str | None = None
        self._log_at: dict[tuple[str, int], str | None] = {}
        self._followed: Mapping[str, Any] | None = None

    def look(self, state: str) -> RunProgress:
        self.tasks = self.client.task_instances(self.dag_id, self.run_id)
        states = {str(t["task_id"]): str(t.get("state") or "") for t in self.tasks}
        running = [
            t for t in self.tasks if t.get("state") in ("running", "deferred", "queued", "up_for_retry")
        ]
        current = running[0] if running else None
        lines: list[tuple[str, str]] = []
        followed = self._followed
        if followed is not None and (current is None or current["task_id"] != followed["task_id"]):
            lines += self._new_lines(followed)  # what it logged since the last look, e.g. its last status
            self._followed = None
        if current is not None and current.get("state") in ("running", "deferred"):
            lines += self._new_lines(current)
            self._followed = current
        if states.get("train_model") == "success":
            self.training_status = "Completed"
        return RunProgress(
            run_id=self.run_id,
            state=state,
            tasks=states,
            training_status=self.training_status,
            current_task=str(current["task_id"]) if current else None,
            new_log_lines=lines,
        )

    def _new_lines(self, task: Mapping[str, Any]) -> list[tuple[str, str]]:
        key = (str(task["task_id"]), int(task.get("try_number") or 1))
        try:
            events, token = self.client.task_log(self.dag_id, self.run_id, *key, self._log_at.get(key))
        except SageliftError:
            return []  # the log is a convenience: a wait never fails for it
        if token is not None:
            self._log_at[key] = token
        lines = [one_line(str(e.get("event", "")), LOG_LINE_MAX_CHARS) for e in events if worth_showing(e)]
        if key[0] == "train_model":
            for event in events:
                found = _TRAINING_STATUS_RE.match(str(event.get("event", "")))
                if found:
                    self.training_status = found.group(1)
            if self.training_status is None and any(
                line.startswith("Started training job") for line in lines
            ):
                self.training_status = "Starting"
        return [(key[0], line) for line in lines]

    def failure(self) -> RunFailed:
        """The run's failure: its first failed task (by start), its error and the tail of its log."""
        failed = sorted(
            (t for t in self.tasks if t.get("state") == "failed"),
            key=lambda t: str(t.get("start_date") or ""),
        )
        if not failed:
            return RunFailed(self.dag_id, self.run_id, None, "no task failed: the run was marked failed", [])
        task, names = failed[0], sorted(str(t["task_id"]) for t in failed)
        task_id, try_number = str(task["task_id"]), int(task.get("try_number") or 1)
        try:
            events, _ = self.client.task_log(self.dag_id, self.run_id, task_id, try_number)
        except SageliftError as err:
            reason = f"(its log could not be read: {err})"
            return RunFailed(self.dag_id, self.run_id, task_id, reason, [], names)
        reason = failure_reason(events)
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        for event in events:
            text = str(event.get("event", ""))
            if worth_showing(event) and not event.get("error_detail") and text not in reason:
                tail.append(one_line(text, LOG_LINE_MAX_CHARS))
        return RunFailed(self.dag_id, self.run_id, task_id, reason, list(tail), names)


def worth_showing(event: Mapping[str, Any]) -> bool:
    """Whether a log event tells the user about their run: sagelift's own lines (the steps', the
    triggers', the training log) and any warning or error, not Airflow's bookkeeping (DAG parsing,
    connection lookups, group markers) nor the waiter's status lines (shown as the training status)."""
    text, logger = str(event.get("event") or ""), str(event.get("logger") or "")
    if not text or _TRAINING_STATUS_RE.match(text) or logger == "py.warnings":
        return False
    if "sagelift" in logger:
        return True
    return str(event.get("level", "")).lower() in ("warning", "error", "critical")


def failure_reason(events: list[dict[str, Any]]) -> str:
    """The task's error as its log records it: the exception's message (Airflow 3's structured
    ``error_detail``), else the last error-level line; clipped."""
    for event in reversed(events):
        details = event.get("error_detail")
        if isinstance(details, list) and details:
            last = details[-1] if isinstance(details[-1], dict) else {}
            value = str(last.get("exc_value") or "")
            if value:
                return clip(value, REASON_MAX_CHARS)
    for event in reversed(events):
        if str(event.get("level", "")).lower() in ("error", "critical") and event.get("event"):
            return clip(str(event["event"]), REASON_MAX_CHARS)
    return ""


def _endpoint_status(summary: Mapping[str, Any]) -> str | None:
    for item in summary.get("resources") or []:
        if isinstance(item, Mapping) and item.get("kind") == "endpoint":
            status = item.get("status")
            return None if status is None else str(status)
    return None


def read_bounded(response: requests.Response, limit: int) -> bytes:
    """The answer's body, refused past ``limit`` bytes."""
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > limit:
            response.close()
            raise SageliftError(f"{response.url} answered more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def error_detail(raw: bytes) -> str:
    """An error answer in one short line: FastAPI's ``detail`` when there is one."""
    try:
        detail: Any = json.loads(raw).get("detail", raw.decode(errors="replace"))
    except (ValueError, AttributeError):
        detail = raw.decode(errors="replace")
    text = detail if isinstance(detail, str) else json.dumps(detail)
    return one_line(text, DETAIL_MAX_CHARS)


def region_of(url: str, model: Mapping[str, Any]) -> str:
    """The API's region: from its execute-api host, else the model's record, else botocore's default."""
    found = _API_HOST_RE.match(urlsplit(url).hostname or "")
    if found:
        return found.group(1)
    if model.get("region"):
        return str(model["region"])
    import botocore.session

    region = botocore.session.get_session().get_config_variable("region")
    if not region:
        raise SageliftError(f"cannot tell the region of {url}; set AWS_DEFAULT_REGION")
    return str(region)


def sign_request(
    method: str, url: str, data: bytes, headers: Mapping[str, str], credentials: Any, region: str
) -> dict[str, str]:
    """``headers`` plus SigV4's for API Gateway (service ``execute-api``), with the caller's credentials."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    creds = credentials or botocore.session.get_session().get_credentials()
    if creds is None:
        raise SageliftError("no AWS credentials to sign the call with (environment, profile, SSO or role)")
    request = AWSRequest(method=method, url=url, data=data, headers=dict(headers))
    SigV4Auth(creds, "execute-api", region).add_auth(request)
    return dict(request.headers.items())


# Module-level shortcuts on a client built from the environment, for one-line notebook cells.
def submit(conf: Mapping[str, Any], wait: bool = True, **kwargs: Any) -> dict[str, Any]:
    return SageliftClient().submit(conf, wait, **kwargs)


def list_models(account: str | int) -> list[dict[str, Any]]:
    return SageliftClient().list_models(account)


def invoke(model_name: str, body: Any, content_type: str = "application/json", **kwargs: Any) -> Any:
    return SageliftClient().invoke(model_name, body, content_type, **kwargs)


def teardown(model_name: str, account: str | int, **kwargs: Any) -> dict[str, Any]:
    return SageliftClient().teardown(model_name, account, **kwargs)
