"""``RedisSessionRegistry`` against a real ``redis-server``: the in-memory registry's
operations (ids, rotation, discard, idle expiry, the ``(iss, sid)`` / ``(iss, sub)`` index),
``ServerSessions`` on it, and back-channel logout across two ``Logto`` objects (two workers):
a logout token delivered to either ends the session for both. Also two Flask apps (two
workers) sharing sessions through it."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from logto_adapters import aio, sync
from logto_adapters.redis_registry import RedisRegisteredSession, RedisSessionRegistry
from logto_adapters.testing import ServedProvider
from logto_adapters.web import ServerSessions, WebRequest
from logto_core.errors import LogtoUsageError, StorageError
from logto_core.protocol.backchannel import BackchannelLogoutResult
from logto_core.runtime import Runtime
from logto_core.session import SessionState, StorageKey
from logto_core.testing import logout_request
from tests.factories import stored

from .conftest import APP_ID, REDIRECT, USER, Clock, make_config
from .redis_server import RedisServer, running_redis
from .test_flask import APP, APP_SECRET, ORIGINS, make_app, sign_in

OTHER_USER = "user-2"
RECEIVER = "http://127.0.0.1:9/back-channel-logout"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis-registry")) as running:
        yield running


@pytest.fixture
def registry(server: RedisServer) -> RedisSessionRegistry:
    server.command("FLUSHALL")
    return RedisSessionRegistry(server.url, idle_timeout=3600)


def raw(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def _run(value: Any) -> Any:
    return asyncio.run(value) if inspect.iscoroutine(value) else value


# ---- the registry itself --------------------------------------------------------------------


def test_ids_values_rotation_and_discard(
    registry: RedisSessionRegistry, server: RedisServer
) -> None:
    session = registry.create()
    assert len(session.id) == 43 and registry.get(session.id) is not None
    for unknown in (None, "", "x", "a" * 43, session.id + "x", "../" + session.id[3:], 12):
        assert registry.get(unknown) is None  # type: ignore[arg-type]
    assert registry.open(None).id != session.id
    session.set("a", "1")
    assert registry.get(session.id).get("a") == "1"  # type: ignore[union-attr]
    key = f"logto:server-session:{session.id}"
    assert 3590_000 < raw(server).pttl(key) <= 3600_000

    old = session.id
    new = registry.rotate(old)
    assert new != old and session.id == new  # the storage follows its session
    assert registry.get(old) is None and registry.get(new).get("a") == "1"  # type: ignore[union-attr]
    with pytest.raises(LogtoUsageError) as caught:
        registry.rotate(old)
    assert caught.value.code == "usage.session_unknown"

    assert registry.discard(new) is True and registry.discard(new) is False
    session.set("a", "2")  # a late write cannot bring it back
    assert session.compare_and_set("a", None, "3") is True  # ignored, as a write is
    assert registry.get(new) is None and raw(server).exists(f"logto:server-session:{new}") == 0
    assert registry.discard("not-an-id") is False


def test_a_session_idle_past_its_timeout_is_gone(
    registry: RedisSessionRegistry, server: RedisServer
) -> None:
    session = registry.create()
    session.set("a", "1")
    raw(server).pexpire(f"logto:server-session:{session.id}", 50)
    time.sleep(0.2)
    assert registry.get(session.id) is None and session.get("a") is None
    session.set("a", "2")
    assert raw(server).exists(f"logto:server-session:{session.id}") == 0


def test_reads_keep_a_session_alive(registry: RedisSessionRegistry, server: RedisServer) -> None:
    session = registry.create()
    key = f"logto:server-session:{session.id}"
    raw(server).pexpire(key, 5000)
    assert session.get("anything") is None
    assert raw(server).pttl(key) > 3590_000


def test_a_redis_that_is_down_is_a_typed_error(tmp_path: Path) -> None:
    with running_redis(tmp_path) as server:
        registry = RedisSessionRegistry(server.url)
        session = registry.create()
        server.stop()
        for call in (
            registry.create,
            lambda: registry.get(session.id),
            lambda: session.get(StorageKey.SESSION),
            lambda: session.set("a", "1"),
            lambda: registry.matching(iss="https://x", sub=USER),
            lambda: registry.rotate(session.id),
        ):
            with pytest.raises(StorageError) as caught:
                call()
            assert caught.value.code == "storage.unavailable"
            assert session.id not in str(caught.value)


def test_options_are_checked() -> None:
    with pytest.raises(LogtoUsageError):
        RedisSessionRegistry("http://127.0.0.1:1")
    for bad in ({"idle_timeout": 0}, {"idle_timeout": float("nan")}, {"prefix": "a b"}):
        with pytest.raises(LogtoUsageError) as caught:
            RedisSessionRegistry("redis://127.0.0.1:1/0", **bad)
        assert caught.value.code == "usage.redis_options"
    assert "127.0.0.1:1" in repr(RedisSessionRegistry("redis://user:pw@127.0.0.1:1/0"))
    assert "pw" not in repr(RedisSessionRegistry("redis://user:pw@127.0.0.1:1/0"))


# ---- workers sharing sessions ----------------------------------------------------------------


class Worker:
    """One worker process of a web app: its own ``Logto`` (own locks, coordinator, replay
    cache) and its own ``RedisSessionRegistry`` object, over the one Redis."""

    def __init__(self, kind: str, served: ServedProvider, clock: Clock, url: str) -> None:
        module: Any = sync if kind == "sync" else aio
        runtime = Runtime(clock=clock)
        self.kind, self.served = kind, served
        self.logto = module.Logto(make_config(served.url), runtime=runtime, timeout=(2.0, 5.0))
        self.sessions = RedisSessionRegistry(url, runtime=runtime)

    def sign_in(self, user: str = USER) -> str:
        storage = self.sessions.open(None)
        session = self.logto.session(storage)
        url = _run(session.signIn(REDIRECT))
        _run(session.handleSignInCallback(self.served.provider.approve(url, user)))
        return self.sessions.rotate(storage.id)  # what an integration does at sign-in

    def signed_in(self, session_id: str) -> bool:
        storage = self.sessions.get(session_id)
        assert storage is not None  # the id stays; the session may be signed out
        return bool(self.logto.session(storage).isAuthenticated())

    def claims(self, session_id: str) -> Any:
        storage = self.sessions.get(session_id)
        return self.logto.session(storage).getIdTokenClaims()

    def deliver(self, token: str) -> BackchannelLogoutResult:
        request = logout_request(RECEIVER, token)
        result = self.logto.handleBackchannelLogout(
            request.method, request.headers, request.body, self.sessions
        )
        answered: BackchannelLogoutResult = _run(result)
        return answered


@pytest.fixture
def workers(
    kind: str,
    served: ServedProvider,
    clock: Clock,
    registry: RedisSessionRegistry,
    server: RedisServer,
) -> tuple[Worker, Worker]:
    served.provider.add_user(OTHER_USER, name="Bea")
    return Worker(kind, served, clock, server.url), Worker(kind, served, clock, server.url)


def test_a_back_channel_logout_reaching_any_worker_ends_the_session_everywhere(
    workers: tuple[Worker, Worker], served: ServedProvider
) -> None:
    one, two = workers
    mine, my_other_browser, someone_else = one.sign_in(), one.sign_in(), two.sign_in(OTHER_USER)
    assert two.signed_in(mine) and one.signed_in(someone_else)  # shared
    claims = one.claims(mine)
    refresh_token = one.logto.session(one.sessions.get(mine)).getRefreshToken()
    assert claims.sid is not None

    token = served.provider.logout_token(APP_ID, sid=claims.sid, sub=claims.sub)
    result = two.deliver(token)  # the provider's POST reached the other worker
    assert (result.status, result.ended, result.error) == (200, 1, None)
    assert not one.signed_in(mine) and not two.signed_in(mine)
    assert one.signed_in(my_other_browser) and one.signed_in(someone_else)
    assert two.logto.waitForRevocations(10.0)
    assert not served.provider.is_refresh_token_active(refresh_token)

    everyone = served.provider.logout_token(APP_ID, sub=USER)
    assert one.deliver(everyone).ended == 1  # the one session of the user still signed in
    assert not two.signed_in(my_other_browser) and two.signed_in(someone_else)


def test_the_index_follows_sign_ins_rotations_and_sign_outs(
    workers: tuple[Worker, Worker], served: ServedProvider
) -> None:
    one, two = workers
    session_id = one.sign_in()
    iss = one.claims(session_id).iss
    sid = one.claims(session_id).sid
    assert [s.id for s in two.sessions.matching(iss=iss, sub=USER)] == [session_id]
    assert [s.id for s in two.sessions.matching(iss=iss, sid=sid, sub=USER)] == [session_id]
    assert two.sessions.matching(iss=iss, sid=sid, sub=OTHER_USER) == []
    assert two.sessions.matching(iss="https://elsewhere.example.com", sub=USER) == []
    assert two.sessions.matching(iss=iss) == []
    rotated = two.sessions.rotate(session_id)
    assert [s.id for s in one.sessions.matching(iss=iss, sub=USER)] == [rotated]
    # Signed in again as someone else in the same browser: indexed under them only.
    storage = one.sessions.get(rotated)
    assert storage is not None
    session = one.logto.session(storage)
    url = _run(session.signIn(REDIRECT))
    _run(session.handleSignInCallback(served.provider.approve(url, OTHER_USER)))
    assert one.sessions.matching(iss=iss, sub=USER) == []
    assert [s.id for s in one.sessions.matching(iss=iss, sub=OTHER_USER)] == [rotated]
    _run(session.signOut())
    assert one.sessions.matching(iss=iss, sub=OTHER_USER) == []
    assert one.sessions.get(rotated) is not None  # signed out; the id stays


def test_end_signs_out_without_a_client_and_skips_ended_sessions(
    workers: tuple[Worker, Worker], server: RedisServer
) -> None:
    one, two = workers
    first, second = one.sign_in(), one.sign_in()
    iss = one.claims(first).iss
    storage = one.sessions.get(first)
    assert storage is not None
    storage.set("logtoReturnTo", "/x")  # the integration's own key is kept
    raw(server).delete(f"logto:server-session:{second}")  # expired meanwhile
    assert two.sessions.end(iss=iss, sub=USER) == 1
    assert stored(storage) == SessionState() and storage.get("logtoReturnTo") == "/x"
    assert two.sessions.end(iss=iss, sub=USER) == 0  # nothing left to sign out


def test_server_sessions_on_redis_are_shared_by_workers(
    registry: RedisSessionRegistry, server: RedisServer
) -> None:
    one = ServerSessions(registry, secure=False)
    two = ServerSessions(RedisSessionRegistry(server.url), secure=False)
    anonymous = one.open(WebRequest("GET", "http://app/"))
    assert anonymous.storage.get("k") is None and anonymous.set_cookies() == []
    opened = one.open(WebRequest("GET", "http://app/"))
    opened.storage.set("k", "v")
    (cookie,) = opened.set_cookies()
    again = two.open(WebRequest("GET", "http://app/", cookies={"logto_sid": cookie.value}))
    assert again.storage.get("k") == "v" and again.set_cookies() == []
    again.rotate()  # at sign-in
    (rotated,) = again.set_cookies()
    assert rotated.value != cookie.value
    stale = one.open(WebRequest("GET", "http://app/", cookies={"logto_sid": cookie.value}))
    assert stale.storage.get("k") is None
    atomic: Any = again.storage  # the SDK finds compare_and_set on it
    assert atomic.compare_and_set("k", "v", "w") is True
    fresh = one.open(WebRequest("GET", "http://app/"))
    storage: Any = fresh.storage
    assert storage.compare_and_set("k", None, None) is True  # nothing, and nothing made
    assert fresh.set_cookies() == []
    assert storage.compare_and_set("k", "x", "y") is False
    assert storage.compare_and_set("k", None, "y") is True and fresh.set_cookies() != []


# ---- two Flask workers -------------------------------------------------------------------------


@pytest.fixture
def flask_app(served: ServedProvider) -> None:
    served.provider.add_client(
        APP,
        secret=APP_SECRET,
        redirect_uris=[f"{origin}/callback" for origin in ORIGINS],
        post_logout_redirect_uris=[f"{origin}/" for origin in ORIGINS],
        kind="traditional",
    )


def test_two_flask_workers_share_sessions_and_back_channel_logouts(
    kind: str,
    served: ServedProvider,
    clock: Clock,
    server: RedisServer,
    registry: RedisSessionRegistry,
    flask_app: None,
) -> None:
    def worker() -> Any:
        sessions = ServerSessions(RedisSessionRegistry(server.url), secure=False)
        return make_app(kind, served, clock, sessions=sessions)

    one, two = worker(), worker()
    browser = one.test_client()
    sign_in(browser, served)
    cookie = browser.get_cookie("logto_sid")
    assert cookie is not None
    elsewhere = two.test_client()  # the load balancer sends the browser to the other worker
    elsewhere.set_cookie("logto_sid", cookie.value)
    assert elsewhere.get("/").text == "yes"
    sid = (elsewhere.get("/sid").json or {})["sid"]
    token = served.provider.logout_token(APP, sid=sid, sub=USER)
    answer = two.test_client().post("/back-channel-logout", data={"logout_token": token})
    assert answer.status_code == 200
    assert browser.get("/").text == "no" and elsewhere.get("/").text == "no"
    for app in (one, two):
        logto = app.extensions["logto"].logto
        if isinstance(logto, sync.Logto):
            logto.close()
        else:
            logto.waitForRevocations(5.0)


def test_a_registered_session_is_a_storage() -> None:
    assert issubclass(RedisRegisteredSession, sync.Storage)
