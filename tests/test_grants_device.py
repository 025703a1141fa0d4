"""logto_core/grants.py: the device authorization grant (RFC 8628), its request builders,
its response parser and the polling state machine."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from logto_core.errors import (
    DiscoveryError,
    LogtoError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
    SignInRequiredError,
    TransportError,
)
from logto_core.grants import (
    DEFAULT_INTERVAL,
    DEVICE_CODE_GRANT,
    MAX_DEVICE_LIFETIME,
    SLOW_DOWN_STEP,
    DeviceAuthorization,
    DeviceAuthorizationError,
    DevicePolling,
    Failed,
    Granted,
    Poll,
    advance,
    build_device_authorization,
    build_device_token_request,
    on_poll_response,
    parse_device_authorization_response,
    start_polling,
)
from logto_core.http import HttpRequest, HttpResponse
from logto_core.models import TokenResponse
from logto_core.scrub import request_secrets
from logto_core.sleep import Sleep

from .factories import ISSUER, config, json_response, metadata

NOW = 1_000_000.0
DEVICE_CODE = "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS"
VALID: dict[str, Any] = {
    "device_code": DEVICE_CODE,
    "user_code": "WDJB-MJHT",
    "verification_uri": f"{ISSUER}/device",
    "verification_uri_complete": f"{ISSUER}/device?user_code=WDJB-MJHT",
    "expires_in": 600,
    "interval": 5,
}
DEVICE_METADATA = metadata(device_authorization_endpoint=f"{ISSUER}/device/auth")


def form(request: HttpRequest) -> dict[str, list[str]]:
    return parse_qs((request.body or b"").decode())


def parse(payload: Any, status: int = 200, **overrides: Any) -> DeviceAuthorization:
    return parse_device_authorization_response(
        json_response(payload, status), config(**overrides), NOW
    )


def authorization(interval: float = 5.0, expires_in: float = 600.0) -> DeviceAuthorization:
    return DeviceAuthorization(
        device_code=DEVICE_CODE,
        user_code="WDJB-MJHT",
        verification_uri=f"{ISSUER}/device",
        verification_uri_complete=None,
        expires_at=NOW + expires_in,
        interval=interval,
        obtained_at=NOW,
    )


def oauth(error: str) -> OAuthError:
    return OAuthError(error, status=400)


TOKEN = TokenResponse(access_token="at", token_type="Bearer", expires_in=3600)


# ---- the requests --------------------------------------------------------------------


def test_the_device_authorization_request_of_a_native_app() -> None:
    native = config(appSecret=None, resources=["https://api.example.com"])
    request = build_device_authorization(native, DEVICE_METADATA)
    assert (request.method, request.url) == ("POST", f"{ISSUER}/device/auth")
    assert request.purpose == "device_authorization" and request.header("authorization") is None
    body = form(request)
    assert body["client_id"] == ["app"]
    assert body["scope"] == [" ".join(native.sign_in_scopes())]
    assert body["resource"] == ["https://api.example.com"]


def test_the_device_authorization_request_of_a_confidential_app() -> None:
    request = build_device_authorization(
        config(), DEVICE_METADATA, scopes=["openid", "read"], resources=[]
    )
    assert form(request) == {"scope": ["openid read"]}
    basic = request.header("authorization") or ""
    assert base64.b64decode(basic.removeprefix("Basic ")) == b"app:s3cr3t-value"


def test_a_provider_without_the_endpoint() -> None:
    with pytest.raises(DiscoveryError) as info:
        build_device_authorization(config(), metadata())
    assert info.value.code == "device.unsupported"


def test_the_polling_request_carries_the_device_code_as_a_secret() -> None:
    native = config(appSecret=None)
    request = build_device_token_request(native, DEVICE_METADATA, authorization())
    assert request.url == DEVICE_METADATA.token_endpoint and request.purpose == "token"
    assert form(request) == {
        "grant_type": [DEVICE_CODE_GRANT],
        "device_code": [DEVICE_CODE],
        "client_id": ["app"],
    }
    assert DEVICE_CODE in request_secrets(request)
    assert DEVICE_CODE not in repr(request)


# ---- the response ----------------------------------------------------------------------


def test_a_valid_response() -> None:
    found = parse(VALID)
    assert found == DeviceAuthorization(
        device_code=DEVICE_CODE,
        user_code="WDJB-MJHT",
        verification_uri=VALID["verification_uri"],
        verification_uri_complete=VALID["verification_uri_complete"],
        expires_at=NOW + 600,
        interval=5.0,
        obtained_at=NOW,
    )
    assert DEVICE_CODE not in repr(found) and "WDJB" not in repr(found)


def test_defaults_and_bounds() -> None:
    bare = {k: v for k, v in VALID.items() if k not in ("interval", "verification_uri_complete")}
    found = parse(bare)
    assert found.interval == DEFAULT_INTERVAL and found.verification_uri_complete is None
    assert parse({**VALID, "expires_in": 10**9}).expires_at == NOW + MAX_DEVICE_LIFETIME
    assert parse({**VALID, "interval": 1.5}).interval == 1.5


@pytest.mark.parametrize(
    "changes",
    [
        {"device_code": None},
        {"device_code": ""},
        {"device_code": 42},
        {"device_code": "é" * 5},
        {"device_code": "x" * 5000},
        {"device_code": "a\nb"},
        {"user_code": None},
        {"user_code": "   "},
        {"user_code": ["WDJB"]},
        {"user_code": "x" * 65},
        {"user_code": "WD\x00JB"},
        {"verification_uri": None},
        {"verification_uri": 7},
        {"verification_uri": "https://a/" + "x" * 3000},
        {"verification_uri": "https://a/b c"},
        {"verification_uri_complete": False},
        {"expires_in": None},
        {"expires_in": 0},
        {"expires_in": 0.5},
        {"expires_in": -5},
        {"expires_in": "600"},
        {"expires_in": True},
        {"interval": 0},
        {"interval": 0.5},
        {"interval": "5"},
        {"interval": False},
        {"interval": 10_000},
    ],
)
def test_invalid_members(changes: dict[str, Any]) -> None:
    payload = {k: v for k, v in {**VALID, **changes}.items() if v is not None}
    with pytest.raises(ProviderError) as info:
        parse(payload)
    assert info.value.code == "device.response_invalid"
    (member,) = changes
    assert member in info.value.message and DEVICE_CODE not in info.value.message


@pytest.mark.parametrize(
    "uri",
    ["http://tenant.example.com/device", "javascript:alert(1)", "https://u:p@x/device", "/dev"],
)
def test_verification_uris_must_be_https(uri: str) -> None:
    for member in ("verification_uri", "verification_uri_complete"):
        with pytest.raises(ProviderError) as info:
            parse({**VALID, member: uri})
        assert info.value.code == "device.verification_uri_insecure"


def test_loopback_http_in_development_mode() -> None:
    local = "http://localhost:3001/oidc/device"
    found = parse(
        {**VALID, "verification_uri": local, "verification_uri_complete": None},
        endpoint="http://localhost:3001",
    )
    assert found.verification_uri == local


def test_statuses_and_error_answers() -> None:
    with pytest.raises(ProviderResponseError) as info:
        parse(VALID, status=201)
    assert info.value.code == "device.status"
    with pytest.raises(OAuthError) as oauth_info:
        parse({"error": "invalid_client"}, status=401)
    assert oauth_info.value.code == "oauth.invalid_client"
    with pytest.raises(TransportError):
        parse({}, status=503)


def outcome(response: HttpResponse) -> DeviceAuthorization | LogtoError:
    """The parser's answer: an authorization or a typed error (anything else propagates)."""
    try:
        return parse_device_authorization_response(response, config(), NOW)
    except LogtoError as error:
        return error


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
members = st.sampled_from(list(VALID))
member_values = (
    json_values
    | st.sampled_from(list(VALID.values()))
    | st.integers(-10, 10**6)
    | st.floats(-1e3, 1e12, allow_nan=False)
    | st.text(min_size=0, max_size=80)
)


