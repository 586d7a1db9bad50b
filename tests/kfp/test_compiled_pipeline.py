"""The committed KFP package (plugins/sagelift/assets/kfp/sagemaker_deploy.yaml) against the one parameter definition.

Read with PyYAML in the main environment: the kfp SDK itself lives in include/kfp/.venv, where
`make kfp-check` recompiles the package and fails when the committed file differs.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml

from sagelift.domain.params import PARAMETERS
from tests.conftest import ROOT

PACKAGE = ROOT / "plugins/sagelift/assets/kfp/sagemaker_deploy.yaml"
STEPS = [
    "ensure_pvc",
    "assume_role_chain",
    "plan_changes",
    "acquire_model_lock",
    "resolve_tags",
    "copy_images",
    "label_data",
    "train_model",
    "register_model",
    "recommend_instance",
    "create_model",
    "deploy_endpoint",
    "expose_api",
    "monitor_endpoint",
    "batch_transform",
]
# A KFP v2 parameter type per JSON-schema type of the parameter definitions.
KFP_TYPES = {
    "string": "STRING",
    "object": "STRUCT",
    "array": "LIST",
    "integer": "NUMBER_INTEGER",
    "boolean": "BOOLEAN",
}
# The steps a plan-only run skips: those after plan_changes, under its condition (issue 16 item 9).
CHANGING_STEPS = STEPS[STEPS.index("plan_changes") + 1 :]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    pipeline, *platform = yaml.safe_load_all(PACKAGE.read_text())
    assert len(platform) <= 1
    return pipeline


def _kfp_type(schema: dict[str, Any]) -> str:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return KFP_TYPES[next(t for t in types if t != "null")]


def test_the_13_original_parameters_with_their_defaults(spec):
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    originals = [p for p in PARAMETERS if p.original]
    assert len(originals) == 13
    assert {p.name for p in originals} <= set(inputs)
    for p in [spec for spec in PARAMETERS if spec.name in inputs]:
        assert inputs[p.name]["parameterType"] == _kfp_type(p.schema), p.name
        assert inputs[p.name]["defaultValue"] == p.default, p.name


def test_the_eight_steps_in_order(spec):
    # The steps run inside an exit handler whose exit task gives the model's lock back.
    root = spec["root"]["dag"]["tasks"]
    assert sorted(root) == ["exit-handler-1", "release-model-lock"]
    assert root["release-model-lock"]["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    tasks = spec["components"][root["exit-handler-1"]["componentRef"]["name"]]["dag"]["tasks"]
    # plan_only: the steps that change anything run under plan_changes' condition, in a sub-DAG
    (condition,) = [t for t in tasks.values() if "triggerPolicy" in t and "condition" in t["triggerPolicy"]]
    assert condition["triggerPolicy"]["condition"].endswith("== 'apply'")
    assert "plan-changes" in condition["dependentTasks"]
    inner = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    outer = {t["taskInfo"]["name"]: k for k, t in tasks.items() if t is not condition}
    assert sorted(outer) == sorted(STEPS[: STEPS.index("plan_changes") + 1])
    by_step = {**outer, **{task["taskInfo"]["name"]: key for key, task in inner.items()}}
    tasks = {**tasks, **inner}
    assert sorted(by_step) == sorted(STEPS)
    for before, after in itertools.pairwise(CHANGING_STEPS):
        assert by_step[before] in tasks[by_step[after]].get("dependentTasks", []), (before, after)
    assert "dependentTasks" not in tasks[by_step["ensure_pvc"]]
    assert "retryPolicy" not in tasks[by_step["acquire_model_lock"]]  # its wait is bounded once


def test_every_step_runs_sagelift_code_with_the_platform_configuration(spec):
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == len(STEPS) + 1  # and the exit handler's release_model_lock
    for executor in executors.values():
        container = executor["container"]
        assert "from sagelift_kfp import " in "\n".join(container["command"])  # steps, or a feature's
        assert "pip install" not in "\n".join(container["command"])  # the image brings sagelift
    platform = next(d for d in yaml.safe_load_all(PACKAGE.read_text()) if "platforms" in d)
    configured = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(configured) == set(executors)
    for config in configured.values():
        (mapping,) = config["configMapAsEnv"]
        assert mapping["keyToEnv"] == [{"configMapKey": "platform.json", "envVar": "SAGELIFT_PLATFORM"}]
