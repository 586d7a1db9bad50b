"""A deployment's configuration: the platform Variable, and the registered retrains.

- The platform configuration has one home, the Airflow Variable ``sagelift_platform``, read at task run
  time only (never at DAG import), through the Task SDK, so it works the same with the metadata
  database, environment variables (AIRFLOW_VAR_SAGELIFT_PLATFORM) or a secrets backend.
- Registered retrains are JSON files in ``REGISTRY`` (include/retrain/), one per model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import Variable

from sagelift.domain.params import MODEL_NAME_MAX, SAGEMAKER_NAME_RE
from sagelift.domain.platform import VARIABLE_KEY, parse_platform_variable
from sagelift.domain.retrain import OPERATOR_TRIGGERED, RetrainModel, is_retrain_run, parse_retrain_file


def load_platform_config_raw() -> dict[str, Any] | None:
    """The Variable as a dict, None when unset; JSON that is not an object, or out of bounds, is refused
    with a SageliftValidationError naming the Variable."""
    return parse_platform_variable(Variable.get(VARIABLE_KEY, default=None))


# plugins/sagelift/config.py -> the project root, where include/ lives.
REGISTRY = Path(__file__).resolve().parents[2] / "include" / "retrain"


def load_retrain_models(directory: Path) -> list[RetrainModel]:
    """Every registration in ``directory``; an invalid one fails the DAG file's import, naming it."""
    return [
        parse_retrain_file(path.stem, path.read_text(), source=str(path))
        for path in sorted(directory.glob("*.json"))
    ]


def registered_retrain(
    run_type: str, run_id: str, conf: Mapping[str, Any], directory: Path = REGISTRY
) -> RetrainModel | None:
    """The registration a sagemaker_deploy run is the retrain of (see ``is_retrain_run``), else None.

    The file is found by the conf's model_name, read only when that is a valid model name (so a conf can
    name no other path), and parsed with the same rules as the retrain DAGs'.
    """
    name = conf.get("model_name")
    if str(run_type) != OPERATOR_TRIGGERED or not isinstance(name, str):
        return None
    if len(name) > MODEL_NAME_MAX or not SAGEMAKER_NAME_RE.match(name):
        return None
    path = directory / f"{name}.json"
    if not path.is_file():
        return None
    model = parse_retrain_file(name, path.read_text(), source=str(path))
    return model if is_retrain_run(model, run_type, run_id, conf) else None
