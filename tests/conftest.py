"""Test session setup: an isolated Airflow home and metadata database, and the local stand-ins.

The Airflow environment is set before anything imports airflow, so no test can touch a developer's own
~/airflow. The local AWS (moto server on loopback) is started once per session and reset between tests.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="sagelift-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(_HOME / "logs"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__AWS__SESSION_FACTORY": "sagelift.hooks.session_factory.RoleChainSessionFactory",
        # The example retrain registrations are active in tests (and the demo) only because this names them.
        "AIRFLOW__SAGELIFT__RETRAIN_REGISTRY": str(ROOT / "include/examples/retrain"),
        # No test may reach real AWS: without credentials or endpoints in a connection, calls fail fast.
        "AWS_ACCESS_KEY_ID": "FAKE-NOT-USED",
        "AWS_SECRET_ACCESS_KEY": "FAKE-NOT-USED",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
for path in (str(ROOT / "plugins"), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's metadata database once; return the Airflow home."""
    from airflow.utils.db import initdb

    initdb()
    return _HOME


@pytest.fixture(scope="session")
def local_aws_server():
    from tests.support.local_aws import LocalAws

    with LocalAws() as aws:
        yield aws


@pytest.fixture(scope="module", autouse=True)
def _fresh_dag_modules():
    """Each test module gets DAG objects of its own, as each parse of a DAG file in the DAG processor does:
    the one-line files in dags/ import sagelift.dags.<name>, which Python would otherwise keep, with what
    an earlier module changed on its tasks."""
    for name in [m for m in sys.modules if m.startswith("sagelift.dags.sagemaker_")]:
        del sys.modules[name]


@pytest.fixture
def local_aws(local_aws_server):
    """The session's local AWS, emptied before each test."""
    local_aws_server.reset()
    return local_aws_server


LIVE_TIER = "tests/live/"
# The live tier's modules share one running Airflow per worker (a package-scoped fixture), so they run in
# two units, each on one worker with its own Airflow: the tier is the longest and would otherwise set the
# suite's wall time alone. Keep them about even: from the last CI run's durations, #1 took ~470 s with
# the trigger form and #0 ~290 s, so the form's ~70 s run in #0 (any module not listed here).
LIVE_UNITS = {
    "tests/live/test_standalone.py": "tests/live/#1",
    "tests/live/test_approval.py": "tests/live/#1",
}
# The modules that take minutes (measured with --durations), handed out right after the live tier.
# Modules whose tests are independent runs, split round-robin into this many units so that several
# workers share them (each unit sets up the module's fixtures once).
SPLIT_MODULES = {"tests/scenarios/test_both_engines.py": 3}
LONG_UNITS = (
    "tests/scaleout/test_scale_out.py",
    *(f"{path}#{i}" for path, parts in SPLIT_MODULES.items() for i in range(parts)),
    "tests/reliability/test_concurrency.py",
    "tests/reliability/test_faults.py",
    "tests/reliability/test_outcomes.py",
    "tests/ops/test_retrain.py",
    "tests/ops/test_teardown.py",
)


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, except that tests/live/ is two units of work (LIVE_UNITS) and the modules in
    SPLIT_MODULES are several. The modules of one live unit share the Airflow their worker starts
    (tests/live/conftest.py), so they run on that worker, one after another; as the longest units they go
    first, then the other long units, so that the other workers fill in around them (xdist otherwise
    orders units by their number of tests). The scenarios are independent runs, so workers share them."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LiveTierTogether(LoadFileScheduling):
        split: dict[str, str] = {}

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path.startswith(LIVE_TIER):
                return LIVE_UNITS.get(path, f"{LIVE_TIER}#0")
            parts = SPLIT_MODULES.get(path)
            if parts:
                if nodeid not in self.split:
                    done = sum(1 for seen in self.split if seen.startswith(path))
                    self.split[nodeid] = f"{path}#{done % parts}"
                return self.split[nodeid]
            return path

        def _assign_work_unit(self, node) -> None:
            # Longest first, so that the last units to finish are short ones.
            for unit in reversed((f"{LIVE_TIER}#0", f"{LIVE_TIER}#1", *LONG_UNITS)):
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
            super()._assign_work_unit(node)

    return LiveTierTogether(config, log)


def pytest_terminal_summary(terminalreporter) -> None:
    """Tables tests leave for the end of the run: a ``summary_table`` user property ``[title, header,
    rows]`` (tests/scenarios: the scenarios by engine). The reports carry it from xdist workers, whose own
    output is not shown; rows print in test order under one header per title."""
    tables: dict[str, tuple[str, list[tuple[str, list[str]]]]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "summary_table" and getattr(report, "when", "") == "call":
                    title, header, rows = value
                    tables.setdefault(title, (header, []))[1].append((report.nodeid, rows))
    for title, (header, blocks) in tables.items():
        terminalreporter.write_sep("=", title)
        terminalreporter.write_line(header)
        for _, rows in sorted(blocks, key=lambda block: block[0]):
            for row in rows:
                terminalreporter.write_line(row)
