"""docker-compose.yaml's structure: the full local stack a `docker compose up` would start.

This machine has no Docker engine, so the file is checked as data: the four Airflow 3.3 components on
Postgres with the LocalExecutor, the project's folders mounted, the local AWS wired into the scientist
account's connection, and a platform Variable that sagelift itself accepts.
"""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

from sagelift.domain.platform import PlatformConfig
from tests.conftest import ROOT

AIRFLOW_COMPONENTS = {
    "airflow-api-server": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def _env(service: dict) -> dict[str, str]:
    # Compose substitutes ${VAR:-default}; do the same with the defaults.
    return {
        key: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in service["environment"].items()
    }


def test_the_four_airflow_components_run_airflow_3_3_with_local_executor_on_postgres(compose):
    services = compose["services"]
    for name, command in AIRFLOW_COMPONENTS.items():
        service = services[name]
        # sagelift's image, built from the Helm recipe's Dockerfile on apache/airflow 3.3
        # (the context, dist/, exists only after `make wheel`: resolve the path as compose does, by name)
        path = os.path.normpath(ROOT / service["build"]["context"] / service["build"]["dockerfile"])
        with open(path) as file:
            dockerfile = file.read()
        base = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", dockerfile, re.MULTILINE)
        assert base and re.fullmatch(r"3\.3\.\d+", base.group(1)), dockerfile[:200]
        assert "FROM apache/airflow:${AIRFLOW_VERSION}-python3." in dockerfile
        assert service["command"] == [command]
        env = _env(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert (
            env["AIRFLOW__AWS__SESSION_FACTORY"] == "sagelift.hooks.session_factory.RoleChainSessionFactory"
        )
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-api-server:8080/")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert "airflow db migrate" in services["airflow-init"]["command"][-1]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "healthcheck" in services["postgres"]


def test_dags_plugins_and_include_are_mounted_from_the_repository(compose):
    for name in AIRFLOW_COMPONENTS:
        mounts = dict(v.split(":", 1) for v in compose["services"][name]["volumes"])
        for folder in ("dags", "plugins", "include"):
            assert mounts[f"./{folder}"] == f"/opt/airflow/{folder}"
            assert (ROOT / folder).is_dir()
        assert "/opt/airflow/plugins" in _env(compose["services"][name])["PYTHONPATH"]


def test_the_local_aws_is_moto_and_the_scientist_connection_points_at_it(compose):
    local_aws = compose["services"]["local-aws"]
    assert local_aws["image"].startswith("motoserver/moto:")
    env = _env(compose["services"]["airflow-scheduler"])
    connection = json.loads(env["AIRFLOW_CONN_SAGELIFT_AWS_333333333333"])
    assert connection["conn_type"] == "aws"
    assert connection["extra"]["endpoint_url"] == "http://local-aws:5000"
    assert connection["extra"]["service_config"]["sts"]["endpoint_url"] == "http://local-aws:5000"
    platform = PlatformConfig.from_dict(json.loads(env["AIRFLOW_VAR_SAGELIFT_PLATFORM"]))
    assert connection["extra"]["role_chain"] == [{"role_arn": platform.master_role_arn}]
    assert platform.aws_conn_id("333333333333") == "sagelift_aws_333333333333"


def test_published_ports_are_loopback_only_and_services_are_known(compose):
    services = compose["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    for value in _env(services["airflow-api-server"]).values():
        # without a default only the secrets `make compose-env` writes to .env (tests/deploy/test_local_secrets.py)
        assert "${" not in re.sub(r"\$\{AIRFLOW_[A-Z_]+:\?[^}]*\}", "", value)
