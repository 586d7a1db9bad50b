"""One role chain per connection and process: sessions share each hop's credentials, renewals included.

What the triggerer does with hundreds of deferred waits of one account (each builds its own session from
the same connection), against the local AWS; the whole-run behaviour of the chain is in
tests/e2e/test_role_chain.py.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from tests.support.botocore_validation import recording_aws_calls
from tests.support.local_aws import MASTER_ACCOUNT, REGION, SCIENTIST_ACCOUNT, trust_policy
from tests.support.scenario import EXECUTION_ROLE, MASTER_ROLE, Scenario, role_arn

CONN_ID = f"sagelift_aws_{SCIENTIST_ACCOUNT}"
CHAIN = [role_arn(MASTER_ACCOUNT, MASTER_ROLE), role_arn(SCIENTIST_ACCOUNT, EXECUTION_ROLE)]


@pytest.fixture
def scenario(local_aws, monkeypatch) -> Scenario:
    """The three accounts with a fresh runner key, so no chain of an earlier test can match."""
    world = Scenario(local_aws).build()
    for key, value in world.airflow_env().items():
        monkeypatch.setenv(key, value)
    return world


def _use_connection(monkeypatch, scenario: Scenario, account: str = SCIENTIST_ACCOUNT, **extra) -> str:
    connection = scenario.connection(account)
    connection["extra"].update(extra)
    monkeypatch.setenv(f"AIRFLOW_CONN_SAGELIFT_AWS_{account}", json.dumps(connection))
    return f"sagelift_aws_{account}"


def _assumed(calls) -> list[str]:
    return [c.params["RoleArn"] for c in calls if c.operation == "AssumeRole"]


def test_concurrent_deferred_waits_of_one_account_assume_each_hop_once(scenario):
    """Thirty waits on one event loop, each with its own hook and client, as triggers of one triggerer."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    async def one_wait() -> int:
        hook = SageMakerHook(aws_conn_id=CONN_ID, region_name=REGION)
        async with await hook.get_async_conn() as client:
            response = await client.list_training_jobs()
        return int(response["ResponseMetadata"]["HTTPStatusCode"])

    async def waits() -> list[int]:
        return list(await asyncio.gather(*(one_wait() for _ in range(30))))

    with recording_aws_calls() as calls:
        statuses = asyncio.run(waits())

    assert statuses == [200] * 30
    assert _assumed(calls) == CHAIN


def test_concurrent_worker_threads_of_one_account_assume_each_hop_once(scenario):
    """Sync hooks in many threads at once (as asyncio.to_thread runs them) wait for one AssumeRole per hop."""
    from airflow.providers.amazon.aws.hooks.sts import StsHook

    def identity(_: int) -> str:
        client = StsHook(aws_conn_id=CONN_ID, region_name=REGION).conn
        return str(client.get_caller_identity()["Arn"])

    with recording_aws_calls() as calls, ThreadPoolExecutor(max_workers=12) as pool:
        arns = set(pool.map(identity, range(24)))

    assert len(arns) == 1
    assert f":assumed-role/{EXECUTION_ROLE}/" in arns.pop()
    assert _assumed(calls) == CHAIN


def test_expired_chain_is_renewed_once_for_all_waits_and_off_the_event_loop(scenario, monkeypatch):
    """Fifteen-minute sessions, the clock moved past their expiry: both hops are assumed again, once in all,
    and never on the event loop's thread (a blocking STS call there would stall every trigger)."""
    import botocore.client
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from freezegun import freeze_time

    conn_id = _use_connection(monkeypatch, scenario, session_duration_seconds=900)
    threads: list[int] = []
    original = botocore.client.BaseClient._make_api_call

    def call(client, operation, params):
        if operation == "AssumeRole":
            threads.append(threading.get_ident())
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)

    async def waits_across_expiry(clock) -> tuple[list[int], int]:
        hooks = [SageMakerHook(aws_conn_id=conn_id, region_name=REGION) for _ in range(10)]
        contexts = [await hook.get_async_conn() for hook in hooks]
        clients = [await context.__aenter__() for context in contexts]
        try:
            await asyncio.gather(*(client.list_training_jobs() for client in clients))
            clock.tick(datetime.timedelta(minutes=20))  # past the expiry, as during a long deferral
            after = await asyncio.gather(*(client.list_training_jobs() for client in clients))
        finally:
            for context in contexts:
                await context.__aexit__(None, None, None)
        return [r["ResponseMetadata"]["HTTPStatusCode"] for r in after], threading.get_ident()

    with freeze_time(datetime.datetime.now(datetime.UTC)) as clock, recording_aws_calls() as calls:
        statuses, loop_thread = asyncio.run(waits_across_expiry(clock))

    assert statuses == [200] * 10
    assert sorted(_assumed(calls)) == sorted([*CHAIN, *CHAIN])  # at creation, once more after expiry
    assert {c.params["DurationSeconds"] for c in calls if c.operation == "AssumeRole"} == {900}
    assert len(threads) == 4 and loop_thread not in threads


