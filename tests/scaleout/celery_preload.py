"""The scale-out test's Celery settings (``[celery] celery_config_options``): Airflow's own, after
importing what the DAG files import.

A Celery worker's pool process forks every task it runs; importing the DAG files' modules here, in the
worker before its pool starts, lets each task start with them loaded instead of importing Airflow's
providers and sagelift again, as ``[scheduler] mp_forkserver_preload`` does for the LocalExecutor of the
live tier (tests/support/airflow_standalone.py). The settings themselves are the provider's defaults.
"""

from __future__ import annotations

import contextlib
import importlib

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

from tests.support.airflow_standalone import dag_imports

for _module in dag_imports():
    # what does not import is left to the task, which fails on it as it would without the preload
    with contextlib.suppress(Exception):
        importlib.import_module(_module)

CELERY_CONFIG = DEFAULT_CELERY_CONFIG
