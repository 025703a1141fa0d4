"""Benchmark 5: N concurrent ``getAccessToken`` calls of one session whose token has expired.

Every caller asks for ``SHORT_API`` (tokens live one second, so they are always expired).
Ours should make exactly one refresh whatever N is (the single flight), the official SDK
makes one per caller. The async clients run N tasks on one loop; the sync client runs N
threads released together by a barrier. Latency is each caller's own wall time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from .harness import (
    SHORT_API,
    Clock,
    close,
    make_client,
    percentile,
    served,
    sign_in,
    storage_for,
)

CASES = ("sync", "aio", "official")
WAVE_GAP = 11.0
"""Our clients' clock moves this far between waves, past the single flight's grace period."""


async def _async_wave(client: Any, n: int) -> tuple[list[float], list[Any]]:
    async def one() -> tuple[float, Any]:
        started = time.perf_counter()
        try:
            result: Any = await client.getAccessToken(SHORT_API)
        except Exception as error:  # counted, not raised: the official SDK may fail here
            result = error
        return time.perf_counter() - started, result

    pairs = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), timeout=120)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _thread_wave(client: Any, n: int) -> tuple[list[float], list[Any]]:
    latencies: list[float] = [0.0] * n
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            results[i] = client.getAccessToken(SHORT_API)
        except Exception as error:
            results[i] = error
        latencies[i] = time.perf_counter() - started

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return latencies, results


async def _measure(case: str, sizes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    with served() as srv:
        clock = Clock()
        ours = case != "official"
        client = make_client(case, srv.url, storage_for(case), clock=clock if ours else None)
        await sign_in(client, srv, "user-0")
        for n in sizes:
            clock.advance(WAVE_GAP)
            mark = srv.mark()
            started = time.perf_counter()
            if case == "sync":
                latencies, results = await asyncio.to_thread(_thread_wave, client, n)
            else:
                latencies, results = await _async_wave(client, n)
            wall = time.perf_counter() - started
            requests = srv.requests_since(mark)
            errors = [r for r in results if isinstance(r, Exception) or r is None]
            tokens = {r for r in results if isinstance(r, str)}
            out[n] = {
                "callers": n,
                "refresh_requests": requests.get("token:refresh_token", 0),
                "errors": len(errors),
                "error_sample": repr(errors[0])[:120] if errors else None,
                "distinct_tokens": len(tokens),
                "wall_ms": wall * 1e3,
                "p50_ms": percentile(latencies, 0.5) * 1e3,
                "p99_ms": percentile(latencies, 0.99) * 1e3,
                "max_ms": max(latencies) * 1e3,
            }
        await close(case, client)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    sizes = (10, 100) if quick else (10, 100, 1000)
    return {case: asyncio.run(_measure(case, sizes)) for case in CASES}
