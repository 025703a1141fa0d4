"""refresh_token grant: Logto's rotation rules, organization tokens, revocation."""

from __future__ import annotations

from typing import Any

import pytest

from logto_core.testing import REFRESH_TOKEN_TTL, REUSE_WINDOW

from .conftest import API, World, body, verify

ORG_SIGN_IN: dict[str, Any] = {
    "scope": "openid offline_access urn:logto:scope:organizations read:org invite read write",
    "resource": ["urn:logto:resource:organizations", API],
}


def test_public_client_rotates_every_use(world: World) -> None:
    first = world.tokens()["refresh_token"]
    second = body(world.refresh(first))["refresh_token"]
    third = body(world.refresh(second))["refresh_token"]
    assert len({first, second, third}) == 3


def test_consumed_token_usable_within_window(world: World) -> None:
    old = world.tokens()["refresh_token"]
    new = body(world.refresh(old))["refresh_token"]
    world.clock.advance(REUSE_WINDOW)
    again = world.refresh(old)
    assert again.status == 200
    assert world.provider.is_refresh_token_active(new)


def test_reuse_after_window_revokes_the_whole_grant(world: World) -> None:
    tokens = world.tokens()
    old = tokens["refresh_token"]
    new = body(world.refresh(old))["refresh_token"]
    world.clock.advance(REUSE_WINDOW + 0.5)
    reuse = world.refresh(old)
    assert reuse.status == 400
    assert body(reuse)["error"] == "invalid_grant"
    # The newest token died with the grant, and so did the opaque access token.
    assert body(world.refresh(new))["error"] == "invalid_grant"
    assert not world.provider.is_refresh_token_active(new)


def test_window_counts_from_first_rotation(world: World) -> None:
    old = world.tokens()["refresh_token"]
    world.refresh(old)
    world.clock.advance(2)
    assert world.refresh(old).status == 200  # inside the window: does not extend it
    world.clock.advance(2)
    assert body(world.refresh(old))["error"] == "invalid_grant"


def test_confidential_client_keeps_token_before_70_percent(world: World) -> None:
    token = world.tokens("web")["refresh_token"]
    world.clock.advance(0.69 * REFRESH_TOKEN_TTL)
    response = world.refresh(token, client_id="web")
    assert body(response)["refresh_token"] == token


def test_confidential_client_rotates_after_70_percent(world: World) -> None:
    token = world.tokens("web")["refresh_token"]
    world.clock.advance(0.7 * REFRESH_TOKEN_TTL)
    rotated = body(world.refresh(token, client_id="web"))["refresh_token"]
    assert rotated != token
    world.clock.advance(REUSE_WINDOW + 1)
    assert body(world.refresh(token, client_id="web"))["error"] == "invalid_grant"


def test_refresh_token_expires_after_14_days(world: World) -> None:
    token = world.tokens("web")["refresh_token"]
    world.clock.advance(REFRESH_TOKEN_TTL)
    assert body(world.refresh(token, client_id="web"))["error"] == "invalid_grant"


def test_refreshed_id_token_keeps_nonce_and_sid(world: World) -> None:
    tokens = world.tokens()
    original = verify(world.provider, tokens["id_token"]).claims
    world.clock.advance(100)
    refreshed = body(world.refresh(tokens["refresh_token"]))
    claims = verify(world.provider, refreshed["id_token"]).claims
    assert claims["nonce"] == original["nonce"] == "n0nce"
    assert claims["sid"] == original["sid"]
    assert claims["iat"] == original["iat"] + 100
    assert refreshed["expires_in"] == 3600
    assert refreshed["token_type"] == "Bearer"


def test_scope_subset_without_openid_gives_no_id_token(world: World) -> None:
    token = world.tokens()["refresh_token"]
    refreshed = body(world.refresh(token, extra=[("scope", "profile")]))
    assert "id_token" not in refreshed
    assert refreshed["scope"] == "profile"


def test_scope_beyond_grant_is_invalid_scope(world: World) -> None:
    token = world.tokens()["refresh_token"]
    response = world.refresh(token, extra=[("scope", "openid phone")])
    assert (response.status, body(response)["error"]) == (400, "invalid_scope")
    assert world.provider.is_refresh_token_active(token)  # a refused request does not rotate


