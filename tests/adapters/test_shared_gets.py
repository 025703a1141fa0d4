"""Identical discovery/JWKS requests in flight at once share one exchange (both clients),
through the coordinator (:mod:`logto_core.shared_fetch`), across threads and event loops; a
shared failure reaches each caller as its own typed error; other requests are never shared;
a leader that hangs holds its followers no longer than the wait bound."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider
from logto_core import transport_policy as policy
from logto_core.errors import ProviderResponseError, TransportError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.singleflight import Ticket
from logto_core.testing import Fault
from tests.adapters.conftest import REDIRECT, Clock, Harness, make_client

N = 8


def _concurrently(kind: str, client: Any, call: Callable[[Any], Any] | None = None) -> list[Any]:
    """N calls at once (sign-ins by default): threads for the sync client, one thread per
    event loop for the async one (the sharing must work across loops too)."""
    method = call if call is not None else (lambda c: c.signIn(REDIRECT))

    def one(_: int) -> Any:
        try:
            if kind == "sync":
                return method(client)
            return asyncio.run(method(client))
        except Exception as error:
            return error

    with concurrent.futures.ThreadPoolExecutor(N) as pool:
        return list(pool.map(one, range(N)))


def _requests_to(served: ServedProvider, endpoint: str) -> int:
    return sum(1 for entry in served.provider.log if entry.endpoint == endpoint)


class _Claims:
    """Counts the claims of fetch keys a coordinator is asked; ``all_in`` is set when ``N``
    callers claimed (the leader, then every follower)."""

    def __init__(self) -> None:
        self.count = 0
        self.keys: list[str] = []
        self.all_in = threading.Event()
        self._lock = threading.Lock()

    def saw(self, key: str) -> None:
        with self._lock:
            self.keys.append(key)
            if key.startswith("fetch:"):
                self.count += 1
                if self.count >= N:
                    self.all_in.set()


def _coordinator(kind: str, claims: _Claims, clock: Clock) -> Any:
    runtime = Runtime(clock=clock)
    if kind == "sync":

        class Counting(sync.MemoryCoordinator):
            def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
                claims.saw(key)
                return super().claim(key, lease=lease, supersede=supersede)

        return Counting(runtime)

    class AsyncCounting(aio.MemoryCoordinator):
        async def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
            claims.saw(key)
            return await super().claim(key, lease=lease, supersede=supersede)

    return AsyncCounting(runtime)


class _HeldTransport:
    """A transport whose discovery requests wait for ``release`` (10 s at most), then get
    ``answer``'s response or raise its error; it counts them."""

    def __init__(self, kind: str, answer: Callable[[HttpRequest], HttpResponse]) -> None:
        self.kind = kind
        self.answer = answer
        self.release = threading.Event()
        self.sent: list[HttpRequest] = []

    def _send(self, request: HttpRequest) -> HttpResponse:
        assert request.purpose == "discovery", request
        self.sent.append(request)
        self.release.wait(10)
        return self.answer(request)

    def __call__(self, request: HttpRequest) -> Any:
        if self.kind == "sync":
            return self._send(request)
        return asyncio.to_thread(self._send, request)


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_concurrent_first_requests_make_one_discovery_request(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    served.provider.faults.add(Fault(endpoint="discovery", delay=0.5))
    results = _concurrently(kind, make_client(kind, served.url, clock))
    assert all(isinstance(r, str) for r in results)
    assert len(set(results)) == N  # each sign-in has its own state
    assert _requests_to(served, "discovery") == 1


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_followers_share_the_leaders_retried_exchange(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    """The whole exchange is shared, retries included: one failed attempt and its retry,
    not a retry per caller."""
    served.provider.faults.add(Fault(endpoint="discovery", delay=0.5, status=503, times=1))
    results = _concurrently(kind, make_client(kind, served.url, clock, max_retries=2))
    assert all(isinstance(r, str) for r in results)
    assert _requests_to(served, "discovery") == 2


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_shared_error_answer_reaches_every_caller(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    served.provider.faults.add(Fault(endpoint="discovery", delay=0.5, status=404))
    results = _concurrently(kind, make_client(kind, served.url, clock, max_retries=0))
    assert all(isinstance(r, ProviderResponseError) for r in results)
    assert _requests_to(served, "discovery") == 1


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_shared_transport_failure_gives_each_caller_its_own_typed_error(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    served.provider.faults.add(Fault(endpoint="discovery", delay=1.5))
    client = make_client(kind, served.url, clock, max_retries=0, timeout=(0.5, 0.5))
    results = _concurrently(kind, client)
    assert all(isinstance(r, TransportError) for r in results)
    assert len({id(r) for r in results}) == N
    assert {r.code for r in results} == {"transport.timeout"}
    assert _requests_to(served, "discovery") == 1


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_shared_failure_keeps_its_cause_for_every_waiter(kind: str, clock: Clock) -> None:
    """A TLS failure's reason (the cause) reaches each waiter of a shared fetch, not only the
    one that sent it (rebuilt for each: the reason travels as text); no waiter's error
    carries another's traceback or context."""
    reason = "certificate verify failed: unable to get local issuer certificate"

    def refused(request: HttpRequest) -> HttpResponse:
        raise policy.tls_failed(
            request, reason, verification=True, verify_code=20, trust_fix="pass a CA bundle"
        )

    transport = _HeldTransport(kind, refused)
    claims = _Claims()
    client = make_client(
        kind,
        "https://tenant.example",
        clock,
        transport=transport,
        coordinator=_coordinator(kind, claims, clock),
        max_retries=0,
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(_concurrently, kind, client)
        assert claims.all_in.wait(10)  # every caller joined the first one's fetch
        transport.release.set()
        errors = running.result(20)
    assert len(transport.sent) == 1
    assert all(isinstance(e, TransportError) and e.code == "transport.tls" for e in errors)
    assert len({id(e) for e in errors}) == N and len({id(e.__cause__) for e in errors}) == N
    for error in errors:
        assert isinstance(error.__cause__, policy.TlsFailure)
        assert error.__cause__.reason == reason and error.__cause__.verify_code == 20
        assert reason in error.message
        assert error.__context__ is None


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_hanging_leader_holds_its_followers_no_longer_than_the_wait(
    kind: str, clock: Clock
) -> None:
    def late(request: HttpRequest) -> HttpResponse:
        raise policy.connection_failed(request, "released at the end of the test")

    transport = _HeldTransport(kind, late)
    client = make_client(
        kind,
        "https://tenant.example",
        clock,
        transport=transport,
        coordinator=_coordinator(kind, _Claims(), clock),
        max_retries=0,
        refresh_wait=0.5,
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(_concurrently, kind, client)
        try:
            finished, _ = concurrent.futures.wait([running], timeout=2)
            assert not finished  # the leader still hangs
            assert len(transport.sent) == 1
        finally:
            transport.release.set()
        results = running.result(20)
    gave_up = [
        r for r in results if isinstance(r, TransportError) and "gave up waiting" in r.message
    ]
    assert len(gave_up) == N - 1  # every follower, after the wait bound
    assert all(r.code == "transport.timeout" for r in gave_up)
    assert all("GET https://tenant.example/oidc/.well-known" in r.message for r in gave_up)
    assert len(transport.sent) == 1


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_request_that_is_not_idempotent_is_never_shared(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    """N identical userinfo GETs at once (one session, one cached token): N requests, and
    the coordinator never hears of them."""
    claims = _Claims()
    client = make_client(kind, served.url, clock, coordinator=_coordinator(kind, claims, clock))
    harness = Harness(kind, client, served)
    harness.sign_in_user()
    before = list(claims.keys)
    served.provider.faults.add(Fault(endpoint="userinfo", delay=0.5, times=N))
    results = _concurrently(kind, client, lambda c: c.fetchUserInfo())
    assert all(not isinstance(r, BaseException) for r in results), results
    assert _requests_to(served, "userinfo") == N
    assert claims.keys == before  # nothing claimed (the token was cached)