@settings(max_examples=300)
@given(
    st.dictionaries(members, member_values) | json_values,
    st.sampled_from([200, 200, 200, 201, 400, 401, 500]),
)
def test_arbitrary_json_gives_an_authorization_or_a_typed_error(payload: Any, status: int) -> None:
    found = outcome(
        json_response({**VALID, **payload} if isinstance(payload, dict) else payload, status)
    )
    if isinstance(found, LogtoError):
        assert DEVICE_CODE not in str(found)
        return
    assert status == 200
    assert found.obtained_at < found.expires_at <= NOW + MAX_DEVICE_LIFETIME
    assert found.interval >= 1
    assert found.verification_uri.startswith("https://")


@given(st.binary(max_size=300))
def test_arbitrary_bodies_give_an_authorization_or_a_typed_error(body: bytes) -> None:
    found = outcome(HttpResponse.build(200, {}, body))
    assert isinstance(found, (LogtoError, DeviceAuthorization))


# ---- polling -----------------------------------------------------------------------------


def test_a_poll_is_an_absolute_time_for_a_sleep() -> None:
    state = start_polling(authorization(interval=5), NOW)
    assert state.step == Poll(NOW + 5) and isinstance(state.step, Poll)
    assert state.step.sleep() == Sleep(NOW + 5)
    assert not state.step.due(NOW + 4.9) and state.step.due(NOW + 5)


