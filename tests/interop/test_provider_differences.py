"""Where oidc-provider (what Logto runs) and our test provider (``logto_core.testing``) answer
differently in ways a client can see; each test pins the real provider's behaviour."""

from __future__ import annotations

import requests

from .conftest import HTTP_TIMEOUT, Clock, HttpBrowser, RealProvider
from .tenant import ALICE, ALICE_ORG, API_A, API_B, OTHER_ORG, PUBLIC_APP
from .test_flows import new_client, sign_in


def refresh(provider: RealProvider, token: str, **extra: str) -> requests.Response:
    return requests.post(
        f"{provider.issuer}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": PUBLIC_APP,
            **extra,
        },
        timeout=HTTP_TIMEOUT,
    )


def test_rotated_refresh_token_has_no_reuse_window(
    kind: str, real_provider: RealProvider, clock: Clock
) -> None:
    """The test provider keeps a rotated-away refresh token usable for 3 s (REUSE_WINDOW); the
    real one treats any reuse, even immediate, as theft: invalid_grant and the grant revoked."""
    client = new_client(kind, real_provider, clock, "public")
    sign_in(client, HttpBrowser())
    first = client.getRefreshToken()
    assert client.getAccessToken(API_A) is not None
    second = client.getRefreshToken()
    assert second != first
    reused = refresh(real_provider, first)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert real_provider.introspect(second)["active"] is False  # the whole grant is gone
    assert client.getAccessToken(API_B) is None  # the client is signed out
    assert not client.isAuthenticated() or client.getRefreshToken() is None


def test_error_bodies_carry_no_logto_code(
    kind: str, real_provider: RealProvider, clock: Clock
) -> None:
    """oidc-provider's error bodies are {error, error_description}; Logto (and the test
    provider) add `code` ("oidc.<error>") and `message`. A refused organization keeps the
    refresh token unrotated (checked before rotation, as Logto does)."""
    client = new_client(kind, real_provider, clock, "public")
    sign_in(client, HttpBrowser())
    token = client.getRefreshToken()
    answer = refresh(real_provider, token, organization_id=OTHER_ORG)
    assert answer.status_code == 403
    assert set(answer.json()) == {"error", "error_description"}
    assert answer.json()["error"] == "access_denied"
    assert client.getOrganizationToken(ALICE_ORG) is not None  # the same token still works
    assert ALICE[2] == client.getIdTokenClaims().sub


def test_unknown_resource_after_rotation_costs_a_public_client_its_session(
    real_provider: RealProvider, clock: Clock
) -> None:
    """An unknown resource is refused (invalid_target) only after a public client's refresh
    token was rotated, and the answer carries no new refresh token: the presented one is
    consumed, and presenting it again revokes the grant."""
    client = new_client("sync", real_provider, clock, "public")
    sign_in(client, HttpBrowser())
    token = client.getRefreshToken()
    answer = refresh(real_provider, token, resource="https://unknown.example.com")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_target"
    again = refresh(real_provider, token, resource=API_A)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
