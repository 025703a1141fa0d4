"""Both clients with ``RedisCoordinator``, in one process (several ``Logto`` objects standing
for several workers): one refresh for all of them, and what a Redis that fails does to a
request (it fails, typed) and to the stored session (nothing: it stays as it was, and a
refresh that reached the provider is saved whatever Redis does)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider
from logto_core.errors import CoordinationError
from logto_core.log import LOGGER_NAME
from logto_core.session import SessionState
from logto_core.testing import ACCESS_TOKEN_TTL, Fault
from tests.redis_support import running

from .conftest import API, Clock
from .test_app_sessions import RecordStorage, ServerSideRecord, make_logto, refreshes, sign_in

_MADE: list[tuple[Any, Any]] = []
"""The (Logto, coordinator) pairs a test made, closed after it: a coordinator left open keeps
its listener retrying a stopped Redis in the background."""


@pytest.fixture(autouse=True)
def _close_workers() -> Any:
    yield
    while _MADE:
        logto, coordinator = _MADE.pop()
        if isinstance(coordinator, sync.RedisCoordinator):
            logto.close()
            coordinator.close()
        else:

            async def close(logto: Any = logto, coordinator: Any = coordinator) -> None:
                await logto.aclose()
                await coordinator.aclose()

            asyncio.run(close())


def workers(served: ServedProvider, clock: Clock, url: str, kinds: list[str]) -> list[Any]:
    """One ``Logto`` per "worker", each with its own coordinator on the same Redis."""
    out = []
    for kind in kinds:
        module: Any = sync if kind == "sync" else aio
        coordinator = module.RedisCoordinator(url)
        logto = make_logto(kind, served, clock, coordinator=coordinator)
        _MADE.append((logto, coordinator))
        out.append(logto)
    return out


def get_token(logto: Any, record: ServerSideRecord) -> Any:
    result = logto.session(RecordStorage(record)).getAccessToken(API)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def outcome(logto: Any, record: ServerSideRecord) -> Any:
    try:
        return get_token(logto, record)
    except Exception as error:
        return error


def all_at_once(calls: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def stored(record: ServerSideRecord) -> SessionState:
    return SessionState.from_values(dict(record.values))


def test_workers_of_both_flavours_share_one_refresh(
    served: ServedProvider, clock: Clock, redis_url: str
) -> None:
    apps = workers(served, clock, redis_url, ["sync", "aio", "sync", "aio"])
    record = ServerSideRecord()
    sign_in(apps[0], served, RecordStorage(record))
    clock.advance(ACCESS_TOKEN_TTL + 1)
    served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.3))
    tokens = all_at_once([lambda app=app: get_token(app, record) for app in apps for _ in range(5)])
    assert refreshes(served) == 1
    assert len(set(tokens)) == 1 and tokens[0] is not None
    refresh = stored(record).refresh_token
    assert refresh is not None and served.provider.is_refresh_token_active(refresh)


def test_a_failed_claim_fails_the_request_and_keeps_the_session(
    served: ServedProvider, clock: Clock, tmp_path: Path, kind: str
) -> None:
    with running(tmp_path / "redis") as server:
        [app] = workers(served, clock, server.url, [kind])
        record = ServerSideRecord()
        sign_in(app, served, RecordStorage(record))
        clock.advance(ACCESS_TOKEN_TTL + 1)
        before = dict(record.values)
        server.stop()
        error = outcome(app, record)
        assert isinstance(error, CoordinationError) and error.code == "coordination.unavailable"
        assert record.values == before and refreshes(served) == 0
        server.start()  # back: the next request refreshes
        assert get_token(app, record) is not None and refreshes(served) == 1


def test_redis_lost_mid_refresh_fails_the_waiters_and_the_leader_saves(
    served: ServedProvider, clock: Clock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis dies while the leader's refresh is at the provider: the callers waiting for it
    fail with a typed error, the leader's publication is dropped (logged), and the leader
    saves the rotated token: the session survives, no grant is revoked."""
    with running(tmp_path / "redis") as server:
        apps = workers(served, clock, server.url, ["sync", "aio"])
        record = ServerSideRecord()
        sign_in(apps[0], served, RecordStorage(record))
        clock.advance(ACCESS_TOKEN_TTL + 1)
        served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=1.0))
        results: list[Any] = []
        calls = [lambda app=app: outcome(app, record) for app in apps for _ in range(4)]
        runner = threading.Thread(target=lambda: results.extend(all_at_once(calls)))
        with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
            runner.start()
            deadline = time.monotonic() + 10
            while refreshes(served) == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)  # the followers are waiting on it
            server.kill()
            runner.join(30)
        tokens = [r for r in results if isinstance(r, str)]
        errors = [r for r in results if not isinstance(r, str)]
        assert len(tokens) == 1 and len(errors) == 7
        assert all(
            isinstance(e, CoordinationError) and e.code == "coordination.unavailable"
            for e in errors
        )
        assert "could not publish a result" in caplog.text
        assert refreshes(served) == 1
        session = stored(record)
        assert session.refresh_token is not None
        assert served.provider.is_refresh_token_active(session.refresh_token)
        assert not any(g.revoked for g in served.provider.store.grants.values())
        # Cached tokens need no coordination: served while Redis is down.
        assert all(get_token(app, record) == tokens[0] for app in apps)
        server.start()
        clock.advance(ACCESS_TOKEN_TTL + 1)
        assert len({get_token(app, record) for app in apps}) == 1
        assert refreshes(served) == 2


def test_a_sign_out_stands_when_redis_is_down(
    served: ServedProvider, clock: Clock, tmp_path: Path, kind: str
) -> None:
    with running(tmp_path / "redis") as server:
        [app] = workers(served, clock, server.url, [kind])
        record = ServerSideRecord()
        sign_in(app, served, RecordStorage(record))
        refresh = stored(record).refresh_token
        assert refresh is not None
        server.stop()
        session = app.session(RecordStorage(record))
        result = session.signOut()
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        assert not stored(record).is_authenticated
        assert app.waitForRevocations(10)
        assert not served.provider.is_refresh_token_active(refresh)  # revoked all the same
