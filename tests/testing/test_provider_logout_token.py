"""The test provider's logout tokens: what Logto sends (typ logout+jwt, no exp, no nonce),
signed with the current key, and changeable on purpose."""

from __future__ import annotations

from typing import Any

import pytest

from logto_core.errors import LogtoError, LogtoUsageError
from logto_core.http import HttpRequest
from logto_core.jose.jwt import decode_unverified
from logto_core.jose.keys import parse_jwks_response
from logto_core.protocol.backchannel import parse_logout_request
from logto_core.protocol.logout_token import LogoutToken, verify_logout_token
from logto_core.testing import BACKCHANNEL_LOGOUT_EVENT, logout_request

from .conftest import ISSUER, World, verify


def sdk_verify(world: World, token: str, client_id: str = "web") -> LogoutToken:
    jwks = world.provider.handle(HttpRequest.get(ISSUER + "/jwks"))
    return verify_logout_token(
        token,
        keys=parse_jwks_response(jwks, now=world.clock()),
        issuer=ISSUER,
        client_id=client_id,
        now=world.clock(),
        clock_tolerance=60,
        algorithms=["ES384"],
    )


def test_a_logout_token_is_what_logto_sends(world: World) -> None:
    token = world.provider.logout_token("web", sid="sid-1", sub="user-1")
    header, claims = decode_unverified(token)
    assert header == {"alg": "ES384", "kid": world.provider.signing_key.kid, "typ": "logout+jwt"}
    assert set(claims) == {"iss", "aud", "iat", "jti", "sub", "sid", "events"}
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
    assert (claims["iss"], claims["aud"], claims["iat"]) == (ISSUER, "web", int(world.clock()))
    # It verifies with any JOSE library against the JWKS, and with the SDK's own checks.
    assert verify(world.provider, token).claims["sid"] == "sid-1"
    logout = sdk_verify(world, token)
    assert (logout.sid, logout.sub, logout.exp) == ("sid-1", "user-1", None)


def test_sid_or_sub_alone_and_a_fresh_jti_each_time(world: World) -> None:
    only_sid = decode_unverified(world.provider.logout_token("spa", sid="s"))[1]
    only_sub = decode_unverified(world.provider.logout_token("spa", sub="user-1"))[1]
    assert "sub" not in only_sid and "sid" not in only_sub
    assert only_sid["jti"] != only_sub["jti"]
    assert sdk_verify(world, world.provider.logout_token("spa", sub="u"), "spa").sub == "u"


def test_expires_in_adds_an_exp(world: World) -> None:
    claims = decode_unverified(world.provider.logout_token("web", sid="s", expires_in=120))[1]
    assert claims["exp"] == int(world.clock()) + 120


def test_after_a_key_rotation_the_new_key_signs(world: World) -> None:
    kid = world.provider.rotate_signing_key()
    header = decode_unverified(world.provider.logout_token("web", sid="s"))[0]
    assert header["kid"] == kid


@pytest.mark.parametrize(
    ("claims", "header", "code"),
    [
        ({"nonce": "n"}, None, "logout_token.nonce_present"),
        ({"events": None}, None, "logout_token.missing_claim"),
        ({"aud": "spa"}, None, "logout_token.aud_mismatch"),
        (None, {"typ": None}, "logout_token.typ_not_allowed"),
        (None, {"typ": "JWT"}, "logout_token.typ_not_allowed"),
        ({"sid": None, "sub": None}, None, "logout_token.subject_missing"),
    ],
)
def test_changed_tokens_are_refused_by_the_sdk(
    world: World, claims: dict[str, Any] | None, header: dict[str, Any] | None, code: str
) -> None:
    token = world.provider.logout_token("web", sid="s", sub="u", claims=claims, header=header)
    with pytest.raises(LogtoError) as info:
        sdk_verify(world, token)
    assert info.value.code == code


def test_setup_mistakes_are_usage_errors(world: World) -> None:
    with pytest.raises(LogtoUsageError) as info:
        world.provider.logout_token("no-such-app", sid="s")
    assert info.value.code == "testing.setup"
    with pytest.raises(LogtoUsageError):
        world.provider.logout_token("web")


def test_logout_request_is_the_provider_s_post(world: World) -> None:
    token = world.provider.logout_token("web", sid="s")
    request = logout_request("http://app.test/back-channel-logout", token)
    assert request.method == "POST" and request.body is not None
    assert parse_logout_request(request.method, request.headers, request.body) == token
    assert token not in repr(request)
