"""Both clients do the core's waits (:class:`~logto_core.sleep.Sleep`): until the time the
core asked for on the runtime's clock, never longer than ``MAX_SLEEP``.

The clients run on a fake clock standing still in 2023 (far from the real time): a client
that measured the wait with any other clock than its runtime's would not wait at all. Each
wait here comes from a discovery retry whose ``Retry-After`` is an HTTP date on that clock.
"""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from logto_adapters.testing import ServedProvider
from logto_core import sleep as core_sleep
from logto_core.storage import MemoryStorage
from logto_core.testing import Fault

from .conftest import POST_LOGOUT, REDIRECT, Clock, Harness, make_client

SLACK = 1.5  # a busy machine may stretch a wait, never shorten it


def _retry_after_date(clock: Clock, seconds: float) -> dict[str, str]:
    return {"retry-after": formatdate(clock.now + seconds, usegmt=True)}


def test_a_retry_waits_until_the_time_on_the_runtimes_clock(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    served.provider.faults.add(
        Fault("discovery", status=503, times=1, headers=_retry_after_date(clock, 1))
    )
    harness = Harness(kind, make_client(kind, served.url, clock), served)
    started = time.monotonic()
    assert harness.signIn(REDIRECT).startswith(served.url)
    elapsed = time.monotonic() - started
    assert harness.requests_to("discovery") == 2
    assert 1.0 <= elapsed < 1.0 + SLACK


def test_a_wait_is_bounded(
    kind: str, served: ServedProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait the core asks for (here five seconds: Retry-After capped by the retry policy)
    is cut at MAX_SLEEP by the adapter."""
    monkeypatch.setattr(core_sleep, "MAX_SLEEP", 0.2)
    served.provider.faults.add(
        Fault("discovery", status=429, times=1, headers={"retry-after": "60"})
    )
    harness = Harness(kind, make_client(kind, served.url, clock, timeout=(2.0, 20.0)), served)
    started = time.monotonic()
    assert harness.signIn(REDIRECT).startswith(served.url)
    elapsed = time.monotonic() - started
    assert harness.requests_to("discovery") == 2
    assert 0.2 <= elapsed < 0.2 + SLACK


def test_a_background_revocation_waits_too(kind: str, served: ServedProvider, clock: Clock) -> None:
    """A sign-out by a client that has not discovered the provider yet: its revocation
    (run apart from the request, by an interpreter of its own in the async client) retries
    discovery after the wait, then revokes."""
    storage = MemoryStorage()
    first = Harness(kind, make_client(kind, served.url, clock, storage), served)
    first.sign_in_user()
    fresh = Harness(kind, make_client(kind, served.url, clock, storage), served)
    served.provider.faults.add(
        Fault("discovery", status=503, times=1, headers=_retry_after_date(clock, 0.3))
    )
    before = first.requests_to("discovery")
    fresh.signOut(POST_LOGOUT)
    assert fresh.waitForRevocations(10) is True
    assert fresh.requests_to("discovery") - before == 2
    assert fresh.requests_to("revocation") == 1
