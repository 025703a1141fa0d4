"""The device authorization grant (RFC 8628) against the real provider, driven by the pure
core (``logto_core.grants``) and plain ``requests``: proves the provider side of the device
flow the clients build on.

No test sleeps: where the protocol says "wait one interval", the provider's clock and the
test's clock move forward together (``Clock.advance``).
"""

from __future__ import annotations

from typing import Literal

import pytest
import requests

from logto_core.config import LogtoConfig
from logto_core.errors import OAuthError
from logto_core.grants import (
    DeviceAuthorization,
    DeviceAuthorizationError,
    DevicePolling,
    Failed,
    Granted,
    Poll,
    build_device_authorization,
    build_device_token_request,
    on_poll_response,
    parse_device_authorization_response,
    start_polling,
)
from logto_core.http import HttpRequest, HttpResponse
from logto_core.models import OidcProviderMetadata
from logto_core.protocol.discovery import build_discovery_request, parse_discovery_response

from .conftest import (
    HTTP_TIMEOUT,
    Clock,
    HttpBrowser,
    RealProvider,
    approve_device,
    deny_device,
    device_visit,
)
from .tenant import (
    ALICE,
    API_A,
    API_B,
    DEVICE_APP,
    DEVICE_CODE_TTL,
    DEVICE_INTERVAL,
)
from .test_flows import jwt_part


def send(request: HttpRequest) -> HttpResponse:
    response = requests.request(
        request.method,
        request.url,
        headers=dict(request.headers),
        data=request.body,
        timeout=HTTP_TIMEOUT,
        allow_redirects=False,
    )
    return HttpResponse.build(response.status_code, response.headers.items(), response.content)


class Device:
    """One device: its configuration, the provider's metadata and the polling state."""

    def __init__(self, provider: RealProvider, clock: Clock) -> None:
        self.clock = clock
        self.config = LogtoConfig(
            endpoint=provider.base,
            appId=DEVICE_APP,
            scopes=["email", "read"],
            resources=[API_A, API_B],
        )
        self.metadata: OidcProviderMetadata = parse_discovery_response(
            send(build_discovery_request(self.config)), self.config
        )

    def authorize(self) -> DeviceAuthorization:
        request = build_device_authorization(self.config, self.metadata)
        return parse_device_authorization_response(send(request), self.config, self.clock())

    def poll(self, state: DevicePolling) -> DevicePolling:
        """Send the poll now, whatever ``state.step`` says (the tests decide the timing)."""
        request = build_device_token_request(self.config, self.metadata, state.authorization)
        response = send(request)
        # The answer's time is when it arrived: the next poll is one interval after that.
        return on_poll_response(state, self.clock(), response)

    def wait(self, state: DevicePolling) -> None:
        """Move both clocks to the poll the state asks for (instead of sleeping)."""
        step = state.step
        assert isinstance(step, Poll), step
        self.clock.advance(max(0.0, step.at - self.clock()))
        assert step.due(self.clock())

    def wait_and_poll(self, state: DevicePolling) -> DevicePolling:
        self.wait(state)
        return self.poll(state)


def failure(state: DevicePolling) -> DeviceAuthorizationError:
    step = state.step
    assert isinstance(step, Failed), step
    assert isinstance(step.error, DeviceAuthorizationError), step.error
    return step.error


@pytest.fixture
def device(real_provider: RealProvider, clock: Clock) -> Device:
    return Device(real_provider, clock)


def test_pending_until_approved_then_granted(real_provider: RealProvider, device: Device) -> None:
    assert device.metadata.device_authorization_endpoint == f"{real_provider.issuer}/device/auth"
    authorization = device.authorize()
    assert authorization.verification_uri == f"{real_provider.issuer}/device"
    assert authorization.verification_uri_complete is not None
    assert authorization.user_code in authorization.verification_uri_complete
    assert authorization.interval == DEVICE_INTERVAL  # none sent: RFC 8628's default
    assert authorization.expires_at == authorization.obtained_at + DEVICE_CODE_TTL

    state = start_polling(authorization, device.clock())
    state = device.wait_and_poll(state)
    assert isinstance(state.step, Poll) and state.polls == 1  # authorization_pending
    state = device.wait_and_poll(state)
    assert isinstance(state.step, Poll) and state.polls == 2
    assert state.interval == DEVICE_INTERVAL

    visit = approve_device(real_provider, authorization.user_code)  # typed in by the user
    assert visit.login_form_shown
    state = device.wait_and_poll(state)
    step = state.step
    assert isinstance(step, Granted), step
    token = step.token

    # As after a code exchange: an ID token, an opaque access token (several resources were
    # asked for, none named), and a refresh token since offline_access was asked for.
    assert token.refresh_token is not None and token.id_token is not None
    assert token.scope is not None and "offline_access" in token.scope.split()
    assert "." not in token.access_token
    claims = jwt_part(token.id_token, 1)
    assert jwt_part(token.id_token, 0)["alg"] == "ES384"
    assert claims["sub"] == ALICE[2] and claims["aud"] == DEVICE_APP
    assert claims["iss"] == real_provider.issuer and claims["email"] == "alice@example.com"
    assert "nonce" not in claims  # the device grant has none

    # The refresh token gives the granted APIs' tokens, with alice's permissions.
    refreshed = requests.post(
        device.metadata.token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": token.refresh_token,
            "client_id": DEVICE_APP,
            "resource": API_A,
        },
        timeout=HTTP_TIMEOUT,
    )
    assert refreshed.status_code == 200, refreshed.text
    access = jwt_part(refreshed.json()["access_token"], 1)
    assert access["aud"] == API_A and access["sub"] == ALICE[2] and access["scope"] == "read"
    rotated = refreshed.json()["refresh_token"]
    assert rotated != token.refresh_token  # a public client: rotated on every use

    # The device code is single-use, and presenting it again revokes the grant (as for a
    # replayed authorization code): the newest refresh token dies with it.
    again = device.wait_and_poll(start_polling(authorization, device.clock()))
    assert isinstance(again.step, Failed) and isinstance(again.step.error, OAuthError)
    assert again.step.error.error == "invalid_grant"
    assert real_provider.introspect(rotated)["active"] is False


