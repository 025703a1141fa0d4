"""Identical discovery/JWKS requests in flight at once share one answer (both clients)."""

from __future__ import annotations

import asyncio
import concurrent.futures
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
