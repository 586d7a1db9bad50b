"""The scenario runner's own parts (tests/scenario_runner.py); the runs themselves are
tests/scenarios/test_both_engines.py in the project's environment."""

from __future__ import annotations

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
