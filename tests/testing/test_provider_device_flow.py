"""The device authorization grant (RFC 8628): the endpoint, the user's hooks, the polling."""

from __future__ import annotations

import json
import re

import pytest

from logto_core.config import LogtoConfig
from logto_core.errors import LogtoUsageError
from logto_core.grants import (
    Granted,
    Poll,
    build_device_authorization,
    build_device_token_request,
    on_poll_response,
    parse_device_authorization_response,
    start_polling,
)
from logto_core.http import HttpRequest
from logto_core.jose.keys import parse_jwks_response
from logto_core.protocol.discovery import parse_discovery_response
from logto_core.protocol.id_token import verify_id_token
from logto_core.runtime import Runtime
from logto_core.testing import Fault, TestProvider

from .conftest import (
    API,
    ENDPOINT,
    ISSUER,
    TOKEN_URL,
    Clock,
    World,
    basic,
    body,
    form,
    verify,
)
from .device_support import (
    DEVICE_AUTH_URL,
    DEVICE_GRANT,
    USER_CODE,
    add_device_clients,
    poll,
    polled_error,
    start,
    started,
)


@pytest.fixture
def devices(world: World) -> World:
    add_device_clients(world)
    return world


# -- the device authorization endpoint ---------------------------------------------------
def test_device_authorization_response(devices: World) -> None:
    response = start(devices)
    assert response.status == 200
    assert response.header("cache-control") == "no-store"
    answer = body(response)
    assert set(answer) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    assert len(answer["device_code"]) >= 43 and "." not in answer["device_code"]
    assert re.fullmatch(USER_CODE, answer["user_code"])
    assert answer["verification_uri"] == ENDPOINT + "/oidc/device"
    assert answer["verification_uri_complete"] == (
        f"{ENDPOINT}/oidc/device?user_code={answer['user_code']}"
    )
    assert (answer["expires_in"], answer["interval"]) == (600, 5)


def test_discovery_names_the_endpoint_served() -> None:
    clock = Clock()
    provider = TestProvider(ENDPOINT, clock=clock)
    provider.add_client("tv", kind="native", device_flow=True)
    document = body(provider.handle(HttpRequest.get(ISSUER + "/.well-known/openid-configuration")))
    assert document["device_authorization_endpoint"] == DEVICE_AUTH_URL
    assert DEVICE_GRANT in document["grant_types_supported"]
    response = provider.handle(form(DEVICE_AUTH_URL, [("client_id", "tv"), ("scope", "openid")]))
    assert response.status == 200


def test_a_json_body_is_accepted(devices: World) -> None:
    payload = {"client_id": "tv", "scope": "openid", "resource": [API]}
    headers = (("content-type", "application/json"),)
    request = HttpRequest("POST", DEVICE_AUTH_URL, headers, json.dumps(payload).encode())
    assert devices.provider.handle(request).status == 200


def test_a_confidential_client_authenticates_with_basic(devices: World) -> None:
    assert start(devices, "box").status == 200
    wrong = devices.provider.handle(
        form(DEVICE_AUTH_URL, [("scope", "openid")], basic("box", "nope"))
    )
    assert (wrong.status, body(wrong)["error"]) == (401, "invalid_client")


def test_a_public_client_must_not_send_a_secret(devices: World) -> None:
    pairs = [("client_id", "tv"), ("client_secret", "x"), ("scope", "openid")]
    answer = devices.provider.handle(form(DEVICE_AUTH_URL, pairs))
    assert body(answer)["error"] == "invalid_client"


@pytest.mark.parametrize("client_id", ["spa", "web", "m2m"])
def test_only_clients_with_the_device_flow(devices: World, client_id: str) -> None:
    response = start(devices, client_id)
    assert (response.status, body(response)["error"]) == (400, "unauthorized_client")


@pytest.mark.parametrize("resource", ["https://nope.example.com", "not-a-uri"])
def test_unknown_resources_are_invalid_target(devices: World, resource: str) -> None:
    response = start(devices, resources=(API, resource))
    assert (response.status, body(response)["error"]) == (400, "invalid_target")


def test_the_endpoint_is_logged_and_hides_the_device_code(devices: World) -> None:
    code = started(devices)["device_code"]
    poll(devices, code)
    entry = devices.provider.log[-2]
    assert (entry.endpoint, entry.client_id) == ("device_authorization", "tv")
    assert code not in repr(devices.provider.log[-1])


