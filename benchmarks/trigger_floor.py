"""The floor of the triggerer benchmarks: the least a deferred wait can do.

``StatusReadFloorTrigger`` reads one resource's status once per interval, through one client per event
loop made once and never closed (a SageMaker aiobotocore client from the same role-chained connection,
or the KFP hook's client in a thread), and does nothing else: no waiter, no log, no event. Run by the
same Airflow trigger runner as the product's triggers, it measures what the runner, the loop and the
reads themselves cost, so the benchmarks print the product's figures as ratios to it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

Reader = Callable[[str], Awaitable[Any]]
_READERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], asyncio.Future[Reader]]]
_READERS = weakref.WeakKeyDictionary()


class StatusReadFloorTrigger(BaseTrigger):
    """Reads ``name``'s status every ``interval`` seconds until cancelled; ``kind``: training, endpoint, kfp."""

    def __init__(self, kind: str, name: str, conn_id: str, region: str, interval: float) -> None:
        super().__init__()
        self.kind, self.name, self.conn_id, self.region, self.interval = kind, name, conn_id, region, interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "kind": self.kind,
                "name": self.name,
                "conn_id": self.conn_id,
                "region": self.region,
                "interval": self.interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        read = await _reader(self.kind, self.conn_id, self.region)
        while True:
            await read(self.name)
            await asyncio.sleep(self.interval)
        yield TriggerEvent({})  # never reached: the floor waits until it is cancelled


async def _reader(kind: str, conn_id: str, region: str) -> Reader:
    loop = asyncio.get_running_loop()
    readers = _READERS.setdefault(loop, {})
    key = (kind, conn_id)
    if key not in readers:
        readers[key] = asyncio.ensure_future(_make_reader(kind, conn_id, region))
    return await asyncio.shield(readers[key])


async def _make_reader(kind: str, conn_id: str, region: str) -> Reader:
    if kind == "kfp":
        from sagelift.hooks.kfp import KubeflowPipelinesHook

        hook = KubeflowPipelinesHook(kfp_conn_id=conn_id)
        return lambda run_id: asyncio.to_thread(hook.get_run, run_id)
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    hook = AwsBaseHook(aws_conn_id=conn_id, region_name=region, client_type="sagemaker")
    client = await (await hook.get_async_conn()).__aenter__()
    if kind == "training":
        return lambda name: client.describe_training_job(TrainingJobName=name)
    return lambda name: client.describe_endpoint(EndpointName=name)
