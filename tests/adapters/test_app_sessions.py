"""One ``Logto`` per app, one ``logto.session(storage)`` per request: sessions made per request
share the single flight, the provider cache and the connections of the object the app keeps.

The deployment these tests stand for: a web app whose sessions live server-side (Redis, a
database) and that builds a storage object per request for the request's session id, the
FastAPI ``Depends`` pattern. Each request here gets a fresh storage object over one shared
record and a fresh session object.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider
from logto_core.errors import LogtoUsageError, ProviderError
from logto_core.runtime import Runtime
from logto_core.storage import Storage
from logto_core.testing import ACCESS_TOKEN_TTL, Fault

from .conftest import API, REDIRECT, USER, Clock, make_config
from .test_concurrency import run_threads

REQUESTS = 20


class ServerSideRecord:
    """One user's session record in a server-side store, shared by every request."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, str] = {}


class RecordStorage(Storage):
    """The storage object a request builds for its session id (a new one per request)."""

    def __init__(self, record: ServerSideRecord) -> None:
        self._record = record

    def get(self, key: str) -> str | None:
        with self._record.lock:
            return self._record.values.get(key)

    def set(self, key: str, value: str | None) -> None:
        with self._record.lock:
            if value is None:
                self._record.values.pop(key, None)
            else:
                self._record.values[key] = value

    def delete(self, key: str) -> None:
        self.set(key, None)


def make_logto(kind: str, served: ServedProvider, clock: Clock, **options: Any) -> Any:
    """The app's one object, for a public client (its refresh token rotates on every use, so
    a second refresh with the consumed one would make the provider revoke the grant)."""
    served.provider.add_client("spa", redirect_uris=[REDIRECT], kind="spa")
    module: Any = sync if kind == "sync" else aio
    options.setdefault("timeout", (2.0, 5.0))
    config = make_config(served.url, appId="spa", appSecret=None)
    return module.Logto(config, runtime=Runtime(clock=clock), **options)


def call(result: Any) -> Any:
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def sign_in(logto: Any, served: ServedProvider, storage: Storage) -> None:
    session = logto.session(storage)
    url = call(session.signIn(REDIRECT))
    call(session.handleSignInCallback(served.provider.approve(url, USER)))


def refreshes(served: ServedProvider) -> int:
    return sum(
        1
        for entry in served.provider.log
        if entry.endpoint == "token" and entry.grant_type == "refresh_token"
    )


def requests_to(served: ServedProvider, endpoint: str) -> int:
    return sum(1 for entry in served.provider.log if entry.endpoint == endpoint)


def test_sync_sessions_per_request_share_one_refresh(served: ServedProvider, clock: Clock) -> None:
    logto = make_logto("sync", served, clock)
    record = ServerSideRecord()
    sign_in(logto, served, RecordStorage(record))
    clock.advance(ACCESS_TOKEN_TTL + 1)
    served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.3))

    tokens = run_threads(REQUESTS, lambda: logto.session(RecordStorage(record)).getAccessToken(API))

    assert refreshes(served) == 1
    assert len(set(tokens)) == 1 and tokens[0] is not None
    after = logto.session(RecordStorage(record))
    assert after.isAuthenticated()
    refresh_token = after.getRefreshToken()
    assert refresh_token is not None and served.provider.is_refresh_token_active(refresh_token)
    assert after.getAccessToken(API) == tokens[0]  # cached: no second refresh
    assert refreshes(served) == 1


def test_aio_sessions_per_request_share_one_refresh(served: ServedProvider, clock: Clock) -> None:
    logto = make_logto("aio", served, clock)
    record = ServerSideRecord()
    sign_in(logto, served, RecordStorage(record))
    clock.advance(ACCESS_TOKEN_TTL + 1)
    served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.3))

    async def requests() -> list[str | None]:
        async def one_request() -> str | None:
            session = logto.session(RecordStorage(record))
            token: str | None = await session.getAccessToken(API)
            return token

        return list(await asyncio.gather(*(one_request() for _ in range(REQUESTS))))

    tokens = asyncio.run(requests())

    assert refreshes(served) == 1
    assert len(set(tokens)) == 1 and tokens[0] is not None
    after = logto.session(RecordStorage(record))
    refresh_token = after.getRefreshToken()
    assert refresh_token is not None and served.provider.is_refresh_token_active(refresh_token)
    assert asyncio.run(after.getAccessToken(API)) == tokens[0]
    assert refreshes(served) == 1


