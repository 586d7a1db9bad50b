"""A deployment's configuration: the platform Variable, and the registered retrains.

- The platform configuration has one home, the Airflow Variable ``sagelift_platform``, read at task run
  time only (never at DAG import), through the Task SDK, so it works the same with the metadata
  database, environment variables (AIRFLOW_VAR_SAGELIFT_PLATFORM) or a secrets backend.
- Registered retrains are JSON files, one per model, in the folder the deployment names in the Airflow
  setting ``[sagelift] retrain_registry`` (``AIRFLOW__SAGELIFT__RETRAIN_REGISTRY``): a setting, not the
  Variable, because the retrain DAG file reads the folder at every parse, and a DAG file reads no
  Variable. The dag-processor (the DAGs) and the workers (validate, which reads a registration's owner)
  must name the same folder. Unset, there are no registrations; the examples under
  include/examples/retrain/ are active only where the setting names that folder.
"""

from __future__ import annotations

import logging
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


log = logging.getLogger(__name__)

RETRAIN_REGISTRY_OPTION = "retrain_registry"


def retrain_registry() -> Path | None:
    """The folder of retrain registrations ``[sagelift] retrain_registry`` names, None when unset."""
    from airflow.providers.common.compat.sdk import conf

    value = (conf.get("sagelift", RETRAIN_REGISTRY_OPTION, fallback="") or "").strip()
    return Path(value) if value else None


def load_retrain_models(directory: Path | None) -> list[RetrainModel]:
    """Every registration in ``directory``; an invalid one fails the DAG file's import, naming it.

    None (the setting unset) means no registrations; a folder that is not there logs a warning, so a
    mistyped path is seen in the dag-processor's log instead of the retrain DAGs silently vanishing.
    """
    if directory is None:
        return []
    if not directory.is_dir():
        log.warning(
            "[sagelift] %s names %s, which is not a folder: no retrain DAGs are registered",
            RETRAIN_REGISTRY_OPTION,
            directory,
        )
        return []
    return [
        parse_retrain_file(path.stem, path.read_text(), source=str(path))
        for path in sorted(directory.glob("*.json"))
    ]


def registered_retrain(
    run_type: str, run_id: str, conf: Mapping[str, Any], directory: Path | None = None
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
    directory = directory or retrain_registry()
    if directory is None:
        return None
    path = directory / f"{name}.json"
    if not path.is_file():
        return None
    model = parse_retrain_file(name, path.read_text(), source=str(path))
    return model if is_retrain_run(model, run_type, run_id, conf) else None
