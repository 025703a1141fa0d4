"""Benchmark 6: sign-in throughput of the async clients, and memory per signed-in session.

Throughput: complete sign-in flows (``signIn``, the browser's approval at the provider, the
callback) at concurrency 1, 10 and 100 on one event loop, every flow with its own session
(a dict chosen through a context variable), against the provider on loopback.

Memory: the serialised size of a signed-in session's storage (after the callback, then with
an API and an organization token cached), and the Python heap that sessions keep alive,
measured with ``tracemalloc`` while a client signs in :data:`MEMORY_SESSIONS` users and
keeps their storages (the provider runs in another process, so only the client side and the
sessions are measured). The growth is reported per 10,000 sessions.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
from typing import Any

from .harness import (
    API,
    CURRENT,
    ORG,
    REDIRECT,
    SHORT_API,
    Clock,
    call,
    close,
    make_client,
    served,
    storage_bytes,
    storage_for,
    user_name,
)

CASES = ("aio", "official")
LEVELS = (1, 10, 100)
MEMORY_SESSIONS = 1000
GRACE = 11.0


async def _flow(client: Any, srv: Any, n: int, session: dict[str, str]) -> None:
    CURRENT.set(session)
    url = await call(client.signIn(REDIRECT))
    callback = srv.approve(url, user_name(n))
    await call(client.handleSignInCallback(callback))


async def _throughput(client: Any, srv: Any, concurrency: int, flows: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    sessions: list[dict[str, str]] = [{} for _ in range(flows)]

    async def bounded(n: int) -> None:
        async with limit:
            await _flow(client, srv, n, sessions[n])

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(bounded(n) for n in range(flows))), timeout=120)
    elapsed = time.perf_counter() - started
    # The official SDK stores "idToken" as a key; this SDK stores one value holding it.
    signed_in = ("idToken" in s or '"idToken"' in s.get("logtoSession", "") for s in sessions)
    assert all(signed_in), "a sign-in did not complete"
    return flows / elapsed


async def _run_throughput(quick: bool) -> dict[str, Any]:
    flows_at = {1: 60, 10: 150, 100: 300} if not quick else {1: 20, 10: 50, 100: 100}
    rounds = 1 if quick else 2
    out: dict[str, Any] = {case: {} for case in CASES}
    async with _Clients() as clients:
        for level in LEVELS:
            samples: dict[str, list[float]] = {case: [] for case in CASES}
            for _ in range(rounds):
                for case in CASES:  # taking turns: background load touches both alike
                    client, srv = clients[case]
                    samples[case].append(await _throughput(client, srv, level, flows_at[level]))
            for case in CASES:
                out[case][level] = {
                    "flows_per_s": max(samples[case]),
                    "median_flows_per_s": statistics.median(samples[case]),
                    "flows": flows_at[level] * rounds,
                }
    for level in LEVELS:
        out["aio"][level]["ratio_vs_official"] = (
            out["aio"][level]["flows_per_s"] / out["official"][level]["flows_per_s"]
        )
    return out


class _Clients:
    """One warm client and one provider per case."""

    async def __aenter__(self) -> dict[str, tuple[Any, Any]]:
        self._servers = {case: served() for case in CASES}
        self._clients: dict[str, tuple[Any, Any]] = {}
        for case in CASES:
            srv = self._servers[case].__enter__()
            client = make_client(case, srv.url, storage_for(case, routed=True))
            await _flow(client, srv, 0, {})  # warm: discovery, keys, connection
            self._clients[case] = (client, srv)
        return self._clients

    async def __aexit__(self, *exc: object) -> None:
        for case, (client, _) in self._clients.items():
            await close(case, client)
        for context in self._servers.values():
            context.__exit__(None, None, None)


async def _session_sizes(case: str) -> dict[str, float]:
    with served() as srv:
        client = make_client(case, srv.url, storage_for(case, routed=True))
        session: dict[str, str] = {}
        await _flow(client, srv, 0, session)
        CURRENT.set(session)
        after_callback = storage_bytes(session)
        assert await call(client.getAccessToken(API))
        assert await call(client.getOrganizationToken(ORG))
        with_tokens = storage_bytes(session)
        await close(case, client)
    return {"after_callback_bytes": after_callback, "with_api_and_org_tokens_bytes": with_tokens}


async def _heap_growth(case: str, sessions: int) -> dict[str, float]:
    ours = case != "official"
    clock = Clock()
    with served() as srv:
        client = make_client(
            case, srv.url, storage_for(case, routed=True), clock=clock if ours else None
        )
        warm: dict[str, str] = {}
        await _flow(client, srv, 0, warm)
        kept: list[dict[str, str]] = [{} for _ in range(sessions)]
        limit = asyncio.Semaphore(50)

        async def one(n: int) -> None:
            async with limit:
                await _flow(client, srv, n, kept[n])
                assert await call(client.getAccessToken(API))

        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        await asyncio.gather(*(one(n) for n in range(sessions)))
        gc.collect()
        burst = tracemalloc.get_traced_memory()[0]
        # Our clients keep each refresh's result for 10 s (the single flight's grace period,
        # at most 1,024 of them): let that time pass, and make one more refresh so that the
        # table is purged, to see what a session costs for as long as it lives.
        clock.advance(GRACE)
        CURRENT.set(warm)
        assert await call(client.getAccessToken(SHORT_API))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        # Our core also memoises decoded sessions and claims in bounded caches (session.py,
        # client.py): measure what they hold, a fixed cost once they are full.
        _clear_core_caches()
        gc.collect()
        without_caches = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        stored = sum(storage_bytes(s) for s in kept)
        await close(case, client)
    growth = after - before
    return {
        "sessions": sessions,
        "burst_growth_bytes_per_session": (burst - before) / sessions,
        "bounded_caches_bytes": after - without_caches,
        "heap_growth_bytes_per_session": growth / sessions,
        "heap_growth_mib_per_10k": growth / sessions * 10_000 / 2**20,
        "stored_bytes_per_session": stored / sessions,
    }


def _clear_core_caches() -> None:
    from logto_core import context as core_context
    from logto_core import session as core_session

    for name, module in (
        ("_decode_cached", core_session),
        ("_id_claims", core_context),
        ("_access_claims", core_context),
    ):
        cache = getattr(module, name, None)
        if cache is not None and hasattr(cache, "cache_clear"):
            cache.cache_clear()


def run(quick: bool = False) -> dict[str, Any]:
    sessions = 300 if quick else MEMORY_SESSIONS
    memory = {
        case: {**asyncio.run(_session_sizes(case)), **asyncio.run(_heap_growth(case, sessions))}
        for case in ("sync", "aio", "official")
    }
    return {"throughput": asyncio.run(_run_throughput(quick)), "memory": memory}
