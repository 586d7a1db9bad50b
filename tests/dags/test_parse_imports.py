"""What parsing sagemaker_deploy leaves to the task that needs it (issue 19: parse and first AWS call).

The DAG processor's every parse and every task's process import the DAG file. The triggers, the pod
program and the steps only one task uses are imported by that task's operator when it executes
(sagelift/operators/*), so a parse, and the processes of validate, ensure_pvc and the other tasks, go
without them; without bytecode each module imported costs its compile again. A module here that the DAG
file pulls again (an operator importing it at its top) fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "plugins/sagelift/dags/sagemaker_deploy.py"
EXECUTE_ONLY = (
    "sagelift.triggers",
    "sagelift.pod",
    "sagelift.hooks.apigateway",
    "sagelift.hooks.session_factory",
    "sagelift.steps.api",
    "sagelift.steps.approval",
    "sagelift.steps.images",
    "sagelift.steps.model",
    "sagelift.steps.plan_changes",
    "sagelift.steps.promotion",
    "sagelift.steps.pvc",
    "sagelift.steps.registry",
    "sagelift.steps.role_chain",
    "sagelift.steps.serving",
)
PROBE = """
import json, runpy, sys
import airflow.sdk
runpy.run_path(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("sagelift"))))
"""


def test_parsing_the_dag_file_imports_no_execute_only_module():
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(DAG_FILE)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "sagelift.operators.sagemaker" in loaded  # the probe did parse the DAG
    pulled = [m for m in loaded if any(m == name or m.startswith(name + ".") for name in EXECUTE_ONLY)]
    assert pulled == []
