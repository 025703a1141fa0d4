"""What the clients make of stored sessions and cached tokens, on both clients: hostile or
corrupt values, sessions of the official SDK, refresh storms, clocks that step, storages that
are slow for one user only."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from logto_adapters.testing import ServedProvider
from logto_core.errors import SignInRequiredError
from logto_core.session import StorageKey
from logto_core.storage import MemoryStorage, Storage
from logto_core.testing import ACCESS_TOKEN_TTL
from tests.factories import stored

from .conftest import API, REDIRECT, USER, Clock, Harness, make_client
from .test_concurrency import run_threads

HOSTILE = [
    "[" * 200_000,
    '{"v":1,"idToken":' * 30_000 + "0" + "}" * 30_000,
    '{"v":1,"refreshToken":NaN,"idToken":Infinity}',
    "x" * 2_000_000,
    "\udcff\ud800",
]


@pytest.mark.parametrize(
    "value", HOSTILE, ids=["deep-list", "deep-object", "nan", "huge", "surrogates"]
)
def test_hostile_stored_values_read_as_signed_out(
    harness: Harness, storage: Storage, value: str
) -> None:
    storage.set(StorageKey.SESSION, value)
    for _ in range(3):  # every call, not only the first
        assert harness.isAuthenticated() is False
        assert harness.getAccessToken(API) is None
        with pytest.raises(SignInRequiredError):
            harness.getIdTokenClaims()
    url = harness.signIn(REDIRECT)  # and the session can start over
    harness.handleSignInCallback(harness.provider.approve(url, USER))
    assert harness.isAuthenticated() is True


def test_a_corrupt_id_token_is_absent_for_every_getter(harness: Harness, storage: Storage) -> None:
    harness.sign_in_user()
    data = json.loads(str(storage.get(StorageKey.SESSION)))
    data["idToken"] = data["idToken"][:20] + "!" + data["idToken"][21:]
    storage.set(StorageKey.SESSION, json.dumps(data))
    assert harness.isAuthenticated() is False
    assert harness.getIdToken() is None
    with pytest.raises(SignInRequiredError):
        harness.getIdTokenClaims()


def test_an_official_sdk_session_goes_on(kind: str, served: ServedProvider, clock: Clock) -> None:
    """Keys written by the official SDK: read, used, and replaced by one value at the first
    save; a refresh token without its ID token recovers the session with one refresh."""
    seed = MemoryStorage()
    Harness(kind, make_client(kind, served.url, clock, seed), served).sign_in_user()
    session = stored(seed)
    legacy = MemoryStorage()
    legacy.set(StorageKey.REFRESH_TOKEN, str(session.refresh_token))  # no ID token
    harness = Harness(kind, make_client(kind, served.url, clock, legacy), served)
    assert harness.isAuthenticated() is False
    assert harness.getAccessToken(API) is not None
    assert harness.isAuthenticated() is True
    assert harness.getIdTokenClaims().sub == USER
    assert legacy.get(StorageKey.REFRESH_TOKEN) is None
    assert legacy.get(StorageKey.SESSION) is not None
    assert harness.getAccessToken(API) is not None
    assert harness.requests_to("token", "refresh_token") == 1  # once, never in a loop


def test_a_short_lived_token_is_not_refreshed_on_every_page_view(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    """A resource whose tokens live 20 s with the default 30 s margin: 53 page views over
    3 s make one refresh, not 53."""
    short = "https://short.example.com"
    served.provider.add_resource(short, ["read"], access_token_ttl=20)
    served.provider.grant_permissions(USER, short, ["read"])
    client = make_client(kind, served.url, clock, config={"resources": [API, short]})
    harness = Harness(kind, client, served)
    harness.sign_in_user()
    tokens = set()
    for _ in range(53):
        tokens.add(harness.getAccessToken(short))
        clock.advance(3 / 53)
    assert len(tokens) == 1 and harness.requests_to("token", "refresh_token") == 1
    clock.advance(10)  # past half of its life: refreshed once more
    assert harness.getAccessToken(short) not in tokens


def test_a_clock_stepping_back_never_serves_a_token_past_its_exp(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    """Tokens cached while the client's clock ran an hour fast are not served past their own
    ``exp`` once the clock is corrected."""
    offset = [3600.0]

    class FastClock(Clock):
        def __call__(self) -> float:
            return clock.now + offset[0]

    client = make_client(kind, served.url, FastClock())
    harness = Harness(kind, client, served)
    harness.sign_in_user()
    first = harness.getAccessToken(API)
    assert first is not None
    offset[0] = 0.0  # the clock is stepped back to the right time
    clock.advance(ACCESS_TOKEN_TTL - 10)  # the first token expires in 10 s (provider time)
    second = harness.getAccessToken(API)
    assert second is not None and second != first
    assert harness.requests_to("token", "refresh_token") == 2


class GatedStorage(Storage):
    """A storage whose writes wait for a gate (a slow Redis, a locked row)."""

    def __init__(self) -> None:
        self.inner = MemoryStorage()
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def get(self, key: str) -> str | None:
        return self.inner.get(key)

    def set(self, key: str, value: str | None) -> None:
        self.waiting.set()
        assert self.gate.wait(30)
        self.inner.set(key, value)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


class PerThreadStorage(Storage):
    """The storage of the user the current thread serves, as a web framework's request-local
    session: one client, many users."""

    def __init__(self) -> None:
        self._local = threading.local()

    def use(self, storage: Storage) -> None:
        self._local.storage = storage

    def get(self, key: str) -> str | None:
        return self._local.storage.get(key)  # type: ignore[no-any-return]

    def set(self, key: str, value: str | None) -> None:
        self._local.storage.set(key, value)

    def delete(self, key: str) -> None:
        self._local.storage.delete(key)


@pytest.mark.parametrize("signed_in_already", [False, True])
def test_one_users_slow_storage_never_holds_another_user(
    kind: str, served: ServedProvider, clock: Clock, signed_in_already: bool
) -> None:
    """User A's save hangs (a slow Redis, a locked row): user B of the same client signs in
    and refreshes meanwhile. Saves are serialised per session, never across sessions."""
    router = PerThreadStorage()
    harness = Harness(kind, make_client(kind, served.url, clock, router), served)
    slow = GatedStorage()
    slow.gate.set()
    router.use(slow)
    if signed_in_already:
        harness.sign_in_user()
        clock.advance(ACCESS_TOKEN_TTL + 1)
    slow.gate.clear()
    slow.waiting.clear()
    done: list[Any] = []

    def user_a() -> None:
        router.use(slow)
        done.append(harness.getAccessToken(API) if signed_in_already else harness.signIn(REDIRECT))

    thread = threading.Thread(target=user_a)
    thread.start()
    assert slow.waiting.wait(10)  # user A's save hangs
    router.use(MemoryStorage())
    harness.sign_in_user()  # user B signs in meanwhile, and is not held
    assert harness.getAccessToken(API) is not None and not done
    slow.gate.set()
    thread.join(10)
    assert done and done[0]


def test_a_client_clock_ahead_of_the_providers_causes_no_refresh_storm(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    """The client's clock runs two minutes ahead of Logto's: a token that lives 20 s is
    already past its ``exp`` by the client's clock when it arrives. Its lifetime is taken
    from its own claims (``exp - iat``), so it is used for its life, by sequential page views
    and by concurrent callers alike: one refresh, not one per call."""
    short = "https://short.example.com"
    served.provider.add_resource(short, ["read"], access_token_ttl=20)
    served.provider.grant_permissions(USER, short, ["read"])

    class AheadClock(Clock):
        def __call__(self) -> float:
            return clock.now + 120

    client = make_client(kind, served.url, AheadClock(), config={"resources": [API, short]})
    harness = Harness(kind, client, served)
    harness.sign_in_user()
    for _ in range(20):
        assert harness.getAccessToken(short) is not None
        clock.advance(0.1)
    assert harness.requests_to("token", "refresh_token") == 1
    clock.advance(30)  # expired for both clocks: every concurrent caller gets the one refresh
    tokens = run_threads(30, lambda: harness.getAccessToken(short))
    assert len(set(tokens)) == 1 and None not in tokens
    assert harness.requests_to("token", "refresh_token") == 2
