"""A coordinator passed to ``Logto`` carries the single flight: both clients claim, wait,
publish and end through it (refreshes, callbacks, and the shared discovery and JWKS
fetches), and what crosses it is text and digests, never live objects or tokens (the seam a
coordinator shared between processes plugs into)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider
from logto_core.runtime import Runtime
from logto_core.singleflight import Done, Follow, Lead, Ticket
from logto_core.testing import ACCESS_TOKEN_TTL, Fault

from .conftest import API, Clock
from .test_app_sessions import (
    REQUESTS,
    RecordStorage,
    ServerSideRecord,
    make_logto,
    refreshes,
    sign_in,
)
from .test_concurrency import run_threads


class Recording:
    """What a coordinator was asked, checked as it is asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.published: list[str] = []

    def saw(self, method: str, key: str) -> None:
        assert isinstance(key, str) and key.split(":", 1)[0] in {"grant", "callback", "fetch"}
        assert len(key.split(":", 1)[1]) == 64  # a SHA-256 digest, not a token
        self.calls.append((method, key))

    def saw_result(self, result: object) -> None:
        assert isinstance(result, str)
        json.loads(result)  # text another process can read
        self.published.append(result)

    def fetched(self) -> set[str]:
        """The keys of the fetches published (each a URL's digest)."""
        return {key for method, key in self.calls if method == "publish" and "fetch:" in key}

    def methods(self, *kinds: str) -> list[str]:
        """The methods called for keys of these kinds (``grant``, ``callback``, ``fetch``)."""
        return [method for method, key in self.calls if key.split(":", 1)[0] in kinds]


class RecordingCoordinator(sync.MemoryCoordinator):
    def __init__(self, record: Recording, runtime: Any) -> None:
        super().__init__(runtime)
        self.record = record

    def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
        self.record.saw("claim", key)
        ticket = super().claim(key, lease=lease, supersede=supersede)
        if isinstance(ticket, Done):
            self.record.saw_result(ticket.result)
        return ticket

    def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None:
        self.record.saw("publish", key)
        self.record.saw_result(result)
        super().publish(key, lead, result, keep=keep)

    def wait(self, follow: Follow[Any], timeout: float) -> str | None:
        result = super().wait(follow, timeout)
        self.record.saw_result(result)
        return result

    def end(self, key: str) -> None:
        self.record.saw("end", key)
        super().end(key)


class AsyncRecordingCoordinator(aio.MemoryCoordinator):
    def __init__(self, record: Recording, runtime: Any) -> None:
        super().__init__(runtime)
        self.record = record

    async def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
        self.record.saw("claim", key)
        ticket = await super().claim(key, lease=lease, supersede=supersede)
        if isinstance(ticket, Done):
            self.record.saw_result(ticket.result)
        return ticket

    async def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None:
        self.record.saw("publish", key)
        self.record.saw_result(result)
        await super().publish(key, lead, result, keep=keep)

    async def wait(self, follow: Follow[Any], timeout: float) -> str | None:
        result = await super().wait(follow, timeout)
        self.record.saw_result(result)
        return result

    async def end(self, key: str) -> None:
        self.record.saw("end", key)
        await super().end(key)


def test_the_sync_client_coordinates_through_the_given_coordinator(
    served: ServedProvider, clock: Clock
) -> None:
    record = Recording()
    logto = make_logto(
        "sync", served, clock, coordinator=RecordingCoordinator(record, Runtime(clock=clock))
    )
    storage = ServerSideRecord()
    sign_in(logto, served, RecordStorage(storage))
    clock.advance(ACCESS_TOKEN_TTL + 1)
    served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.3))
    tokens = run_threads(
        REQUESTS, lambda: logto.session(RecordStorage(storage)).getAccessToken(API)
    )
    assert refreshes(served) == 1 and len(set(tokens)) == 1 and tokens[0] is not None
    methods = record.methods("grant", "callback")
    assert methods.count("claim") >= REQUESTS + 1  # the callback, then every request
    assert methods.count("publish") == 2  # one code exchange, one refresh
    assert len(record.fetched()) == 2  # discovery and the key set, through it too
    logto.session(RecordStorage(storage)).signOut()
    assert record.calls[-1][0] == "end"
    assert all(token not in "".join(k for _, k in record.calls) for token in tokens if token)


def test_the_async_client_coordinates_through_the_given_coordinator(
    served: ServedProvider, clock: Clock
) -> None:
    record = Recording()
    logto = make_logto(
        "aio", served, clock, coordinator=AsyncRecordingCoordinator(record, Runtime(clock=clock))
    )
    storage = ServerSideRecord()
    sign_in(logto, served, RecordStorage(storage))
    clock.advance(ACCESS_TOKEN_TTL + 1)
    served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.3))

    async def requests() -> list[str | None]:
        return list(
            await asyncio.gather(
                *(logto.session(RecordStorage(storage)).getAccessToken(API) for _ in range(20))
            )
        )

    tokens = asyncio.run(requests())
    assert refreshes(served) == 1 and len(set(tokens)) == 1 and tokens[0] is not None
    methods = record.methods("grant", "callback")
    assert methods.count("publish") == 2
    assert len(record.fetched()) == 2
    asyncio.run(logto.session(RecordStorage(storage)).signOut())
    assert record.calls[-1][0] == "end"
