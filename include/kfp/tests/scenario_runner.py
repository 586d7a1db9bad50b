"""Runs the compiled pipeline with kfp.local for the behavioural scenarios (tests/scenarios/), one run per
request, in the kfp environment.

Started once by tests/scenarios/test_both_engines.py as ``.venv/bin/python tests/scenario_runner.py``
with this environment's import path. It loads the committed package, ``sagemaker_deploy.yaml`` (what
``sagemaker_deploy_kfp`` uploads), and reads requests from stdin, one JSON object a line::

    {"run_id": "...", "arguments": {<the 13 pipeline parameters>}, "env": {"SAGELIFT_PLATFORM": ...}}

Each request sets ``env`` (the platform configuration and the pod identity's AWS keys and endpoint) and
runs the pipeline with ``kfp.local.SubprocessRunner(use_venv=False)``: every component runs as a
subprocess of this environment, as in the component image, forked from a process that has imported what
the components import (tests/component_forkserver.py: a new interpreter's imports were most of a step's
CPU time; ``SAGELIFT_KFP_FORKSERVER=0`` starts a new interpreter per step, as kfp.local does). The answer
is one JSON line on stdout::

    {"run_id": ..., "status": "SUCCEEDED" | "FAILED", "failed_step": "deploy_endpoint" | null,
     "message": "<the failed step's error text>" | null, "terminated": bool,
     "attempts": [{"step": "ensure_pvc", "status": "SUCCESS" | "FAILURE"}, ...],
     "outputs": {"<step>": <its output>, ...}, "seconds": 5.2}

Where kfp.local differs from a KFP cluster, the runner makes it behave like one:
- the run id: kfp.local draws a random number per run; the request's ``run_id`` is used instead, so a
  retry of a run can keep its id as KFP's retry does;
- retries: each step runs itself again after a transient error (sagelift_kfp.steps.retried); its 30 s
  backoff is cut to 0 s (SAGELIFT_KFP_RETRY_DELAY) so the scenarios stay short;
- terminating a run: SIGTERM to this process is KFP's "terminate run": every running component process
  gets SIGTERM (train_model then stops its training job) and no further step or retry starts but the
  exit handler, which KFP still runs after a terminate.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Any

KFP_DIR = Path(__file__).resolve().parents[1]
PACKAGE = KFP_DIR.parents[1] / "plugins/sagelift/assets/kfp/sagemaker_deploy.yaml"
# The last line of a Python traceback: the exception's (qualified) class and its message.
EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Failed|Retry)): (.+)$")
TRACEBACK = "Traceback (most recent call last):"

_terminated = False


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children first."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _terminate(signum: int, frame: Any) -> None:
    """KFP's terminate: SIGTERM to the running steps' processes; nothing new starts."""
    global _terminated
    _terminated = True
    for pid in descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def error_message(output: str) -> str | None:
    """The message of the last traceback a step printed, or None when it printed none."""
    if TRACEBACK not in output:
        return None
    for line in reversed(output[output.rindex(TRACEBACK) :].splitlines()):
        match = EXCEPTION_LINE.match(line)
        if match:
            return match.group(2).strip()
    return None


class Runner:
    def __init__(self) -> None:
        from kfp import components, local
        from kfp.local import subprocess_task_handler, task_dispatcher

        self.forkserver = None
        if os.environ.get("SAGELIFT_KFP_FORKSERVER", "1") != "0":
            from component_forkserver import ForkServer

            server = self.forkserver = ForkServer()
            popen = subprocess_task_handler.run_local_subprocess

            def run_local_subprocess(full_command: list[str], env_vars: dict[str, str] | None = None) -> int:
                status = server.run(full_command, env_vars)
                return popen(full_command, env_vars) if status is None else status

            subprocess_task_handler.run_local_subprocess = run_local_subprocess
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=os.environ.get("SAGELIFT_KFP_PIPELINE_ROOT", "/tmp/sagelift-kfp-local"),
        )
        from kfp.pipeline_spec import pipeline_spec_pb2

        self.pipeline = components.load_component_from_file(str(PACKAGE))
        graph = self.pipeline.component_spec.implementation.graph
        dags = [graph.root.dag, *(c.dag for c in graph.components.values() if c.HasField("dag"))]
        exit_task = (
            pipeline_spec_pb2.PipelineTaskSpec.TriggerPolicy.TriggerStrategy.ALL_UPSTREAM_TASKS_COMPLETED
        )
        self.steps: dict[str, str] = {}
        self.exit_steps: set[str] = set()  # exit handlers, which KFP runs even after a terminate
        for task in (task for dag in dags for task in dag.tasks.values()):
            self.steps[task.component_ref.name] = task.task_info.name
            if task.trigger_policy.strategy == exit_task:
                self.exit_steps.add(task.component_ref.name)
            if task.HasField("retry_policy"):
                task.retry_policy.backoff_duration.seconds = 0
        self.attempts: list[dict[str, Any]] = []
        self.output = ""
        original = task_dispatcher.run_single_task_implementation

        def one_attempt(*args: Any, **kwargs: Any) -> Any:
            from kfp.local import status

            component = kwargs.get("component_name", "?")
            step = self.steps.get(component, component)
            if _terminated and component not in self.exit_steps:
                return {}, status.Status.FAILURE
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer):
                    outputs, result = original(*args, **kwargs)
            except Exception as err:
                self.attempts.append({"step": step, "status": "ERROR", "message": str(err), "output": None})
                raise
            finally:
                sys.stderr.write(buffer.getvalue())
            self.attempts.append(
                {
                    "step": step,
                    "status": result.name,
                    "message": error_message(buffer.getvalue()),
                    "output": (outputs or {}).get("Output"),
                    # train_model's Metrics artifact: the job's final metric values (issue 17)
                    "metrics": getattr((outputs or {}).get("metrics"), "metadata", None),
                }
            )
            return outputs, result

        task_dispatcher.run_single_task_implementation = one_attempt

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        global _terminated
        from kfp.local import placeholder_utils

        _terminated = False
        os.environ["SAGELIFT_KFP_RETRY_DELAY"] = "0"
        os.environ.update(request.get("env", {}))
        self.attempts = []
        random_id = placeholder_utils.make_random_id
        ids = iter([request["run_id"]])  # the pipeline's id is the first one kfp.local draws
        placeholder_utils.make_random_id = lambda: next(ids, None) or random_id()
        started = time.monotonic()
        error = None
        try:
            self.pipeline(**request["arguments"])
            status = "SUCCEEDED"
        except RuntimeError as err:
            status = "FAILED"
            if "finished with status" not in str(err):
                error = f"kfp.local: {type(err).__name__}: {err}"
        except Exception as err:  # kfp.local itself failed: reported, and the runner goes on
            status, error = "FAILED", f"kfp.local: {type(err).__name__}: {err}"
        finally:
            placeholder_utils.make_random_id = random_id
        failed = [a for a in self.attempts if a["status"] != "SUCCESS"] if status == "FAILED" else []
        first = failed[0]["step"] if failed else None  # the step that failed first; its last try's message
        message = next((a["message"] for a in reversed(failed) if a["step"] == first), None)
        return {
            "run_id": request["run_id"],
            "status": status,
            "failed_step": first,
            "message": error or message,
            "terminated": _terminated,
            "attempts": [{"step": a["step"], "status": a["status"]} for a in self.attempts],
            "outputs": {a["step"]: a["output"] for a in self.attempts if a["status"] == "SUCCESS"},
            "metrics": {a["step"]: a["metrics"] for a in self.attempts if a.get("metrics") is not None},
            "seconds": round(time.monotonic() - started, 1),
        }


def main() -> None:
    # The components' image is not a python:* image, which kfp.local warns about on every step.
    warnings.filterwarnings("ignore", message="You may be attemping to run a task that uses custom")
    warnings.filterwarnings("ignore", category=UserWarning, module="kfp.local")
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # everything else kfp.local prints goes to the log, not into the answers
    runner = Runner()
    signal.signal(signal.SIGTERM, _terminate)
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if line.strip():
            answers.write(json.dumps(runner.run(json.loads(line))) + "\n")
    if runner.forkserver is not None:
        runner.forkserver.close()


if __name__ == "__main__":
    main()
