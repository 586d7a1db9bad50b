#!/usr/bin/env python3
"""Submit a sagemaker_deploy run from a conf file and wait for its outcome: a command line over
``sagelift.client`` (see its docstring; a notebook imports the client instead)::

    AIRFLOW_URL=http://localhost:8080 AIRFLOW_USERNAME=admin AIRFLOW_PASSWORD=... \\
        python scripts/submit_run.py include/examples/demo.json

Authentication: ``AIRFLOW_TOKEN`` (a JWT) if set, else AIRFLOW_USERNAME and AIRFLOW_PASSWORD. Progress
goes to stderr, one line per change (task states, the training status, new log lines). On success the run
summary (created or updated resources, the invoke URL) is printed as JSON on stdout; on failure stdout
gets ``{"dag_run_id", "state", "failed_tasks", "failed_task", "reason"}`` and stderr the reason and the
tail of the failed task's log. Exit status: 0 success, 1 the run failed, 2 the submission or the wait
failed (bad conf file, HTTP error, timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

try:
    from sagelift.client import LineProgress, RunFailed, SageliftClient, SageliftError
except ImportError:  # a checkout that has not installed the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
    from sagelift.client import LineProgress, RunFailed, SageliftClient, SageliftError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("conf", type=Path, help="JSON file with the run's parameters")
    parser.add_argument("--url", default=os.environ.get("AIRFLOW_URL", "http://localhost:8080"))
    parser.add_argument("--dag-id", default="sagemaker_deploy")
    parser.add_argument("--run-id", default=None, help="dag_run_id (default: <model>__manual__<time>)")
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("SUBMIT_TIMEOUT", 6 * 3600)))
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between status checks")
    args = parser.parse_args(argv)
    try:
        conf = json.loads(args.conf.read_text())
        if not isinstance(conf, dict):
            raise SageliftError(f"{args.conf}: the conf must be a JSON object")
        client = SageliftClient(args.url)
        summary = client.submit(
            conf,
            dag_id=args.dag_id,
            run_id=args.run_id,
            poll=args.poll,
            timeout=args.timeout,
            progress=LineProgress(sys.stderr),
        )
    except RunFailed as failed:
        print(f"error: {failed}", file=sys.stderr)
        outcome = {
            "dag_run_id": failed.run_id,
            "state": "failed",
            "failed_tasks": failed.failed_tasks,
            "failed_task": failed.task_id,
            "reason": failed.reason,
        }
        print(json.dumps(outcome))
        return 1
    except (OSError, json.JSONDecodeError, SageliftError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
