"""Benchmark 4: TCP connections opened for 100 sequential token refreshes, per client.

The server counts the connections it accepts. Every client asks for ``SHORT_API`` tokens,
which live one second and so are always found expired: each call makes exactly one refresh
request, which the provider's log confirms. Our clients' clock is moved forward by
:data:`STEP` seconds before each call: a refresh result is handed to callers holding the same
refresh token for ten seconds (the single flight's grace period), which would otherwise
answer the next sequential call without any request.

The async client is measured twice: with every call on one event loop (an ASGI app), and
with a fresh loop per call (``asyncio.run`` per call, as Flask's async views do).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .harness import SHORT_API, Clock, close, make_client, served, sign_in, storage_for

STEP = 11.0
CASES = ("sync", "aio", "aio-fresh-loop", "official")


def _refresh_ours(client: Any, kind: str, clock: Clock, refreshes: int) -> None:
    async def one() -> str | None:
        return await client.getAccessToken(SHORT_API)  # type: ignore[no-any-return]

    for _ in range(refreshes):
        clock.advance(STEP)
        token = client.getAccessToken(SHORT_API) if kind == "sync" else asyncio.run(one())
        assert token


async def _measure(case: str, refreshes: int) -> dict[str, Any]:
    kind = "aio" if case.startswith("aio") else case
    with served() as srv:
        clock = Clock()
        ours = kind != "official"
        client = make_client(kind, srv.url, storage_for(kind), clock=clock if ours else None)
        await sign_in(client, srv, "user-0")
        mark, before = srv.mark(), srv.connections
        started = time.perf_counter()
        if case == "aio":
            for _ in range(refreshes):
                clock.advance(STEP)
                assert await client.getAccessToken(SHORT_API)
        elif case == "official":
            for _ in range(refreshes):
                assert await client.getAccessToken(SHORT_API)
        else:
            await asyncio.to_thread(_refresh_ours, client, case, clock, refreshes)
        elapsed = time.perf_counter() - started
        connections = srv.connections - before
        total_connections = srv.connections
        requests = srv.requests_since(mark)
        await close(kind, client)
    return {
        "refreshes": refreshes,
        "refresh_requests": requests.get("token:refresh_token", 0),
        "other_requests": sum(requests.values()) - requests.get("token:refresh_token", 0),
        "connections": connections,
        "connections_with_sign_in": total_connections,
        "ms_per_refresh": elapsed / refreshes * 1e3,
    }


def run(quick: bool = False) -> dict[str, Any]:
    refreshes = 30 if quick else 100
    return {case: asyncio.run(_measure(case, refreshes)) for case in CASES}