def test_pending_then_slow_down_then_granted() -> None:
    state = start_polling(authorization(interval=5), NOW)
    state = advance(state, NOW + 5, oauth("authorization_pending"))
    assert state.step == Poll(NOW + 10)
    state = advance(state, NOW + 11, oauth("slow_down"))
    assert state.interval == 10 and state.step == Poll(NOW + 21)
    state = advance(state, NOW + 21, oauth("authorization_pending"))
    assert state.step == Poll(NOW + 31)  # the slower interval stays
    state = advance(state, NOW + 31, TOKEN)
    assert state.step == Granted(TOKEN) and state.polls == 4 and state.done


def test_the_user_refused() -> None:
    cause = oauth("access_denied")
    state = advance(start_polling(authorization(), NOW), NOW + 5, cause)
    assert isinstance(state.step, Failed)
    error = state.step.error
    assert isinstance(error, DeviceAuthorizationError) and isinstance(error, SignInRequiredError)
    assert error.code == "device.access_denied" and error.refused and error.__cause__ is cause
    assert "refused" in error.message


def test_the_code_expired() -> None:
    state = advance(start_polling(authorization(), NOW), NOW + 5, oauth("expired_token"))
    assert isinstance(state.step, Failed) and state.step.error.code == "device.expired"
    assert isinstance(state.step.error, DeviceAuthorizationError)
    assert not state.step.error.refused
    assert "start a new device authorization" in state.step.error.message
    # No poll is asked for at or after the expiry: the clock says so first.
    late = advance(start_polling(authorization(expires_in=12), NOW), NOW + 6, oauth("slow_down"))
    assert isinstance(late.step, Failed) and late.step.error.code == "device.expired"
    too_short = start_polling(authorization(interval=5, expires_in=5), NOW).step
    assert isinstance(too_short, Failed) and too_short.error.code == "device.expired"


def test_other_errors_end_the_polling_as_they_are() -> None:
    for error in (oauth("invalid_grant"), TransportError("down", code="transport.connection")):
        state = advance(start_polling(authorization(), NOW), NOW + 5, error)
        assert state.step == Failed(error)


def test_the_answer_as_received() -> None:
    state = start_polling(authorization(), NOW)
    pending = json_response({"error": "authorization_pending"}, 400)
    state = on_poll_response(state, NOW + 5, pending)
    assert state.step == Poll(NOW + 10)
    body = {"access_token": "at", "token_type": "Bearer", "expires_in": 60, "scope": "openid"}
    state = on_poll_response(state, NOW + 10, json_response(body))
    assert isinstance(state.step, Granted) and state.step.token.access_token == "at"
    bad = on_poll_response(start_polling(authorization(), NOW), NOW + 5, json_response([1], 200))
    assert isinstance(bad.step, Failed) and bad.step.error.code == "provider_response.not_object"
    assert on_poll_response(state, NOW + 20, pending) is state


