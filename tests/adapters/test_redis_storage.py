"""``RedisStorage`` (blocking) and ``AsyncRedisStorage`` (``aio.RedisStorage``) against a real
``redis-server`` on loopback: the values, the compare-and-set, TTLs, checked session ids;
sign-in, refresh and sign-out through the test provider on both clients; two apps (and two
processes) saving one session at once; Redis stopped, frozen or restarted mid-run; passwords
and TLS from the URL."""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import trustme

from logto_adapters import aio, sync
from logto_adapters.redis_storage import DEFAULT_TTL, AsyncRedisStorage, RedisStorage
from logto_adapters.testing import ServedProvider, serve_provider
from logto_core.errors import LogtoUsageError, StorageError
from logto_core.runtime import Runtime
from logto_core.session import SessionState, StorageKey
from logto_core.testing import ACCESS_TOKEN_TTL, TestProvider
from tests.factories import stored

from .conftest import API, REDIRECT, USER, Clock, make_config, setup_provider
from .redis_server import RedisServer, running_redis

SPA = {"appId": "spa", "appSecret": None}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, which it may stop and start again."""
    with running_redis(tmp_path) as running:
        yield running


@pytest.fixture
def spa(served: ServedProvider) -> ServedProvider:
    served.provider.add_client("spa", redirect_uris=[REDIRECT], kind="spa")
    return served


def new_id() -> str:
    return uuid.uuid4().hex


def run(value: Any) -> Any:
    return asyncio.run(value) if inspect.iscoroutine(value) else value


READ_DELAY = 0.01
"""How long a slow reader takes between reading the session and saving it: long enough for
another process to save in between (a lost update, without the compare-and-set)."""


class SlowRedisStorage(RedisStorage):
    def get(self, key: str) -> str | None:
        value = super().get(key)
        time.sleep(READ_DELAY)
        return value


class AsyncSlowRedisStorage(AsyncRedisStorage):
    async def get(self, key: str) -> str | None:
        value = await super().get(key)
        await asyncio.sleep(READ_DELAY)
        return value


def storage_for(kind: str, url: str, session_id: str, *, slow: bool = False, **options: Any) -> Any:
    classes: Any = (
        (RedisStorage, SlowRedisStorage)
        if kind == "sync"
        else (
            AsyncRedisStorage,
            AsyncSlowRedisStorage,
        )
    )
    return classes[slow](url, session_id, **options)


def raw(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


class App:
    """One app (one ``Logto``) whose requests each make their own storage for the session
    id (``RedisStorage(url, sessionId)`` per request, as a web app does)."""

    def __init__(
        self, kind: str, served: ServedProvider, clock: Clock | None, url: str, **options: Any
    ) -> None:
        module: Any = sync if kind == "sync" else aio
        runtime = Runtime(clock=clock) if clock is not None else None
        self.kind, self.served, self.url, self.options = kind, served, url, options
        self.logto = module.Logto(
            make_config(served.url, **SPA), runtime=runtime, timeout=(2.0, 5.0)
        )

    def session(self, session_id: str) -> Any:
        return self.logto.session(storage_for(self.kind, self.url, session_id, **self.options))

    def call(self, session_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        return run(getattr(self.session(session_id), name)(*args, **kwargs))

    def sign_in(self, session_id: str, user: str = USER) -> None:
        url = self.call(session_id, "signIn", REDIRECT)
        self.call(session_id, "handleSignInCallback", self.served.provider.approve(url, user))

    def authenticated(self, session_id: str) -> bool:
        name = "isAuthenticated" if self.kind == "sync" else "isAuthenticatedAsync"
        return bool(self.call(session_id, name))

    def stored(self, session_id: str) -> SessionState:
        return stored(RedisStorage(self.url, session_id, **self.options))


def refreshes(served: ServedProvider) -> list[str]:
    return [
        e.params["refresh_token"] for e in served.provider.log if e.grant_type == "refresh_token"
    ]


def assert_never_presented_twice(served: ServedProvider) -> None:
    tokens = refreshes(served)
    assert len(tokens) == len(set(tokens)), "a refresh token was presented twice"


# ---- the storage itself ---------------------------------------------------------------------


def test_values_a_compare_and_set_and_the_ttl(server: RedisServer) -> None:
    session_id = new_id()
    storage = RedisStorage(server.url, session_id, ttl=3600)
    key = f"logto:session:{session_id}"
    assert storage.key == key and storage.get("a") is None
    storage.set("a", "1")
    assert storage.get("a") == "1"
    assert 3590_000 < raw(server).pttl(key) <= 3600_000
    raw(server).pexpire(key, 5000)
    storage.set("b", "2")  # every write sets the TTL again
    assert raw(server).pttl(key) > 3590_000
    assert storage.compare_and_set("a", None, "x") is False  # present: not absent
    assert storage.compare_and_set("a", "0", "x") is False
    assert storage.compare_and_set("a", "1", "x") is True and storage.get("a") == "x"
    assert storage.compare_and_set("c", None, "3") is True and storage.get("c") == "3"
    assert storage.compare_and_set("c", "3", None) is True and storage.get("c") is None
    storage.delete("b")
    storage.delete("never-there")
    assert raw(server).hgetall(key) == {b"a": b"x"}
    storage.clear()
    assert raw(server).exists(key) == 0
    # The last field deleted: no key left behind.
    storage.set("a", "1")
    storage.compare_and_set("a", "1", None)
    assert raw(server).exists(key) == 0


def test_the_asyncio_storage_is_the_same(server: RedisServer) -> None:
    session_id = new_id()

    async def scenario() -> None:
        storage = aio.RedisStorage(server.url, session_id, ttl=60, prefix="app1:")
        assert isinstance(storage, AsyncRedisStorage)
        assert await storage.get("a") is None
        await storage.set("a", "1")
        assert await storage.compare_and_set("a", "0", "2") is False
        assert await storage.compare_and_set("a", "1", "2") is True
        assert await storage.get("a") == "2"
        await storage.delete("a")
        await storage.set("b", "1")
        assert 55_000 < raw(server).pttl(f"app1:session:{session_id}") <= 60_000
        await storage.clear()
        assert await storage.get("b") is None

    asyncio.run(scenario())
    asyncio.run(scenario())  # another loop: another client, the same data


def test_a_loop_per_request_leaves_no_connection_open(server: RedisServer) -> None:
    """Flask's async views run each request in a loop of its own: each loop's client is
    closed with it."""
    session_id = new_id()

    async def request(n: int) -> None:
        storage = aio.RedisStorage(server.url, session_id)
        await storage.set("n", str(n))
        assert await storage.get("n") == str(n)

    def connected() -> int:
        return sum(1 for c in raw(server).client_list() if c.get("cmd") != "client|list")

    asyncio.run(request(0))
    before = connected()
    for n in range(30):
        asyncio.run(request(n))
    assert connected() <= before


def test_bytes_that_are_not_utf8_compare_as_they_are(server: RedisServer) -> None:
    session_id = new_id()
    raw(server).hset(f"logto:session:{session_id}", "k", b"\xff\xfe{")
    storage = RedisStorage(server.url, session_id)
    value = storage.get("k")
    assert value is not None
    assert storage.compare_and_set("k", value, "fine") is True
    assert SessionState.load(RedisStorage(server.url, new_id()).get) == SessionState()


@pytest.mark.parametrize(
    "session_id",
    ["", "a:b", "a*", "x" * 129, "a b", "../x", "{a}", "a\n", "é", None, 12, b"abc"],
)
def test_session_ids_that_could_reach_other_keys_are_refused(
    server: RedisServer, session_id: Any
) -> None:
    for cls in (RedisStorage, AsyncRedisStorage):
        with pytest.raises(LogtoUsageError) as caught:
            cls(server.url, session_id)
        assert caught.value.code == "usage.redis_session_id"


def test_urls_and_options_are_checked_and_no_password_is_ever_shown() -> None:
    with pytest.raises(LogtoUsageError) as caught:
        RedisStorage("http://user:hunter2@127.0.0.1:1/0", "s")
    assert caught.value.code == "usage.redis_url" and "hunter2" not in str(caught.value)
    for bad in ({"ttl": 0}, {"ttl": float("inf")}, {"ttl": True}, {"prefix": "a b"}):
        with pytest.raises(LogtoUsageError) as caught:
            RedisStorage("redis://127.0.0.1:1/0", "s", **bad)
        assert caught.value.code == "usage.redis_options"
    storage = RedisStorage("redis://user:hunter2@127.0.0.1:1/0", "secret-session-id")
    assert repr(storage) == f"RedisStorage(redis=127.0.0.1:1, ttl={DEFAULT_TTL:g})"
    with pytest.raises(StorageError) as failed:
        storage.get("k")
    assert failed.value.code == "storage.unavailable"
    assert "hunter2" not in str(failed.value) and "secret-session-id" not in str(failed.value)
    assert "127.0.0.1:1" in str(failed.value)


# ---- the clients on Redis --------------------------------------------------------------------


def test_sign_in_refresh_and_sign_out_on_redis(
    kind: str, spa: ServedProvider, clock: Clock, server: RedisServer
) -> None:
    app, session_id = App(kind, spa, clock, server.url), new_id()
    assert app.authenticated(session_id) is False
    app.sign_in(session_id)
    assert app.authenticated(session_id) is True
    key = f"logto:session:{session_id}"
    assert raw(server).hkeys(key) == [StorageKey.SESSION.encode()]
    assert raw(server).pttl(key) > (DEFAULT_TTL - 60) * 1000
    first = app.stored(session_id).refresh_token
    assert app.call(session_id, "getAccessToken", API) is not None
    clock.advance(ACCESS_TOKEN_TTL + 1)
    assert app.call(session_id, "getAccessToken", API) is not None  # a refresh, rotated
    assert len(refreshes(spa)) == 2
    second = app.stored(session_id).refresh_token
    assert second != first and spa.provider.is_refresh_token_active(str(second))
    assert (
        app.call(session_id, "getIdTokenClaims" if kind == "sync" else "getIdTokenClaimsAsync").sub
        == USER
    )
    app.call(session_id, "signOut")
    assert app.authenticated(session_id) is False
    assert raw(server).exists(key) == 0  # nothing left of the session
    assert app.logto.waitForRevocations(10.0)
    assert not spa.provider.is_refresh_token_active(str(second))
    assert_never_presented_twice(spa)


def test_two_apps_saving_one_session_at_once_keep_the_newest_grant(
    kind: str, spa: ServedProvider, clock: Clock, server: RedisServer
) -> None:
    """Two ``Logto`` objects (each its own locks and coordinator, as two processes): one
    refreshes the session again and again while the other keeps saving to it (other tabs'
    sign-ins, cleared tokens). Every rotated refresh token survives the other's saves."""
    one, other, session_id = (
        App(kind, spa, clock, server.url),
        App(kind, spa, clock, server.url),
        new_id(),
    )
    one.sign_in(session_id)
    rounds = 12
    failures: list[BaseException] = []

    def refresher() -> None:
        try:
            for _ in range(rounds):
                assert one.call(session_id, "getAccessToken", API, forceRefresh=True) is not None
        except BaseException as error:
            failures.append(error)

    def other_tabs() -> None:
        try:
            for i in range(rounds * 3):
                other.call(session_id, "signIn", REDIRECT)
                if i % 3 == 0:
                    other.call(session_id, "clearAccessTokens")
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=refresher), threading.Thread(target=other_tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert len(refreshes(spa)) == rounds
    assert_never_presented_twice(spa)
    final = one.stored(session_id)
    assert spa.provider.is_refresh_token_active(str(final.refresh_token))
    assert len(final.pending) == 8  # the other tabs' latest attempts
    assert one.call(session_id, "getAccessToken", API, forceRefresh=True) is not None


def _process(
    role: str, endpoint: str, url: str, session_id: str, rounds: int, start: Any
) -> None:  # pragma: no cover - runs in a child process
    logto = sync.Logto(make_config(endpoint, **SPA), timeout=(2.0, 5.0))
    start.wait(30)
    for i in range(rounds):
        session = logto.session(storage_for("sync", url, session_id, slow=role != "refresh"))
        if role == "refresh":
            assert session.getAccessToken(API, forceRefresh=True) is not None
        else:
            session.signIn(REDIRECT)
            if i % 3 == 0:
                session.clearAccessTokens()


def test_two_processes_saving_one_session_at_once_keep_the_newest_grant(
    server: RedisServer,
) -> None:
    with serve_provider(lambda url: TestProvider(url, clock=time.time), max_delay=5.0) as served:
        setup_provider(served.provider)
        served.provider.add_client("spa", redirect_uris=[REDIRECT], kind="spa")
        app, session_id = App("sync", served, None, server.url), new_id()
        app.sign_in(session_id)
        context = multiprocessing.get_context("spawn")
        start = context.Event()
        rounds = 10
        children = [
            context.Process(
                target=_process, args=(role, served.url, server.url, session_id, n, start)
            )
            for role, n in (("refresh", rounds), ("tabs", rounds * 3))
        ]
        for child in children:
            child.start()
        start.set()
        for child in children:
            child.join(120)
        assert [child.exitcode for child in children] == [0, 0]
        assert len(refreshes(served)) == rounds
        assert_never_presented_twice(served)
        final = app.stored(session_id)
        assert served.provider.is_refresh_token_active(str(final.refresh_token))
        assert app.call(session_id, "getAccessToken", API, forceRefresh=True) is not None


# ---- Redis away --------------------------------------------------------------------------------


def _unavailable(error: StorageError) -> None:
    cause = error.__cause__
    assert isinstance(cause, StorageError) and cause.code == "storage.unavailable", repr(cause)
    assert error.code in ("storage.read", "storage.write")
    assert isinstance(cause.__cause__, redis.RedisError)


def test_redis_stopped_mid_run_gives_typed_errors_and_keeps_the_session(
    kind: str, spa: ServedProvider, clock: Clock, own_server: RedisServer
) -> None:
    app, session_id = App(kind, spa, clock, own_server.url), new_id()
    app.sign_in(session_id)
    before = app.stored(session_id)
    own_server.stop(save=True)
    calls: list[Callable[[], Any]] = [
        lambda: app.authenticated(session_id),
        lambda: app.call(session_id, "getAccessToken", API),
        lambda: app.call(session_id, "signIn", REDIRECT),
        lambda: app.call(session_id, "signOut"),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(StorageError) as caught:
            call()
        assert time.monotonic() - started < 5
        _unavailable(caught.value)
        text = str(caught.value) + str(caught.value.__cause__)
        assert str(before.refresh_token) not in text and session_id not in text
        assert len(text) < 600
    own_server.start()  # back, with its data
    assert app.stored(session_id) == before  # intact: nothing was lost, nothing half written
    assert app.authenticated(session_id) is True
    clock.advance(ACCESS_TOKEN_TTL + 1)
    assert app.call(session_id, "getAccessToken", API) is not None
    assert_never_presented_twice(spa)


def test_redis_stopping_between_a_refresh_and_its_save_loses_no_token(
    kind: str, spa: ServedProvider, clock: Clock, own_server: RedisServer
) -> None:
    """Logto rotated the refresh token, Redis went away before it was stored: the request
    fails; once Redis is back the next request adopts the successor the process kept, never
    presenting the consumed token (which would revoke the grant)."""
    app, session_id = App(kind, spa, clock, own_server.url), new_id()
    app.sign_in(session_id)
    before = app.stored(session_id)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    base: Any = RedisStorage if kind == "sync" else AsyncRedisStorage

    class StopsBeforeSaving(base):  # type: ignore[misc]
        def compare_and_set(self, key: str, expected: str | None, value: str | None) -> Any:
            own_server.stop(save=True)
            return super().compare_and_set(key, expected, value)

    session = app.logto.session(StopsBeforeSaving(own_server.url, session_id))
    with pytest.raises(StorageError) as caught:
        run(session.getAccessToken(API))
    assert caught.value.code == "storage.write"
    _unavailable(caught.value)
    assert len(refreshes(spa)) == 1
    own_server.start()
    assert app.stored(session_id) == before  # the old grant, intact
    assert app.call(session_id, "getAccessToken", API) is not None
    assert len(refreshes(spa)) == 1  # the kept successor, not a second refresh
    after = app.stored(session_id)
    assert after.refresh_token != before.refresh_token
    assert spa.provider.is_refresh_token_active(str(after.refresh_token))
    assert_never_presented_twice(spa)


def test_a_frozen_redis_fails_within_the_socket_timeout_then_recovers(
    kind: str, spa: ServedProvider, clock: Clock, own_server: RedisServer
) -> None:
    app = App(kind, spa, clock, own_server.url, socket_timeout=0.5)
    session_id = new_id()
    app.sign_in(session_id)
    own_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StorageError) as caught:
            app.authenticated(session_id)
        assert time.monotonic() - started < 3
        _unavailable(caught.value)
    finally:
        own_server.resume()
    assert app.authenticated(session_id) is True


def test_the_password_comes_from_the_url(tmp_path: Path) -> None:
    with running_redis(tmp_path, password="s3cret-pw") as server:
        storage = RedisStorage(server.url, new_id())
        storage.set("a", "1")
        assert storage.get("a") == "1"
        wrong = RedisStorage(server.url.replace("s3cret-pw", "wrong-pw"), new_id())
        with pytest.raises(StorageError) as caught:
            wrong.get("a")
        assert caught.value.code == "storage.unavailable"
        assert "wrong-pw" not in str(caught.value) and "s3cret-pw" not in str(caught.value)
        anonymous = RedisStorage(f"redis://127.0.0.1:{server.port}/0", new_id())
        with pytest.raises(StorageError) as refused:
            anonymous.get("a")
        assert refused.value.code in ("storage.unavailable", "storage.redis_error")


def test_tls_from_a_rediss_url(tmp_path: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    paths = (tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key")
    ca.cert_pem.write_to_path(str(paths[0]))
    issued.cert_chain_pems[0].write_to_path(str(paths[1]))
    issued.private_key_pem.write_to_path(str(paths[2]))
    with running_redis(tmp_path, tls=paths) as server:
        assert server.url.startswith("rediss://")
        storage = RedisStorage(server.url, new_id(), ssl_ca_certs=str(paths[0]))
        storage.set("a", "1")
        assert storage.get("a") == "1"

        async def over_asyncio() -> str | None:
            storage = AsyncRedisStorage(server.url, new_id(), ssl_ca_certs=str(paths[0]))
            await storage.set("b", "2")
            return await storage.get("b")

        assert asyncio.run(over_asyncio()) == "2"
        untrusted = RedisStorage(server.url, new_id())  # the system's CAs: not this one
        with pytest.raises(StorageError) as caught:
            untrusted.get("a")
        assert caught.value.code == "storage.unavailable"
