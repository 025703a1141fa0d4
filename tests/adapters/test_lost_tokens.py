"""Tokens that must never be lost, on both clients: interrupted callers, failing storages,
concurrent uses of one grant, sign-outs and sign-ins racing a refresh, double callbacks.

The provider is Logto-like (rotation, reuse detection). Every test also checks the one
invariant that keeps a grant alive: no refresh token is ever presented to the provider twice.
"""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider
from logto_core.errors import (
    LogtoError,
    LogtoUsageError,
    SignInRequiredError,
    StorageError,
)
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.session import SessionState
from logto_core.storage import MemoryStorage, Storage
from logto_core.testing import ACCESS_TOKEN_TTL, Fault, TestProvider
from tests.factories import stored

from .conftest import API, REDIRECT, USER, Clock, Harness, make_client
from .test_concurrency import ThreadCopyStorage, run_threads

SPA = {"appId": "spa", "appSecret": None}
API2 = "https://api2.example.com"


@pytest.fixture
def spa(served: ServedProvider) -> ServedProvider:
    """The served provider with a public client (its refresh tokens rotate on every use) and
    a second API."""
    served.provider.add_client("spa", redirect_uris=[REDIRECT], kind="spa")
    served.provider.add_resource(API2, ["read"])
    served.provider.grant_permissions(USER, API2, ["read"])
    return served


def spa_client(
    kind: str, served: ServedProvider, clock: Clock, storage: Any, **options: Any
) -> Any:
    return make_client(
        kind, served.url, clock, storage, config={**SPA, "resources": [API, API2]}, **options
    )


def presented(served: ServedProvider) -> list[str]:
    return [
        e.params["refresh_token"] for e in served.provider.log if e.grant_type == "refresh_token"
    ]


def assert_never_presented_twice(served: ServedProvider) -> None:
    tokens = presented(served)
    assert len(tokens) == len(set(tokens)), "a refresh token was presented twice"


def grant_alive(served: ServedProvider, storage: Any) -> bool:
    refresh = stored(storage).refresh_token
    return refresh is not None and served.provider.is_refresh_token_active(refresh)


def signed_in(kind: str, served: ServedProvider, clock: Clock, storage: Any = None) -> Harness:
    harness = Harness(kind, spa_client(kind, served, clock, storage or MemoryStorage()), served)
    harness.sign_in_user()
    return harness


# ---- callers that go away ------------------------------------------------------------------