def test_aio_sessions_on_fresh_loops_share_one_refresh(
    served: ServedProvider, clock: Clock
) -> None:
    """Flask's async views: every request on a new event loop, in its own thread."""
    logto = make_logto("aio", served, clock)
    record = ServerSideRecord()
    sign_in(logto, served, RecordStorage(record))
    clock.advance(ACCESS_TOKEN_TTL + 1)
    served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.3))

    tokens = run_threads(
        REQUESTS,
        lambda: asyncio.run(logto.session(RecordStorage(record)).getAccessToken(API)),
    )

    assert refreshes(served) == 1
    assert len(set(tokens)) == 1 and tokens[0] is not None


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_sessions_share_the_provider_cache(kind: str, served: ServedProvider, clock: Clock) -> None:
    logto = make_logto(kind, served, clock)
    for _ in range(3):  # three users, three requests each building a session
        sign_in(logto, served, RecordStorage(ServerSideRecord()))
    assert requests_to(served, "discovery") == 1
    assert requests_to(served, "jwks") == 1


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_an_exported_provider_cache_saves_the_next_process_its_fetches(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    first = make_logto(kind, served, clock)
    sign_in(first, served, RecordStorage(ServerSideRecord()))
    exported = first.exportProviderCache()
    assert first.export_provider_cache() == exported
    assert requests_to(served, "discovery") == 1 and requests_to(served, "jwks") == 1

    module: Any = sync if kind == "sync" else aio
    config = make_config(served.url, appId="spa", appSecret=None)
    second = module.Logto(config, runtime=Runtime(clock=clock), provider_cache=exported)
    sign_in(second, served, RecordStorage(ServerSideRecord()))
    assert requests_to(served, "discovery") == 1
    assert requests_to(served, "jwks") == 1


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_provider_cache_of_another_tenant_is_refused(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    first = make_logto(kind, served, clock)
    sign_in(first, served, RecordStorage(ServerSideRecord()))
    exported = first.exportProviderCache()
    module: Any = sync if kind == "sync" else aio
    elsewhere = make_config("https://other-tenant.example.com", appId="spa", appSecret=None)
    with pytest.raises(ProviderError) as caught:
        module.Logto(elsewhere, provider_cache=exported)
    assert caught.value.code == "provider_state.cache_invalid"
    assert "issuer" in caught.value.message
    with pytest.raises(ProviderError):
        module.Logto(elsewhere, provider_cache="{not json")
    with pytest.raises(LogtoUsageError) as usage:
        module.Logto(elsewhere, provider_cache=b"{}")
    assert usage.value.code == "usage.provider_cache"


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_an_unknown_sign_in_option_is_refused_before_anything_is_stored(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    logto = make_logto(kind, served, clock)
    record = ServerSideRecord()
    session = logto.session(RecordStorage(record))
    with pytest.raises(LogtoUsageError) as caught:
        call(session.signIn(REDIRECT, loginhint="ada@example.com"))
    assert caught.value.code == "usage.sign_in_option"
    assert "'loginhint'" in caught.value.message and "loginHint" in caught.value.message
    assert record.values == {}
    assert requests_to(served, "discovery") == 0


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_the_tutorial_client_is_a_session_of_its_own_logto(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    module: Any = sync if kind == "sync" else aio
    config = make_config(served.url)
    client = module.LogtoClient(config, runtime=Runtime(clock=clock))
    assert isinstance(client, module.LogtoSession)
    assert isinstance(client.logto, module.Logto)
    assert client.config is config and client.logto.config is config
    other = module.LogtoClient(config)
    assert other.logto is not client.logto  # a client per request shares nothing
    session = client.logto.session()
    assert session.logto is client.logto and session.storage is not client.storage
    assert not hasattr(session, "__dict__")  # slots: a session is a few attributes
