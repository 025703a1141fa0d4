"""Identical discovery/JWKS requests in flight at once share one answer (both clients)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

import pytest

from logto_core.errors import ProviderResponseError, TransportError
from logto_core.testing import Fault
from tests.adapters.conftest import REDIRECT, Clock, make_client

N = 8


def _concurrently(kind: str, client: Any) -> list[BaseException | str]:
    """N sign-ins at once: threads for the sync client, one thread per event loop for the
    async one (the sharing must work across loops too)."""

    def one(_: int) -> BaseException | str:
        try:
            if kind == "sync":
                return str(client.signIn(REDIRECT))
            return str(asyncio.run(client.signIn(REDIRECT)))
        except Exception as error:
            return error

    with concurrent.futures.ThreadPoolExecutor(N) as pool:
        return list(pool.map(one, range(N)))


def _discovery_requests(served: Any) -> int:
    return sum(1 for entry in served.provider.log if entry.endpoint == "discovery")


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_concurrent_first_requests_make_one_discovery_request(
    kind: str, served: Any, clock: Clock
) -> None:
    served.provider.faults.add(Fault(endpoint="discovery", delay=0.5))
    results = _concurrently(kind, make_client(kind, served.url, clock))
    assert all(isinstance(r, str) for r in results)
    assert len(set(results)) == N  # each sign-in has its own state
    assert _discovery_requests(served) == 1


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_shared_error_answer_reaches_every_caller(kind: str, served: Any, clock: Clock) -> None:
    served.provider.faults.add(Fault(endpoint="discovery", delay=0.5, status=404))
    results = _concurrently(kind, make_client(kind, served.url, clock, max_retries=0))
    assert all(isinstance(r, ProviderResponseError) for r in results)
    assert _discovery_requests(served) == 1


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_a_shared_transport_failure_gives_each_caller_its_own_typed_error(
    kind: str, served: Any, clock: Clock
) -> None:
    served.provider.faults.add(Fault(endpoint="discovery", delay=1.5))
    client = make_client(kind, served.url, clock, max_retries=0, timeout=(0.5, 0.5))
    results = _concurrently(kind, client)
    assert all(isinstance(r, TransportError) for r in results)
    assert len({id(r) for r in results}) == N
    assert _discovery_requests(served) == 1


def test_a_shared_failure_keeps_its_cause_for_every_waiter() -> None:
    """A TLS failure's reason (the cause) reaches each waiter of a shared fetch, not only the
    one that sent it; no waiter's error carries another's traceback or context."""
    from logto_adapters._common import SharedGets
    from logto_core.http import HttpRequest

    gets = SharedGets()
    request = HttpRequest.get("https://tenant.example/oidc/jwks", purpose="jwks")
    started, release = threading.Event(), threading.Event()
    reason = ValueError("certificate verify failed: unable to get local issuer certificate")

    def failing(_: HttpRequest) -> Any:
        started.set()
        release.wait(5)
        error = TransportError("GET https://tenant.example/oidc/jwks: TLS", code="transport.tls")
        error.__cause__ = reason
        raise error

    errors: list[BaseException] = []

    def leader() -> None:
        try:
            gets.send(request, failing, 5)
        except TransportError as error:
            errors.append(error)

    claimed = threading.Event()
    claim = gets._claim

    def observed_claim(request: HttpRequest) -> Any:
        answer = claim(request)
        claimed.set()
        return answer

    first = threading.Thread(target=leader)
    first.start()
    assert started.wait(5)
    gets._claim = observed_claim  # type: ignore[method-assign]
    second = threading.Thread(target=lambda: errors.append(_follow(gets, request)))
    second.start()
    assert claimed.wait(5)  # the second caller follows the first's request
    release.set()
    first.join(5)
    second.join(5)
    assert len(errors) == 2 and errors[0] is not errors[1]
    assert all(e.__cause__ is reason for e in errors)
    assert errors[1].__context__ is None


def _follow(gets: Any, request: Any) -> BaseException:
    try:
        gets.send(request, lambda _: None, 5)
    except TransportError as error:
        return error
    raise AssertionError("the shared failure did not reach the follower")
