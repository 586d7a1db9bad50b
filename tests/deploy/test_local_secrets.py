"""Files the README's commands create that hold secrets stay out of git."""

from __future__ import annotations

import importlib.util
import re
import stat
import subprocess

import pytest
import yaml
from cryptography.fernet import Fernet

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "path",
    [
        ".env",  # compose's: the Fernet key and API secrets (make compose-env), Scale out settings
        ".airflow/simple_auth_manager_passwords.json.generated",  # the local admin password
        "build/onboarding/333333333333/connection.json",  # make onboard's output
    ],
)
def test_local_secret_bearing_files_are_ignored_by_git(path):
    # --no-index: asks .gitignore even if someone already added the file by mistake
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", path], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{path} is not ignored: {result.stderr}"


COMPOSE = ROOT / "docker-compose.yaml"
REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")
# what each Airflow setting is read from: a variable compose requires, which the setup script writes
SECRETS = {
    "AIRFLOW__CORE__FERNET_KEY": "AIRFLOW_FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
}


def _load_script():
    spec = importlib.util.spec_from_file_location("sagelift_compose_env", ROOT / "scripts" / "compose_env.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_takes_the_fernet_key_and_api_secrets_from_env_and_commits_none():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    airflow = [name for name, svc in services.items() if name.startswith("airflow-")]
    assert len(airflow) >= 5, airflow  # init, api-server, scheduler, dag-processor, triggerer (+ worker)
    script_writes = set(_load_script().missing_settings(set()))
    for name in airflow:
        env = services[name]["environment"]
        for setting, variable in SECRETS.items():
            required = REQUIRED.match(str(env.get(setting, "")))
            # `${VAR:?message}`: compose refuses to start without it instead of running with a known key
            assert required and required.group(1) == variable, (name, setting, env.get(setting))
            assert variable in script_writes
    assert "make compose-env" in COMPOSE.read_text()
    assert "scripts/compose_env.py" in (ROOT / "Makefile").read_text()


def test_the_setup_script_writes_a_fernet_key_once_and_keeps_what_is_there(tmp_path):
    script = _load_script()
    env = tmp_path / ".env"
    env.write_text(
        "AIRFLOW_EXECUTOR=CeleryExecutor\nCOMPOSE_PROFILES=celery"
    )  # README "Scale out", no newline
    added = script.write_env(env)
    assert {"AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"} <= set(added)
    first = env.read_text()
    values = dict(line.split("=", 1) for line in first.splitlines())
    assert values["AIRFLOW_EXECUTOR"] == "CeleryExecutor" and values["COMPOSE_PROFILES"] == "celery"
    Fernet(values["AIRFLOW_FERNET_KEY"].encode())  # a key Airflow's cryptography accepts
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    # again: nothing changes (a new key would make the database's encrypted values unreadable)
    assert script.write_env(env) == []
    assert env.read_text() == first
    # a fresh setup makes a different key: none is built in
    other = tmp_path / "other.env"
    script.write_env(other)
    assert (
        dict(line.split("=", 1) for line in other.read_text().splitlines())["AIRFLOW_FERNET_KEY"]
        != (values["AIRFLOW_FERNET_KEY"])
    )
