"""Load: one async client serving 1,000 concurrent sessions that all need a refresh at once.

Each session lives in its own storage, selected per task through a context variable, as a
web framework's request-local session would be. The provider's fake clock jumps past the
access-token lifetime so that every session must refresh; the SPA client's refresh tokens
rotate on every use, so a duplicated or crossed refresh would revoke a grant.

These tests check behaviour under load, not speed (``make bench`` measures speed): nothing
is retried and no duration is asserted, so a busy machine makes them slower, never red. The
client's timeouts are only hang guards, generous because a thousand requests queue for the
client's sixteen connections. Coverage tracing is paused while they run: it would multiply
their time without covering anything the other tests do not.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from logto_adapters import aio
from logto_adapters.testing import serve_provider
from logto_core.jose.jwt import decode_unverified
from logto_core.runtime import Runtime
from logto_core.session import SessionState
from logto_core.storage import Storage
from logto_core.testing import TestProvider

from .soak import API, REDIRECT, SPA_ID, Clock, setup

USERS = 100
CURRENT: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("session")


class ContextStorage(Storage):
    """The storage of the session the current task serves."""

    def get(self, key: str) -> str | None:
        return CURRENT.get().get(key)

    def set(self, key: str, value: str | None) -> None:
        if value is None:
            CURRENT.get().pop(key, None)
        else:
            CURRENT.get()[key] = value

    def delete(self, key: str) -> None:
        CURRENT.get().pop(key, None)


HANG_GUARD = 600.0
"""Seconds after which a wave counts as hung (never reached by a working client)."""


@dataclass
class LoadResult:
    sign_in_seconds: float
    wave_seconds: float
    wave_jwks_fetches: int
    wave_discovery_fetches: int


@contextlib.contextmanager
def coverage_paused() -> Iterator[None]:
    """Stop coverage tracing (when the suite runs under coverage) for the block's duration;
    threads started inside it are not traced either."""
    try:
        import coverage
    except ImportError:  # pragma: no cover - coverage is a dev dependency
        yield
        return
    current = coverage.Coverage.current()
    if current is None:
        yield
        return
    current.stop()
    try:
        yield
    finally:
        current.start()


def run_load(sessions_count: int) -> LoadResult:
    """Sign ``sessions_count`` sessions in, expire their tokens, refresh all at once, and
    check every invariant; return the figures."""
    clock = Clock()
    with coverage_paused(), serve_provider(lambda url: TestProvider(url, clock=clock)) as served:
        setup(served.provider, USERS)
        config = aio.LogtoConfig(
            endpoint=served.url, appId=SPA_ID, scopes=["read"], resources=[API]
        )
        client = aio.LogtoClient(
            config,
            ContextStorage(),
            runtime=Runtime(clock=clock),
            timeout=(30.0, HANG_GUARD),
            client_factory=lambda: httpx.AsyncClient(limits=httpx.Limits(max_connections=16)),
        )
        sessions: list[dict[str, str]] = [{} for _ in range(sessions_count)]
        users = [f"user-{n % USERS}" for n in range(sessions_count)]
        marks: dict[str, float] = {}

        async def sign_in(n: int) -> None:
            CURRENT.set(sessions[n])
            url = await client.signIn(REDIRECT)
            with served.lock:
                callback = served.provider.approve(url, users[n])
            await client.handleSignInCallback(callback)

        async def refresh(n: int) -> str | None:
            CURRENT.set(sessions[n])
            return await client.getAccessToken(API)

        async def main() -> list[str | None]:
            limit = asyncio.Semaphore(50)

            async def bounded(n: int) -> None:
                async with limit:
                    await sign_in(n)

            started = time.monotonic()
            await asyncio.gather(*(bounded(n) for n in range(sessions_count)))
            marks["sign_in"] = time.monotonic() - started
            marks["log"] = len(served.provider.log)
            clock.now += 3601  # every access token is stale: every session must refresh
            first = [SessionState.from_values(s).refresh_token for s in sessions]
            wave = time.monotonic()
            tokens = await asyncio.wait_for(
                asyncio.gather(*(refresh(n) for n in range(sessions_count))), HANG_GUARD
            )
            marks["wave"] = time.monotonic() - wave
            for n, session in enumerate(sessions):
                assert SessionState.from_values(session).refresh_token != first[n]  # stored
            return list(tokens)

        tokens = asyncio.run(main())
        wave_log = served.provider.log[int(marks["log"]) :]
        refreshes = [e for e in wave_log if e.grant_type == "refresh_token"]
        # Exactly one refresh per session, each with that session's own refresh token.
        assert len(refreshes) == sessions_count
        assert len({e.params["refresh_token"] for e in refreshes}) == sessions_count
        for n, token in enumerate(tokens):
            assert token is not None
            claims = decode_unverified(token)[1]
            assert (claims["sub"], claims["aud"]) == (users[n], API)  # no crossed tokens
            assert claims["exp"] > clock.now
            stored_refresh = SessionState.from_values(sessions[n]).refresh_token
            assert stored_refresh is not None
            assert served.provider.is_refresh_token_active(stored_refresh)
        return LoadResult(
            sign_in_seconds=marks["sign_in"],
            wave_seconds=marks["wave"],
            wave_jwks_fetches=sum(1 for e in wave_log if e.endpoint == "jwks"),
            wave_discovery_fetches=sum(1 for e in wave_log if e.endpoint == "discovery"),
        )


def test_thousand_concurrent_refreshes() -> None:
    result = run_load(1000)
    print(result)  # the figures, for whoever reads the log; speed is make bench's business


def test_concurrent_refreshes_share_one_key_set_fetch() -> None:
    """Once the cached key set is stale, concurrent refreshes share one JWKS request."""
    result = run_load(100)
    assert result.wave_jwks_fetches <= 2