ANSWERS = [
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "invalid_grant",
    "token",
    "transport",
]


def answer_of(kind: str) -> TokenResponse | LogtoError:
    if kind == "token":
        return TOKEN
    if kind == "transport":
        return TransportError("timed out", code="transport.timeout")
    return oauth(kind)


class Polling(RuleBasedStateMachine):
    """Answers arrive at any time (on time, late, even early); the machine keeps its
    promises."""

    state: DevicePolling

    @initialize(
        interval=st.integers(1, 60) | st.floats(1, 60),
        expires_in=st.floats(0.5, 1200),
        started=st.floats(0, 30),
    )
    def start(self, interval: float, expires_in: float, started: float) -> None:
        self.auth = authorization(interval=interval, expires_in=expires_in)
        self.now = NOW + started
        self.state = start_polling(self.auth, self.now)
        self.slow_downs = 0
        self.check_poll(previous_at=None, previous_interval=None)

    def check_poll(self, previous_at: float | None, previous_interval: float | None) -> None:
        step = self.state.step
        if isinstance(step, Poll):
            assert step.at < self.auth.expires_at
            assert step.at >= self.now + self.state.interval
            if previous_at is not None:
                assert step.at >= previous_at + self.state.interval
        if previous_interval is not None:
            assert self.state.interval >= previous_interval
        # Added up one slow_down at a time: equal up to rounding.
        expected = self.auth.interval + SLOW_DOWN_STEP * self.slow_downs
        assert self.state.interval == pytest.approx(expected, rel=1e-12)

    @precondition(lambda self: not self.state.done)
    @rule(kind=st.sampled_from(ANSWERS), delay=st.floats(-10, 120))
    def answer(self, kind: str, delay: float) -> None:
        step = self.state.step
        assert isinstance(step, Poll)
        before = self.state
        self.now = max(self.now, step.at + delay)  # the clock does not go back
        self.state = advance(self.state, self.now, answer_of(kind))
        assert self.state.polls == before.polls + 1
        if kind == "slow_down":
            self.slow_downs += 1
        outcome = self.state.step
        if kind == "token":
            assert outcome == Granted(TOKEN)
        elif kind == "access_denied":
            assert isinstance(outcome, Failed) and outcome.error.code == "device.access_denied"
        elif kind == "expired_token":
            assert isinstance(outcome, Failed) and outcome.error.code == "device.expired"
        elif kind in ("invalid_grant", "transport"):
            assert isinstance(outcome, Failed) and outcome.error.code != "device.expired"
        elif isinstance(outcome, Failed):  # pending or slow_down, too late to poll again
            assert outcome.error.code == "device.expired"
            assert max(self.now, step.at) + self.state.interval >= self.auth.expires_at
        self.check_poll(previous_at=step.at, previous_interval=before.interval)

    @precondition(lambda self: self.state.done)
    @rule(kind=st.sampled_from(ANSWERS), delay=st.floats(0, 100))
    def terminal_states_are_terminal(self, kind: str, delay: float) -> None:
        before = self.state
        self.now += delay
        assert advance(before, self.now, answer_of(kind)) is before
        assert on_poll_response(before, self.now, json_response({}, 500)) is before

    @invariant()
    def the_step_is_a_poll_until_done(self) -> None:
        if hasattr(self, "state"):
            assert isinstance(self.state.step, Poll) != self.state.done


TestPolling = Polling.TestCase
TestPolling.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)


def test_the_error_answers_are_json_as_logto_sends_them() -> None:
    # The polling errors arrive as ordinary OAuth error bodies (HTTP 400).
    body = json.dumps({"error": "slow_down", "code": "oidc.slow_down"}).encode()
    state = on_poll_response(
        start_polling(authorization(), NOW), NOW + 5, HttpResponse.build(400, {}, body)
    )
    assert state.interval == 5 + SLOW_DOWN_STEP
