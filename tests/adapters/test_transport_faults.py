"""Transport behaviour of both clients against a misbehaving provider on loopback."""

from __future__ import annotations

import socket
import time

import pytest

from logto_adapters.testing import ServedProvider
from logto_core import transport_policy as policy
from logto_core.errors import ProviderError, TransportError
from logto_core.http import MAX_BODY_BYTES
from logto_core.testing import Fault

from .conftest import APP_SECRET, REDIRECT, USER, Clock, Harness, make_client


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_clean(error: TransportError) -> None:
    text = f"{error} {error!r}"
    assert "?" not in text
    assert APP_SECRET not in text
    assert error.__cause__ is None
    assert error.__context__ is None or isinstance(error.__context__, TransportError)


def test_connection_refused(kind: str, clock: Clock) -> None:
    port = closed_port()
    client = make_client(kind, f"http://127.0.0.1:{port}", clock, max_retries=1)
    harness = Harness(kind, client, None)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        harness.signIn(REDIRECT)
    assert caught.value.code == policy.CONNECTION
    assert time.monotonic() - started < 3
    assert_clean(caught.value)


def test_stalling_provider_times_out(kind: str, served: ServedProvider, clock: Clock) -> None:
    served.provider.faults.add(Fault("discovery", delay=3.0))
    harness = Harness(kind, make_client(kind, served.url, clock, timeout=(0.5, 0.5)), served)
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        harness.signIn(REDIRECT)
    assert caught.value.code == policy.TIMEOUT
    assert time.monotonic() - started < 2.0
    assert_clean(caught.value)
    assert harness.requests_to("discovery") == 1  # a timeout is not retried


def test_slow_but_in_time(harness: Harness) -> None:
    harness.provider.faults.add(Fault("discovery", delay=0.2))
    assert harness.signIn(REDIRECT).startswith(harness.server.url)


def test_redirect_on_token_endpoint_is_not_followed(harness: Harness) -> None:
    url = harness.signIn(REDIRECT)
    callback = harness.provider.approve(url, USER)
    harness.provider.faults.add(
        Fault(
            "token",
            grant_type="authorization_code",
            status=307,
            headers={"location": harness.server.url + "/elsewhere?code=leak"},
        )
    )
    with pytest.raises(TransportError) as caught:
        harness.handleSignInCallback(callback)
    assert caught.value.code == policy.REDIRECT
    assert caught.value.status == 307
    assert_clean(caught.value)
    assert harness.requests_to("token") == 1
    assert harness.requests_to("not_found") == 0
    assert harness.isAuthenticated() is False


def test_oversized_body(harness: Harness) -> None:
    harness.provider.faults.add(Fault("discovery", body=b"x" * (MAX_BODY_BYTES + 1)))
    with pytest.raises(TransportError) as caught:
        harness.signIn(REDIRECT)
    assert caught.value.code == policy.BODY_TOO_LARGE
    assert harness.requests_to("discovery") == 1


def test_discovery_5xx_is_retried_then_succeeds(harness: Harness) -> None:
    harness.provider.faults.add(Fault("discovery", status=503, times=1))
    harness.provider.faults.add(Fault("discovery", status=429, headers={"retry-after": "0"}))
    assert harness.signIn(REDIRECT).startswith(harness.server.url)
    assert harness.requests_to("discovery") == 3


def test_discovery_5xx_until_retries_run_out(harness: Harness) -> None:
    harness.provider.faults.add(
        Fault("discovery", status=503, times=3, headers={"retry-after": "0"})
    )
    with pytest.raises(TransportError) as caught:
        harness.signIn(REDIRECT)
    assert (caught.value.code, caught.value.status) == (policy.STATUS, 503)
    assert caught.value.retry_after == 0.0
    assert harness.requests_to("discovery") == 3


def test_token_5xx_is_never_retried(harness: Harness) -> None:
    url = harness.signIn(REDIRECT)
    callback = harness.provider.approve(url, USER)
    harness.provider.faults.add(Fault("token", status=503, body=b"busy"))
    with pytest.raises(TransportError) as caught:
        harness.handleSignInCallback(callback)
    assert caught.value.status == 503
    assert harness.requests_to("token") == 1
    harness.provider.faults.add(Fault("token", status=418, body=b"teapot"))
    with pytest.raises(ProviderError):
        harness.handleSignInCallback(harness.provider.approve(harness.signIn(REDIRECT), USER))
    assert harness.requests_to("token") == 2


def test_transport_error_keeps_the_session(harness: Harness, clock: Clock) -> None:
    harness.sign_in_user()
    refresh = harness.getRefreshToken()
    clock.advance(3601)
    harness.provider.faults.add(Fault("token", grant_type="refresh_token", delay=3.0))
    impatient = make_client(
        harness.kind, harness.server.url, clock, harness.client.storage, timeout=(0.5, 0.5)
    )
    with pytest.raises(TransportError) as caught:
        Harness(harness.kind, impatient, harness.server).getAccessToken()
    assert caught.value.code == policy.TIMEOUT
    assert harness.getRefreshToken() == refresh
    assert harness.isAuthenticated() is True
