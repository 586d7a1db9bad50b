"""sagelift as an Airflow provider: what Airflow's providers manager finds through the entry point."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import tomllib
from importlib import resources

import jsonschema
import pytest
from airflow.providers_manager import ProvidersManager
from sagelift_plugin import SageliftPlugin

import sagelift
from sagelift.provider import get_provider_info
from tests.conftest import ROOT


def import_string(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_version_is_written_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"]
    assert importlib.metadata.version("sagelift") == sagelift.__version__
    assert get_provider_info()["versions"] == [sagelift.__version__]


def test_provider_info_matches_airflow_schema():
    schema = json.loads(resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_providers_manager_registers_the_connection_type_links_and_notifier():
    manager = ProvidersManager()
    assert manager.providers["sagelift"].version == sagelift.__version__
    hook = manager.hooks["kubeflow_pipelines"]
    assert hook is not None and hook.hook_class_name == "sagelift.hooks.kfp.KubeflowPipelinesHook"
    info = get_provider_info()
    assert set(info["extra-links"]) <= set(manager.extra_links_class_names)
    assert set(info["notifications"]) <= set(manager.notification)


@pytest.mark.parametrize("name", get_provider_info()["extra-links"] + get_provider_info()["notifications"])
def test_every_class_named_imports(name):
    assert isinstance(import_string(name), type)


def test_the_plugin_and_the_provider_register_the_same_links():
    plugin_links = {
        f"{type(link).__module__}.{type(link).__qualname__}" for link in SageliftPlugin.operator_extra_links
    }
    assert plugin_links == set(get_provider_info()["extra-links"])
    conn = get_provider_info()["connection-types"][0]
    assert import_string(conn["hook-class-name"]).conn_type == conn["connection-type"]


def test_the_sagelift_settings_are_declared_with_the_defaults_the_code_uses(monkeypatch):
    from sagelift.config import retrain_registry
    from sagelift.triggers.logs import DESCRIBE_LOG_STREAMS_PER_SECOND, GET_LOG_EVENTS_PER_SECOND

    options = get_provider_info()["config"]["sagelift"]["options"]
    assert options["describe_log_streams_per_second"]["default"] == str(DESCRIBE_LOG_STREAMS_PER_SECOND)
    assert options["get_log_events_per_second"]["default"] == str(GET_LOG_EVENTS_PER_SECOND)
    monkeypatch.delenv("AIRFLOW__SAGELIFT__RETRAIN_REGISTRY", raising=False)
    assert options["retrain_registry"]["default"] == "" and retrain_registry() is None