def test_refresh_for_resource(world: World) -> None:
    token = world.tokens(resource=API, scope="openid offline_access read")["refresh_token"]
    refreshed = body(world.refresh(token, extra=[("resource", API)]))
    claims = verify(world.provider, refreshed["access_token"]).claims
    assert (claims["aud"], claims["scope"], claims["sub"]) == (API, "read", "user-1")
    assert "organization_id" not in claims


def test_refresh_for_unrequested_resource(world: World) -> None:
    token = world.tokens()["refresh_token"]
    assert body(world.refresh(token, extra=[("resource", API)]))["error"] == "invalid_target"


def test_user_organization_token(world: World) -> None:
    token = world.tokens(**ORG_SIGN_IN)["refresh_token"]
    refreshed = body(world.refresh(token, extra=[("organization_id", "org-1")]))
    claims = verify(world.provider, refreshed["access_token"]).claims
    assert claims["aud"] == "urn:logto:organization:org-1"
    assert set(claims["scope"].split()) == {"read:org", "invite"}
    assert refreshed["expires_in"] == 3600


def test_organization_token_scope_is_intersection(world: World) -> None:
    token = world.tokens(
        **{**ORG_SIGN_IN, "scope": "openid offline_access urn:logto:scope:organizations read:org"}
    )["refresh_token"]
    refreshed = body(world.refresh(token, extra=[("organization_id", "org-1")]))
    assert refreshed["scope"] == "read:org"


def test_organization_scoped_api_token(world: World) -> None:
    world.provider.grant_organization_resource_permissions("org-1", "user-1", API, ["write"])
    token = world.tokens(**ORG_SIGN_IN)["refresh_token"]
    refreshed = body(world.refresh(token, extra=[("organization_id", "org-1"), ("resource", API)]))
    claims = verify(world.provider, refreshed["access_token"]).claims
    assert claims["aud"] == API
    assert claims["organization_id"] == "org-1"
    assert claims["scope"] == "write"


def test_organization_token_for_non_member_is_access_denied(world: World) -> None:
    world.provider.add_organization("org-2", name="Other")
    token = world.tokens(**ORG_SIGN_IN)["refresh_token"]
    response = world.refresh(token, extra=[("organization_id", "org-2")])
    assert (response.status, body(response)["error"]) == (403, "access_denied")
    unknown = world.refresh(token, extra=[("organization_id", "org-404")])
    assert unknown.status == 403


def test_organization_token_without_scope_is_insufficient_scope(world: World) -> None:
    token = world.tokens()["refresh_token"]
    response = world.refresh(token, extra=[("organization_id", "org-1")])
    assert (response.status, body(response)["error"]) == (403, "insufficient_scope")
    assert body(response)["code"] == "oidc.insufficient_scope"


def test_revoke_grants_kills_refresh(world: World) -> None:
    token = world.tokens()["refresh_token"]
    assert world.provider.revoke_grants("user-1") == 1
    assert body(world.refresh(token))["error"] == "invalid_grant"


def test_suspended_user_cannot_refresh(world: World) -> None:
    token = world.tokens()["refresh_token"]
    world.provider.suspend_user("user-1")
    assert body(world.refresh(token))["error"] == "invalid_grant"


@pytest.mark.parametrize("token", ["unknown-token", ""])
def test_unknown_or_missing_refresh_token(world: World, token: str) -> None:
    response = world.refresh(token)
    assert response.status == 400
    assert body(response)["error"] in {"invalid_grant", "invalid_request"}


def test_refresh_token_of_another_client(world: World) -> None:
    world.provider.add_client("spa2", kind="spa", redirect_uris=["http://app.test/callback"])
    token = world.tokens()["refresh_token"]
    assert body(world.refresh(token, client_id="spa2"))["error"] == "invalid_grant"


def test_log_shows_presented_refresh_tokens(world: World) -> None:
    first = world.tokens()["refresh_token"]
    second = body(world.refresh(first))["refresh_token"]
    world.refresh(second)
    refreshes = [e for e in world.provider.log if e.grant_type == "refresh_token"]
    assert [e.params["refresh_token"] for e in refreshes] == [first, second]
    assert all(e.client_id == "spa" for e in refreshes)
    assert first not in repr(refreshes[0])
