"""Every client behaviour, run against both clients over the loopback test provider."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest

from logto_adapters import aio, public, sync
from logto_core.errors import (
    CallbackError,
    LogtoError,
    LogtoUsageError,
    OAuthError,
    SignInRequiredError,
)
from logto_core.session import StorageKey
from logto_core.storage import MemoryStorage, Storage
from logto_core.testing import ACCESS_TOKEN_TTL, Fault
from tests.factories import stored

from .conftest import API, ORG, POST_LOGOUT, REDIRECT, USER, Clock, Harness, make_client

CAMEL_TO_SNAKE = {
    "signIn": "sign_in",
    "handleSignInCallback": "handle_sign_in_callback",
    "signOut": "sign_out",
    "isAuthenticated": "is_authenticated",
    "getIdToken": "get_id_token",
    "getIdTokenClaims": "get_id_token_claims",
    "getRefreshToken": "get_refresh_token",
    "fetchUserInfo": "fetch_user_info",
    "getAccessToken": "get_access_token",
    "getAccessTokenClaims": "get_access_token_claims",
    "getOrganizationToken": "get_organization_token",
    "getOrganizationTokenClaims": "get_organization_token_claims",
    "waitForRevocations": "wait_for_revocations",
}


def test_full_session(harness: Harness, storage: Storage) -> None:
    assert harness.isAuthenticated() is False
    url = harness.signIn(REDIRECT, interactionMode="signUp")
    query = parse_qs(urlsplit(url).query)
    assert query["interaction_mode"] == ["signUp"]
    assert query["client_id"] == ["web-app"]
    assert stored(storage).pending

    assert harness.handleSignInCallback(harness.provider.approve(url, USER)) is None
    assert harness.isAuthenticated() is True
    claims = harness.getIdTokenClaims()
    assert (claims.sub, claims.name, claims.email) == (USER, "Ada", "ada@example.com")
    assert claims.organizations == [ORG]
    assert harness.getIdToken() == stored(storage).id_token
    assert harness.getRefreshToken() == stored(storage).refresh_token is not None
    assert stored(storage).pending == ()

    info = harness.fetchUserInfo()
    assert info.sub == USER
    assert info.organizations == [ORG]

    token = harness.getAccessToken(API)
    assert token is not None
    assert harness.getAccessToken(API) == token  # cached: no second refresh
    assert harness.requests_to("token", "refresh_token") == 1
    access = harness.getAccessTokenClaims(API)
    assert (access.aud, access.sub, access.scope) == (API, USER, "read")

    org = harness.getOrganizationTokenClaims(ORG)
    assert org.aud == f"urn:logto:organization:{ORG}"
    assert harness.getOrganizationToken(ORG) is not None

    end = harness.signOut(postLogoutRedirectUri=POST_LOGOUT)
    end_query = parse_qs(urlsplit(end).query)
    assert end.startswith(harness.server.url + "/oidc/session/end?")
    assert end_query["post_logout_redirect_uri"] == [POST_LOGOUT]
    assert "id_token_hint" in end_query
    assert harness.waitForRevocations(5.0) is True  # revoked in the background
    assert harness.requests_to("revocation") == 1
    assert harness.isAuthenticated() is False
    assert all(storage.get(key) is None for key in StorageKey.ALL)  # nothing left behind
    assert harness.getAccessToken(API) is None
    with pytest.raises(SignInRequiredError):
        harness.getIdTokenClaims()


def test_not_signed_in(harness: Harness) -> None:
    assert harness.getAccessToken() is None
    assert harness.getAccessToken(API) is None
    assert harness.getOrganizationToken(ORG) is None
    assert harness.getIdToken() is None
    assert harness.getRefreshToken() is None
    with pytest.raises(SignInRequiredError):
        harness.getAccessTokenClaims(API)
    with pytest.raises(SignInRequiredError):
        harness.getOrganizationTokenClaims(ORG)
    with pytest.raises(SignInRequiredError):
        harness.fetchUserInfo()
    assert harness.provider.log == []  # none of that needed the network
    assert harness.signOut().startswith(harness.server.url + "/oidc/session/end?client_id=")


def test_callback_errors_are_typed_and_single_use(harness: Harness) -> None:
    url = harness.signIn(REDIRECT)
    callback = harness.provider.approve(url, USER)
    forged = callback.replace("state=", "state=x")
    with pytest.raises(CallbackError):
        harness.handleSignInCallback(forged)
    harness.handleSignInCallback(callback)
    with pytest.raises(CallbackError):  # replay: the attempt is gone
        harness.handleSignInCallback(callback)
    assert harness.isAuthenticated() is True
    denied = harness.provider.deny(harness.signIn(REDIRECT))
    with pytest.raises(OAuthError) as caught:
        harness.handleSignInCallback(denied)
    assert caught.value.error == "access_denied"


def test_dead_grant_gives_none_and_clears_tokens(
    harness: Harness, clock: Clock, storage: Storage
) -> None:
    harness.sign_in_user()
    harness.provider.revoke_grants(USER)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    assert harness.getAccessToken() is None
    assert harness.isAuthenticated() is False
    assert stored(storage).refresh_token is None


def test_other_refresh_errors_raise(harness: Harness) -> None:
    harness.sign_in_user()
    harness.provider.faults.add(
        Fault("token", grant_type="refresh_token", status=400, body={"error": "invalid_request"})
    )
    with pytest.raises(OAuthError) as caught:
        harness.getAccessToken(API)
    assert caught.value.error == "invalid_request"
    assert harness.isAuthenticated() is True  # a non-grant error keeps the session
    assert harness.getAccessToken(API) is not None


def test_organization_token_needs_the_scope(served: object, kind: str, clock: Clock) -> None:
    from logto_adapters.testing import ServedProvider

    assert isinstance(served, ServedProvider)
    client = make_client(kind, served.url, clock, config={"scopes": []})
    harness = Harness(kind, client, served)
    harness.sign_in_user()
    with pytest.raises(LogtoUsageError):
        harness.getOrganizationToken(ORG)


def test_aliases_and_exports() -> None:
    for module in (sync, aio):
        for camel, snake in CAMEL_TO_SNAKE.items():
            assert getattr(module.LogtoClient, snake) is getattr(module.LogtoClient, camel)
        for name in [*public.__all__, "LogtoClient"]:
            assert name in module.__all__
            assert getattr(module, name) is not None
        assert module.LogtoException is LogtoError
        error_names = [n for n in module.__all__ if n.endswith("Error")]
        assert all(issubclass(getattr(module, n), LogtoError) for n in error_names)
    shared = set(public.__all__)
    assert all(getattr(sync, name) is getattr(aio, name) for name in shared)
    for name in ("isAuthenticated", "getIdToken", "getIdTokenClaims", "getRefreshToken"):
        assert not asyncio.iscoroutinefunction(getattr(aio.LogtoClient, name))
    for name in ("signIn", "signOut", "handleSignInCallback", "fetchUserInfo", "getAccessToken"):
        assert asyncio.iscoroutinefunction(getattr(aio.LogtoClient, name))
    assert not asyncio.iscoroutinefunction(aio.LogtoClient.waitForRevocations)


def test_default_storage_is_private_and_silent(
    kind: str, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    first = make_client(kind, "http://127.0.0.1:9", clock)
    second = make_client(kind, "http://127.0.0.1:9", clock)
    assert isinstance(first.storage, MemoryStorage)
    assert first.storage is not second.storage
    first.storage.set(StorageKey.SESSION, "x")
    assert second.storage.get(StorageKey.SESSION) is None
    assert capsys.readouterr() == ("", "")


def test_tutorial_storage_subclass(harness: Harness, kind: str, clock: Clock) -> None:
    class SessionStorage(Storage):
        def __init__(self) -> None:
            self.session: dict[str, str | None] = {}

        def get(self, key: str) -> str | None:
            return self.session.get(key, None)

        def set(self, key: str, value: str | None) -> None:
            self.session[key] = value

        def delete(self, key: str) -> None:
            self.session.pop(key, None)

    store = SessionStorage()
    other = Harness(kind, make_client(kind, harness.server.url, clock, store), harness.server)
    other.sign_in_user()
    assert other.getIdTokenClaims().sub == USER
    assert stored(store).id_token is not None