def test_a_fault_can_break_the_endpoint(devices: World) -> None:
    devices.provider.faults.add(Fault("device_authorization", status=503, body={"x": 1}))
    assert start(devices).status == 503
    assert start(devices).status == 200


# -- approval and the tokens ---------------------------------------------------------------
def test_pending_then_approved(devices: World) -> None:
    answer = started(devices)
    code = answer["device_code"]
    assert polled_error(devices, code) == (400, "authorization_pending")
    devices.provider.approve_device(answer["user_code"], "user-1")
    devices.clock.advance(5)
    response = poll(devices, code)
    assert response.status == 200
    assert response.header("cache-control") == "no-store"
    tokens = body(response)
    assert set(tokens) == {
        "access_token",
        "expires_in",
        "token_type",
        "scope",
        "id_token",
        "refresh_token",
    }
    assert tokens["scope"] == "offline_access openid profile"
    claims = verify(devices.provider, tokens["id_token"]).claims
    assert (claims["sub"], claims["aud"], claims["iss"]) == ("user-1", "tv", ISSUER)
    assert "nonce" not in claims and "auth_time" not in claims
    assert claims["name"] == "Alice"
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    me = devices.provider.handle(HttpRequest.get(ISSUER + "/me", headers=bearer))
    assert body(me)["sub"] == "user-1"


def test_the_sdk_accepts_the_device_flow() -> None:
    """The SDK's own device-flow functions, polling schedule and ID-token check."""
    clock = Clock()
    provider = TestProvider(ENDPOINT, clock=clock)
    provider.add_client("tv", kind="native", device_flow=True)
    provider.add_user("user-1", name="Alice")
    config = LogtoConfig(endpoint=ENDPOINT, appId="tv")
    discovery = provider.handle(HttpRequest.get(provider.discovery_url))
    metadata = parse_discovery_response(discovery, config)
    response = provider.handle(build_device_authorization(config, metadata))
    authorization = parse_device_authorization_response(response, config, clock())
    state = start_polling(authorization, clock())
    provider.approve_device(authorization.user_code, "user-1")
    while not state.done:
        step = state.step
        assert isinstance(step, Poll) and state.polls < 5
        clock.now = step.at
        answer = provider.handle(build_device_token_request(config, metadata, authorization))
        state = on_poll_response(state, clock(), answer)
    outcome = state.outcome
    assert isinstance(outcome, Granted), outcome
    keys = parse_jwks_response(provider.handle(HttpRequest.get(ISSUER + "/jwks")), now=clock())
    assert outcome.token.id_token is not None
    claims = verify_id_token(
        outcome.token.id_token,
        keys=keys,
        issuer=ISSUER,
        client_id="tv",
        now=clock(),
        clock_tolerance=0,
        algorithms=["ES384"],
        expected_nonce=None,
    )
    assert claims.sub == "user-1"
    assert outcome.token.refresh_token is not None


def test_refreshing_a_device_grant(devices: World) -> None:
    answer = started(devices)
    devices.provider.approve_device(answer["user_code"], "user-1")
    tokens = body(poll(devices, answer["device_code"]))
    refreshed = devices.refresh(tokens["refresh_token"], client_id="tv")
    assert refreshed.status == 200
    again = body(refreshed)
    assert again["refresh_token"] != tokens["refresh_token"]  # a public client rotates
    claims = verify(devices.provider, again["id_token"]).claims
    assert claims["sid"] == verify(devices.provider, tokens["id_token"]).claims["sid"]


def test_a_confidential_client_polls_with_basic(devices: World) -> None:
    answer = started(devices, "box")
    devices.provider.approve_device(answer["user_code"], "user-1")
    assert poll(devices, answer["device_code"], "box").status == 200


def test_without_offline_access_there_is_no_refresh_token(devices: World) -> None:
    answer = started(devices, scope="openid profile")
    devices.provider.approve_device(answer["user_code"], "user-1")
    tokens = body(poll(devices, answer["device_code"]))
    assert "refresh_token" not in tokens and "id_token" in tokens


def test_without_openid_there_is_no_id_token(devices: World) -> None:
    answer = started(devices, scope="profile")
    devices.provider.approve_device(answer["user_code"], "user-1")
    tokens = body(poll(devices, answer["device_code"]))
    assert "id_token" not in tokens and "refresh_token" not in tokens
    assert tokens["scope"] == "profile"


