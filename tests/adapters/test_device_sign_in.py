"""Device sign-in (RFC 8628) on both clients against the test provider over loopback, on
the real clock (the waits are real: the provider announces a 1 s interval): approved, the
client is signed in as after a browser sign-in; refused, expired, timed out, cancelled, each
with its own error, and a wait that gave up can be resumed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider, serve_provider
from logto_core.testing import TestProvider

from .conftest import API, KINDS, USER, Harness, setup_provider

CLI = "cli-app"


@pytest.fixture
def live() -> Iterator[ServedProvider]:
    with serve_provider(lambda url: TestProvider(url, clock=time.time), max_delay=5.0) as server:
        setup_provider(server.provider)
        server.provider.add_client(CLI, kind="native", device_flow=True)
        server.provider.devices.interval = 1
        yield server


def cli_client(kind: str, served: ServedProvider, **config: Any) -> Harness:
    module: Any = sync if kind == "sync" else aio
    values: dict[str, Any] = {"endpoint": served.url, "appId": CLI, "resources": [API]}
    values.update(config)
    return Harness(kind, module.LogtoClient(module.LogtoConfig(**values)), served)


@pytest.fixture(params=KINDS)
def cli(request: pytest.FixtureRequest, live: ServedProvider) -> Iterator[Harness]:
    harness = cli_client(str(request.param), live)
    yield harness
    harness.aclose() if harness.kind == "aio" else harness.close()


def approve_later(provider: TestProvider, user_code: str, delay: float = 0.3) -> threading.Timer:
    timer = threading.Timer(delay, provider.approve_device, (user_code, USER))
    timer.start()
    return timer


def test_approved_the_client_is_signed_in_as_after_a_callback(cli: Harness) -> None:
    started = cli.startDeviceSignIn()
    assert isinstance(started, sync.DeviceSignIn) and started.interval == 1
    assert started.verification_uri.endswith("/oidc/device")
    assert started.verification_uri_complete is not None
    assert started.user_code in started.verification_uri_complete
    assert USER not in repr(started) and started.user_code not in repr(started)
    approve_later(cli.provider, started.user_code).join()
    cli.waitForDeviceSignIn(started)
    assert cli.isAuthenticated()
    assert cli.getIdTokenClaims().sub == USER
    assert cli.getRefreshToken() is not None
    assert cli.fetchUserInfo().sub == USER
    assert cli.getAccessTokenClaims(API).aud == API  # a refresh of the device grant
    assert cli.provider.is_refresh_token_active(str(cli.getRefreshToken()))
    assert cli.signOut().startswith(cli.server.url)
    assert not cli.isAuthenticated()


def test_the_wait_polls_until_the_user_approves(cli: Harness) -> None:
    started = cli.startDeviceSignIn()
    timer = approve_later(cli.provider, started.user_code, delay=1.5)
    begun = time.monotonic()
    cli.waitForDeviceSignIn(started)
    timer.join()
    assert time.monotonic() - begun >= 1.5 and cli.isAuthenticated()
    polls = cli.requests_to("token", "urn:ietf:params:oauth:grant-type:device_code")
    assert 2 <= polls <= 4  # one a second (a slow_down would have spaced them by 6 s)


def test_a_refusal_is_access_denied(cli: Harness) -> None:
    started = cli.startDeviceSignIn()
    cli.provider.deny_device(started.user_code)
    with pytest.raises(sync.DeviceAuthorizationError) as caught:
        cli.waitForDeviceSignIn(started)
    assert caught.value.code == "device.access_denied" and caught.value.refused
    assert not cli.isAuthenticated()


def test_an_expired_code_is_expired(cli: Harness) -> None:
    cli.provider.devices.ttl = 2
    started = cli.startDeviceSignIn()
    with pytest.raises(sync.DeviceAuthorizationError) as caught:
        cli.waitForDeviceSignIn(started)
    assert caught.value.code == "device.expired" and not caught.value.refused


def test_a_timeout_gives_up_and_the_wait_can_resume(cli: Harness) -> None:
    started = cli.startDeviceSignIn()
    with pytest.raises(sync.TransportError) as caught:
        cli.waitForDeviceSignIn(started, timeout=0.2)
    assert caught.value.code == "device.wait_timeout"
    cli.provider.approve_device(started.user_code, USER)
    cli.waitForDeviceSignIn(started)
    assert cli.getIdTokenClaims().sub == USER


def test_a_cancel_flag_stops_the_wait(cli: Harness) -> None:
    started = cli.startDeviceSignIn()
    flag = threading.Event()
    threading.Timer(0.3, flag.set).start()
    begun = time.monotonic()
    with pytest.raises(sync.DeviceAuthorizationError) as caught:
        cli.waitForDeviceSignIn(started, cancel=flag)
    assert caught.value.code == "device.cancelled"
    assert time.monotonic() - begun < 0.3 + 0.5 + 0.5  # a check every half second


def test_the_asyncio_wait_is_cancelled_with_its_task(live: ServedProvider) -> None:
    config = aio.LogtoConfig(endpoint=live.url, appId=CLI, resources=[API])

    async def main() -> None:
        async with aio.LogtoClient(config) as client:
            started = await client.startDeviceSignIn()
            task = asyncio.create_task(client.waitForDeviceSignIn(started))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            live.provider.approve_device(started.user_code, USER)
            await client.waitForDeviceSignIn(started)
            assert (await client.getIdTokenClaimsAsync()).sub == USER

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_an_app_without_the_device_flow_is_told_how_to_enable_it(
    kind: str, live: ServedProvider
) -> None:
    live.provider.add_client("plain-native", kind="native")
    harness = cli_client(kind, live, appId="plain-native")
    with pytest.raises(sync.OAuthError) as caught:
        harness.startDeviceSignIn()
    assert caught.value.code == "oauth.unauthorized_client"
    assert caught.value.hint is not None and "device flow" in caught.value.hint


@pytest.mark.parametrize("kind", KINDS)
def test_waiting_needs_what_start_returned(kind: str, live: ServedProvider) -> None:
    harness = cli_client(kind, live)
    with pytest.raises(sync.LogtoUsageError) as caught:
        harness.waitForDeviceSignIn("ABCD-EFGH")
    assert caught.value.code == "usage.device_sign_in"


@pytest.mark.parametrize("mode", ["oauth", "text"])
def test_an_echoed_poll_shows_no_device_code(cli: Harness, mode: Any) -> None:
    from logto_core.testing import Fault
    from tests.secret_leaks import assert_no_leak, error_texts

    started = cli.startDeviceSignIn()
    grant = "urn:ietf:params:oauth:grant-type:device_code"
    cli.provider.faults.add(Fault("token", grant_type=grant, echo=mode))
    with pytest.raises(sync.LogtoError) as caught:
        cli.waitForDeviceSignIn(started)
    assert_no_leak(error_texts(caught.value), {started.device_code})
    assert not cli.isAuthenticated()
