"""The fault matrix: every AWS operation of two deploys of one model, each hit by every fault, changes nothing.

A deploy and the next deploy of the same model (the second updates the endpoint, the stage and the usage
plan, and prunes) run twice against fresh accounts, with API-key authorization so that the usage plan and
the key are made too:

- fault-free, recording the operations each run calls, the resources the account then holds, the
  invoke URL and the API key;
- every fault on every operation of each run, one call after another: on a create or update (every
  operation that is not a Get, List, Describe or Head) the first call is ``lost`` (the local AWS performs
  it, then drops the connection without answering); then, on every operation, a call is throttled, the
  next answered 500 (``internal``), the next's connection ``reset``, the next ``latency`` (delayed).
  botocore's retries absorb them all, so no task is retried; the write that finally goes through finds
  what the lost call did, as a retry after a lost answer does.

Merged into one faulty pair of runs rather than one run per (operation, fault) or one pair per kind of
fault (four runs instead of six, each run's cost in its tasks, not in the faults it serves): the faulty
pair must leave exactly the resources of the fault-free pair (SageMaker, API Gateway down to
stages, usage plan stages and keys, ECR), one API Gateway deployment per run, and the same invoke URL and
API key on the next run; and the lifecycle's log must show every planned fault served, each lost answer a
success the caller never saw. botocore's backoff sleeps are scaled to a tenth and the latency fault is
brief here: the matrix is about what the retries decide and leave behind, not how long they wait (the
waits are botocore's own).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import count_resources, deployments_per_run
from tests.support.scenario import demo_conf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ANSWERED_FAULTS = ("throttle", "internal", "reset", "latency")
READS = ("Get", "List", "Describe", "Head")
# A delayed answer, well within botocore's read timeout: how long it is proves nothing more.
LATENCY_SECONDS = 0.05


def is_write(operation: str) -> bool:
    return not operation.split(":", 1)[1].startswith(READS)


@pytest.fixture
def fast_backoff(monkeypatch):
    from botocore.retries.standard import ExponentialBackoff

    original = ExponentialBackoff.delay_amount
    monkeypatch.setattr(
        ExponentialBackoff, "delay_amount", lambda self, context: original(self, context) / 10
    )


def _platform(scenario, monkeypatch, rate_limit: float) -> None:
    """API-key authorization (so a usage plan and a key are made); the second run changes the throttle."""
    scenario.platform_overrides["api"] = {"authorization": "API_KEY", "throttle_rate_limit": rate_limit}
    for key, value in scenario.airflow_env().items():
        monkeypatch.setenv(key, value)


def _rebuild(scenario, local_aws, monkeypatch) -> None:
    """An empty world again (new runner keys, so new connection settings)."""
    local_aws.reset()
    scenario.build()
    for key, value in scenario.airflow_env().items():
        monkeypatch.setenv(key, value)


def _exposed(result) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(XComModel.run_id == result.dag_run.run_id, XComModel.task_id == "expose_api")
            .filter(XComModel.key == "return_value")
            .one()
        )
        value = row.value
    return json.loads(value) if isinstance(value, str) else dict(value)


def _two_runs(run_deploy, scenario, monkeypatch, local_aws, plan_faults=None) -> list[dict[str, Any]]:
    """Deploy, then deploy again; per run: operations called, resources left, invoke URL, key, tries."""
    outcomes = []
    for rate_limit in (50.0, 60.0):
        _platform(scenario, monkeypatch, rate_limit)
        if plan_faults is not None:
            plan_faults(len(outcomes))
        result = run_deploy(demo_conf())
        assert result.state == "success", result.states
        exposed = _exposed(result)
        outcomes.append(
            {
                "operations": sorted({f"{c.service}:{c.operation}" for c in result.calls}),
                "resources": count_resources(local_aws, SCIENTIST_ACCOUNT),
                "deployments": sorted(deployments_per_run(local_aws, SCIENTIST_ACCOUNT).values()),
                "invoke_url": exposed["invoke_url"],
                "api_key_id": exposed["api_key_id"],
                "tries": {ti.task_id: ti.try_number for ti in result.dag_run.get_task_instances()},
            }
        )
    return outcomes


def _assert_like_fault_free(faulty: list[dict[str, Any]], clean: list[dict[str, Any]]) -> None:
    for run, expected in zip(faulty, clean, strict=True):
        assert run["resources"] == expected["resources"]
        assert run["deployments"] == expected["deployments"] == [1] * len(expected["deployments"])
        # Absorbed inside the steps (botocore's retries, re-checks), not by task retries.
        assert set(run["tries"].values()) == {1}, run["tries"]
    assert faulty[1]["invoke_url"] == faulty[0]["invoke_url"]
    assert faulty[1]["api_key_id"] == faulty[0]["api_key_id"]


def test_every_operation_under_every_fault_leaves_what_a_fault_free_deploy_leaves(
    run_deploy, scenario, lifecycle, local_aws, monkeypatch, fast_backoff
):
    clean = _two_runs(run_deploy, scenario, monkeypatch, local_aws)
    assert clean[1]["invoke_url"] == clean[0]["invoke_url"]
    assert clean[1]["api_key_id"] == clean[0]["api_key_id"]
    assert clean[0]["resources"]["usage_plans"] == clean[0]["resources"]["api_keys"] == 1
    operations = [run["operations"] for run in clean]
    writes = [[op for op in ops if is_write(op)] for ops in operations]
    answered = sum(len(ops) for ops in operations) * len(ANSWERED_FAULTS)
    lost = sum(len(ops) for ops in writes)
    print(
        f"fault matrix: {len(set(operations[0]) | set(operations[1]))} operations over two runs; "
        f"{answered} (operation, run, fault) cells of {'/'.join(ANSWERED_FAULTS)} + {lost} of lost "
        f"({len(set(writes[0]) | set(writes[1]))} distinct creates and updates) = {answered + lost}"
    )
    print("creates and updates:", ", ".join(sorted(set(writes[0]) | set(writes[1]))))

    def all_faults(run: int) -> None:
        lifecycle.rules.clear()
        for operation in operations[run]:
            if is_write(operation):
                lifecycle.fault(operation, "lost", count=1)
            for fault in ANSWERED_FAULTS:
                lifecycle.fault(operation, fault, count=1, latency_seconds=LATENCY_SECONDS)

    served: list[set[tuple[str, str]]] = []
    lost_per_run: list[list[tuple[str, int]]] = []

    def logged(run: int) -> None:
        """Plan the run's faults; keep what the previous run was served."""
        if run:
            served.append(set(lifecycle.injected))
            lost_per_run.append(list(lifecycle.lost_answers))
        lifecycle.injected.clear()
        lifecycle.lost_answers.clear()
        all_faults(run)

    _rebuild(scenario, local_aws, monkeypatch)
    faulty = _two_runs(run_deploy, scenario, monkeypatch, local_aws, logged)
    served.append(set(lifecycle.injected))
    lost_per_run.append(list(lifecycle.lost_answers))
    _assert_like_fault_free(faulty, clean)
    for run, ops in enumerate(operations):
        missing = [(op, f) for op in ops for f in ANSWERED_FAULTS if (op, f) not in served[run]]
        assert missing == [], f"run {run + 1}"
    for run, ops in enumerate(writes):
        assert sorted({op for op, _ in lost_per_run[run]}) == ops, f"run {run + 1}"
        # The server acted every time; only the answer was lost.
        assert [(op, s) for op, s in lost_per_run[run] if not 200 <= s < 300] == [], f"run {run + 1}"
