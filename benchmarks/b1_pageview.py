"""Benchmark 1: the per-request cost of a signed-in page view.

A page view is ``isAuthenticated()`` + ``getIdTokenClaims()`` + ``getAccessToken(API)`` with
the access token already cached: no request should reach the provider. Each client has its
own dict storage, filled by a real sign-in against the test provider on loopback.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Any

from .harness import API, KINDS, close, make_client, served, sign_in, storage_for, user_name


def _sync_loop(client: Any, loops: int) -> float:
    is_authenticated = client.isAuthenticated
    claims = client.getIdTokenClaims
    token = client.getAccessToken
    started = time.perf_counter()
    for _ in range(loops):
        is_authenticated()
        claims()
        token(API)
    return time.perf_counter() - started


async def _async_loop(client: Any, loops: int) -> float:
    is_authenticated = client.isAuthenticated
    claims = client.getIdTokenClaims
    token = client.getAccessToken
    started = time.perf_counter()
    for _ in range(loops):
        is_authenticated()
        claims()
        await token(API)
    return time.perf_counter() - started


def page_view(client: Any, kind: str) -> Any:
    """One page view, for profiling (a coroutine for the async clients)."""
    if kind == "sync":
        client.isAuthenticated()
        client.getIdTokenClaims()
        return client.getAccessToken(API)

    async def view() -> Any:
        client.isAuthenticated()
        client.getIdTokenClaims()
        return await client.getAccessToken(API)

    return view()


async def _measure(kind: str, loops: int, repeats: int) -> dict[str, Any]:
    with served() as srv:
        client = make_client(kind, srv.url, storage_for(kind))
        await sign_in(client, srv, user_name(0))
        token = client.getAccessToken(API)
        token = await token if kind != "sync" else token
        assert token, "no access token after sign-in"
        claims = client.getIdTokenClaims()
        assert claims.sub == user_name(0)
        mark = srv.mark()
        runner = (
            (lambda n: asyncio.sleep(0, _sync_loop(client, n)))
            if kind == "sync"
            else (lambda n: _async_loop(client, n))
        )
        await runner(loops // 10)  # warm-up
        samples = []
        for _ in range(repeats):
            gc.collect()
            samples.append(await runner(loops) / loops)
        requests = sum(srv.requests_since(mark).values())
        await close(kind, client)
    return {
        "best_us": min(samples) * 1e6,
        "median_us": statistics.median(samples) * 1e6,
        "provider_requests": requests,
        "loops": loops,
        "repeats": repeats,
    }


def run(quick: bool = False) -> dict[str, Any]:
    loops, repeats = (500, 3) if quick else (3000, 7)
    results = {kind: asyncio.run(_measure(kind, loops, repeats)) for kind in KINDS}
    official = results["official"]["best_us"]
    for kind in ("sync", "aio"):
        results[kind]["speedup_vs_official"] = official / results[kind]["best_us"]
    return results


async def setup_for_profile(kind: str) -> tuple[Any, Any]:
    """A signed-in client with a cached token, and the server context to close afterwards."""
    context = served()
    srv = context.__enter__()
    client = make_client(kind, srv.url, storage_for(kind))
    await sign_in(client, srv, user_name(0))
    result = client.getAccessToken(API)
    if kind != "sync":
        await result
    return client, context
