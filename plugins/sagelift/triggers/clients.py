"""Clients shared by the triggers of one event loop: one per (loop, connection, region, service).

A triggerer runs hundreds or thousands of deferred waits on one event loop. Made per trigger, an
aiobotocore client costs about 0.75 MB (its service model copy, endpoint resolver and HTTP connector)
and tens of milliseconds of CPU on the loop, so 1,000 training waits held 2,000 clients and took longer
than a poll interval to start. One client serves any number of concurrent calls (aiohttp pools its
connections), so a trigger leases one here: the first lease of a key makes it, later ones share it, and
the release of the last lease closes it. A client belongs to the loop that made it (so does its aiohttp
session), hence one per loop: ``asyncio.run`` in a worker gets its own and closes it on the way out.

A shared client keeps what it was made with: its credentials renew by themselves (the role chain's
refreshable credentials, sagelift.steps.role_chain), and an edited connection is read again once the
last trigger using it has ended.

``Pace`` spaces the calls that every lease of a client makes to one operation (CloudWatch Logs' read
calls have per-account quotas of a few calls per second; see sagelift.triggers.logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sagelift.hooks.kfp import KubeflowPipelinesHook


@dataclass
class _Opened:
    value: Any
    close: Callable[[], Awaitable[None]]


@dataclass(eq=False)
class _Entry:
    opening: asyncio.Future[_Opened]
    leases: int = 0


class _SharedPerLoop:
    """Reference-counted resources per (event loop, key); see the module docstring."""

    def __init__(self) -> None:
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Entry]] = (
            weakref.WeakKeyDictionary()
        )
        self._guard = threading.Lock()  # the loops' table; each loop's own entries are touched by it only
        self._closing: set[asyncio.Task[None]] = set()

    def open_keys(self) -> list[Hashable]:
        """The keys with a resource open (or opening) on the running loop."""
        return list(self._entries())

    def _entries(self) -> dict[Hashable, _Entry]:
        loop = asyncio.get_running_loop()
        with self._guard:
            return self._loops.setdefault(loop, {})

    @contextlib.asynccontextmanager
    async def lease(self, key: Hashable, open_: Callable[[], Awaitable[_Opened]]) -> AsyncIterator[Any]:
        entries = self._entries()
        entry = entries.get(key)
        if entry is not None and entry.opening.done() and _failed(entry.opening):
            del entries[key]  # a failed opening is tried again, not shared by later leases
            entry = None
        if entry is None:
            entry = entries[key] = _Entry(asyncio.ensure_future(open_()))
        entry.leases += 1
        try:
            # shield: a lease cancelled while the resource opens must not cancel it for the others
            opened = await asyncio.shield(entry.opening)
            yield opened.value
        finally:
            entry.leases -= 1
            if entry.leases == 0:
                if entries.get(key) is entry:
                    del entries[key]
                closing = asyncio.ensure_future(_close(entry.opening))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
                await asyncio.shield(closing)  # a cancelled releaser still gets the resource closed


def _failed(future: asyncio.Future[Any]) -> bool:
    return future.cancelled() or future.exception() is not None


async def _close(opening: asyncio.Future[_Opened]) -> None:
    try:
        opened = await opening
    except Exception:  # it never opened: nothing to close (its leases got the error)
        return
    await opened.close()


_SHARED = _SharedPerLoop()


def open_keys() -> list[Hashable]:
    """What is open on the running loop: ``("aws", service, conn id, region, ...)``, ``("kfp", conn id)``."""
    return _SHARED.open_keys()


class Abandoned(Exception):
    """A call given up before its turn came (see ``Pace.call``)."""


@dataclass(eq=False)
class _Call:
    ended: float | None = None  # loop time; None while the call is in flight


class Pace:
    """At most ``per_second`` calls in any one-second window; urgent calls go first, then in order.

    ``async with pace.call():`` waits for the caller's turn, and the call counts until one window after
    it has *ended*: a call delayed on its way out (a busy event loop, a slow network) cannot land in the
    same second at the server as the ones after it. A caller cancelled while waiting gives up its place.
    A pace belongs to one event loop (it is a shared client's).
    """

    def __init__(self, per_second: int, window: float = 1.0) -> None:
        if per_second < 1:
            raise ValueError("per_second must be at least 1")
        self.per_second = per_second
        self.window = window
        self._calls: list[_Call] = []
        self._queue: list[tuple[int, int, asyncio.Future[_Call]]] = []
        self._order = itertools.count()
        self._dispatcher: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, turn in self._queue if not turn.done())

    def _next_start(self, now: float) -> float | None:
        """Now, a later time, or None: when a call in flight ends."""
        self._calls = [c for c in self._calls if c.ended is None or c.ended > now - self.window]
        if len(self._calls) < self.per_second:
            return now
        ended = [c.ended for c in self._calls if c.ended is not None]
        return min(ended) + self.window if ended else None

    @contextlib.asynccontextmanager
    async def call(self, *, urgent: bool = False, unless: asyncio.Event | None = None) -> AsyncIterator[None]:
        """Wait for the turn, then count the call made in the block.

        ``unless``: when this event is set before the turn comes, give up the place and raise
        ``Abandoned`` (a call already under way is never abandoned).
        """
        loop = asyncio.get_running_loop()
        counted = await self._turn(loop, urgent, unless)
        try:
            yield
        finally:
            counted.ended = loop.time()
            self._ended.set()

    async def _turn(
        self, loop: asyncio.AbstractEventLoop, urgent: bool, unless: asyncio.Event | None
    ) -> _Call:
        if unless is not None and unless.is_set():
            raise Abandoned
        now = loop.time()
        if not self._queue and self._next_start(now) == now:
            counted = _Call()
            self._calls.append(counted)
            return counted
        turn: asyncio.Future[_Call] = loop.create_future()
        heapq.heappush(self._queue, (0 if urgent else 1, next(self._order), turn))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch())
        try:
            if unless is None:
                return await turn
            given_up = asyncio.ensure_future(unless.wait())
            either: set[asyncio.Future[Any]] = {turn, given_up}
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                given_up.cancel()
            if not turn.done():
                turn.cancel()
                raise Abandoned
            return turn.result()
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # given a place just as it was cancelled
                turn.result().ended = loop.time()
            raise

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            now = loop.time()
            start = self._next_start(now)
            if start is None or start > now:
                self._ended.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._ended.wait(), None if start is None else start - now)
                continue
            _, _, turn = heapq.heappop(self._queue)
            if not turn.done():
                counted = _Call()
                self._calls.append(counted)
                turn.set_result(counted)


@dataclass(eq=False)
class SharedAwsClient:
    """A leased aiobotocore client, with the waiters and paces of everyone who shares it."""

    client: Any
    hook: Any  # the AwsBaseHook that made the client; its get_waiter reads the provider's waiter JSON
    _waiters: dict[str, Any] = field(default_factory=dict)
    _paces: dict[str, Pace] = field(default_factory=dict)

    def waiter(self, name: str, config_overrides: dict[str, Any] | None = None) -> Any:
        """The provider's (or botocore's) async waiter on this client; one per name when not overridden.

        A waiter keeps no state between ``wait`` calls, so every trigger of the client can use the same.
        """
        if config_overrides:
            return self.hook.get_waiter(
                name, deferrable=True, client=self.client, config_overrides=config_overrides
            )
        if name not in self._waiters:
            self._waiters[name] = self.hook.get_waiter(name, deferrable=True, client=self.client)
        return self._waiters[name]

    def pace(self, operation: str, per_second: Callable[[], int]) -> Pace:
        """The one pace of ``operation`` for every lease of this client, made at its first use."""
        if operation not in self._paces:
            self._paces[operation] = Pace(per_second())
        return self._paces[operation]


def _frozen(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def aws_client(
    service: str,
    *,
    aws_conn_id: str | None,
    region_name: str | None = None,
    verify: bool | str | None = None,
    botocore_config: dict[str, Any] | None = None,
) -> contextlib.AbstractAsyncContextManager[SharedAwsClient]:
    """Lease the loop's client of ``service`` for this connection and region (see the module docstring).

    The client is made as the provider's hooks make theirs (``AwsBaseHook.get_async_conn``), so the
    connection's session factory (the role chain) and botocore config apply.
    """
    key = ("aws", service, aws_conn_id, region_name, _frozen(verify), _frozen(botocore_config))

    async def open_() -> _Opened:
        from sagelift.hooks.caller import AwsHook as AwsBaseHook

        hook = AwsBaseHook(
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            config=botocore_config,
            client_type=service,
        )
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(await hook.get_async_conn())
        return _Opened(SharedAwsClient(client, hook), stack.aclose)

    return _SHARED.lease(key, open_)


def kfp_hook(kfp_conn_id: str) -> contextlib.AbstractAsyncContextManager[KubeflowPipelinesHook]:
    """Lease the loop's Kubeflow Pipelines hook of this connection: one kfp-server-api client for all.

    The hook reads its connection and builds its client on first use (in the caller's thread, as
    ``asyncio.to_thread`` runs it), so errors surface from the first call as they do without sharing.
    Its client is thread-safe for the calls the triggers make (urllib3 pools per host; an OAuth token is
    fetched under a lock).
    """

    async def open_() -> _Opened:
        from sagelift.hooks.kfp import KubeflowPipelinesHook

        hook = KubeflowPipelinesHook(kfp_conn_id=kfp_conn_id)

        async def close() -> None:
            client = hook.__dict__.get("_api_client")
            if client is not None:
                await asyncio.to_thread(_close_kfp_client, client)

        return _Opened(hook, close)

    return _SHARED.lease(("kfp", kfp_conn_id), open_)


def _close_kfp_client(client: Any) -> None:
    client.close()
    client.rest_client.pool_manager.clear()
