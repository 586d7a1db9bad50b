"""Reads the platform configuration from its one home, the Airflow Variable ``sagelift_platform``.

Called at task run time only (never at DAG import), through the Task SDK, so it works the same with
the metadata database, environment variables (AIRFLOW_VAR_SAGELIFT_PLATFORM) or a secrets backend.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Variable

from sagelift.domain.platform import VARIABLE_KEY, parse_platform_variable


def load_platform_config_raw() -> dict[str, Any] | None:
    """The Variable as a dict, None when unset; JSON that is not an object, or out of bounds, is refused
    with a SageliftValidationError naming the Variable."""
    return parse_platform_variable(Variable.get(VARIABLE_KEY, default=None))
