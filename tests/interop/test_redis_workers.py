"""Eight worker processes on one Redis against the real oidc-provider (configured like Logto:
the public app's refresh token rotates on every use, and a consumed one presented again
revokes the whole grant, at once): 8 workers x 25 concurrent requests on one session whose
access token expired make exactly one refresh, every request is served, and the grant
lives on (its newest refresh token is active)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from logto_adapters import sync
from logto_core.runtime import Runtime
from tests.redis_workers import (
    Setup,
    SharedSessionStorage,
    Workers,
    sessions_client,
    started,
    stored_session,
)

from .conftest import Clock, HttpBrowser, RealProvider
from .tenant import ALICE, API_A, API_B, PUBLIC_APP, REDIRECT
from .test_flows import SCOPES

WORKERS = 8
REQUESTS_PER_WORKER = 25


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    with started(WORKERS) as pool:
        yield pool


def config(provider: RealProvider) -> dict[str, Any]:
    return {
        "endpoint": provider.base,
        "appId": PUBLIC_APP,
        "scopes": SCOPES,
        "resources": [API_A, API_B],
    }


def sign_in(provider: RealProvider, clock: Clock, sessions_url: str) -> str:
    """Alice signed in, an API token cached (and expired below); the provider cache."""
    logto = sync.Logto(sync.LogtoConfig(**config(provider)), runtime=Runtime(clock=clock))
    client = sessions_client(sessions_url)
    try:
        session = logto.session(SharedSessionStorage(client, "alice"))
        url = session.signIn(REDIRECT)
        session.handleSignInCallback(HttpBrowser().sign_in(url, ALICE[0], ALICE[1]).callback)
        assert session.getAccessToken(API_A) is not None  # cached, then expired below
        cache = logto.exportProviderCache()
    finally:
        client.close()
        logto.close()
    return cache


def setups(
    workers: Workers,
    provider: RealProvider,
    clock: Clock,
    url: str,
    cache: str,
    *,
    shared: bool = True,
) -> list[Setup]:
    return [
        Setup(kind, config(provider), url, url, clock.offset, cache, shared=shared)
        for kind in workers.kinds()
    ]


def test_eight_workers_one_refresh_with_rotation_and_reuse_detection(
    workers: Workers, real_provider: RealProvider, clock: Clock, redis_url: str
) -> None:
    cache = sign_in(real_provider, clock, redis_url)
    before = stored_session(redis_url, "alice").refresh_token
    clock.advance(3700)  # every access token has expired
    workers.setup(setups(workers, real_provider, clock, redis_url, cache))
    token_requests = real_provider.requests_to("token")

    answers = workers.everywhere(
        "requests", ["alice"] * REQUESTS_PER_WORKER, API_A, REQUESTS_PER_WORKER
    )

    outcomes = [outcome for answer in answers for outcome in answer]
    assert len(outcomes) == WORKERS * REQUESTS_PER_WORKER
    assert {status for status, _ in outcomes} == {"ok"}, outcomes
    assert len({token for _, token in outcomes}) == 1
    assert real_provider.requests_to("token") - token_requests == 1  # exactly one refresh
    after = stored_session(redis_url, "alice").refresh_token
    assert before is not None and after is not None and after != before  # rotated
    assert real_provider.introspect(after)["active"] is True  # the grant was not revoked
    assert real_provider.introspect(before)["active"] is False


def test_the_control_without_a_shared_coordinator_loses_the_grant(
    workers: Workers, real_provider: RealProvider, clock: Clock, redis_url: str
) -> None:
    """The same workers, each with only its in-process coordinator: several refreshes of one
    token, and the provider revokes the grant (what sticky sessions used to prevent)."""
    cache = sign_in(real_provider, clock, redis_url)
    clock.advance(3700)
    workers.setup(setups(workers, real_provider, clock, redis_url, cache, shared=False))
    token_requests = real_provider.requests_to("token")
    answers = workers.everywhere("requests", ["alice"] * 4, API_A, 4)
    outcomes = [outcome for answer in answers for outcome in answer]
    assert real_provider.requests_to("token") - token_requests > 1
    assert ("signed_out", "") in outcomes  # some were told the grant is dead
    after = stored_session(redis_url, "alice").refresh_token
    assert after is None or real_provider.introspect(after)["active"] is False
