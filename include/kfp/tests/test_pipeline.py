"""The pipeline definition: compile-time settings, the components' interface, KFP's number handling."""

from __future__ import annotations

from pathlib import Path

import yaml
from kfp import compiler
from pipeline import DEFAULT_BASE_IMAGE, build_pipeline, ensure_pvc

from sagelift.domain.kfp import parse_run_parameters
from sagelift.domain.params import ORIGINAL_PARAMETER_NAMES


def _compiled(tmp_path: Path, **settings) -> dict:
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(build_pipeline(**settings), package_path=str(path))
    return next(yaml.safe_load_all(path.read_text()))


def test_image_and_packages_are_compile_time_settings(tmp_path: Path) -> None:
    spec = _compiled(tmp_path, base_image="registry.example/sagelift-kfp:9", packages=("sagelift-extra==1",))
    for executor in spec["deploymentSpec"]["executors"].values():
        container = executor["container"]
        assert container["image"] == "registry.example/sagelift-kfp:9"
        assert "sagelift-extra==1" in "\n".join(container["command"])
        assert "'kfp==" not in "\n".join(container["command"])  # kfp comes with the image or the packages


def test_default_settings_install_nothing_at_start(tmp_path: Path) -> None:
    spec = _compiled(tmp_path)
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {DEFAULT_BASE_IMAGE}


def test_the_first_step_takes_the_run_parameters_and_the_run_facts() -> None:
    assert list(ensure_pvc.__code__.co_varnames[: ensure_pvc.__code__.co_argcount]) == [
        *ORIGINAL_PARAMETER_NAMES,
        "endpoint",
        "training",
        "request_overrides",
        "tuning",
        "quality_gate",
        "batch",
        "multi_model",
        "instance_recommendation",
        "monitoring",
        "labeling",
        "plan_only",
        "pipeline_name",
        "run_id",
    ]


def test_struct_numbers_come_back_as_the_integers_the_user_sent() -> None:
    # KFP delivers {"max_depth": 5} as {"max_depth": 5.0}; Airflow would send "5", so must KFP.
    received = {
        "training_hyperparameters": {"max_depth": 5.0, "eta": 0.2, "n": [1.0, "2"]},
        "model_name": "m",
    }
    assert parse_run_parameters(received) == {
        "training_hyperparameters": {"max_depth": 5, "eta": 0.2, "n": [1, "2"]},
        "model_name": "m",
    }
