"""Token exchange (RFC 8693) on both clients against the test provider over loopback:
personal access tokens and impersonation (subject) tokens, with and without an actor, for a
resource, an organization or the OIDC scopes; Logto's refusals typed with a hint, the
tokens never in a message; the session never touched."""

from __future__ import annotations

import pytest

from logto_adapters import sync
from logto_core.jose.jwt import decode_unverified

from .conftest import API, ORG, USER, Clock, Harness

OTHER = "user-2"


@pytest.fixture
def exchanging(harness: Harness) -> Harness:
    harness.provider.add_user(OTHER, name="Grace")
    harness.provider.grant_permissions(OTHER, API, ["read"])
    return harness


def test_a_personal_access_token_for_an_api(exchanging: Harness) -> None:
    pat = exchanging.provider.create_personal_access_token(OTHER)
    exchanged = exchanging.exchangeToken(pat, sync.TokenType.personal_access_token, resource=API)
    assert isinstance(exchanged, sync.ExchangedToken)
    claims = decode_unverified(exchanged.access_token)[1]
    assert claims["sub"] == OTHER and claims["aud"] == API and "act" not in claims
    assert exchanged.token_type == "Bearer" and exchanged.expires_at > exchanged.obtained_at
    assert exchanged.issued_token_type == sync.TokenType.access_token.value
    assert exchanged.access_token not in repr(exchanged)
    again = exchanging.exchangeToken(pat, "urn:logto:token-type:personal_access_token")
    assert again.access_token.count(".") == 0  # no resource: an opaque token
    assert not exchanging.isAuthenticated()  # nothing stored


def test_impersonation_with_an_actor_is_single_use(exchanging: Harness) -> None:
    exchanging.sign_in_user()  # the support engineer
    actor = exchanging.getAccessToken()
    assert actor is not None
    subject = exchanging.provider.create_subject_token(OTHER)
    exchanged = exchanging.exchangeToken(
        subject, sync.TokenType.access_token, resource=API, scopes=["read"], actorToken=actor
    )
    claims = decode_unverified(exchanged.access_token)[1]
    assert claims["sub"] == OTHER and claims["act"] == {"sub": USER}
    assert exchanged.scopes == ["read"]
    assert exchanging.getIdTokenClaims().sub == USER  # the session is the engineer's still
    with pytest.raises(sync.OAuthError) as caught:
        exchanging.exchangeToken(subject, sync.TokenType.access_token, resource=API)
    assert caught.value.code == "oauth.invalid_grant"
    assert caught.value.hint is not None and "single-use" in caught.value.hint
    assert subject not in str(caught.value) and subject not in repr(caught.value)
    assert exchanging.isAuthenticated()  # a refused exchange costs the session nothing


def test_an_organization_token(exchanging: Harness) -> None:
    exchanging.provider.add_member(ORG, OTHER, roles=["member"], scopes=["read:docs"])
    pat = exchanging.provider.create_personal_access_token(OTHER)
    exchanged = exchanging.exchangeToken(
        pat, sync.TokenType.personal_access_token, organizationId=ORG, scopes=["read:docs"]
    )
    claims = decode_unverified(exchanged.access_token)[1]
    assert claims["aud"] == f"urn:logto:organization:{ORG}" and exchanged.scopes == ["read:docs"]


def test_refusals_carry_hints(exchanging: Harness, clock: Clock) -> None:
    unknown = "pat_" + "x" * 40
    with pytest.raises(sync.OAuthError) as caught:
        exchanging.exchangeToken(unknown, sync.TokenType.personal_access_token)
    assert caught.value.code == "oauth.invalid_grant" and caught.value.hint is not None
    assert unknown not in str(caught.value)
    expired = exchanging.provider.create_subject_token(OTHER, ttl=60)
    clock.advance(61)
    with pytest.raises(sync.OAuthError) as caught:
        exchanging.exchangeToken(expired, sync.TokenType.access_token)
    assert caught.value.hint is not None and "expired" in caught.value.hint
    pat = exchanging.provider.create_personal_access_token(OTHER)
    with pytest.raises(sync.OAuthError) as caught:
        exchanging.exchangeToken(
            pat, sync.TokenType.personal_access_token, actorToken="not-an-access-token"
        )
    assert caught.value.hint is not None and "actorToken" in caught.value.hint
    with pytest.raises(sync.OAuthError) as caught:
        exchanging.exchangeToken(
            pat, sync.TokenType.personal_access_token, resource="https://unknown.example.com"
        )
    assert caught.value.code == "oauth.invalid_target"


def test_usage_mistakes_are_refused_before_any_request(exchanging: Harness) -> None:
    with pytest.raises(sync.LogtoUsageError) as caught:
        exchanging.exchangeToken("pat_abc", "urn:ietf:params:oauth:token-type:id_token")
    assert caught.value.code == "usage.token_exchange_type"
    for bad in ("", "two words", "x" * 9000):
        with pytest.raises(sync.LogtoUsageError) as caught:
            exchanging.exchangeToken(bad, sync.TokenType.personal_access_token)
        assert caught.value.code == "usage.token_exchange_token"
    with pytest.raises(sync.LogtoUsageError):
        exchanging.exchangeToken("pat_abc", sync.TokenType.personal_access_token, actorToken="")
    assert exchanging.requests_to("token") == 0
