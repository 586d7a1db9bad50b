#!/usr/bin/env python3
"""Submit a sagemaker_deploy run from a conf file through the Airflow 3 REST API and wait for its outcome.

For notebooks and CI; standard library only::

    AIRFLOW_URL=http://localhost:8080 AIRFLOW_USERNAME=admin AIRFLOW_PASSWORD=... \\
        python scripts/submit_run.py include/examples/demo.json

Authentication: ``AIRFLOW_TOKEN`` (a JWT) if set, else ``POST /auth/token`` with AIRFLOW_USERNAME and
AIRFLOW_PASSWORD. The run is created with ``POST /api/v2/dags/<dag_id>/dagRuns`` and ``logical_date:
null``, then polled until it finishes. On success it prints the run summary (``summarize_run``'s XCom:
created or updated resources and the invoke URL) as JSON on stdout; on failure it names the failed tasks.
Exit status: 0 success, 1 the run failed, 2 the submission or the wait failed (bad conf file, HTTP
error, timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

FINISHED = {"success", "failed"}


class SubmitError(RuntimeError):
    pass


class AirflowApi:
    def __init__(self, url: str, token: str | None, username: str | None, password: str | None) -> None:
        self.url = url.rstrip("/")
        self._token = token or self._login(username, password)

    def _request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:2000]
            raise SubmitError(f"{method} {path} answered {err.code}: {detail}") from None
        except urllib.error.URLError as err:
            raise SubmitError(f"cannot reach Airflow at {self.url}: {err.reason}") from None

    def _login(self, username: str | None, password: str | None) -> str:
        if not username or not password:
            raise SubmitError("set AIRFLOW_TOKEN, or AIRFLOW_USERNAME and AIRFLOW_PASSWORD")
        answer = self._request(
            "POST", "/auth/token", {"username": username, "password": password}, auth=False
        )
        return str(answer["access_token"])

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        return self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return list(self._request("GET", path)["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = (
            f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
            "/xcomEntries/return_value?deserialize=true"
        )
        return self._request("GET", path).get("value")


def submit_and_wait(
    api: AirflowApi, dag_id: str, conf: dict[str, Any], *, run_id: str | None, timeout: float, poll: float
) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    run = api.trigger(dag_id, conf, run_id)
    run_id = str(run["dag_run_id"])
    print(f"submitted {dag_id} run {run_id}", file=sys.stderr)
    deadline = time.monotonic() + timeout
    while run.get("state") not in FINISHED:
        if time.monotonic() > deadline:
            raise SubmitError(f"run {run_id} still {run.get('state')} after {timeout:.0f} s")
        time.sleep(poll)
        run = api.dag_run(dag_id, run_id)
    tasks = api.task_instances(dag_id, run_id)
    summary = api.xcom(dag_id, run_id, "summarize_run") if run["state"] == "success" else None
    return run, tasks, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("conf", type=Path, help="JSON file with the run's parameters")
    parser.add_argument("--url", default=os.environ.get("AIRFLOW_URL", "http://localhost:8080"))
    parser.add_argument("--dag-id", default="sagemaker_deploy")
    parser.add_argument("--run-id", default=None, help="optional dag_run_id (default: Airflow's)")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("SUBMIT_TIMEOUT", 6 * 3600)))
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between status checks")
    args = parser.parse_args(argv)
    try:
        conf = json.loads(args.conf.read_text())
        if not isinstance(conf, dict):
            raise SubmitError(f"{args.conf}: the conf must be a JSON object")
        api = AirflowApi(
            args.url,
            os.environ.get("AIRFLOW_TOKEN"),
            os.environ.get("AIRFLOW_USERNAME"),
            os.environ.get("AIRFLOW_PASSWORD"),
        )
        run, tasks, summary = submit_and_wait(
            api, args.dag_id, conf, run_id=args.run_id, timeout=args.timeout, poll=args.poll
        )
    except (OSError, json.JSONDecodeError, SubmitError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if run["state"] == "success":
        print(f"run {run['dag_run_id']} succeeded", file=sys.stderr)
        print(json.dumps(summary, indent=2))
        return 0
    failed = sorted(t["task_id"] for t in tasks if t.get("state") == "failed")
    print(
        f"run {run['dag_run_id']} failed; failed tasks: {', '.join(failed) or 'none recorded'}",
        file=sys.stderr,
    )
    print(json.dumps({"dag_run_id": run["dag_run_id"], "state": run["state"], "failed_tasks": failed}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