class AsyncSteppedStorage:
    """An async storage with a suspension point in every call, and optional failures."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.data: dict[str, str] = dict(data or {})

    async def get(self, key: str) -> str | None:
        await asyncio.sleep(0)
        return self.data.get(key)

    async def set(self, key: str, value: str | None) -> None:
        await asyncio.sleep(0)
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    async def delete(self, key: str) -> None:
        await asyncio.sleep(0)
        self.data.pop(key, None)


def in_memory_transport(provider: TestProvider, lock: threading.Lock) -> Any:
    """An async transport answering from the provider, with a suspension point before and
    after the provider answers: a cancellation can land on either side of the request."""

    async def send(request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0)
        with lock:
            response = provider.respond(request).response
        await asyncio.sleep(0)
        return response

    return send


def test_async_caller_cancelled_at_every_await_point_of_a_refresh(
    spa: ServedProvider, clock: Clock
) -> None:
    """Cancel the caller after 0, 1, 2, ... loop iterations until it finishes on its own: a
    concurrent caller always gets the real result, the next call of the session works, and
    the refresh token is never presented twice (a stale copy of the storage included)."""
    storage = AsyncSteppedStorage()
    client = aio.LogtoClient(
        aio.LogtoConfig(endpoint=spa.url, appId="spa", resources=[API, API2]),
        storage,
        runtime=Runtime(clock=clock),
        transport=in_memory_transport(spa.provider, spa.lock),
    )

    async def sign_in() -> None:
        url = await client.signIn(REDIRECT)
        with spa.lock:
            callback = spa.provider.approve(url, USER)
        await client.handleSignInCallback(callback)

    asyncio.run(sign_in())
    finished = False
    for steps in range(200):
        clock.advance(ACCESS_TOKEN_TTL + 1)
        stale_copy = dict(storage.data)

        async def scenario(steps: int = steps) -> tuple[bool, str | None]:
            leader = asyncio.ensure_future(client.getAccessToken(API))
            for _ in range(steps):
                await asyncio.sleep(0)
            follower = asyncio.ensure_future(client.getAccessToken(API))
            completed = leader.done()
            leader.cancel()
            token = await follower  # never the leader's interruption
            if completed:
                assert leader.result() is not None
            else:
                with pytest.raises(asyncio.CancelledError):
                    await leader
            return completed, token

        completed, token = contextvars.Context().run(asyncio.run, scenario())
        assert token is not None
        # A request that still holds the consumed refresh token (its response never
        # reached the browser) adopts the successor instead of presenting it.
        copy_storage = AsyncSteppedStorage(stale_copy)
        copy = client.logto.session(copy_storage)  # another request, the same process
        assert contextvars.Context().run(asyncio.run, copy.getAccessToken(API2)) is not None
        assert_never_presented_twice(spa)
        if completed:
            finished = True
            break
    assert finished, "the refresh never finished by itself within 200 loop iterations"
    assert grant_alive(spa, storage.data) or grant_alive(spa, copy_storage.data)


def test_async_callback_cancelled_at_every_await_point(spa: ServedProvider, clock: Clock) -> None:
    """On one long-lived loop (an ASGI server's), a callback cancelled at any point never
    costs a second code exchange: the browser's reload of the same callback adopts the
    exchange, or makes it if it never went out."""

    async def scenario(steps: int) -> bool:
        storage = AsyncSteppedStorage()
        client = aio.LogtoClient(
            aio.LogtoConfig(endpoint=spa.url, appId="spa", resources=[API, API2]),
            storage,
            runtime=Runtime(clock=clock),
            transport=in_memory_transport(spa.provider, spa.lock),
        )
        url = await client.signIn(REDIRECT)
        with spa.lock:
            callback = spa.provider.approve(url, USER)
            exchanges = sum(1 for e in spa.provider.log if e.grant_type == "authorization_code")
        cookie = dict(storage.data)
        task = asyncio.ensure_future(client.handleSignInCallback(callback))
        for _ in range(steps):
            await asyncio.sleep(0)
        done = task.done()
        task.cancel()
        with contextlib_suppress():
            await task
        storage.data = dict(cookie)  # the browser reloads with the cookie it still has
        await client.handleSignInCallback(callback)
        assert await client.isAuthenticatedAsync()
        with spa.lock:
            made = sum(1 for e in spa.provider.log if e.grant_type == "authorization_code")
        assert made - exchanges == 1
        return done

    for steps in range(120):
        if asyncio.run(scenario(steps)):
            return
    raise AssertionError("the callback never finished by itself")


class contextlib_suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


class Interrupted(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[Callable[[float], None]]:
    """Raise :class:`Interrupted` in the main thread after some seconds, as a worker
    timeout's signal handler does."""

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGALRM, handler)

    def arm(seconds: float) -> None:
        signal.setitimer(signal.ITIMER_REAL, seconds)

    try:
        yield arm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("after", [0.0005, 0.01, 0.05, 0.2, 0.35])
def test_sync_caller_interrupted_by_a_signal_handler_loses_nothing(
    spa: ServedProvider, clock: Clock, alarm: Callable[[float], None], after: float
) -> None:
    harness = signed_in("sync", spa, clock)
    storage = harness.client.storage
    clock.advance(ACCESS_TOKEN_TTL + 1)
    cookie = dict(storage._data)
    spa.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.3))
    alarm(after)
    try:
        harness.getAccessToken(API)
    except Interrupted:
        pass
    finally:
        alarm(0)
    # The next request still holds the consumed token (the response never reached the
    # browser): it follows the refresh still running, or adopts its kept result.
    stale = MemoryStorage()
    for key, value in cookie.items():
        stale.set(key, value)
    harness.client.storage = stale
    assert harness.getAccessToken(API) is not None
    harness.client.storage = storage
    assert harness.getAccessToken(API) is not None
    assert_never_presented_twice(spa)
    assert grant_alive(spa, stale) or grant_alive(spa, storage)


