"""Both clients against a real OpenID provider (oidc-provider v9 configured like Logto).

The provider's clock is moved forward through its test-only route (and the client's clock with
it), so expiry and rotation are exercised without sleeping.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from logto_core.errors import OAuthError

from .conftest import Clock, Driver, HttpBrowser, RealProvider, make_driver
from .tenant import (
    ALICE,
    ALICE_ORG,
    API_A,
    API_B,
    ORGANIZATIONS_RESOURCE,
    OTHER_ORG,
    POST_LOGOUT,
    PUBLIC_APP,
    REDIRECT,
    WEB_APP,
    WEB_APP_SECRET,
    organization_audience,
)

APPS = {
    "public": {"appId": PUBLIC_APP},
    "confidential": {"appId": WEB_APP, "appSecret": WEB_APP_SECRET},
}
SCOPES = [
    "email",
    "profile",
    "custom_data",
    "urn:logto:scope:organizations",
    "read",
    "write",
    "read:b",
    "read:docs",
]


def jwt_part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def new_client(
    kind: str, provider: RealProvider, clock: Clock, app: str, **overrides: Any
) -> Driver:
    config: dict[str, Any] = {"scopes": SCOPES, "resources": [API_A, API_B], **APPS[app]}
    config.update(overrides)
    return make_driver(kind, provider, clock, **config)


def sign_in(client: Driver, browser: HttpBrowser, **options: Any) -> tuple[str, bool]:
    """Sign alice in; returns the authorization URL and whether the login form was shown."""
    url = client.signIn(REDIRECT, **options)
    trip = browser.sign_in(url, ALICE[0], ALICE[1])
    client.handleSignInCallback(trip.callback)
    return url, trip.login_form_shown


@pytest.fixture(params=sorted(APPS))
def app(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_tutorial_flow(kind: str, app: str, real_provider: RealProvider, clock: Clock) -> None:
    client = new_client(kind, real_provider, clock, app)
    browser = HttpBrowser()

    # Sign-in through the provider's login form, back to the callback.
    url, shown = sign_in(client, browser)
    assert shown
    sent = query(url)
    assert sent["code_challenge_method"] == "S256" and sent["prompt"] == "consent"
    assert ORGANIZATIONS_RESOURCE in parse_qs(urlsplit(url).query)["resource"]
    assert client.isAuthenticated()

    # ID token: ES384, claims of the granted scopes (Logto: profile/email/organizations).
    id_token = client.getIdToken()
    assert jwt_part(id_token, 0)["alg"] == "ES384"
    claims = client.getIdTokenClaims()
    assert claims.sub == ALICE[2] and claims.iss == real_provider.issuer
    assert claims.aud == APPS[app]["appId"]
    assert claims.name == "Alice Liddell" and claims.email == "alice@example.com"
    assert claims.organizations == [ALICE_ORG]

    # Userinfo with the opaque access token; custom_data only there.
    info = client.fetchUserInfo()
    assert info.sub == ALICE[2] and info.email == "alice@example.com"
    assert info.model_dump().get("custom_data") == {"plan": "pro"}

    # Resource tokens for two APIs: JWT, aud = resource, scopes filtered by alice's permissions.
    token_a = client.getAccessTokenClaims(API_A)
    assert token_a.aud == API_A and token_a.scope == "read"  # alice lacks "write"
    token_b = client.getAccessTokenClaims(API_B)
    assert token_b.aud == API_B and token_b.scope == "read:b"  # "write:b" was not requested
    assert jwt_part(client.getAccessToken(API_A), 0)["typ"] == "at+jwt"
    assert client.getAccessToken(API_A) == client.getAccessToken(API_A)  # cached

    # Organization token.
    org = client.getOrganizationTokenClaims(ALICE_ORG)
    assert org.aud == organization_audience(ALICE_ORG) and org.scope == "read:docs"
    with pytest.raises(OAuthError) as denied:
        client.getOrganizationToken(OTHER_ORG)
    assert denied.value.error == "access_denied"

    # Refresh after expiry, with Logto's rotation rules.
    before = client.getRefreshToken()
    clock.advance(3700)  # every access token has expired
    fresh = client.getAccessToken(API_A)
    assert fresh is not None and jwt_part(fresh, 1)["iat"] >= clock() - 60
    after_first = client.getRefreshToken()
    if app == "public":
        assert after_first != before  # public clients rotate on every use
    else:
        assert after_first == before  # confidential: not before 70% of the 14-day TTL
        clock.advance(10 * 24 * 3600)
        assert client.getAccessToken(API_B) is not None
        assert client.getRefreshToken() != before
    assert client.getIdTokenClaims().sub == ALICE[2]
    rotated = client.getRefreshToken()
    assert real_provider.introspect(before)["active"] is False  # the consumed one is dead
    assert real_provider.introspect(rotated)["active"] is True

    # Sign-out: the refresh token is revoked (so the whole grant), then end-session.
    access = client.getAccessToken()
    end = client.signOut(POST_LOGOUT)
    assert not client.isAuthenticated()
    assert client.waitForRevocations(30.0) is True  # revoked in the background
    assert real_provider.introspect(rotated)["active"] is False
    assert real_provider.introspect(access)["active"] is False
    ended = query(end)
    assert (
        ended["client_id"] == APPS[app]["appId"]
        and ended["post_logout_redirect_uri"] == POST_LOGOUT
    )
    answer = browser.end_session(end)
    assert answer.is_redirect and answer.headers["location"].startswith(POST_LOGOUT)


def test_signing_key_rotation(kind: str, real_provider: RealProvider, clock: Clock) -> None:
    """A new kid is accepted after exactly one JWKS refetch (cooldown passed, cache fresh)."""
    client = new_client(kind, real_provider, clock, "public")
    sign_in(client, HttpBrowser())
    old_kid = jwt_part(client.getIdToken(), 0)["kid"]
    assert real_provider.requests_to("jwks") == 1
    new_kid, previous = real_provider.rotate_keys()
    assert previous == old_kid and new_kid != old_kid

    clock.advance(120)  # past the refetch cooldown, well within the JWKS cache age
    assert client.getAccessToken(API_A) is not None  # a refresh: the new ID token has the new kid
    assert jwt_part(client.getIdToken(), 0)["kid"] == new_kid
    assert client.getIdTokenClaims().sub == ALICE[2]
    assert real_provider.requests_to("jwks") == 2
    assert client.getAccessToken(API_B) is not None  # the refreshed key set is kept
    assert real_provider.requests_to("jwks") == 2


def test_prompt_login_forces_the_login_form(
    kind: str, real_provider: RealProvider, clock: Clock
) -> None:
    client = new_client(kind, real_provider, clock, "confidential")
    browser = HttpBrowser()
    _, shown = sign_in(client, browser)
    assert shown
    # The provider's session cookie is still in the browser: no form with prompt=consent ...
    _, shown = sign_in(client, browser)
    assert not shown
    # ... and the form again with prompt=login, which also puts auth_time in the ID token.
    url, shown = sign_in(client, browser, prompt="login")
    assert shown and query(url)["prompt"] == "login"
    claims = jwt_part(client.getIdToken(), 1)
    assert abs(claims["auth_time"] - clock()) < 30