def test_verification_uri_complete_carries_the_code(
    real_provider: RealProvider, device: Device
) -> None:
    browser = HttpBrowser()
    first = device.authorize()
    assert approve_device(real_provider, first.user_code, browser=browser).login_form_shown
    # A second device, approved in the same browser: its session suffices, no login form.
    authorization = device.authorize()
    assert authorization.verification_uri_complete is not None
    visit = approve_device(real_provider, authorization.verification_uri_complete, browser=browser)
    assert not visit.login_form_shown
    state = device.wait_and_poll(start_polling(authorization, device.clock()))
    assert isinstance(state.step, Granted)
    # The user code is used up: a second visit is told so.
    again = device_visit(real_provider, authorization.user_code)
    assert not again.approved and again.reason == "AlreadyUsedError"


@pytest.mark.parametrize("at", ["confirm", "login"])
def test_denied(
    real_provider: RealProvider, device: Device, at: Literal["confirm", "login"]
) -> None:
    authorization = device.authorize()
    state = device.wait_and_poll(start_polling(authorization, device.clock()))
    assert isinstance(state.step, Poll)
    deny_device(real_provider, authorization.user_code, at=at)
    state = device.wait_and_poll(state)
    error = failure(state)
    assert error.code == "device.access_denied" and error.refused
    assert isinstance(error.__cause__, OAuthError) and error.__cause__.error == "access_denied"


def test_expired_at_the_provider(real_provider: RealProvider, device: Device) -> None:
    """The provider's clock alone passes the device code's lifetime: its answer is
    expired_token (the client's clock still has time left)."""
    authorization = device.authorize()
    state = start_polling(authorization, device.clock())
    real_provider.advance(DEVICE_CODE_TTL + 1)
    state = device.wait_and_poll(state)
    error = failure(state)
    assert error.code == "device.expired" and not error.refused
    assert isinstance(error.__cause__, OAuthError) and error.__cause__.error == "expired_token"
    # The user is told too, and cannot approve it any more.
    visit = device_visit(real_provider, authorization.user_code)
    assert not visit.approved and visit.reason == "ExpiredError"


def test_expired_on_the_client_clock(real_provider: RealProvider, device: Device) -> None:
    """Once the next poll would fall at or after the expiry, polling ends without asking."""
    authorization = device.authorize()
    state = start_polling(authorization, device.clock())
    device.clock.advance(DEVICE_CODE_TTL - 2)
    before = real_provider.requests_to("token")
    state = device.poll(state)  # authorization_pending, and no time for another poll
    assert real_provider.requests_to("token") == before + 1
    error = failure(state)
    assert error.code == "device.expired" and error.__cause__ is None


def test_slow_down_grows_the_interval(real_provider: RealProvider, device: Device) -> None:
    authorization = device.authorize()
    state = device.wait_and_poll(start_polling(authorization, device.clock()))
    assert isinstance(state.step, Poll) and state.interval == DEVICE_INTERVAL

    # Too early (right away): slow_down, and 5 s more between polls from now on.
    state = device.poll(state)
    step = state.step
    assert isinstance(step, Poll) and state.interval == DEVICE_INTERVAL + 5
    assert step.at >= device.clock() + DEVICE_INTERVAL + 5 - 1

    # The provider holds the client to the grown interval: the old one is too early now ...
    device.clock.advance(DEVICE_INTERVAL)
    state = device.poll(state)
    assert isinstance(state.step, Poll) and state.interval == DEVICE_INTERVAL + 10

    # ... and the interval the core asks for is accepted (pending, then the grant).
    state = device.wait_and_poll(state)
    assert isinstance(state.step, Poll) and state.interval == DEVICE_INTERVAL + 10
    approve_device(real_provider, authorization.user_code)
    state = device.wait_and_poll(state)
    assert isinstance(state.step, Granted)
    assert state.polls == 5


def test_a_named_interval_is_kept_to(real_provider: RealProvider, device: Device) -> None:
    """An interval the provider names replaces the default, and the provider holds the
    client to it (Logto names none; the test provider can, see set_device_interval)."""
    real_provider.set_device_interval(2)
    authorization = device.authorize()
    assert authorization.interval == 2
    state = device.wait_and_poll(start_polling(authorization, device.clock()))
    assert isinstance(state.step, Poll) and state.interval == 2
    device.clock.advance(1)  # half the interval
    state = device.poll(state)
    assert isinstance(state.step, Poll) and state.interval == 2 + 5  # slow_down
