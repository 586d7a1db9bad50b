"""The kfp environment's tests: sagelift's domain code, steps and test stand-ins come from the work tree.

tests.support.local_aws and tests.support.scenario need only moto, boto3 and werkzeug, so the local
AWS of the Airflow tests is reused here as it is. The behavioural scenarios that run the whole pipeline
(with scenario_runner.py here) live in the project's tests/scenarios/.
"""

from __future__ import annotations

import sys
from pathlib import Path

KFP_DIR = Path(__file__).resolve().parents[1]
ROOT = KFP_DIR.parents[1]
PATHS = [str(ROOT / "plugins"), str(KFP_DIR), str(ROOT)]
for path in reversed(PATHS):
    if path not in sys.path:
        sys.path.insert(0, path)
