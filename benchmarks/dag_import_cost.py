"""What importing dags/sagemaker_deploy.py costs over importing only the operator modules it uses.

Each measurement runs in a fresh interpreter (so nothing is cached), several times, alternating the two
cases; the median of each is printed with their ratio. Target: the DAG file adds at most 10%.
"""

from __future__ import annotations

import ast
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dag_imports(path: Path) -> list[str]:
    modules = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
    return modules


RUNS = int(os.environ.get("RUNS", "7"))

# Every module the DAG file imports at its top (read from the file, so the list cannot go stale).
OPERATORS = "\n".join(
    f"import {module}"
    for module in dag_imports(ROOT / "dags" / "sagemaker_deploy.py")
    if module != "__future__"
)
DAG = f"""
import runpy
runpy.run_path({str(ROOT / "dags" / "sagemaker_deploy.py")!r})
"""
TIMER = """
import time, sys
sys.path[:0] = [{plugins!r}, {root!r}]
start = time.perf_counter()
exec(compile({body!r}, "<bench>", "exec"))
print(time.perf_counter() - start)
"""


def measure(body: str, env: dict[str, str]) -> float:
    code = TIMER.format(plugins=str(ROOT / "plugins"), root=str(ROOT), body=body)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    home = tempfile.mkdtemp(prefix="sagelift-bench-")
    env = dict(
        os.environ,
        AIRFLOW_HOME=home,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
    )
    operators, dag = [], []
    measure(OPERATORS, env)  # warm the OS file cache for both cases
    for _ in range(RUNS):
        operators.append(measure(OPERATORS, env))
        dag.append(measure(DAG, env))
    op_median, dag_median = statistics.median(operators), statistics.median(dag)
    print(f"runs per case:                {RUNS}")
    print(f"operator modules only:        {op_median * 1000:8.1f} ms (median)")
    print(f"dags/sagemaker_deploy.py:     {dag_median * 1000:8.1f} ms (median)")
    print(f"DAG file overhead:            {(dag_median / op_median - 1) * 100:+8.1f} %  (target <= +10 %)")


if __name__ == "__main__":
    main()