def test_without_scope(devices: World) -> None:
    answer = started(devices, scope=None)
    devices.provider.approve_device(answer["user_code"], "user-1")
    assert body(poll(devices, answer["device_code"]))["scope"] == ""


def test_scopes_and_resources_are_granted_as_at_sign_in(devices: World) -> None:
    answer = started(devices, scope="openid offline_access read delete bogus", resources=(API,))
    devices.provider.approve_device(answer["user_code"], "user-1")
    tokens = body(poll(devices, answer["device_code"]))
    assert tokens["scope"] == "offline_access openid"  # the opaque token: OIDC scopes only
    refreshed = devices.refresh(tokens["refresh_token"], client_id="tv", extra=[("resource", API)])
    claims = verify(devices.provider, body(refreshed)["access_token"]).claims
    assert (claims["aud"], claims["scope"]) == (API, "read")  # delete is not permitted


def test_the_organizations_resource_grants_role_scopes(devices: World) -> None:
    answer = started(
        devices,
        scope="openid offline_access urn:logto:scope:organizations read:org",
        resources=("urn:logto:resource:organizations",),
    )
    devices.provider.approve_device(answer["user_code"], "user-1")
    tokens = body(poll(devices, answer["device_code"]))
    refreshed = devices.refresh(
        tokens["refresh_token"], client_id="tv", extra=[("organization_id", "org-1")]
    )
    claims = verify(devices.provider, body(refreshed)["access_token"]).claims
    assert claims["scope"] == "read:org"


@pytest.mark.parametrize("typed", [str.lower, lambda c: c.replace("-", ""), lambda c: f" {c} "])
def test_the_user_code_is_matched_loosely(devices: World, typed: object) -> None:
    answer = started(devices)
    assert callable(typed)
    devices.provider.approve_device(typed(answer["user_code"]), "user-1")
    assert poll(devices, answer["device_code"]).status == 200


def test_the_device_code_is_single_use(devices: World) -> None:
    answer = started(devices)
    devices.provider.approve_device(answer["user_code"], "user-1")
    tokens = body(poll(devices, answer["device_code"]))
    again = poll(devices, answer["device_code"])
    assert (again.status, body(again)["error"]) == (400, "invalid_grant")
    assert body(again)["error_description"] == "device code already consumed"
    # As for a replayed code, what the first redemption produced is revoked.
    assert not devices.provider.is_refresh_token_active(tokens["refresh_token"])


def test_denied(devices: World) -> None:
    answer = started(devices)
    devices.provider.deny_device(answer["user_code"])
    response = poll(devices, answer["device_code"])
    assert (response.status, body(response)["error"]) == (400, "access_denied")
    assert body(response)["error_description"] == "End-User aborted interaction"
    assert polled_error(devices, answer["device_code"]) == (400, "invalid_grant")


def test_expired(devices: World) -> None:
    pending, approved = started(devices), started(devices)
    devices.provider.approve_device(approved["user_code"], "user-1")
    devices.clock.advance(600)
    for answer in (pending, approved):
        assert polled_error(devices, answer["device_code"]) == (400, "expired_token")
    with pytest.raises(LogtoUsageError, match="expired") as raised:
        devices.provider.approve_device(pending["user_code"], "user-1")
    assert raised.value.code == "testing.device"


def test_wrong_or_unknown_device_codes(devices: World) -> None:
    answer = started(devices)
    response = poll(devices, answer["device_code"], "box")
    assert body(response)["error_description"] == "client mismatch"
    unknown = poll(devices, "x" * 43)
    assert (body(unknown)["error"], body(unknown)["error_description"]) == (
        "invalid_grant",
        "device code not found",
    )


def test_missing_device_code(devices: World) -> None:
    pairs = [("grant_type", DEVICE_GRANT), ("client_id", "tv")]
    response = devices.provider.handle(form(TOKEN_URL, pairs))
    assert body(response)["error"] == "invalid_request"


@pytest.mark.parametrize("client_id", ["spa", "m2m"])
def test_clients_without_the_device_flow_cannot_poll(devices: World, client_id: str) -> None:
    code = started(devices)["device_code"]
    assert polled_error(devices, code, client_id) == (400, "unauthorized_client")


def test_a_user_suspended_after_approving(devices: World) -> None:
    answer = started(devices)
    devices.provider.approve_device(answer["user_code"], "user-1")
    devices.provider.suspend_user("user-1")
    assert polled_error(devices, answer["device_code"]) == (400, "invalid_grant")