# ---- storages that fail ----------------------------------------------------------------------


class FailingStorage(Storage):
    """A storage whose n-th write (set or delete) raises."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0
        self.fail_at = fail_at

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def _write(self) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise ConnectionError("redis went away")

    def set(self, key: str, value: str | None) -> None:
        self._write()
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def delete(self, key: str) -> None:
        self._write()
        self.data.pop(key, None)


def script(harness: Harness, clock: Clock) -> None:
    """Every write point of a session's life: sign-in, callback, refreshes, sign-out."""
    harness.sign_in_user()
    clock.advance(ACCESS_TOKEN_TTL + 1)
    harness.getAccessToken(API)
    harness.getAccessToken(API2)
    harness.getOrganizationToken("org-1")
    clock.advance(ACCESS_TOKEN_TTL + 1)
    harness.fetchUserInfo()
    harness.signOut()


def test_a_storage_failing_at_any_write_point(kind: str, spa: ServedProvider, clock: Clock) -> None:
    probe = FailingStorage()
    script(Harness(kind, spa_client(kind, spa, clock, probe), spa), clock)
    assert probe.writes >= 7
    for fail_at in range(1, probe.writes + 1):
        storage = FailingStorage(fail_at)
        harness = Harness(kind, spa_client(kind, spa, clock, storage), spa)
        with pytest.raises(StorageError) as caught:
            script(harness, clock)
        assert isinstance(caught.value.__cause__, ConnectionError)
        assert caught.value.code == "storage.write"
        assert "redis went away" not in caught.value.message  # a storage's text may hold values
        before = stored(storage.data)
        # Never half written: an ID token always comes with the refresh token it was issued
        # with (both of one user), or the session is as it was.
        if before.id_token is not None and before.refresh_token is not None:
            assert harness.client.core.id_token_claims(before).sub == USER
        # The storage works again: the session goes on, no consumed token is presented.
        if before.refresh_token is not None:
            clock.advance(ACCESS_TOKEN_TTL + 1)
            assert harness.getAccessToken(API) is not None
            assert grant_alive(spa, storage.data)
        assert_never_presented_twice(spa)


def test_a_storage_that_fails_to_read_gives_a_typed_error(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    class Broken(Storage):
        def get(self, key: str) -> str | None:
            raise TimeoutError("database locked")

        def set(self, key: str, value: str | None) -> None:
            raise AssertionError("never reached")

        def delete(self, key: str) -> None:
            raise AssertionError("never reached")

    harness = Harness(kind, make_client(kind, served.url, clock, Broken()), served)
    calls: list[Callable[[], Any]] = [
        harness.isAuthenticated,
        lambda: harness.getAccessToken(API),
        lambda: harness.signIn(REDIRECT),
    ]
    for call in calls:
        with pytest.raises(StorageError) as caught:
            call()
        assert caught.value.code == "storage.read"
        assert isinstance(caught.value.__cause__, TimeoutError)


# ---- one grant, many uses ------------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False])
def test_two_resources_at_once_never_present_a_token_twice(
    kind: str, spa: ServedProvider, clock: Clock, shared: bool
) -> None:
    """A page asks for tokens for two APIs at once (a public client rotates on every use):
    the second waits for the rotation, then refreshes with the new token."""
    seed = signed_in(kind, spa, clock)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    spa.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.2))
    storage: Storage = (
        seed.client.storage if shared else ThreadCopyStorage(seed.client.storage._data)
    )
    client = spa_client(kind, spa, clock, storage)
    resources = [API, API2] * 6

    def call(resource: str) -> str | None:
        token: Any = client.getAccessToken(resource)
        result: str | None = asyncio.run(token) if asyncio.iscoroutine(token) else token
        return result

    lock = threading.Lock()
    picks = iter(resources)

    def next_call() -> str | None:
        with lock:
            resource = next(picks)
        return call(resource)

    results = run_threads(len(resources), next_call)
    assert all(results)
    assert_never_presented_twice(spa)
    assert len(presented(spa)) <= 2 * len(resources)
    if shared:
        assert grant_alive(spa, storage)


