"""What operator-level tests hand to ``execute()``: a task instance that answers XCom, and a connection.

Not a stand-in for the Task Runner: no templating, no state, no retries. Whole-run behaviour is tested
with dag.test in tests/e2e.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT, LocalAws

SCIENTIST_CONN_ID = f"sagelift_aws_{SCIENTIST_ACCOUNT}"


class FakeTaskInstance:
    """Answers xcom_pull for the upstream task ids and records xcom_push, as the task runner would."""

    def __init__(
        self,
        upstream: dict[str, Any],
        *,
        dag_id: str = "sagemaker_deploy",
        task_id: str = "task",
        run_id: str = "manual__2026-11-29T10:00:00+00:00",
    ) -> None:
        self.upstream = upstream
        self.pushed: dict[str, Any] = {}
        self.dag_id, self.task_id, self.run_id = dag_id, task_id, run_id
        self.map_index, self.try_number, self.start_date = -1, 1, None

    def xcom_pull(self, task_ids: str, key: str = "return_value", **_: Any) -> Any:
        return self.upstream.get(task_ids)

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must serialize: a model object or a session here would be a bug
        self.pushed[key] = value


def use_scientist_keys(
    aws: LocalAws, monkeypatch: pytest.MonkeyPatch, conn_id: str = SCIENTIST_CONN_ID
) -> str:
    """Point ``conn_id`` at the local AWS with keys moto attributes to the scientist account.

    The role chain that normally leads there is assume_role_chain's business, tested in tests/e2e.
    """
    key_id, secret = aws.create_access_key(SCIENTIST_ACCOUNT)
    connection = {
        "conn_type": "aws",
        "login": key_id,
        "password": secret,
        "extra": {"endpoint_url": aws.url, "region_name": REGION},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return conn_id


def step_plan(
    conf: dict[str, Any] | None = None,
    platform: dict[str, Any] | None = None,
    *,
    dag_id: str = "sagemaker_deploy",
    run_id: str = "manual__2026-11-29T10:00:00+00:00",
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A real plan, as validate returns it: the demo conf (with ``conf`` over it) on ``platform``.

    ``params`` then replaces validated parameters as they are, for a step test that needs values
    validate would refuse on its own (a step's defence in depth).
    """
    from sagelift.domain.plan import build_plan
    from tests.support.scenario import demo_conf

    platform = platform or {"region": REGION, "accounts": {SCIENTIST_ACCOUNT: {}}}
    plan = build_plan(demo_conf(**(conf or {})), platform, dag_id, run_id)
    plan["params"].update(params or {})
    return plan


def step_session(conn_id: str = SCIENTIST_CONN_ID) -> dict[str, Any]:
    """Session facts as assume_role_chain returns them, for a connection holding the scientist's keys."""
    role = f"arn:aws:iam::{SCIENTIST_ACCOUNT}:role/sagelift-pipeline-execution"
    return {
        "aws_conn_id": conn_id,
        "region": REGION,
        "account_id": SCIENTIST_ACCOUNT,
        "execution_role_arn": role,
        "caller_arn": f"arn:aws:sts::{SCIENTIST_ACCOUNT}:assumed-role/sagelift-pipeline-execution/test",
        "session_name": "test",
    }
