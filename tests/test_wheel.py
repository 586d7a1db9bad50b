"""sagelift installed as a platform engineer installs it: the wheel, in a fresh venv, outside the repo.

``uv build`` makes the wheel; a new venv gets it with the locked dependencies (the lock exported as
constraints, so the versions are the ones every other test runs with; uv's cache makes this seconds) and
without the ``kfp`` extra. A probe then runs in that venv, from a folder outside the repo and with no
PYTHONPATH, so nothing of the work tree can be imported: it parses every DAG with the DAG processor's
loader (DagBag), reads the package data through importlib.resources and asks Airflow's providers manager
what the entry point registers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import sagelift
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

UV = ROOT / ".tools" / "bin" / "uv"
ASSETS = [
    "sagelift/assets/iam/execution-permissions.json.j2",
    "sagelift/assets/iam/master-trust.json.j2",
    "sagelift/assets/k8s/rbac.yaml",
    "sagelift/assets/kfp/sagemaker_deploy.yaml",
    "sagelift/domain/instance_types.json",
    "sagelift/domain/algorithms.json",
    "sagelift/domain/training_channels.json",
    "sagelift/dags/sagemaker_deploy.py",
    "sagelift/dags/.airflowignore",
]
DAG_IDS = {"sagemaker_deploy", "sagemaker_deploy_kfp", "sagemaker_teardown"}
EXAMPLE_RETRAINS = {
    "sagemaker_retrain_churn_predictor",
    "sagemaker_retrain_demand_forecast",
    "sagemaker_retrain_fraud_scorer",
}

PROBE = r"""
import importlib.metadata, json, os, sys
from importlib import resources

import yaml
from airflow.dag_processing.dagbag import DagBag
from airflow.providers_manager import ProvidersManager

import sagelift

# Each parse as the DAG processor makes it, in a fresh process: the registry setting read anew.
bags = []
package_dags = str(resources.files("sagelift") / "dags")
for folder, registry in json.loads(sys.argv[1]):
    os.environ.pop("AIRFLOW__SAGELIFT__RETRAIN_REGISTRY", None)
    if registry:
        os.environ["AIRFLOW__SAGELIFT__RETRAIN_REGISTRY"] = registry
    for name in [m for m in sys.modules if m.startswith("sagelift.dags.sagemaker_")]:
        del sys.modules[name]
    bag = DagBag(dag_folder=package_dags if folder == "package" else folder)
    bags.append({"errors": bag.import_errors, "dag_ids": sorted(bag.dag_ids)})
assets = resources.files("sagelift") / "assets"
pipeline = yaml.safe_load_all((assets / "kfp" / "sagemaker_deploy.yaml").read_text())
provider = ProvidersManager().providers.get("sagelift")
try:
    import kfp_server_api  # noqa: F401
    kfp_client = True
except ImportError:
    kfp_client = False
print(json.dumps({
    "sagelift_file": sagelift.__file__,
    "version": sagelift.__version__,
    "dist_version": importlib.metadata.version("sagelift"),
    "provider_version": provider.version if provider else None,
    "connection_types": [c["connection-type"] for c in provider.data["connection-types"]] if provider else [],
    "iam_templates": sorted(p.name for p in (assets / "iam").iterdir()),
    "pipeline_name": next(pipeline)["pipelineInfo"]["name"],
    "kfp_client": kfp_client,
    "bags": bags,
}))
"""


def run(*args: str | Path, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    if env is None:
        env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
        env.pop("UV_PROJECT_ENVIRONMENT", None)
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=True, env=env, timeout=600, **kwargs
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    assert UV.is_file(), "make env bootstraps uv into .tools/bin"
    dist = tmp_path_factory.mktemp("dist")
    run(UV, "build", "--wheel", "--out-dir", dist, cwd=ROOT)
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv outside the repo with the wheel and the locked versions of its dependencies."""
    where = tmp_path_factory.mktemp("installed")
    assert not where.is_relative_to(ROOT)
    constraints = where / "constraints.txt"
    run(UV, "export", "--frozen", "--no-dev", "--all-extras", "--no-hashes", "--no-emit-project",
        "--output-file", constraints, cwd=ROOT)  # fmt: skip
    run(UV, "venv", "--python", sys.executable, where / "venv", cwd=where)
    python = where / "venv" / "bin" / "python"
    run(UV, "pip", "install", "--python", python, wheel, "--constraints", constraints,
        cwd=where)  # fmt: skip
    return python


def probe(python: Path, parses: list[tuple[Path | str, Path | None]]) -> dict:
    """What the installed package shows, with one DagBag per (DAG folder, retrain registry or None); the
    folder "package" is the installed package's own DAG folder."""
    home = python.parents[2] / "airflow-home"
    home.mkdir(exist_ok=True)
    clean = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    folders = json.dumps([[str(f), str(r) if r else None] for f, r in parses])
    out = run(python, "-c", PROBE, folders, cwd=home, env=clean)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_wheel_is_the_package_with_its_data_and_entry_point(wheel):
    assert wheel.name == f"sagelift-{sagelift.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"sagelift-{sagelift.__version__}.dist-info/METADATA").decode()
        entry_points = archive.read(f"sagelift-{sagelift.__version__}.dist-info/entry_points.txt").decode()
    assert set(ASSETS) <= names
    assert not any(n.startswith(("dags/", "include/", "tests/", "sagelift_plugin")) for n in names)
    assert "[apache_airflow_provider]\nprovider_info = sagelift.provider:get_provider_info" in entry_points
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requires = [
        Requirement(line.removeprefix("Requires-Dist: "))
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    assert {Requirement(r).name for r in project["dependencies"]} == {
        r.name for r in requires if not r.marker
    }
    (kfp,) = [r for r in requires if r.marker]
    assert kfp.name == "kfp-server-api" and str(kfp.marker) == 'extra == "kfp"'


def test_the_installed_wheel_parses_every_dag_outside_the_repo(venv):
    examples = ROOT / "include/examples/retrain"
    found = probe(
        venv, [(ROOT / "dags", None), (ROOT / "dags", examples), ("package", None), ("package", examples)]
    )
    assert Path(found["sagelift_file"]).is_relative_to(venv.parents[1])
    assert found["version"] == found["dist_version"] == found["provider_version"] == sagelift.__version__
    assert found["connection_types"] == ["kubeflow_pipelines"]
    assert "execution-permissions.json.j2" in found["iam_templates"]
    assert found["pipeline_name"] == "sagemaker-deploy"
    # sagemaker_deploy_kfp parses without the KFP client (the kfp extra is not installed)
    assert found["kfp_client"] is False
    # the one-line files of dags/, then the package's own DAG folder
    for plain, with_examples in (found["bags"][:2], found["bags"][2:]):
        assert plain == {"errors": {}, "dag_ids": sorted(DAG_IDS)}  # no retrain registry named: no retrain
        assert with_examples == {"errors": {}, "dag_ids": sorted(DAG_IDS | EXAMPLE_RETRAINS)}
