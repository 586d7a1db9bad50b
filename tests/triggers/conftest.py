"""What the triggers' tests watch: every async AWS call (when, which, with what) and every client."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class AsyncAws:
    """The async AWS calls made in this process (start times, monotonic) and the clients made/closed."""

    calls: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    made: list[str] = field(default_factory=list)
    closed: int = 0

    def of(self, operation: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, params) for at, name, params in self.calls if name == operation]

    def times(self, operation: str, **matching: Any) -> list[float]:
        return [
            at for at, params in self.of(operation) if all(params.get(k) == v for k, v in matching.items())
        ]


def most_in_one_second(times: list[float], window: float = 1.0) -> int:
    ordered, most, start = sorted(times), 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


@pytest.fixture
def async_aws(monkeypatch) -> AsyncAws:
    from aiobotocore.client import AioBaseClient
    from aiobotocore.session import AioSession

    seen = AsyncAws()
    make_api_call, create_client, close = (
        AioBaseClient._make_api_call,
        AioSession._create_client,
        AioBaseClient.__aexit__,
    )

    async def call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        seen.calls.append((time.monotonic(), operation, dict(params)))
        return await make_api_call(self, operation, params)

    async def create(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        seen.made.append(service_name)
        return await create_client(self, service_name, *args, **kwargs)

    async def closing(self: Any, *exc: Any) -> Any:
        seen.closed += 1
        return await close(self, *exc)

    monkeypatch.setattr(AioBaseClient, "_make_api_call", call)
    monkeypatch.setattr(AioSession, "_create_client", create)
    monkeypatch.setattr(AioBaseClient, "__aexit__", closing)
    return seen
