"""The kfp environment's tests: sagelift's domain code and test stand-ins come from the work tree.

tests.support.local_aws and tests.support.scenario need only moto, boto3 and werkzeug, so the local
AWS of the Airflow tests is reused here as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

KFP_DIR = Path(__file__).resolve().parents[1]
ROOT = KFP_DIR.parents[1]
PATHS = [str(ROOT / "plugins"), str(KFP_DIR), str(ROOT)]
for path in reversed(PATHS):
    if path not in sys.path:
        sys.path.insert(0, path)


@pytest.fixture(scope="module")
def component_env() -> Iterator[pytest.MonkeyPatch]:
    """The environment kfp.local's component subprocesses inherit, starting with this one's imports."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join([*PATHS, os.environ.get("PYTHONPATH", "")]))
        yield env
