"""The scenario runner's own parts (tests/scenario_runner.py); the runs themselves are
tests/scenarios/test_both_engines.py in the project's environment."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time

from scenario_runner import descendants, error_message

STEP_OUTPUT = """\
    [KFP Executor 2026-12-02 08:19:10,436 INFO]: Looking for component `deploy_endpoint`
    Traceback (most recent call last):
      File "<frozen runpy>", line 198, in _run_module_as_main
    botocore.exceptions.ClientError: An error occurred (ValidationException): Could not find endpoint
    During handling of the above exception, another exception occurred:
    Traceback (most recent call last):
      File "/tmp/ephemeral_component.py", line 12, in deploy_endpoint
    sagelift.steps.errors.StepFailed: Endpoint churn-predictor failed: health check
"""


def test_the_message_is_the_last_exception_a_step_printed() -> None:
    assert error_message(STEP_OUTPUT) == "Endpoint churn-predictor failed: health check"


def test_a_step_that_printed_no_traceback_has_no_message() -> None:
    assert error_message("    [KFP Executor] Received SIGTERM\n") is None


def test_terminating_reaches_every_process_below_the_runner() -> None:
    shell = subprocess.Popen(["sh", "-c", f"{sys.executable} -c 'import time; time.sleep(30)'; true"])
    try:
        found: list[int] = []
        for _ in range(50):  # the grandchild appears once sh has forked it
            found = descendants(os.getpid())
            if len(found) >= 2:
                break
            time.sleep(0.1)
        assert shell.pid in found
        assert len([pid for pid in found if pid != shell.pid]) >= 1
    finally:
        for pid in descendants(os.getpid()):
            os.kill(pid, 15)
        shell.wait()


def _command(script: str, program: str, *args: str) -> list[str]:
    return ["sh", "-ec", script.replace("python3", sys.executable), program, *args]


def _executors() -> dict:
    import yaml
    from scenario_runner import PACKAGE

    (spec,) = [doc for doc in yaml.safe_load_all(PACKAGE.read_text()) if "deploymentSpec" in doc]
    return dict(spec["deploymentSpec"]["executors"])


def test_every_step_of_the_package_runs_through_the_fork_server() -> None:
    from component_forkserver import parse_command

    executors = _executors()
    assert executors
    for name, executor in executors.items():
        container = executor["container"]
        assert parse_command(_command(*container["command"][2:], *container["args"])), name


def test_a_forked_step_gets_its_arguments_and_environment_and_exits_with_its_status(tmp_path) -> None:
    from component_forkserver import ForkServer

    container = next(iter(_executors().values()))["container"]
    script = container["command"][2]
    executor_input = {
        "inputs": {"parameterValues": {"text": "hello"}},
        "outputs": {"outputFile": str(tmp_path / "out.json")},
    }
    program = (
        "import os\nfrom kfp import dsl\n\n"
        "def step(text: str):\n"
        "    print('step says', text, os.environ['STEP_ENV'])\n"
        "    raise ValueError('refused: ' + text)\n"
    )
    server = ForkServer()
    try:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = server.run(
                _command(
                    script,
                    program,
                    "--executor_input",
                    json.dumps(executor_input),
                    "--function_to_execute",
                    "step",
                ),
                {"STEP_ENV": "from-the-task"},
            )
        assert status == 1, printed.getvalue()
        assert "step says hello from-the-task" in printed.getvalue()
        assert error_message(printed.getvalue()) == "refused: hello"
        assert server.run(["sh", "-c", "true"]) is None  # another shape: kfp.local runs it itself
    finally:
        server.close()
    assert server.process.returncode == 0
