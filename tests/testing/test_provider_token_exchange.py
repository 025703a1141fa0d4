"""Token exchange (RFC 8693) as Logto implements it: subject tokens, personal access tokens,
the issued token, the actor, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest

from .conftest import API, ISSUER, TOKEN_URL, World, basic, body, form, verify

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
PAT = "urn:logto:token-type:personal_access_token"


def exchange(
    world: World,
    subject_token: str | None,
    subject_token_type: str | None = ACCESS,
    *extra: tuple[str, str],
    client_id: str = "spa",
) -> tuple[int, dict[str, Any]]:
    pairs = [("grant_type", GRANT)]
    if subject_token is not None:
        pairs.append(("subject_token", subject_token))
    if subject_token_type is not None:
        pairs.append(("subject_token_type", subject_token_type))
    pairs += extra
    secrets = {"web": "web-secret", "m2m": "m2m-secret"}
    headers = basic(client_id, secrets[client_id]) if client_id in secrets else None
    if headers is None:
        pairs.append(("client_id", client_id))
    response = world.provider.handle(form(TOKEN_URL, pairs, headers))
    return response.status, body(response)


def refused(world: World, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
    status, answer = exchange(world, *args, **kwargs)
    return status, answer["error"], answer["error_description"]


def invalid_grant(description: str) -> tuple[int, str, str]:
    return 400, "invalid_grant", description


def userinfo(world: World, access_token: str) -> tuple[int, Any]:
    bearer = {"authorization": f"Bearer {access_token}"}
    response = world.provider.handle(HttpRequest.get(ISSUER + "/me", headers=bearer))
    return response.status, body(response)


def introspect(world: World, token: str) -> dict[str, Any]:
    pairs = [("token", token), ("client_id", "spa")]
    result: dict[str, Any] = body(
        world.provider.handle(form(ISSUER + "/token/introspection", pairs))
    )
    return result


@pytest.fixture
def agent(world: World) -> str:
    """An opaque access token (with openid) of the user ``agent``: an actor token."""
    world.provider.add_user("agent", name="Agent")
    pat = world.provider.create_personal_access_token("agent")
    status, answer = exchange(world, pat, PAT, ("scope", "openid"))
    assert status == 200
    return str(answer["access_token"])


# -- subject tokens ------------------------------------------------------------------------
def test_a_subject_token_gives_an_opaque_token(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    assert token.startswith("sub_")
    status, answer = exchange(world, token, ACCESS, ("scope", "openid profile read"))
    assert status == 200
    assert list(answer) == ["access_token", "expires_in", "scope", "token_type"]
    assert (answer["expires_in"], answer["scope"], answer["token_type"]) == (
        3600,
        "openid profile",
        "Bearer",
    )
    assert "." not in answer["access_token"] and len(answer["access_token"]) >= 43
    status, claims = userinfo(world, answer["access_token"])
    assert (status, claims["sub"], claims["name"]) == (200, "user-1", "Alice")
    assert "act" not in introspect(world, answer["access_token"])


def test_a_subject_token_is_single_use(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    assert exchange(world, token)[0] == 200
    assert refused(world, token) == invalid_grant("subject token is already consumed")


def test_a_subject_token_expires(world: World) -> None:
    early, late = (world.provider.create_subject_token("user-1", ttl=60) for _ in range(2))
    world.clock.advance(59)
    assert exchange(world, early)[0] == 200
    world.clock.advance(1)
    assert refused(world, late) == invalid_grant("subject token is expired")


def test_a_failed_exchange_does_not_use_the_subject_token(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    assert refused(world, token, ACCESS, ("resource", "https://nope.example.com"))[1] == (
        "invalid_target"
    )
    assert exchange(world, token)[0] == 200


@pytest.mark.parametrize("kind", [ACCESS, PAT])
def test_unknown_subject_tokens(world: World, kind: str) -> None:
    assert refused(world, "sub_nope", kind) == invalid_grant("subject token not found")


def test_the_subject_token_type_must_match(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    assert refused(world, token, PAT) == invalid_grant("subject token not found")
    jwt_type = "urn:ietf:params:oauth:token-type:jwt"
    assert refused(world, token, jwt_type) == invalid_grant("unsupported subject token type")


@pytest.mark.parametrize("missing", ["subject_token", "subject_token_type"])
def test_required_parameters(world: World, missing: str) -> None:
    token = world.provider.create_subject_token("user-1")
    args = (None, ACCESS) if missing == "subject_token" else (token, None)
    status, error, description = refused(world, *args)
    assert (status, error) == (400, "invalid_request")
    assert description == f"missing required parameter '{missing}'"


# -- personal access tokens ----------------------------------------------------------------
def test_a_personal_access_token_is_reusable_until_it_expires(world: World) -> None:
    forever = world.provider.create_personal_access_token("user-1")
    until = world.provider.create_personal_access_token("user-1", world.clock.now + 100)
    assert forever.startswith("pat_")
    for token in (forever, until, forever, until):
        assert exchange(world, token, PAT)[0] == 200
    world.clock.advance(100)
    assert refused(world, until, PAT) == invalid_grant("subject token is expired")
    world.clock.advance(10**9)
    assert exchange(world, forever, PAT)[0] == 200


# -- the user ------------------------------------------------------------------------------
def test_a_suspended_user(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    world.provider.suspend_user("user-1")
    expected = invalid_grant("subject token invalid (referenced account not found)")
    assert refused(world, token) == expected


def test_a_deleted_user(world: World) -> None:
    token = world.provider.create_personal_access_token("user-1")
    del world.provider.directory.users["user-1"]
    expected = invalid_grant("subject token invalid (referenced account not found)")
    assert refused(world, token, PAT) == expected


def test_tokens_are_only_made_for_registered_users(world: World) -> None:
    with pytest.raises(LogtoUsageError) as raised:
        world.provider.create_subject_token("nobody")
    assert raised.value.code == "testing.setup"
    with pytest.raises(LogtoUsageError):
        world.provider.create_personal_access_token("nobody")
    with pytest.raises(LogtoUsageError, match="ttl"):
        world.provider.create_subject_token("user-1", ttl=0)


# -- what the token is for -----------------------------------------------------------------
def test_a_resource_gives_a_jwt_of_the_scopes_the_user_holds(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    status, answer = exchange(world, token, ACCESS, ("resource", API), ("scope", "read delete"))
    assert status == 200
    assert answer["scope"] == "read"  # delete: the resource defines it, the user lacks it
    claims = verify(world.provider, answer["access_token"]).claims
    assert (claims["sub"], claims["client_id"], claims["aud"], claims["iss"]) == (
        "user-1",
        "spa",
        API,
        ISSUER,
    )
    assert claims["scope"] == "read"
    assert "organization_id" not in claims and "act" not in claims


def test_the_resource_s_ttl(world: World) -> None:
    world.provider.add_resource("https://short.example.com", ["x"], access_token_ttl=60)
    token = world.provider.create_subject_token("user-1")
    status, answer = exchange(world, token, ACCESS, ("resource", "https://short.example.com"))
    assert (status, answer["expires_in"], answer["scope"]) == (200, 60, "")


@pytest.mark.parametrize(
    "resources", [["https://nope.example.com"], [API, "https://other.example.com"]]
)
def test_invalid_targets(world: World, resources: list[str]) -> None:
    token = world.provider.create_subject_token("user-1")
    extra = [("resource", resource) for resource in resources]
    status, error, _ = refused(world, token, ACCESS, *extra)
    assert (status, error) == (400, "invalid_target")


def test_an_organization_token(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    scope = ("scope", "read:org openid other")
    status, answer = exchange(world, token, ACCESS, ("organization_id", "org-1"), scope)
    assert (status, answer["scope"], answer["expires_in"]) == (200, "read:org", 3600)
    claims = verify(world.provider, answer["access_token"]).claims
    assert claims["aud"] == "urn:logto:organization:org-1"
    assert "organization_id" not in claims


def test_an_organization_scoped_api_token(world: World) -> None:
    world.provider.grant_organization_resource_permissions("org-1", "user-1", API, ["delete"])
    token = world.provider.create_subject_token("user-1")
    extra = [("organization_id", "org-1"), ("resource", API), ("scope", "read delete")]
    status, answer = exchange(world, token, ACCESS, *extra)
    assert (status, answer["scope"]) == (200, "delete")
    claims = verify(world.provider, answer["access_token"]).claims
    assert (claims["aud"], claims["organization_id"], claims["scope"]) == (API, "org-1", "delete")


@pytest.mark.parametrize("org_id", ["org-1", "no-such-org"])
def test_not_a_member(world: World, org_id: str) -> None:
    world.provider.add_user("outsider")
    token = world.provider.create_subject_token("outsider")
    status, error, _ = refused(world, token, ACCESS, ("organization_id", org_id))
    assert (status, error) == (403, "access_denied")


def test_without_scope_nothing_is_granted(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    status, answer = exchange(world, token)
    assert (status, answer["scope"]) == (200, "")


# -- clients -------------------------------------------------------------------------------
def test_a_confidential_client(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    status, answer = exchange(world, token, ACCESS, ("scope", "openid"), client_id="web")
    assert status == 200
    assert introspect(world, answer["access_token"]) == {"active": False}  # web's, not spa's


def test_m2m_apps_are_refused(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    assert refused(world, token, client_id="m2m")[:2] == (400, "unauthorized_client")
    assert exchange(world, token)[0] == 200  # not used up


# -- the actor -----------------------------------------------------------------------------
def test_an_actor_is_named_in_the_jwt(world: World, agent: str) -> None:
    token = world.provider.create_subject_token("user-1")
    extra = [("resource", API), ("actor_token", agent), ("actor_token_type", ACCESS)]
    status, answer = exchange(world, token, ACCESS, *extra)
    assert status == 200
    claims = verify(world.provider, answer["access_token"]).claims
    assert (claims["sub"], claims["act"]) == ("user-1", {"sub": "agent"})


def test_an_actor_is_named_at_introspection(world: World, agent: str) -> None:
    token = world.provider.create_subject_token("user-1")
    extra = [("scope", "openid"), ("actor_token", agent), ("actor_token_type", ACCESS)]
    _, answer = exchange(world, token, ACCESS, *extra)
    details = introspect(world, answer["access_token"])
    assert (details["sub"], details["act"]) == ("user-1", {"sub": "agent"})


def test_an_actor_token_type_alone_is_ignored(world: World) -> None:
    token = world.provider.create_subject_token("user-1")
    assert exchange(world, token, ACCESS, ("actor_token_type", "whatever"))[0] == 200


@pytest.mark.parametrize("kind", [None, PAT, "urn:ietf:params:oauth:token-type:jwt"])
def test_the_actor_token_type_must_be_access_token(
    world: World, agent: str, kind: str | None
) -> None:
    token = world.provider.create_subject_token("user-1")
    extra = [("actor_token", agent)] + ([("actor_token_type", kind)] if kind else [])
    assert refused(world, token, ACCESS, *extra) == invalid_grant("unsupported actor token type")
    assert exchange(world, token)[0] == 200  # refused before the subject token was used up


def test_the_actor_token_must_be_an_active_opaque_token(world: World, agent: str) -> None:
    token = world.provider.create_subject_token("user-1")
    _, api_token = exchange(world, token, ACCESS, ("resource", API))
    subject = world.provider.create_personal_access_token("user-1")
    for actor in ("nope", api_token["access_token"]):
        extra = [("actor_token", actor), ("actor_token_type", ACCESS)]
        assert refused(world, subject, PAT, *extra) == invalid_grant("invalid actor token")
    world.clock.advance(3600)  # the agent's opaque token expires
    extra = [("actor_token", agent), ("actor_token_type", ACCESS)]
    assert refused(world, subject, PAT, *extra) == invalid_grant("invalid actor token")


def test_the_actor_token_must_have_openid(world: World) -> None:
    pat = world.provider.create_personal_access_token("user-1")
    _, without_openid = exchange(world, pat, PAT, ("scope", "profile"))
    extra = [("actor_token", without_openid["access_token"]), ("actor_token_type", ACCESS)]
    expected = invalid_grant("actor token must have openid scope")
    assert refused(world, pat, PAT, *extra) == expected


def test_a_signed_in_user_s_access_token_can_act(world: World) -> None:
    signed_in = world.tokens()["access_token"]
    world.provider.add_user("customer")
    token = world.provider.create_subject_token("customer")
    extra = [("resource", API), ("actor_token", signed_in), ("actor_token_type", ACCESS)]
    _, answer = exchange(world, token, ACCESS, *extra)
    claims = verify(world.provider, answer["access_token"]).claims
    assert (claims["sub"], claims["act"]) == ("customer", {"sub": "user-1"})


def test_the_log_hides_subject_and_actor_tokens(world: World, agent: str) -> None:
    token = world.provider.create_subject_token("user-1")
    exchange(world, token, ACCESS, ("actor_token", agent), ("actor_token_type", ACCESS))
    shown = repr(world.provider.log[-1])
    assert token not in shown and agent not in shown
