"""Parsing a DAG file imports only what the DAG's definition needs (issue 19, parse).

Every parse of a DAG file and every task of it imports the file. The Kubernetes clients, aiobotocore, the
KFP API client are needed only when a task that uses them executes, and cost seconds each time they are
imported: a DAG file that pulls one of them (directly, or through a sagelift module it imports) fails
here. Like the DAG processor, one fresh interpreter imports airflow.sdk and then forks once per DAG
file; each child imports its file and reports what that imported.

The second check keeps Airflow's own parse mechanism working: the DAG processor's manager pre-imports the
``airflow.*`` modules a DAG file names at its top ([dag_processor] parsing_pre_import_modules) before it
forks the parse. The child does the same, then imports the file: every provider module that the sagelift
modules it loads import at their top, and boto3/botocore, must already be there (else the DAG file names
the provider module that brings them, e.g. the S3 asset handler for a DAG with s3:// Assets).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
# The DAG definitions: the package's own DAG folder. They name the provider modules for the manager to
# pre-import; the one-line files in dags/ only import them, so a deployment whose DAG folder is the
# package's gets the pre-import and one that uses the one-line files parses without it.
PACKAGE_DAG_FILES = sorted((ROOT / "plugins/sagelift/dags").glob("sagemaker_*.py"))
DENY = ("kubernetes", "kubernetes_asyncio", "aiobotocore", "kfp_server_api")

PROBE = r"""
import ast, importlib, json, os, runpy, sys
import airflow.sdk

DENY = set(json.loads(sys.argv[1]))
SHARED = {"boto3", "botocore", "s3transfer"}


def top_level_airflow_imports(path):
    modules = set()
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Import):
            modules.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return {m for m in modules if m.startswith("airflow.")}


results = {}
for path in sys.argv[2:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        before = set(sys.modules)
        # What the DAG processor's manager does before it forks the parse (airflow.utils.file).
        for module in top_level_airflow_imports(path):
            try:
                importlib.import_module(module)
            except Exception:
                pass
        pre_imported = set(sys.modules)
        runpy.run_path(path)
        parsed = set(sys.modules) - pre_imported
        # What each parse would import again: the provider modules sagelift's modules import at their
        # top, and the AWS SDK (which the provider's asset handlers load too).
        expected = {m for m in parsed if m.split(".")[0] in SHARED}
        for name in parsed:
            module_file = getattr(sys.modules.get(name), "__file__", None)
            if name.startswith("sagelift") and module_file:
                expected |= {m for m in top_level_airflow_imports(module_file) if m.startswith("airflow.providers.")}
        report = {
            "denied": sorted(m for m in set(sys.modules) - before if m.split(".")[0] in DENY),
            "not_pre_imported": sorted({m if m.startswith("airflow.") else m.split(".")[0] for m in expected & parsed}),
        }
        with os.fdopen(write, "w") as out:
            json.dump(report, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as answer:
        text = answer.read()
    _, status = os.waitpid(pid, 0)
    results[path] = json.loads(text) if text else {"error": f"import failed (status {status})"}
print(json.dumps(results))
"""


def probe(paths: list[Path]) -> dict[str, dict[str, list[str]]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(DENY), *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return {_key(Path(path)): report for path, report in json.loads(out.stdout.splitlines()[-1]).items()}


def _key(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[str]]]:
    # A DAG file that does what the checks forbid, probed with the others: the checks can fail.
    heavy = tmp_path_factory.mktemp("dags") / "heavy_example.py"
    heavy.write_text("import kubernetes.client\nimport sagelift.hooks.ecr\n")
    return probe([*DAG_FILES, *PACKAGE_DAG_FILES, heavy])


@pytest.mark.parametrize("dag_file", [_key(p) for p in [*DAG_FILES, *PACKAGE_DAG_FILES]])
def test_dag_file_imports_no_task_only_client(
    reports: dict[str, dict[str, list[str]]], dag_file: str
) -> None:
    report = reports[dag_file]
    assert "error" not in report, report
    assert report["denied"] == [], (
        f"importing {dag_file} imports {report['denied'][:5]}: import them where the task executes"
    )


@pytest.mark.parametrize("dag_file", [_key(p) for p in PACKAGE_DAG_FILES])
def test_provider_modules_are_named_for_the_dag_processor_to_pre_import(
    reports: dict[str, dict[str, list[str]]], dag_file: str
) -> None:
    assert reports[dag_file]["not_pre_imported"] == [], (
        f"{dag_file} does not name these provider modules its operators import at its top "
        "(import airflow.providers...), so every parse imports them again"
    )


def test_a_dag_file_importing_a_denied_client_is_caught(reports: dict[str, dict[str, list[str]]]) -> None:
    report = reports["heavy_example.py"]

    assert "kubernetes.client" in report["denied"]
    assert "airflow.providers.amazon.aws.hooks.ecr" in report["not_pre_imported"]
