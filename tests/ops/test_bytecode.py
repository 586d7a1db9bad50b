"""Bytecode everywhere sagelift is installed (issue 19 item 1).

The environment sets PYTHONDONTWRITEBYTECODE=1 and uv does not compile by default: a venv without .pyc
makes every task process and every DAG parse compile all it imports again (about 3x slower). ``make env``
compiles once at install (``uv sync --compile-bytecode``); the container recipes do the same.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

# sagelift's heaviest dependencies: what every task process and every parse imports.
DEPENDENCIES = ("airflow", "airflow.providers.amazon", "boto3", "botocore", "sqlalchemy", "pydantic")


@pytest.mark.parametrize("package", DEPENDENCIES)
def test_the_venv_make_builds_holds_bytecode_for_the_dependencies(package: str) -> None:
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, package
    source = Path(spec.origin)
    compiled = Path(importlib.util.cache_from_source(str(source)))
    assert compiled.is_file(), (
        f"{package} has no bytecode ({compiled.name} missing next to {source}): "
        "build the venv with `make env` (uv sync --compile-bytecode)"
    )
    modules = list(source.parent.rglob("*.py"))
    caches = list(source.parent.rglob("__pycache__/*.pyc"))
    assert len(caches) >= 0.9 * len(modules), f"{package}: {len(caches)} .pyc for {len(modules)} modules"


def test_make_env_compiles_bytecode() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "sync --frozen --compile-bytecode" in makefile


def test_docker_compose_keeps_bytecode_for_every_component() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    for name, service in compose["services"].items():
        if not str(service.get("image", "")).startswith("apache/airflow:"):
            continue
        env = service["environment"]
        assert env.get("PYTHONDONTWRITEBYTECODE", "") == "", name
        prefix = env["PYTHONPYCACHEPREFIX"]
        mounts = dict(volume.split(":", 1) for volume in service["volumes"])
        assert any(prefix.startswith(target + "/") for target in mounts.values()), (name, prefix)


def test_the_kfp_component_image_compiles_sagelift() -> None:
    dockerfile = (ROOT / "include/kfp/Dockerfile").read_text()
    assert "python -m compileall -q /opt/sagelift/lib" in dockerfile
    assert "--no-compile" not in dockerfile


def test_the_helm_image_compiles_at_build() -> None:
    dockerfile = (ROOT / "deploy/helm/Dockerfile").read_text()
    assert "pip install --no-cache-dir --compile" in dockerfile
    assert "--no-compile" not in dockerfile
