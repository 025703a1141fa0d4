"""authorization_code grant: client authentication, single-use codes, PKCE, tokens issued."""

from __future__ import annotations

import base64
import json

import pytest

from logto_core.http import HttpRequest
from logto_core.testing import CODE_TTL

from .conftest import API, ISSUER, TOKEN_URL, VERIFIER, World, basic, body, form, verify


def test_exchange_returns_logto_token_response(world: World) -> None:
    response = world.exchange(world.sign_in()["code"])
    assert response.status == 200
    assert response.header("cache-control") == "no-store"
    tokens = body(response)
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert len(tokens["access_token"]) >= 43
    assert "." not in tokens["access_token"]
    assert tokens["refresh_token"]
    assert set(tokens["scope"].split()) == {"openid", "offline_access", "profile", "email"}


def test_id_token_claims(world: World) -> None:
    tokens = world.tokens()
    decoded = verify(world.provider, tokens["id_token"])
    claims = decoded.claims
    assert "typ" not in decoded.header
    assert decoded.header["kid"] == world.provider.signing_key.kid
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "user-1"
    assert claims["aud"] == "spa"
    assert claims["exp"] == claims["iat"] + 3600
    assert claims["nonce"] == "n0nce"
    assert claims["sid"]
    assert "auth_time" not in claims
    assert "at_hash" not in claims
    assert claims["username"] == "alice"
    assert claims["picture"] is None  # present as null when unset
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert "custom_data" not in claims  # userinfo only
    assert "favourite_colour" not in claims


def test_id_token_claims_follow_scopes(world: World) -> None:
    scope = "openid phone roles address urn:logto:scope:organizations urn:logto:scope:organization_roles"
    claims = verify(world.provider, world.tokens(scope=scope)["id_token"]).claims
    assert claims["phone_number"] is None
    assert claims["phone_number_verified"] is False
    assert claims["roles"] == ["admin"]
    assert "address" not in claims
    assert claims["organizations"] == ["org-1"]
    assert claims["organization_roles"] == ["org-1:member"]
    assert "name" not in claims and "email" not in claims


def test_optional_profile_claims_and_address(world: World) -> None:
    world.provider.add_user("user-1", given_name="Al", address={"country": "FR"})
    claims = verify(world.provider, world.tokens(scope="openid profile address")["id_token"]).claims
    assert claims["given_name"] == "Al"
    assert claims["address"] == {"country": "FR"}
    assert "family_name" not in claims


@pytest.mark.parametrize("overrides", [{"prompt": "login"}, {"max_age": "0"}])
def test_auth_time_with_login_prompt_or_max_age(world: World, overrides: dict[str, str]) -> None:
    claims = verify(world.provider, world.tokens(**overrides)["id_token"]).claims
    assert claims["auth_time"] == int(world.clock.now)


def test_nonce_absent_when_not_sent(world: World) -> None:
    claims = verify(world.provider, world.tokens(nonce=None)["id_token"]).claims
    assert "nonce" not in claims


def test_resource_gives_jwt_access_token_with_permitted_scopes(world: World) -> None:
    code = world.sign_in(resource=API, scope="openid offline_access read write delete")["code"]
    response = world.exchange(code, extra=[("resource", API)])
    tokens = body(response)
    decoded = verify(world.provider, tokens["access_token"])
    assert decoded.header["typ"] == "at+jwt"
    claims = decoded.claims
    assert set(claims) >= {"jti", "sub", "iat", "exp", "scope", "client_id", "iss", "aud"}
    assert claims["aud"] == API
    assert claims["scope"] == "read write"  # delete was never granted to the user
    assert claims["client_id"] == "spa"
    assert claims["exp"] - claims["iat"] == 3600
    assert tokens["scope"] == "read write"
    assert "id_token" in tokens


def test_resource_not_requested_at_sign_in_is_invalid_target(world: World) -> None:
    response = world.exchange(world.sign_in()["code"], extra=[("resource", API)])
    assert response.status == 400
    assert body(response)["error"] == "invalid_target"


