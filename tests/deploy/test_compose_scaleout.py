"""docker-compose.yaml's scale-out (issue 18 item 3), checked without Docker: `docker compose config` is not
available here, so this reads the YAML as compose would (anchors merged, ``${VAR:-default}`` resolved) and
checks what compose itself would refuse (a dependency on a service outside the active profiles, a worker
that cannot be scaled) and what Airflow's own Celery compose has that ours must have too."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_COMPONENTS = {
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-api-server": "api-server",
    "airflow-worker": "celery worker",
}
# The services of Airflow 3's docker-compose (airflow-core/docs/howto/docker-compose/docker-compose.yaml)
# under our names; its airflow-cli (debug profile) and flower (flower profile) are optional extras.
OFFICIAL_SERVICES = {
    "postgres",
    "redis",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
}
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def resolve(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of ``${VAR}`` and ``${VAR:-default}`` (``$$`` is a literal ``$``)."""
    if isinstance(value, str):
        text = VARIABLE.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), value)
        return text.replace("$$", "$")
    if isinstance(value, dict):
        return {key: resolve(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, env) for item in value]
    return value


def services(env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    return dict(resolve(yaml.safe_load(COMPOSE.read_text()), env or {})["services"])


def active(all_services: dict[str, dict[str, Any]], profiles: set[str]) -> set[str]:
    return {name for name, svc in all_services.items() if not set(svc.get("profiles", [])) - profiles}


@pytest.mark.parametrize("profiles", [set(), {"celery"}], ids=["default", "celery"])
def test_every_dependency_is_started_or_optional_in_each_profile_set(profiles: set[str]) -> None:
    # compose refuses `up` when an active service depends on an inactive one, unless `required: false`
    all_services = services()
    running = active(all_services, profiles)
    for name in running:
        for dependency, rule in all_services[name].get("depends_on", {}).items():
            assert dependency in all_services, f"{name} depends on undefined {dependency}"
            assert dependency in running or rule.get("required") is False, (name, dependency, profiles)


def test_the_celery_profile_adds_redis_and_workers_to_the_default_stack() -> None:
    all_services = services()
    assert active(all_services, set()) == OFFICIAL_SERVICES - {"redis", "airflow-worker"} | {"local-aws"}
    assert active(all_services, {"celery"}) >= OFFICIAL_SERVICES


def test_the_executor_is_local_by_default_and_celery_when_asked() -> None:
    assert services()["airflow-scheduler"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    celery = services({"AIRFLOW_EXECUTOR": "CeleryExecutor"})
    for name in AIRFLOW_COMPONENTS:
        assert celery[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
    env = celery["airflow-worker"]["environment"]
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert "6379" in [str(port) for port in celery["redis"]["expose"]]
    # the header's command is the one that starts it
    assert "AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up" in COMPOSE.read_text()


def test_the_worker_scales() -> None:
    # a fixed container name or host port would make `--scale airflow-worker=N` fail for N > 1
    worker = services()["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["celery", "worker"]
    assert worker["depends_on"]["airflow-api-server"]["condition"] == "service_healthy"
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"


@pytest.mark.parametrize("name", [*AIRFLOW_COMPONENTS, "redis", "postgres"])
def test_every_long_running_service_has_a_healthcheck(name: str) -> None:
    svc = services()[name]
    assert svc["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}
    if name in AIRFLOW_COMPONENTS:
        assert " ".join(svc["command"]) == AIRFLOW_COMPONENTS[name]
        assert svc["restart"] == "unless-stopped"


def test_the_healthchecks_ask_what_airflow_serves() -> None:
    all_services = services()
    assert (
        all_services["airflow-scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    )
    from airflow.configuration import conf

    port = conf.get("scheduler", "scheduler_health_check_server_port")
    assert all_services["airflow-scheduler"]["healthcheck"]["test"][-1] == f"http://localhost:{port}/health"
    for name, job in (("airflow-dag-processor", "DagProcessorJob"), ("airflow-triggerer", "TriggererJob")):
        assert f"airflow jobs check --job-type {job}" in all_services[name]["healthcheck"]["test"][1]
    ping = all_services["airflow-worker"]["healthcheck"]["test"][1]
    app = re.search(r"--app (\S+)", ping).group(1)  # type: ignore[union-attr]
    # the module that defines the app, read rather than imported: importing it needs a working Celery
    module, _, attribute = app.rpartition(".")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, app
    # a module-level __getattr__ hands out `app` lazily (the provider's way)
    assert f'if name == "{attribute}"' in Path(spec.origin).read_text(), app


def test_logs_and_config_are_volumes_and_the_init_chowns_them() -> None:
    all_services = services()
    for name in AIRFLOW_COMPONENTS:
        mounts = {volume.split(":")[1] for volume in all_services[name]["volumes"]}
        assert {"/opt/airflow/logs", "/opt/airflow/config"} <= mounts, name
        assert all_services[name]["environment"]["AIRFLOW_CONFIG"].startswith("/opt/airflow/config/")
        assert all_services[name]["user"] == "50000:0"
    init = all_services["airflow-init"]
    assert init["user"] == "0:0"
    script = init["command"][-1]
    assert "airflow db migrate" in script
    chown = next(line for line in script.splitlines() if line.startswith("chown"))
    assert chown.split()[-3:] == ["/opt/airflow/state", "/opt/airflow/logs", "/opt/airflow/config"]
    # the chown comes last: migrate as root writes bytecode into the state volume
    assert script.strip().splitlines()[-1] == chown


def test_the_image_is_built_with_the_wheel_and_skopeo() -> None:
    for name in AIRFLOW_COMPONENTS:
        build = services()[name]["build"]
        dockerfile = (ROOT / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile.is_file(), dockerfile
        text = dockerfile.read_text()
        assert "skopeo" in text and "-py3-none-any.whl" in text, dockerfile
        assert os.path.relpath(dockerfile, ROOT) == str(Path("deploy/helm/Dockerfile"))
