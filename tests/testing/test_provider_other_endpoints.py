"""userinfo, revocation, introspection and end session."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from logto_core.http import HttpRequest, HttpResponse
from logto_core.testing import ACCESS_TOKEN_TTL

from .conftest import API, ISSUER, World, basic, body, form, query

ME = ISSUER + "/me"


def me(world: World, token: str | None, scheme: str = "Bearer") -> HttpResponse:
    headers = {"authorization": f"{scheme} {token}"} if token is not None else None
    return world.provider.handle(HttpRequest.get(ME, headers=headers))


def test_userinfo_returns_every_granted_claim(world: World) -> None:
    scope = "openid profile email custom_data identities roles urn:logto:scope:organizations"
    tokens = world.tokens(scope=scope)
    response = me(world, tokens["access_token"])
    assert response.status == 200
    claims = body(response)
    assert claims["sub"] == "user-1"
    assert claims["username"] == "alice"
    assert claims["custom_data"] == {"plan": "pro"}
    assert claims["identities"] == {"google": {"userId": "g-1", "details": {}}}
    assert claims["sso_identities"] == []
    assert claims["roles"] == ["admin"]
    assert claims["organizations"] == ["org-1"]
    assert claims["organization_data"] == [
        {"id": "org-1", "name": "Acme", "description": "Rockets"}
    ]
    assert claims["favourite_colour"] == "green"  # unknown claims are served too


def test_userinfo_via_post(world: World) -> None:
    token = world.tokens()["access_token"]
    request = form(ME, [], {"authorization": f"Bearer {token}"})
    assert world.provider.handle(request).status == 200


def test_userinfo_rejects_jwt_access_token(world: World) -> None:
    code = world.sign_in(resource=API, scope="openid read")["code"]
    jwt_token = body(world.exchange(code, extra=[("resource", API)]))["access_token"]
    response = me(world, jwt_token)
    assert response.status == 401
    assert body(response)["error"] == "invalid_token"
    challenge = response.header("www-authenticate") or ""
    assert challenge.startswith("Bearer")
    assert 'error="invalid_token"' in challenge


@pytest.mark.parametrize(("token", "scheme"), [(None, "Bearer"), ("abc", "Basic"), ("", "Bearer")])
def test_userinfo_without_bearer(world: World, token: str | None, scheme: str) -> None:
    response = me(world, token, scheme)
    assert response.status == 401
    assert response.header("www-authenticate") is not None


def test_userinfo_token_expiry(world: World) -> None:
    token = world.tokens()["access_token"]
    world.clock.advance(ACCESS_TOKEN_TTL)
    assert me(world, token).status == 401


def test_userinfo_after_suspension_or_grant_revocation(world: World) -> None:
    token = world.tokens()["access_token"]
    world.provider.revoke_grants("user-1")
    assert me(world, token).status == 401
    other = world.tokens()["access_token"]
    world.provider.suspend_user("user-1")
    assert me(world, other).status == 401


def test_refresh_reuse_also_kills_access_token(world: World) -> None:
    tokens = world.tokens()
    world.refresh(tokens["refresh_token"])
    world.clock.advance(10)
    world.refresh(tokens["refresh_token"])
    assert me(world, tokens["access_token"]).status == 401


# -- revocation -----------------------------------------------------------------------------
REVOKE = ISSUER + "/token/revocation"
INTROSPECT = ISSUER + "/token/introspection"


def test_revoking_refresh_token_revokes_grant(world: World) -> None:
    tokens = world.tokens()
    pairs = [
        ("token", tokens["refresh_token"]),
        ("token_type_hint", "refresh_token"),
        ("client_id", "spa"),
    ]
    response = world.provider.handle(form(REVOKE, pairs))
    assert response.status == 200
    assert body(world.refresh(tokens["refresh_token"]))["error"] == "invalid_grant"
    assert me(world, tokens["access_token"]).status == 401


def test_revoking_access_token(world: World) -> None:
    tokens = world.tokens("web")
    pairs = [("token", tokens["access_token"])]
    world.provider.handle(form(REVOKE, pairs, basic("web", "web-secret")))
    assert me(world, tokens["access_token"]).status == 401
    assert world.refresh(tokens["refresh_token"], client_id="web").status == 200


def test_revocation_of_unknown_or_foreign_token_is_200_noop(world: World) -> None:
    tokens = world.tokens()
    pairs = [("token", tokens["refresh_token"])]
    foreign = world.provider.handle(form(REVOKE, pairs, basic("web", "web-secret")))
    assert foreign.status == 200
    assert world.provider.is_refresh_token_active(tokens["refresh_token"])
    unknown = world.provider.handle(form(REVOKE, [("token", "zzz"), ("client_id", "spa")]))
    assert unknown.status == 200


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        ([("client_id", "spa")], "invalid_request"),
        (
            [("client_id", "spa"), ("token", "x"), ("token_type_hint", "id_token")],
            "unsupported_token_type",
        ),
        ([("token", "x")], "invalid_request"),
    ],
)
def test_revocation_errors(world: World, pairs: list[tuple[str, str]], error: str) -> None:
    assert body(world.provider.handle(form(REVOKE, pairs)))["error"] == error


# -- introspection --------------------------------------------------------------------------
def test_introspection_of_opaque_and_refresh_tokens(world: World) -> None:
    tokens = world.tokens("web")
    auth = basic("web", "web-secret")
    access = body(
        world.provider.handle(form(INTROSPECT, [("token", tokens["access_token"])], auth))
    )
    assert access["active"] is True
    assert (access["sub"], access["client_id"]) == ("user-1", "web")
    refresh = body(
        world.provider.handle(form(INTROSPECT, [("token", tokens["refresh_token"])], auth))
    )
    assert refresh["active"] is True
    assert refresh["token_type"] == "refresh_token"


def test_introspection_inactive_cases(world: World) -> None:
    tokens = world.tokens()
    auth = basic("web", "web-secret")
    for token in (tokens["access_token"], tokens["refresh_token"], tokens["id_token"], "nope"):
        answer = body(world.provider.handle(form(INTROSPECT, [("token", token)], auth)))
        assert answer == {"active": False}


# -- end session ----------------------------------------------------------------------------
END = ISSUER + "/session/end"


def end(world: World, **params: str) -> HttpResponse:
    return world.provider.handle(HttpRequest.get(f"{END}?{urlencode(params)}"))


def test_end_session_with_hint_redirects_with_state(world: World) -> None:
    tokens = world.tokens()
    response = end(
        world,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri="http://app.test/bye",
        state="s1",
        client_id="spa",
    )
    assert response.status == 303
    location = response.header("location") or ""
    assert location.startswith("http://app.test/bye?")
    assert query(location)["state"] == "s1"
    assert len(world.provider.ended_sessions) == 1
    # Signing out does not revoke offline-access refresh tokens.
    assert world.provider.is_refresh_token_active(tokens["refresh_token"])


def test_end_session_without_hint_shows_confirmation(world: World) -> None:
    response = end(world, client_id="spa", post_logout_redirect_uri="http://app.test/bye")
    assert response.status == 200
    assert b"sign out" in response.body
    assert world.provider.ended_sessions == []


def test_end_session_with_hint_and_no_redirect(world: World) -> None:
    response = end(world, id_token_hint=world.tokens()["id_token"])
    assert response.status == 200


def test_end_session_via_post(world: World) -> None:
    request = form(END, [("id_token_hint", world.tokens()["id_token"])])
    assert world.provider.handle(request).status == 200


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"client_id": "spa", "post_logout_redirect_uri": "http://evil.test"}, "invalid_request"),
        ({"post_logout_redirect_uri": "http://app.test/bye"}, "invalid_request"),
        ({"client_id": "ghost"}, "invalid_client"),
        ({"id_token_hint": "garbage"}, "invalid_request"),
    ],
)
def test_end_session_errors(world: World, params: dict[str, str], error: str) -> None:
    assert body(end(world, **params))["error"] == error


def test_end_session_hint_for_other_client(world: World) -> None:
    hint = world.tokens()["id_token"]
    assert body(end(world, id_token_hint=hint, client_id="web"))["error"] == "invalid_request"