def test_two_resources_are_invalid_target(world: World) -> None:
    code = world.sign_in(resource=API)["code"]
    response = world.exchange(code, extra=[("resource", API), ("resource", API + "/x")])
    assert body(response)["error"] == "invalid_target"


def test_code_is_single_use_and_reuse_revokes_grant(world: World) -> None:
    code = world.sign_in()["code"]
    first = body(world.exchange(code))
    second = world.exchange(code)
    assert second.status == 400
    error = body(second)
    assert error["error"] == "invalid_grant"
    assert error["code"] == "oidc.invalid_grant"
    assert error["message"]
    assert error["error_uri"]
    assert not world.provider.is_refresh_token_active(first["refresh_token"])


def test_code_expires_after_60_seconds(world: World) -> None:
    code = world.sign_in()["code"]
    world.clock.advance(CODE_TTL)
    assert body(world.exchange(code))["error"] == "invalid_grant"


def test_unknown_code(world: World) -> None:
    assert body(world.exchange("x" * 43))["error"] == "invalid_grant"


@pytest.mark.parametrize("verifier", [None, "w" * 43, "bad"])
def test_pkce_failure(world: World, verifier: str | None) -> None:
    response = world.exchange(world.sign_in()["code"], verifier=verifier)
    assert response.status == 400
    assert body(response)["error"] == "invalid_grant"


def test_verifier_without_challenge_fails(world: World) -> None:
    code = world.sign_in("web", code_challenge=None, code_challenge_method=None)["code"]
    response = world.exchange(code, client_id="web", headers=basic("web", "web-secret"))
    assert body(response)["error"] == "invalid_grant"


def test_wrong_redirect_uri(world: World) -> None:
    code = world.sign_in()["code"]
    pairs = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", VERIFIER),
        ("redirect_uri", "http://app.test/other"),
        ("client_id", "spa"),
    ]
    assert body(world.provider.handle(form(TOKEN_URL, pairs)))["error"] == "invalid_grant"


def test_code_of_another_client(world: World) -> None:
    world.provider.add_client("spa2", kind="spa", redirect_uris=["http://app.test/callback"])
    code = world.sign_in()["code"]
    assert body(world.exchange(code, client_id="spa2"))["error"] == "invalid_grant"


def test_suspended_user_cannot_exchange(world: World) -> None:
    code = world.sign_in()["code"]
    world.provider.suspend_user("user-1")
    assert body(world.exchange(code))["error"] == "invalid_grant"


# -- client authentication ------------------------------------------------------------------
def test_confidential_client_with_basic(world: World) -> None:
    tokens = world.tokens("web")
    assert verify(world.provider, tokens["id_token"]).claims["aud"] == "web"


def test_confidential_client_with_secret_in_body(world: World) -> None:
    code = world.sign_in("web")["code"]
    response = world.exchange(code, client_id="web", extra=[("client_secret", "web-secret")])
    assert response.status == 200


def test_basic_credentials_are_form_urlencoded(world: World) -> None:
    world.provider.add_client(
        "a:b c", kind="traditional", secret="s&e:c+r%t", redirect_uris=["http://app.test/callback"]
    )
    code = world.sign_in("a:b c")["code"]
    raw = b"a%3Ab+c:s%26e%3Ac%2Br%25t"
    headers = {"authorization": "Basic " + base64.b64encode(raw).decode()}
    assert world.exchange(code, headers=headers).status == 200


def test_basic_and_body_secret_is_invalid_client(world: World) -> None:
    code = world.sign_in("web")["code"]
    response = world.exchange(
        code, headers=basic("web", "web-secret"), extra=[("client_secret", "web-secret")]
    )
    assert response.status == 401
    assert body(response)["error"] == "invalid_client"
    assert (response.header("www-authenticate") or "").startswith("Basic")


def test_public_client_sending_secret_is_invalid_client(world: World) -> None:
    code = world.sign_in()["code"]
    response = world.exchange(code, extra=[("client_secret", "anything")])
    assert response.status == 401
    assert body(response)["error"] == "invalid_client"
    assert response.header("www-authenticate") is None


def test_public_client_with_basic_is_invalid_client(world: World) -> None:
    response = world.exchange(world.sign_in()["code"], headers=basic("spa", "x"))
    assert response.status == 401
    assert response.header("www-authenticate") is not None


