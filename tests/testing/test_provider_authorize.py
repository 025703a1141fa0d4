"""approve() and deny(): validation of authorization requests like Logto does it."""

from __future__ import annotations

from typing import Any

import pytest

from logto_core.errors import LogtoUsageError, OAuthError
from logto_core.testing import UnredirectableRequestError

from .conftest import API, ISSUER, REDIRECT, World, auth_url, query


def test_approve_returns_code_state_and_iss(world: World) -> None:
    redirect = world.provider.approve(auth_url(), "user-1")
    assert redirect.startswith(REDIRECT + "?")
    params = query(redirect)
    assert params["state"] == "st4te"
    assert params["iss"] == ISSUER
    assert len(params["code"]) >= 43
    assert world.provider.log[-1].endpoint == "authorization"


def test_redirect_uri_with_query_keeps_it(world: World) -> None:
    world.provider.add_client("q", kind="spa", redirect_uris=["http://app.test/cb?x=1"])
    redirect = world.provider.approve(
        auth_url("q", redirect_uri="http://app.test/cb?x=1"), "user-1"
    )
    assert redirect.startswith("http://app.test/cb?x=1&code=")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_id": None}, "invalid_request"),
        ({"client_id": "nobody"}, "invalid_client"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"redirect_uri": "http://evil.test/cb"}, "invalid_redirect_uri"),
        ({"state": ["a", "b"]}, "invalid_request"),
    ],
)
def test_unredirectable_requests_raise(world: World, overrides: dict[str, Any], error: str) -> None:
    with pytest.raises(UnredirectableRequestError) as caught:
        world.provider.approve(auth_url(**overrides), "user-1")
    assert caught.value.error == error
    assert isinstance(caught.value, OAuthError)


def test_wrong_authorization_endpoint_raises(world: World) -> None:
    with pytest.raises(UnredirectableRequestError):
        world.provider.approve("http://elsewhere.test/oidc/auth?client_id=spa", "user-1")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile email"}, "invalid_request"),
        ({"scope": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"resource": "https://unknown.example.com"}, "invalid_target"),
        ({"resource": "relative/path"}, "invalid_target"),
        ({"resource": API + "#frag"}, "invalid_target"),
        ({"prompt": "select_account"}, "invalid_request"),
        ({"prompt": "none consent"}, "invalid_request"),
        ({"max_age": "-5"}, "invalid_request"),
    ],
)
def test_invalid_requests_get_error_redirects(
    world: World, overrides: dict[str, Any], error: str
) -> None:
    params = query(world.provider.approve(auth_url(**overrides), "user-1"))
    assert params["error"] == error
    assert params["error_description"]
    assert params["state"] == "st4te"
    assert params["iss"] == ISSUER
    assert "code" not in params


def test_confidential_client_may_skip_pkce(world: World) -> None:
    params = world.sign_in("web", code_challenge=None, code_challenge_method=None)
    assert "code" in params


def test_suspended_user_is_denied(world: World) -> None:
    world.provider.suspend_user("user-1")
    params = world.sign_in()
    assert params["error"] == "access_denied"


def test_unknown_user_is_a_usage_error(world: World) -> None:
    with pytest.raises(LogtoUsageError):
        world.provider.approve(auth_url(), "ghost")


def test_deny_defaults_to_access_denied(world: World) -> None:
    params = query(world.provider.deny(auth_url()))
    assert params["error"] == "access_denied"
    assert params["state"] == "st4te"
    assert params["iss"] == ISSUER


def test_deny_with_custom_error(world: World) -> None:
    params = query(world.provider.deny(auth_url(), "login_required", "no session"))
    assert (params["error"], params["error_description"]) == ("login_required", "no session")


def test_deny_with_bad_redirect_raises(world: World) -> None:
    with pytest.raises(UnredirectableRequestError):
        world.provider.deny(auth_url(redirect_uri="http://evil.test"))


def test_offline_access_needs_consent(world: World) -> None:
    tokens = world.tokens(prompt="login")
    assert "refresh_token" not in tokens
    assert "offline_access" not in tokens["scope"].split()


def test_always_issue_refresh_token_client(world: World) -> None:
    world.provider.add_client(
        "native", kind="native", redirect_uris=[REDIRECT], always_issue_refresh_token=True
    )
    tokens = world.tokens("native", prompt=None)
    assert "refresh_token" in tokens


def test_unknown_scopes_are_dropped(world: World) -> None:
    tokens = world.tokens(scope="openid offline_access made:up")
    assert tokens["scope"].split() == ["offline_access", "openid"]