def test_fifteen_minute_sessions_are_not_renewed_on_every_call(scenario, monkeypatch):
    """botocore renews 15 minutes before expiry; a 15-minute session must not be re-assumed per call."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    conn_id = _use_connection(monkeypatch, scenario, session_duration_seconds=900)
    with recording_aws_calls() as calls:
        client = SageMakerHook(aws_conn_id=conn_id, region_name=REGION).conn
        for _ in range(5):
            client.list_training_jobs()

    assert _assumed(calls) == CHAIN


def test_connections_of_different_accounts_do_not_share_credentials(scenario, local_aws, monkeypatch):
    from airflow.providers.amazon.aws.hooks.sts import StsHook

    other = "444444444444"
    local_aws.client("iam", other).create_role(
        RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument=trust_policy(CHAIN[0])
    )
    other_conn = _use_connection(monkeypatch, scenario, other)

    with recording_aws_calls() as calls:
        first = StsHook(aws_conn_id=CONN_ID, region_name=REGION).conn.get_caller_identity()
        second = StsHook(aws_conn_id=other_conn, region_name=REGION).conn.get_caller_identity()
        first_again = StsHook(aws_conn_id=CONN_ID, region_name=REGION).conn.get_caller_identity()

    assert (first["Account"], second["Account"], first_again["Account"]) == (
        SCIENTIST_ACCOUNT,
        other,
        SCIENTIST_ACCOUNT,
    )
    assert sorted(_assumed(calls)) == sorted([*CHAIN, CHAIN[0], role_arn(other, EXECUTION_ROLE)])


def test_each_run_keeps_its_own_role_session_name(scenario):
    """Sessions of two runs in one process are not shared: CloudTrail traces each call to its run."""
    from airflow.providers.amazon.aws.hooks.sts import StsHook
    from airflow.sdk.execution_time.context import set_current_context

    from sagelift.steps.role_chain import derive_session_name

    names = []
    for run_id in ("manual__2026-11-29T10:00:00+00:00", "manual__2026-11-29T11:00:00+00:00"):
        with set_current_context({"dag_run": SimpleNamespace(dag_id="sagemaker_deploy", run_id=run_id)}):
            arn = StsHook(aws_conn_id=CONN_ID, region_name=REGION).conn.get_caller_identity()["Arn"]
        names.append((arn.rsplit("/", 1)[-1], derive_session_name("sagemaker_deploy", run_id, "")))

    assert [actual for actual, _ in names] == [expected for _, expected in names]
    assert names[0][0] != names[1][0]


def test_a_refused_early_renewal_keeps_the_valid_credentials_until_they_must_be_renewed(
    scenario, local_aws, monkeypatch
):
    """STS refusing a renewal 12 minutes before expiry does not fail calls; at the last minutes it does."""
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
    from freezegun import freeze_time

    from sagelift.steps.role_chain import RoleChainError

    with freeze_time(datetime.datetime.now(datetime.UTC)) as clock:
        client = SageMakerHook(aws_conn_id=CONN_ID, region_name=REGION).conn
        client.list_training_jobs()
        local_aws.client("iam", SCIENTIST_ACCOUNT).update_assume_role_policy(
            RoleName=EXECUTION_ROLE, PolicyDocument=trust_policy("arn:aws:iam::999999999999:root")
        )
        clock.tick(datetime.timedelta(minutes=48))  # 12 minutes left: renewal is advised, not required
        assert client.list_training_jobs()["ResponseMetadata"]["HTTPStatusCode"] == 200
        clock.tick(datetime.timedelta(minutes=5))  # 7 minutes left: renewal is required
        with pytest.raises(RoleChainError, match="hop 2 of 2"):
            client.list_training_jobs()


def test_deployments_configured_with_the_old_path_get_the_same_factory():
    """`[aws] session_factory = sagelift.hooks.sts.RoleChainSessionFactory` predates the rename."""
    import importlib

    old = importlib.import_module("sagelift.hooks.sts")
    new = importlib.import_module("sagelift.hooks.session_factory")
    assert old.RoleChainSessionFactory is new.RoleChainSessionFactory
