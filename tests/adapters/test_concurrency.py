"""Single flight: concurrent callers of one session share one refresh, for both clients."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from logto_adapters import aio
from logto_adapters.testing import ServedProvider
from logto_adapters.transport_requests import RequestsTransport
from logto_core.errors import TransportError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.session import SessionState, StorageKey
from logto_core.storage import MemoryStorage, Storage
from logto_core.testing import ACCESS_TOKEN_TTL, Fault
from tests.factories import stored

from .conftest import API, Clock, Harness, make_client

CALLERS = 50


class ThreadCopyStorage(Storage):
    """Each thread sees its own copy of a starting session, like per-request cookie sessions."""

    def __init__(self, initial: dict[str, str]) -> None:
        self._initial = dict(initial)
        self._local = threading.local()

    @property
    def data(self) -> dict[str, str]:
        if not hasattr(self._local, "data"):
            self._local.data = dict(self._initial)
        return self._local.data  # type: ignore[no-any-return]

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def expire_and_slow_down(harness: Harness, clock: Clock, *, delay: float = 0.3) -> None:
    harness.sign_in_user()
    clock.advance(ACCESS_TOKEN_TTL + 1)
    harness.provider.faults.add(Fault("token", grant_type="refresh_token", delay=delay))


def run_threads(count: int, target: Any) -> list[Any]:
    barrier = threading.Barrier(count, timeout=10)

    def call(_: int) -> Any:
        barrier.wait()
        return target()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count), timeout=30))


def test_sync_threads_share_one_refresh(
    served: ServedProvider, clock: Clock, storage: Storage
) -> None:
    harness = Harness("sync", make_client("sync", served.url, clock, storage), served)
    expire_and_slow_down(harness, clock)
    tokens = run_threads(CALLERS, lambda: harness.client.getAccessToken(API))
    assert harness.requests_to("token", "refresh_token") == 1
    assert len(set(tokens)) == 1 and tokens[0] is not None
    assert harness.client.getAccessToken(API) == tokens[0]


def test_aio_gather_shares_one_refresh(
    served: ServedProvider, clock: Clock, storage: Storage
) -> None:
    harness = Harness("aio", make_client("aio", served.url, clock, storage), served)
    expire_and_slow_down(harness, clock)

    async def many() -> list[str | None]:
        client: aio.LogtoClient = harness.client
        return list(await asyncio.gather(*(client.getAccessToken(API) for _ in range(CALLERS))))

    tokens = asyncio.run(many())
    assert harness.requests_to("token", "refresh_token") == 1
    assert len(set(tokens)) == 1 and tokens[0] is not None


def test_aio_loops_in_several_threads_share_one_refresh(
    served: ServedProvider, clock: Clock, storage: Storage
) -> None:
    harness = Harness("aio", make_client("aio", served.url, clock, storage), served)
    expire_and_slow_down(harness, clock)

    async def some() -> list[str | None]:
        client: aio.LogtoClient = harness.client
        return list(await asyncio.gather(*(client.getAccessToken(API) for _ in range(10))))

    batches = run_threads(5, lambda: asyncio.run(some()))
    tokens = {token for batch in batches for token in batch}
    assert harness.requests_to("token", "refresh_token") == 1
    assert len(tokens) == 1 and None not in tokens


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_per_request_storages_adopt_the_leader_writes(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    # A public client rotates the refresh token on every refresh: every copy must end up with
    # the new one, and nobody may present the consumed one.
    served.provider.add_client("spa", redirect_uris=["http://127.0.0.1:9/callback"], kind="spa")
    seed = MemoryStorage()
    signer = Harness(
        kind,
        make_client(kind, served.url, clock, seed, config={"appId": "spa", "appSecret": None}),
        served,
    )
    expire_and_slow_down(signer, clock)
    initial = {key: value for key in StorageKey.ALL if (value := seed.get(key)) is not None}
    copies = ThreadCopyStorage(initial)
    client = make_client(
        kind, served.url, clock, copies, config={"appId": "spa", "appSecret": None}
    )

    def call() -> tuple[str | None, str | None]:
        if kind == "sync":
            token = client.getAccessToken(API)
        else:
            token = asyncio.run(client.getAccessToken(API))
        return token, stored(copies).refresh_token

    results = run_threads(20, call)
    assert signer.requests_to("token", "refresh_token") == 1
    assert len({token for token, _ in results}) == 1
    refreshed = {refresh for _, refresh in results}
    assert len(refreshed) == 1
    (new_refresh,) = refreshed
    assert new_refresh != SessionState.from_values(initial).refresh_token
    assert served.provider.is_refresh_token_active(str(new_refresh))


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_followers_share_a_transient_failure_then_retry(
    kind: str, served: ServedProvider, clock: Clock, storage: Storage
) -> None:
    harness = Harness(kind, make_client(kind, served.url, clock, storage), served)
    harness.sign_in_user()
    clock.advance(ACCESS_TOKEN_TTL + 1)
    harness.provider.faults.add(Fault("token", grant_type="refresh_token", status=503, delay=0.3))

    def call() -> Any:
        try:
            return harness.getAccessToken(API)
        except TransportError as error:
            return error

    results = run_threads(10, call)
    assert harness.requests_to("token", "refresh_token") == 1
    assert all(isinstance(r, TransportError) and r.status == 503 for r in results)
    # Not kept: the next caller tries again and succeeds.
    assert harness.getAccessToken(API) is not None
    assert harness.requests_to("token", "refresh_token") == 2


def test_aio_two_successive_loops(served: ServedProvider, clock: Clock) -> None:
    client = make_client("aio", served.url, clock)
    harness = Harness("aio", client, served)
    harness.sign_in_user()
    first = asyncio.run(client.fetchUserInfo())
    clock.advance(ACCESS_TOKEN_TTL + 1)
    second = asyncio.run(client.getAccessTokenClaims(API))
    assert first.sub == second.sub
    assert isinstance(client, aio.LogtoClient)


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_rotation_with_a_shared_storage_never_goes_back(
    kind: str, served: ServedProvider, clock: Clock, storage: Storage
) -> None:
    served.provider.add_client("spa", redirect_uris=["http://127.0.0.1:9/callback"], kind="spa")
    spa = {"appId": "spa", "appSecret": None}
    harness = Harness(kind, make_client(kind, served.url, clock, storage, config=spa), served)
    expire_and_slow_down(harness, clock)
    old = harness.getRefreshToken()
    tokens = run_threads(12, lambda: harness.getAccessToken(API))
    new = harness.getRefreshToken()
    assert len(set(tokens)) == 1
    assert new != old and served.provider.is_refresh_token_active(str(new))
    assert harness.requests_to("token", "refresh_token") == 1


def test_userinfo_reports_a_failed_refresh(harness: Harness, clock: Clock) -> None:
    harness.sign_in_user()
    clock.advance(ACCESS_TOKEN_TTL + 1)
    harness.provider.faults.add(Fault("token", grant_type="refresh_token", status=502))
    with pytest.raises(TransportError):
        harness.fetchUserInfo()
    assert harness.requests_to("userinfo") == 0
    assert harness.fetchUserInfo().sub == harness.getIdTokenClaims().sub


def test_sync_leader_crash_releases_followers(served: ServedProvider, clock: Clock) -> None:
    real = RequestsTransport(timeout=2)

    def transport(request: HttpRequest) -> HttpResponse:
        if request.purpose == "token" and b"refresh_token" in (request.body or b""):
            time.sleep(0.3)
            raise RuntimeError("a bug in a custom transport")
        return real(request)

    harness = Harness("sync", make_client("sync", served.url, clock, transport=transport), served)
    harness.sign_in_user()
    clock.advance(ACCESS_TOKEN_TTL + 1)

    def call() -> Any:
        try:
            return harness.getAccessToken(API)
        except RuntimeError:
            return "crashed"
        except TransportError as error:
            return error.code

    results = run_threads(5, call)
    assert sorted(results) == ["crashed"] + ["transport.refresh_interrupted"] * 4
    real.close()