def test_a_grant_revoked_before_the_device_polls(devices: World) -> None:
    answer = started(devices)
    devices.provider.approve_device(answer["user_code"], "user-1")
    devices.provider.revoke_grants("user-1")
    response = poll(devices, answer["device_code"])
    assert body(response)["error_description"] == "grant request is invalid"


# -- the hooks' usage errors ---------------------------------------------------------------
def test_an_unknown_user_code(devices: World) -> None:
    with pytest.raises(LogtoUsageError, match="unknown user code") as raised:
        devices.provider.approve_device("BCDF-GHJK", "user-1")
    assert raised.value.code == "testing.device"
    with pytest.raises(LogtoUsageError, match="unknown user code"):
        devices.provider.deny_device("BCDF-GHJK")


def test_a_user_code_is_decided_once(devices: World) -> None:
    answer = started(devices)
    devices.provider.approve_device(answer["user_code"], "user-1")
    with pytest.raises(LogtoUsageError, match="already"):
        devices.provider.deny_device(answer["user_code"])
    other = started(devices)
    devices.provider.deny_device(other["user_code"])
    with pytest.raises(LogtoUsageError, match="already"):
        devices.provider.approve_device(other["user_code"], "user-1")


def test_unknown_and_suspended_users_cannot_approve(devices: World) -> None:
    answer = started(devices)
    with pytest.raises(LogtoUsageError) as raised:
        devices.provider.approve_device(answer["user_code"], "nobody")
    assert raised.value.code == "testing.setup"
    devices.provider.suspend_user("user-1")
    with pytest.raises(LogtoUsageError, match="suspended"):
        devices.provider.approve_device(answer["user_code"], "user-1")
    assert polled_error(devices, answer["device_code"]) == (400, "authorization_pending")


def test_m2m_apps_cannot_have_the_device_flow(world: World) -> None:
    with pytest.raises(LogtoUsageError) as raised:
        world.provider.add_client("bot", kind="m2m", secret="s", device_flow=True)
    assert raised.value.code == "testing.setup"


# -- settings and code generation ----------------------------------------------------------
def test_ttl_and_interval_are_settable(devices: World) -> None:
    devices.provider.devices.ttl = 60
    devices.provider.devices.interval = 2
    answer = started(devices)
    assert (answer["expires_in"], answer["interval"]) == (60, 2)
    devices.clock.advance(59)
    assert polled_error(devices, answer["device_code"]) == (400, "authorization_pending")
    devices.clock.advance(1)
    assert polled_error(devices, answer["device_code"]) == (400, "expired_token")


def test_logto_s_own_answers_without_interval_and_slow_down(devices: World) -> None:
    """Logto (node-oidc-provider 9) announces no interval and never answers slow_down."""
    devices.provider.devices.interval = None
    devices.provider.devices.slow_down = False
    answer = started(devices)
    assert "interval" not in answer
    for _ in range(3):
        assert polled_error(devices, answer["device_code"]) == (400, "authorization_pending")


def test_user_codes_are_unbiased_and_unique() -> None:
    """Bytes past the last whole run of the alphabet are skipped; a code already issued is
    drawn again."""
    script: list[bytes] = []

    def entropy(n: int) -> bytes:
        chunk = script.pop(0) if script else bytes([2] * n)  # DDDDDDDD
        assert len(chunk) == n
        return chunk

    clock = Clock()
    provider = TestProvider(ENDPOINT, clock=clock, runtime=Runtime(clock=clock, entropy=entropy))
    provider.add_client("tv", kind="native", device_flow=True)
    script += [
        bytes([7] * 32),  # the first device code
        bytes([255] * 4 + [0] * 4),  # four bytes skipped, then BBBB ...
        bytes([1] * 8),  # ... and CCCC: BBBBCCCC
        bytes([8] * 32),  # the second device code
        bytes([0] * 4 + [1] * 4),  # BBBBCCCC again: drawn again, DDDDDDDD
    ]
    first = body(provider.handle(form(DEVICE_AUTH_URL, [("client_id", "tv")])))
    second = body(provider.handle(form(DEVICE_AUTH_URL, [("client_id", "tv")])))
    assert (first["user_code"], second["user_code"]) == ("BBBB-CCCC", "DDDD-DDDD")