def test_a_refresh_in_flight_does_not_sign_the_user_back_in(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    harness = signed_in(kind, spa, clock)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    spa.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.5))
    done = threading.Event()
    results: list[Any] = []

    def refresh() -> None:
        results.append(harness.getAccessToken(API))
        done.set()

    thread = threading.Thread(target=refresh)
    thread.start()
    while not presented(spa):  # the refresh request is at the provider
        threading.Event().wait(0.01)
    harness.signOut()
    thread.join(timeout=10)
    assert done.is_set()
    assert harness.isAuthenticated() is False
    assert stored(harness.client.storage) == SessionState()
    assert harness.getAccessToken(API) is None


def test_a_late_refresh_never_lands_in_another_users_session(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    spa.provider.add_user("user-b", name="Bea")
    spa.provider.grant_permissions("user-b", API, ["read"])
    harness = signed_in(kind, spa, clock)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    spa.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.5))
    thread = threading.Thread(target=lambda: harness.getAccessToken(API))
    thread.start()
    while not presented(spa):
        threading.Event().wait(0.01)
    harness.sign_in_user("user-b")  # the same browser session signs in as someone else
    b_session = stored(harness.client.storage)
    thread.join(timeout=10)
    assert stored(harness.client.storage) == b_session
    assert harness.getIdTokenClaims().sub == "user-b"
    assert harness.getAccessTokenClaims(API).sub == "user-b"


def test_the_same_callback_twice_at_once_exchanges_the_code_once(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    seed = MemoryStorage()
    first = Harness(kind, spa_client(kind, spa, clock, seed), spa)
    url = first.signIn(REDIRECT)
    callback = spa.provider.approve(url, USER)
    copies = ThreadCopyStorage(seed._data)  # a double click: the same cookie twice
    client = spa_client(kind, spa, clock, copies)
    spa.provider.faults.add(Fault("token", grant_type="authorization_code", delay=0.3))

    def handle() -> str | None:
        result = client.handleSignInCallback(callback)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        return stored(copies).refresh_token  # what this request's cookie now holds

    first_copy, second_copy = run_threads(2, handle)
    assert first_copy is not None and first_copy == second_copy
    assert sum(1 for e in spa.provider.log if e.grant_type == "authorization_code") == 1
    assert spa.provider.is_refresh_token_active(first_copy)


def test_a_resource_not_configured_is_refused_locally(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    harness = signed_in(kind, spa, clock)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    before = len(spa.provider.log)
    with pytest.raises(LogtoUsageError) as caught:
        harness.getAccessToken("https://photos.example/api")
    assert caught.value.code == "usage.resource_not_configured"
    assert "LogtoConfig.resources" in str(caught.value)
    assert len(spa.provider.log) == before
    assert harness.getAccessToken(API) is not None and grant_alive(spa, harness.client.storage)


def test_user_info_after_the_grant_died_says_why(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    harness = signed_in(kind, spa, clock)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    spa.provider.revoke_grants(USER)
    assert harness.isAuthenticated() is True
    with pytest.raises(SignInRequiredError) as caught:
        harness.fetchUserInfo()
    assert caught.value.code == "sign_in_required.invalid_grant"
    assert "no longer valid" in caught.value.message


def test_callback_accepts_a_url_object(kind: str, spa: ServedProvider, clock: Clock) -> None:
    class URL:  # Starlette's URL, werkzeug's, yarl's: str() is the URL
        def __init__(self, text: str) -> None:
            self._text = text

        def __str__(self) -> str:
            return self._text

    harness = Harness(kind, spa_client(kind, spa, clock, MemoryStorage()), spa)
    url = harness.signIn(REDIRECT)
    harness.handleSignInCallback(URL(spa.provider.approve(url, USER)))
    assert harness.isAuthenticated() is True


def test_errors_are_typed(kind: str) -> None:
    assert issubclass(StorageError, LogtoError)
    module: Any = sync if kind == "sync" else aio
    assert module.LogtoError is LogtoError
