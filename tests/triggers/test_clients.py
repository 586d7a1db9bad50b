"""Shared clients of the triggerer's event loop, and the pace of calls shared through them."""

from __future__ import annotations

import asyncio
import json

import pytest

from sagelift.steps.role_chain import RoleChainError
from sagelift.triggers.clients import Abandoned, Pace, aws_client, kfp_hook, open_keys
from sagelift.triggers.kfp import KubeflowPipelinesRunCompleteTrigger
from tests.support.kfp_api import KfpApiDouble
from tests.support.local_aws import REGION, SCIENTIST_ACCOUNT
from tests.support.scenario import Scenario, role_arn
from tests.support.task_context import use_scientist_keys
from tests.triggers.conftest import most_in_one_second


def test_leases_of_one_loop_share_a_client_per_connection_region_and_service(
    local_aws, monkeypatch, async_aws
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)

    async def leases() -> tuple[set[int], set[int], set[int], set[int]]:
        async def one(service: str, region: str) -> int:
            async with aws_client(service, aws_conn_id=conn_id, region_name=region) as shared:
                await asyncio.sleep(0.05)  # the leases overlap, as waits do
                return id(shared.client)

        sagemaker = [one("sagemaker", REGION) for _ in range(20)]
        logs = [one("logs", REGION) for _ in range(20)]
        elsewhere = [one("sagemaker", "eu-west-1") for _ in range(5)]
        ids = await asyncio.gather(*sagemaker, *logs, *elsewhere)
        return set(ids[:20]), set(ids[20:40]), set(ids[40:]), set(open_keys())

    sagemaker, logs, elsewhere, still_open = asyncio.run(leases())

    assert (len(sagemaker), len(logs), len(elsewhere)) == (1, 1, 1)
    assert len(sagemaker | logs | elsewhere) == 3
    assert sorted(async_aws.made) == ["logs", "sagemaker", "sagemaker"]
    assert async_aws.closed == 3 and still_open == set()  # the last lease of each closed it


def test_the_last_release_closes_the_client_and_the_next_lease_makes_a_new_one(
    local_aws, monkeypatch, async_aws
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)

    async def one_after_another() -> None:
        for _ in range(2):
            async with aws_client("sagemaker", aws_conn_id=conn_id, region_name=REGION) as shared:
                await shared.client.list_training_jobs()
            assert open_keys() == []

    asyncio.run(one_after_another())

    assert async_aws.made == ["sagemaker", "sagemaker"] and async_aws.closed == 2
    # Each event loop has its own clients (an aiohttp session belongs to one loop).
    asyncio.run(one_after_another())
    assert len(async_aws.made) == 4 and async_aws.closed == 4


def test_a_lease_cancelled_while_the_client_opens_leaves_it_open_for_the_others(
    local_aws, monkeypatch, async_aws
):
    conn_id = use_scientist_keys(local_aws, monkeypatch)

    async def scene() -> int:
        async def lease(hold: float) -> int:
            async with aws_client("sagemaker", aws_conn_id=conn_id, region_name=REGION) as shared:
                response = await shared.client.list_training_jobs()
                await asyncio.sleep(hold)
                return int(response["ResponseMetadata"]["HTTPStatusCode"])

        first = asyncio.create_task(lease(0))
        await asyncio.sleep(0)  # the first lease has started opening the client
        second = asyncio.create_task(lease(0))
        first.cancel()  # e.g. the user marked the first deferred task failed
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(scene()) == 200
    assert async_aws.made == ["sagemaker"] and async_aws.closed == 1


