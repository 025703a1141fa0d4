"""The provider cache shared through Redis (``Logto(config, provider_cache=
RedisProviderCache(url))``), on both clients against a real ``redis-server``: a worker that
fetched discovery and keys publishes them; a worker started after loads them and fetches
nothing still fresh; a Redis away, a damaged or foreign publication, a store that raises:
logged, never a failed start or request."""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from logto_adapters import aio, sync
from logto_adapters.redis_storage import RedisProviderCache
from logto_adapters.testing import ServedProvider
from logto_core.log import LOGGER_NAME
from logto_core.provider_state import ProviderState
from logto_core.runtime import Runtime
from logto_core.storage import MemoryStorage

from .conftest import REDIRECT, USER, Clock, make_config
from .redis_server import RedisServer, running_redis


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis-provider")) as running:
        yield running


def _run(value: Any) -> Any:
    return asyncio.run(value) if inspect.iscoroutine(value) else value


def worker(kind: str, served: ServedProvider, clock: Clock, cache: Any) -> Any:
    module: Any = sync if kind == "sync" else aio
    return module.Logto(
        make_config(served.url),
        runtime=Runtime(clock=clock),
        timeout=(2.0, 5.0),
        provider_cache=cache,
    )


def sign_in(logto: Any, served: ServedProvider) -> None:
    session = logto.session(MemoryStorage())
    url = _run(session.signIn(REDIRECT))
    _run(session.handleSignInCallback(served.provider.approve(url, USER)))
    assert session.isAuthenticated()


def fetches(served: ServedProvider) -> tuple[int, int]:
    log = served.provider.log
    return (
        sum(1 for e in log if e.endpoint == "discovery"),
        sum(1 for e in log if e.endpoint == "jwks"),
    )


def test_a_worker_publishes_what_it_fetched_and_the_next_starts_with_it(
    kind: str, served: ServedProvider, clock: Clock, server: RedisServer
) -> None:
    key = f"logto:provider:{uuid.uuid4().hex}"
    first = worker(kind, served, clock, RedisProviderCache(server.url, key=key))
    assert redis.Redis.from_url(server.url).get(key) is None
    sign_in(first, served)
    assert fetches(served) == (1, 1)
    published = redis.Redis.from_url(server.url).get(key)
    assert published is not None
    assert isinstance(published, bytes)
    assert ProviderState.from_json(published.decode()).keys is not None
    assert 0 < redis.Redis.from_url(server.url).pttl(key) <= 7 * 24 * 3600 * 1000

    second = worker(kind, served, clock, RedisProviderCache(server.url, key=key))
    sign_in(second, served)
    assert fetches(served) == (1, 1)  # nothing fetched: the publication was fresh
    assert second.exportProviderCache() == first.exportProviderCache()


def test_a_redis_away_is_logged_and_the_worker_fetches_itself(
    kind: str,
    served: ServedProvider,
    clock: Clock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with running_redis(tmp_path) as down:
        down.stop()
        caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
        logto = worker(kind, served, clock, RedisProviderCache(down.url))
        sign_in(logto, served)
    assert fetches(served) == (1, 1)
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert "provider cache not loaded from Redis: storage.unavailable" in messages
    assert "provider cache not published to Redis: storage.unavailable" in messages


class Store:
    def __init__(self, text: str | None = None, fail: bool = False) -> None:
        self.text, self.fail = text, fail
        self.published: list[str] = []

    def load(self) -> str | None:
        if self.fail:
            raise ConnectionError("down")
        return self.text

    def publish(self, text: str) -> None:
        self.published.append(text)
        if self.fail:
            raise ConnectionError("down")


def test_a_damaged_or_foreign_publication_is_ignored(
    kind: str, served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    for text in (
        "{not json",
        worker_export(kind, served, clock).replace(served.url, "https://elsewhere.example.com"),
    ):
        store = Store(text)
        logto = worker(kind, served, clock, store)
        assert logto.exportProviderCache() == ProviderState().to_json()
        sign_in(logto, served)
        assert store.published  # what it fetched itself (discovery, then the keys)
        assert ProviderState.from_json(store.published[-1]).keys is not None
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert any(m.startswith("provider cache ignored: provider_state.") for m in messages)


def worker_export(kind: str, served: ServedProvider, clock: Clock) -> str:
    logto = worker(kind, served, clock, None)
    sign_in(logto, served)
    return str(logto.exportProviderCache())


def test_a_store_that_raises_is_logged_never_raised(
    kind: str, served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    store = Store(fail=True)
    logto = worker(kind, served, clock, store)
    sign_in(logto, served)
    assert len(store.published) == 2  # after the discovery, after the keys
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert "provider cache not loaded (ConnectionError)" in messages
    assert "provider cache not published (ConnectionError)" in messages


def test_nothing_is_published_when_nothing_was_fetched(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    store = Store()
    logto = worker(kind, served, clock, store)
    sign_in(logto, served)
    assert len(store.published) == 2  # after the discovery, after the keys
    sign_in(logto, served)
    assert len(store.published) == 2


def test_the_key_is_checked() -> None:
    from logto_core.errors import LogtoUsageError

    for key in ("", "a b", "x" * 65):
        with pytest.raises(LogtoUsageError):
            RedisProviderCache("redis://127.0.0.1:1/0", key=key)
    assert "pw" not in repr(RedisProviderCache("redis://u:pw@127.0.0.1:1/0"))
