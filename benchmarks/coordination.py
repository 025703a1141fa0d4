"""The cost of coordinating through Redis, per request, next to the in-process coordinator.

    .venv/bin/python -m benchmarks.coordination           # about half a minute
    .venv/bin/python -m benchmarks.coordination --quick   # a smoke run
    make bench-coordination

Runs in the project's own ``.venv`` (it needs redis-py and Debian's ``redis-server``, which
it starts on a free loopback port and stops by pid), not in ``.venv-bench``: the official SDK
has no coordinator to compare with. For each client (blocking, asyncio) and each coordinator
(``MemoryCoordinator``, ``RedisCoordinator``), against the test provider on loopback:

* **cached**: ``getAccessToken`` with a fresh token in the session (most page views);
* **refresh**: ``getAccessToken`` with an expired token, one caller (it leads the flight);
* **20 at once**: 20 concurrent ``getAccessToken`` of one expired session (one leads, 19
  follow), timed as the whole wave and counted per request.

Round trips are the coordinator's own calls to Redis (each one ``EVALSHA``), counted in the
coordinator; a lead held longer than 0.5 s adds a renewal every 0.5 s, in the background (none
here), and each process keeps one subscription for the notifications. Latency is the median
of the wall time per call; *added* is Redis minus memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from logto_adapters import aio, redis_coordination, sync
from logto_adapters.testing import ServedProvider, serve_provider
from logto_core.runtime import Runtime
from logto_core.testing import ACCESS_TOKEN_TTL, TestProvider

from .harness import Clock, DictStorage, percentile

APP_ID = "bench-web"
REDIRECT = "http://127.0.0.1:9/callback"
API = "https://api.bench.example"
USER = "user-1"
CONCURRENT = 20
FOREVER = 365 * 24 * 3600.0


class Counted:
    """Counts the Redis round trips of every ``RedisCoordinator`` (both flavours)."""

    calls = 0

    @classmethod
    @contextlib.contextmanager
    def installed(cls) -> Iterator[None]:
        blocking = redis_coordination.RedisCoordinator._call
        asynchronous = redis_coordination.AsyncRedisCoordinator._call

        def counted(self: Any, *args: Any) -> Any:
            cls.calls += 1
            return blocking(self, *args)

        async def acounted(self: Any, *args: Any) -> Any:
            cls.calls += 1
            return await asynchronous(self, *args)

        setattr(redis_coordination.RedisCoordinator, "_call", counted)  # noqa: B010
        setattr(redis_coordination.AsyncRedisCoordinator, "_call", acounted)  # noqa: B010
        try:
            yield
        finally:
            setattr(redis_coordination.RedisCoordinator, "_call", blocking)  # noqa: B010
            setattr(redis_coordination.AsyncRedisCoordinator, "_call", asynchronous)  # noqa: B010


def _provider(clock: Clock) -> ServedProvider:
    def build(url: str) -> TestProvider:
        provider = TestProvider(url, clock=clock)
        # A public client: every refresh rotates, so each one is a flight of its own (a
        # result kept in Redis lives on Redis's clock, not on this benchmark's).
        provider.add_client(APP_ID, redirect_uris=[REDIRECT], kind="spa")
        provider.add_user(USER, name="Ada")
        provider.add_resource(API, ["read"])
        provider.grant_permissions(USER, API, ["read"])
        return provider

    return serve_provider(build)


def _logto(kind: str, served: ServedProvider, clock: Clock, coordinator: Any) -> Any:
    module: Any = sync if kind == "sync" else aio
    config = module.LogtoConfig(
        endpoint=served.url,
        appId=APP_ID,
        scopes=["read"],
        resources=[API],
        # Each refresh moves the clock an hour on: keep what is known of the provider fresh,
        # so that only the refreshes are measured (not a discovery fetch every hour).
        discoveryMaxAge=FOREVER,
        jwksMaxAge=FOREVER,
    )
    return module.Logto(config, runtime=Runtime(clock=clock), coordinator=coordinator)


def _coordinator(kind: str, name: str, url: str) -> Any:
    module: Any = sync if kind == "sync" else aio
    if name == "memory":
        return module.MemoryCoordinator()
    return module.RedisCoordinator(url)


def _stats(times: list[float], calls: int) -> dict[str, float]:
    return {
        "p50_ms": statistics.median(times) * 1000,
        "p90_ms": percentile(times, 0.9) * 1000,
        "round_trips": calls / len(times),
    }


def _measure_sync(name: str, url: str, served: ServedProvider, clock: Clock, n: int) -> Any:
    logto = _logto("sync", served, clock, _coordinator("sync", name, url))
    storage = DictStorage()
    session = logto.session(storage)
    sign_in_url = session.signIn(REDIRECT)
    session.handleSignInCallback(served.provider.approve(sign_in_url, USER))
    session.getAccessToken(API)  # warm: discovery, keys, scripts loaded
    out: dict[str, Any] = {}
    for label, expire, count in (("cached", False, n * 5), ("refresh", True, n)):
        times: list[float] = []
        before = Counted.calls
        for _ in range(count):
            if expire:
                clock.advance(ACCESS_TOKEN_TTL + 1)
            started = time.perf_counter()
            session.getAccessToken(API)
            times.append(time.perf_counter() - started)
        out[label] = _stats(times, Counted.calls - before)
    waves: list[float] = []
    before = Counted.calls
    for _ in range(max(3, n // 20)):
        clock.advance(ACCESS_TOKEN_TTL + 1)
        barrier = threading.Barrier(CONCURRENT + 1)

        def one(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            logto.session(storage).getAccessToken(API)

        threads = [threading.Thread(target=one) for _ in range(CONCURRENT)]
        for thread in threads:
            thread.start()
        barrier.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        waves.append(time.perf_counter() - started)
    out["concurrent"] = {
        "wave_ms": statistics.median(waves) * 1000,
        "round_trips": (Counted.calls - before) / (len(waves) * CONCURRENT),
    }
    logto.close()
    return out


async def _measure_async(name: str, url: str, served: ServedProvider, clock: Clock, n: int) -> Any:
    """On one event loop, as an ASGI server runs (its Redis connections stay open)."""
    logto = _logto("aio", served, clock, _coordinator("aio", name, url))
    storage = DictStorage()
    session = logto.session(storage)
    sign_in_url = await session.signIn(REDIRECT)
    await session.handleSignInCallback(served.provider.approve(sign_in_url, USER))
    await session.getAccessToken(API)
    out: dict[str, Any] = {}
    for label, expire, count in (("cached", False, n * 5), ("refresh", True, n)):
        times: list[float] = []
        before = Counted.calls
        for _ in range(count):
            if expire:
                clock.advance(ACCESS_TOKEN_TTL + 1)
            started = time.perf_counter()
            await session.getAccessToken(API)
            times.append(time.perf_counter() - started)
        out[label] = _stats(times, Counted.calls - before)
    waves: list[float] = []
    before = Counted.calls
    for _ in range(max(3, n // 20)):
        clock.advance(ACCESS_TOKEN_TTL + 1)
        started = time.perf_counter()
        await asyncio.gather(
            *(logto.session(storage).getAccessToken(API) for _ in range(CONCURRENT))
        )
        waves.append(time.perf_counter() - started)
    out["concurrent"] = {
        "wave_ms": statistics.median(waves) * 1000,
        "round_trips": (Counted.calls - before) / (len(waves) * CONCURRENT),
    }
    await logto.aclose()
    return out


def run(quick: bool = False) -> dict[str, Any]:
    from tests.redis_support import running  # the suite's redis-server, started by pid

    n = 20 if quick else 200
    results: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as directory,
        running(Path(directory)) as server,
        Counted.installed(),
    ):
        for kind in ("sync", "aio"):
            for name in ("memory", "redis"):
                clock = Clock()
                with _provider(clock) as served:
                    if kind == "sync":
                        result = _measure_sync(name, server.url, served, clock, n)
                    else:
                        result = asyncio.run(_measure_async(name, server.url, served, clock, n))
                    results[f"{kind}/{name}"] = result
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        "| client | scenario | memory p50 | Redis p50 | added | Redis round trips per request |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ("sync", "aio"):
        memory, shared = results[f"{kind}/memory"], results[f"{kind}/redis"]
        for label, name in (("cached", "cached token"), ("refresh", "refresh, one caller")):
            m, r = memory[label]["p50_ms"], shared[label]["p50_ms"]
            lines.append(
                f"| {kind} | {name} | {m:.2f} ms | {r:.2f} ms | {r - m:+.2f} ms | "
                f"{shared[label]['round_trips']:.2f} |"
            )
        m, r = memory["concurrent"]["wave_ms"], shared["concurrent"]["wave_ms"]
        lines.append(
            f"| {kind} | {CONCURRENT} callers at once (the wave) | {m:.2f} ms | {r:.2f} ms | "
            f"{r - m:+.2f} ms | {shared['concurrent']['round_trips']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args(argv)
    print(report(run(quick=args.quick)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