def test_a_client_that_could_not_be_made_is_made_again_by_the_next_lease(local_aws, monkeypatch, async_aws):
    scenario = Scenario(local_aws).build()
    for key, value in scenario.airflow_env().items():
        monkeypatch.setenv(key, value)
    connection = scenario.connection()
    broken = {
        **connection,
        "extra": {**connection["extra"], "role_arn": role_arn(SCIENTIST_ACCOUNT, "no-such")},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SAGELIFT_AWS_FLAKY", json.dumps(broken))

    async def lease() -> int:
        async with aws_client("sagemaker", aws_conn_id="sagelift_aws_flaky", region_name=REGION) as shared:
            response = await shared.client.list_training_jobs()
            return int(response["ResponseMetadata"]["HTTPStatusCode"])

    async def scene() -> list[object]:
        failed = await asyncio.gather(lease(), lease(), return_exceptions=True)
        monkeypatch.setenv("AIRFLOW_CONN_SAGELIFT_AWS_FLAKY", json.dumps(connection))  # fixed meanwhile
        return [*failed, await lease()]

    first, second, third = asyncio.run(scene())

    assert isinstance(first, RoleChainError) and first is second  # one attempt, its error for both
    assert "no-such" in str(first)
    assert third == 200


def test_kfp_waits_of_one_connection_share_one_client_and_one_oauth_token(monkeypatch):
    with KfpApiDouble(oauth_clients={"sagelift": "s3cret"}) as kfp:
        monkeypatch.setenv(
            "AIRFLOW_CONN_KFP_SHARED",
            kfp.connection_json(password="s3cret", token_url=kfp.token_url, client_id="sagelift"),
        )
        kfp.set_run_outcome("SUCCEEDED", after_polls=3)
        run_ids = [_kfp_run(kfp, i) for i in range(12)]
        tokens_before = len(kfp.calls_to("POST", "/oauth/token"))

        async def waits() -> list[str]:
            triggers = [
                KubeflowPipelinesRunCompleteTrigger(
                    run_id=run_id, kfp_conn_id="kfp_shared", poll_interval=0.05
                )
                for run_id in run_ids
            ]
            events = await asyncio.gather(*(_first_event(t) for t in triggers))
            assert open_keys() == []
            return [e["status"] for e in events]

        statuses = asyncio.run(waits())

        assert statuses == ["success"] * 12
        # One client for the twelve waits, so one token (an OAuth grant per wait is what sharing saves).
        assert len(kfp.calls_to("POST", "/oauth/token")) - tokens_before == 1
        assert all(len(kfp.calls_to("GET", f"/runs/{run_id}")) == 3 for run_id in run_ids)


def test_a_kfp_connection_that_is_wrong_fails_each_wait_with_its_message(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_KFP_NOHOST", json.dumps({"conn_type": "kubeflow_pipelines"}))

    async def waits() -> list[dict[str, object]]:
        async with kfp_hook("kfp_nohost"):  # the shared hook itself opens; its first call fails
            pass
        triggers = [
            KubeflowPipelinesRunCompleteTrigger(run_id=f"run-{i}", kfp_conn_id="kfp_nohost") for i in range(3)
        ]
        return list(await asyncio.gather(*(_first_event(t) for t in triggers)))

    events = asyncio.run(waits())

    assert [e["status"] for e in events] == ["error"] * 3
    assert all("Connection 'kfp_nohost' has no host" in str(e["message"]) for e in events)


def _kfp_run(kfp: KfpApiDouble, index: int) -> str:
    import requests

    spec = {"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}}, "schemaVersion": "2.1.0"}
    token = requests.post(
        kfp.token_url, data={"grant_type": "client_credentials"}, auth=("sagelift", "s3cret")
    )
    response = requests.post(
        f"{kfp.url}/apis/v2beta1/runs",
        json={"display_name": f"run-{index}", "pipeline_spec": spec},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["run_id"])


async def _first_event(trigger: KubeflowPipelinesRunCompleteTrigger) -> dict[str, object]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


# --- the pace ---------------------------------------------------------------------------------------


def test_a_pace_lets_at_most_its_rate_of_calls_start_in_any_window():
    window = 0.2

    async def scene() -> list[float]:
        pace = Pace(3, window=window)
        loop = asyncio.get_running_loop()
        started: list[float] = []

        async def call() -> None:
            async with pace.call():
                started.append(loop.time())

        await asyncio.gather(*(call() for _ in range(12)))
        return started

    started = asyncio.run(scene())

    assert len(started) == 12
    assert most_in_one_second(started, window) == 3
    assert max(started) - min(started) >= 3 * window * 0.9  # 12 calls at 3 per window: 4 windows


def test_a_call_counts_until_a_window_after_it_ended():
    window = 0.2

    async def scene() -> tuple[float, float]:
        pace = Pace(1, window=window)
        loop = asyncio.get_running_loop()
        async with pace.call():
            await asyncio.sleep(0.3)  # a slow call, e.g. delayed on its way out
        ended = loop.time()
        async with pace.call():
            return ended, loop.time()

    ended, next_started = asyncio.run(scene())

    assert next_started - ended >= window * 0.95


def test_urgent_calls_go_first_and_cancelled_ones_give_up_their_place():
    async def scene() -> list[str]:
        pace = Pace(1, window=0.05)
        order: list[str] = []

        async def call(name: str, urgent: bool = False) -> None:
            async with pace.call(urgent=urgent):
                order.append(name)

        async with pace.call():  # takes the one place: the others queue
            routine = [asyncio.create_task(call(f"routine-{i}")) for i in range(3)]
            gone = asyncio.create_task(call("cancelled"))
            await asyncio.sleep(0)
            final = asyncio.create_task(call("final read", urgent=True))
            await asyncio.sleep(0)
            gone.cancel()
        await asyncio.gather(*routine, final)
        return order

    assert asyncio.run(scene()) == ["final read", "routine-0", "routine-1", "routine-2"]


def test_a_call_still_waiting_for_its_turn_is_given_up_when_its_wait_ends():
    async def scene() -> int:
        pace = Pace(1, window=60.0)
        ended = asyncio.Event()
        async with pace.call():  # the window's one call
            pass

        async def routine_read() -> None:
            async with pace.call(unless=ended):
                raise AssertionError("no turn comes within the window")

        waiting = asyncio.create_task(routine_read())
        await asyncio.sleep(0.05)
        ended.set()  # e.g. the job ended: the final read goes next
        with pytest.raises(Abandoned):
            await waiting
        return pace.waiting

    assert asyncio.run(scene()) == 0
