"""A whole Airflow 3.3 on loopback, started by a test: what ``airflow standalone`` runs, in a fresh home.

Usage::

    with AirflowStandalone(env={"AIRFLOW_VAR_SAGELIFT_PLATFORM": ...}) as af:
        run_id = af.trigger("sagemaker_deploy", conf)
        af.wait_for_task_state("sagemaker_deploy", run_id, "train_model", "deferred", timeout=60)
        run = af.wait_for_run("sagemaker_deploy", run_id, timeout=120)
        assert run["state"] == "success", af.task_states("sagemaker_deploy", run_id)

What you get: ``url`` (the API server, also serving the UI), ``token()`` (a JWT from ``POST /auth/token``
for the admin user), ``api`` (an ``httpx.Client`` on ``url`` sending that token), and a few REST helpers.
Everything runs as real separate processes -- ``airflow db migrate``, then scheduler (LocalExecutor),
triggerer, dag-processor and api-server, as ``airflow standalone`` would start them but without its log
servers, which bind every interface -- in one process group of their own, which ``stop()`` ends.
``pid(component)`` gives a component's process id (e.g. to measure the triggerer).

Setup: a new temp AIRFLOW_HOME with its own sqlite database, the
repository's dags/ and plugins/, DAGs unpaused on creation, the SimpleAuthManager with an admin user
and the ``users`` asked for (name -> role), whose passwords this class generates and writes into
``simple_auth_manager_passwords.json.generated`` (the file Airflow reads; ``token(user)`` and
``client(user)`` sign in as one of them), free loopback ports for the API server. ``env`` is added on top (Variables,
Connections, AWS endpoint settings). The process inherits this interpreter's virtualenv.

Tuned for tests, where seconds add up over dozens of runs: the scheduler sleeps at most 0.5 s when idle
(Airflow: 1 s), task supervisors check their process every second (Airflow: 5 s), and each DAG file is
parsed once at start and then only every 10 minutes (Airflow: every 30 s, a whole interpreter's worth of
imports each time), so a DAG file edited while it runs is picked up late. ``preload`` (e.g.
``dag_imports()``, the modules the DAG files import) makes the scheduler start its LocalExecutor workers
from a forkserver that imported those modules, as ``[core] mp_forkserver_preload`` documents: each task
process then starts with them loaded instead of importing them again, which is most of a short task's
time. The modules must import without error (the forkserver skips only ImportError). Leave it empty to
measure per-task overhead as a default deployment has it.

What it does not emulate or provide: a production deployment (no Postgres, no Celery/Kubernetes
executor, no separate workers, no TLS, no auth manager but the SimpleAuthManager), log servers on fixed ports (each component picks
what standalone gives it), or faster start-up: expect ~20-40 s until healthy on a loaded 2-core machine
(the API server took over 180 s once, at a load average of 15 on 2 cores; ``start_timeout`` is 300 s).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
# What `airflow standalone` runs, minus its log servers: those bind every interface (0.0.0.0:8793/8794)
# and the API server reads the task and trigger logs from the shared AIRFLOW_HOME anyway.
COMPONENTS = (
    ("scheduler", "--skip-serve-logs"),
    ("triggerer", "--skip-serve-logs"),
    ("dag-processor",),
    ("api-server",),
)
FINISHED = {"success", "failed"}
# Transport errors (read timeouts under load) a polling GET tolerates before it fails the test.
POLL_TRANSPORT_RETRIES = 3
ADMIN = "admin"
# Until healthy and until a DAG is parsed: a health or DAG GET costs the API server milliseconds, and each
# Airflow a test session starts waits on both.
READINESS_POLL_SECONDS = 0.25


def dag_imports(dags: Path = ROOT / "dags") -> list[str]:
    """The modules the DAG files import at their top level (what every task process imports first)."""
    modules: set[str] = set()
    for path in sorted(dags.glob("*.py")):
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return sorted(modules - {"__future__"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowStandaloneError(RuntimeError):
    """Airflow did not come up or a run did not reach the awaited state; the message has the log tail."""


class AirflowStandalone:
    """``airflow standalone`` in a temp home; a context manager. See the module docstring."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        start_timeout: float = 300.0,
        keep_home: bool = False,
        preload: Sequence[str] = (),
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.extra_env = dict(env or {})
        self.preload = tuple(preload)
        # SimpleAuthManager users besides admin, name -> role (viewer, user, op, admin), each with a
        # generated password: password(name), token(name), client(name).
        self.users = {ADMIN: "admin", **(users or {})}
        self._passwords = {name: secrets.token_urlsafe(16) for name in self.users}
        self.start_timeout = start_timeout
        self.keep_home = keep_home
        self.home = Path(tempfile.mkdtemp(prefix="sagelift-standalone-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._password = self._passwords[ADMIN]
        self._processes: list[subprocess.Popen[bytes]] = []
        self._pgid = 0
        self._log = self.home / "standalone.log"
        self._tokens: dict[str, str] = {}
        self._api: httpx.Client | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        passwords.write_text(json.dumps(self._passwords))
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_", "PYTEST_"))
        }
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                    f"{name}:{role}" for name, role in self.users.items()
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                # A task's supervisor looks at its process every min_heartbeat_interval (5 s): a deferral
                # is reported that late, and a trigger that fires sooner (a 1-s emulated training) gets its
                # resumed try failed by the stale report ("Task Instance not found", then a retry).
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                # A loaded CI machine parses the DAG (and its provider imports) slowly.
                "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
                "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__AWS__SESSION_FACTORY": "sagelift.hooks.session_factory.RoleChainSessionFactory",
                "AIRFLOW__SAGELIFT__RETRAIN_REGISTRY": str(ROOT / "include/examples/retrain"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
                # standalone starts its components as `airflow ...` found on PATH: this venv's.
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                "NO_COLOR": "1",
            }
        )
        # sagelift's run notes go through the REST API as the user this connection names (README
        # "Outcomes at a glance"); here the admin.
        env["AIRFLOW_CONN_SAGELIFT_AIRFLOW_API"] = json.dumps(
            {"conn_type": "http", "host": self.url, "login": ADMIN, "password": self._password}
        )
        if self.preload:
            env["AIRFLOW__SCHEDULER__MP_START_METHOD"] = "forkserver"
            env["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"] = ",".join(self.preload)
        env.update(self.extra_env)
        return env

    def start(self) -> AirflowStandalone:
        airflow = str(Path(sys.executable).with_name("airflow"))
        env = self.environment()
        with self._log.open("ab") as log:
            migrate = subprocess.run(
                [airflow, "db", "migrate"], env=env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT
            )
        if migrate.returncode != 0:
            raise AirflowStandaloneError(f"airflow db migrate failed:\n{self.log_tail()}")
        try:
            for command in COMPONENTS:
                self._spawn([airflow, *command], env)
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, command: list[str], env: dict[str, str]) -> None:
        # The first component leads a new process group; the others join it, so stop() reaches all.
        with self._log.open("ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=self._pgid,
            )
        self._processes.append(process)
        self._pgid = self._pgid or process.pid

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """Start one more ``airflow <args>`` process (a Celery worker, a second triggerer) with the same
        environment, logging to the same file, in the same process group; ``stop()`` ends it too."""
        self._spawn([str(Path(sys.executable).with_name("airflow")), *args], self.environment())
        return self._processes[-1]

    def stop(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None
        processes, self._processes = self._processes, []
        for process in processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 30
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        if self._pgid:
            # Whatever survived of the one process group this class started (task supervisors, workers).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pgid, signal.SIGKILL)
            self._pgid = 0
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def pid(self, component: str) -> int:
        """The process id of ``scheduler``, ``triggerer``, ``dag-processor`` or ``api-server``."""
        names = [command[0] for command in COMPONENTS]
        return self._processes[names.index(component)].pid

    def __enter__(self) -> AirflowStandalone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            exited = [p.args for p in self._processes if p.poll() is not None]
            if exited:
                raise AirflowStandaloneError(f"{exited} exited:\n{self.log_tail()}")
            try:
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                unhealthy = [
                    name
                    for name in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                    if (health.get(name) or {}).get("status") != "healthy"
                ]
                if not unhealthy:
                    return
                last = f"unhealthy: {unhealthy}"
            except (httpx.HTTPError, ValueError) as err:
                last = str(err)
            time.sleep(READINESS_POLL_SECONDS)
        raise AirflowStandaloneError(f"not healthy after {self.start_timeout}s ({last}):\n{self.log_tail()}")

    # --- REST --------------------------------------------------------------------------------------
    def password(self, user: str = ADMIN) -> str:
        return self._passwords[user]

    def token(self, user: str = ADMIN) -> str:
        """An access token for ``user`` (``Authorization: Bearer <token>``), from ``POST /auth/token``."""
        if user not in self._tokens:
            response = httpx.post(
                f"{self.url}/auth/token",
                json={"username": user, "password": self._passwords[user]},
                timeout=30,
            )
            response.raise_for_status()
            self._tokens[user] = str(response.json()["access_token"])
        return self._tokens[user]

    def client(self, user: str) -> httpx.Client:
        """A new client on ``url`` authenticated as ``user``; the caller closes it."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token(user)}"}, timeout=60
        )

    @property
    def api(self) -> httpx.Client:
        """A client on ``url`` authenticated as admin; paths like ``/api/v2/dags``."""
        if self._api is None:
            self._api = httpx.Client(
                base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=60
            )
        return self._api

    def get(self, path: str, **params: Any) -> httpx.Response:
        """GET for polling: on a loaded machine the API server can miss a read timeout, so a transport
        error is retried a few times before it counts (the waits' own deadlines still bound the time)."""
        for attempt in range(POLL_TRANSPORT_RETRIES):
            try:
                return self.api.get(path, params=params or None)
            except httpx.TransportError:
                if attempt == POLL_TRANSPORT_RETRIES - 1:
                    raise
                time.sleep(2)
        raise AssertionError("unreachable")

    def wait_for_dag(self, dag_id: str, timeout: float = 120.0) -> dict[str, Any]:
        """The DAG once the dag-processor has parsed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.get(f"/api/v2/dags/{dag_id}")
            if response.status_code == 200:
                return dict(response.json())
            time.sleep(READINESS_POLL_SECONDS)
        errors = self.api.get("/api/v2/importErrors").text
        raise AirflowStandaloneError(f"DAG {dag_id} not parsed within {timeout}s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None) -> str:
        """Trigger a run (waiting for the DAG to be parsed first); returns the run id."""
        self.wait_for_dag(dag_id)
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        response = self.api.post(f"/api/v2/dags/{dag_id}/dagRuns", json=body)
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        response = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        response.raise_for_status()
        return dict(response.json())

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        response = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        response.raise_for_status()
        return {ti["task_id"]: ti["state"] for ti in response.json()["task_instances"]}

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[str]:
        """The messages of a task try's log as the UI shows them (the worker's and the triggerer's parts)."""
        response = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            full_content="true",
        )
        response.raise_for_status()
        return [str(entry.get("event", "")) for entry in response.json()["content"]]

    def wait_for_task_log(
        self, dag_id: str, run_id: str, task_id: str, text: str, timeout: float = 120.0
    ) -> list[str]:
        """The task's log messages once one of them contains ``text``."""
        deadline = time.monotonic() + timeout
        messages: list[str] = []
        while time.monotonic() < deadline:
            messages = self.task_log(dag_id, run_id, task_id)
            if any(text in message for message in messages):
                return messages
            time.sleep(0.5)
        raise AirflowStandaloneError(
            f"no log line of {task_id} contains {text!r} within {timeout}s: {messages[-10:]}\n{self.log_tail()}"
        )

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """What "Mark as failed/success" in the UI does."""
        response = self.api.patch(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", json={"new_state": state}
        )
        response.raise_for_status()

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, timeout: float = 120.0
    ) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, str | None] = {}
        while time.monotonic() < deadline:
            states = self.task_states(dag_id, run_id)
            if states.get(task_id) == state:
                return
            if self.dag_run(dag_id, run_id)["state"] in FINISHED:
                break
            time.sleep(0.5)
        raise AirflowStandaloneError(
            f"{task_id} never {state} within {timeout}s: {states}\n{self.log_tail()}"
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """The run once it is success or failed."""
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = self.dag_run(dag_id, run_id)
            if run["state"] in FINISHED:
                return run
            time.sleep(0.5)
        raise AirflowStandaloneError(
            f"run {run_id} still {run.get('state')} after {timeout}s: "
            f"{self.task_states(dag_id, run_id)}\n{self.log_tail()}"
        )
