"""Every AWS operation the DAG calls, throttled once and failed with a 500 once: the run still succeeds.

The matrix is (operations of a fault-free run) x (ThrottlingException, 500 InternalFailure). Each
operation's first call is throttled and its second answered 500, all in one run, so the botocore
retries (standard mode, from sagelift.hooks.sts) absorb both and the run leaves exactly the resources
of a fault-free run.
"""

from __future__ import annotations

import pytest

from tests.support.local_aws import SCIENTIST_ACCOUNT
from tests.support.sagemaker_lifecycle import count_resources
from tests.support.scenario import demo_conf

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAULTS = ("throttle", "internal")


def _rebuild(scenario, local_aws, monkeypatch) -> None:
    """An empty world again (new runner keys, so new connection settings)."""
    local_aws.reset()
    scenario.build()
    for key, value in scenario.airflow_env().items():
        monkeypatch.setenv(key, value)


def test_one_throttle_and_one_500_per_operation_change_nothing(
    run_deploy, scenario, lifecycle, local_aws, monkeypatch
):
    clean = run_deploy(demo_conf())
    assert clean.state == "success", clean.states
    expected = count_resources(local_aws, SCIENTIST_ACCOUNT)
    operations = sorted({f"{c.service}:{c.operation}" for c in clean.calls})
    print(
        f"fault matrix: {len(operations)} operations x {len(FAULTS)} faults = {len(operations) * len(FAULTS)}"
    )

    _rebuild(scenario, local_aws, monkeypatch)
    for operation in operations:
        for fault in FAULTS:
            lifecycle.fault(operation, fault, count=1)
    faulty = run_deploy(demo_conf())

    assert faulty.state == "success", faulty.states
    # Absorbed by the AWS clients' retries, not by task retries.
    assert {ti.task_id: ti.try_number for ti in faulty.dag_run.get_task_instances()} == {
        ti.task_id: 1 for ti in faulty.dag_run.get_task_instances()
    }
    assert count_resources(local_aws, SCIENTIST_ACCOUNT) == expected
    served = set(lifecycle.injected)
    missing = [(op, fault) for op in operations for fault in FAULTS if (op, fault) not in served]
    assert missing == []