@pytest.mark.parametrize(
    ("headers", "extra", "status", "error"),
    [
        (basic("web", "wrong"), [], 401, "invalid_client"),
        (basic("ghost", "x"), [], 401, "invalid_client"),
        (None, [("client_id", "web")], 401, "invalid_client"),
        ({"authorization": "Basic !!!"}, [], 400, "invalid_request"),
        (
            {"authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
            [],
            400,
            "invalid_request",
        ),
        (basic("web", "web-secret"), [("client_id", "other")], 400, "invalid_request"),
        (None, [("client_assertion", "x"), ("client_id", "web")], 401, "invalid_client"),
    ],
)
def test_client_authentication_failures(
    world: World,
    headers: dict[str, str] | None,
    extra: list[tuple[str, str]],
    status: int,
    error: str,
) -> None:
    pairs = [("grant_type", "authorization_code"), ("code", "c"), ("redirect_uri", "r"), *extra]
    response = world.provider.handle(form(TOKEN_URL, pairs, headers))
    assert (response.status, body(response)["error"]) == (status, error)


def test_no_client_at_all(world: World) -> None:
    response = world.provider.handle(form(TOKEN_URL, [("grant_type", "refresh_token")]))
    assert body(response)["error"] == "invalid_request"


def test_other_authorization_scheme_is_ignored(world: World) -> None:
    code = world.sign_in()["code"]
    assert world.exchange(code, extra=[], headers=None).status == 200
    pairs = [("grant_type", "authorization_code"), ("code", "c"), ("client_id", "spa")]
    response = world.provider.handle(form(TOKEN_URL, pairs, {"authorization": "Bearer abc"}))
    assert body(response)["error"] == "invalid_grant"


# -- request shape --------------------------------------------------------------------------
def test_json_body_is_accepted(world: World) -> None:
    code = world.sign_in()["code"]
    payload = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://app.test/callback",
        "code_verifier": VERIFIER,
        "client_id": "spa",
    }
    request = HttpRequest(
        "POST", TOKEN_URL, (("content-type", "application/json"),), json.dumps(payload).encode()
    )
    assert world.provider.handle(request).status == 200


@pytest.mark.parametrize("raw", [b"{not json", b"[1]", b'{"grant_type": 5}', b"\xff\xfe"])
def test_malformed_bodies(world: World, raw: bytes) -> None:
    content_type = (
        "application/x-www-form-urlencoded" if raw.startswith(b"\xff") else "application/json"
    )
    request = HttpRequest("POST", TOKEN_URL, (("content-type", content_type),), raw)
    response = world.provider.handle(request)
    assert (response.status, body(response)["error"]) == (400, "invalid_request")


def test_oversized_body(world: World) -> None:
    request = form(TOKEN_URL, [("grant_type", "x" * 60_000)])
    assert world.provider.handle(request).status == 413


def test_missing_and_unsupported_grant_type(world: World) -> None:
    missing = world.provider.handle(form(TOKEN_URL, [("client_id", "spa")]))
    assert body(missing)["error"] == "invalid_request"
    odd = world.provider.handle(form(TOKEN_URL, [("grant_type", "password"), ("client_id", "spa")]))
    assert body(odd)["error"] == "unsupported_grant_type"


def test_duplicate_parameter(world: World) -> None:
    pairs = [("grant_type", "refresh_token"), ("grant_type", "refresh_token")]
    assert body(world.provider.handle(form(TOKEN_URL, pairs)))["error"] == "invalid_request"


def test_m2m_cannot_use_code_grant(world: World) -> None:
    pairs = [("grant_type", "authorization_code"), ("code", "c")]
    response = world.provider.handle(form(TOKEN_URL, pairs, basic("m2m", "m2m-secret")))
    assert body(response)["error"] == "unauthorized_client"


def test_missing_code(world: World) -> None:
    pairs = [("grant_type", "authorization_code"), ("client_id", "spa")]
    assert body(world.provider.handle(form(TOKEN_URL, pairs)))["error"] == "invalid_request"
