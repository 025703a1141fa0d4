"""logto_core/grants.py: machine-to-machine tokens (client credentials) as their own state."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logto_core.errors import LogtoError, LogtoUsageError, OAuthError
from logto_core.grants import (
    MAX_JWT_LIFETIME,
    ClientCredentialsState,
    NeedToken,
    cache_entry,
    client_credentials_key,
)
from logto_core.http import HttpResponse
from logto_core.models import TokenResponse
from logto_core.session import UNKNOWN_LIFETIME, CachedAccessToken

from .factories import config, json_response, metadata
from .jwt_factory import b64_json

KEY = client_credentials_key("https://api.example.com", None, ["write", "read"])


def jwt(claims: dict[str, Any]) -> str:
    return f"{b64_json({'alg': 'ES384'})}.{b64_json(claims)}.c2ln"


def test_no_token_then_a_request_then_the_cached_token() -> None:
    state = ClientCredentialsState()
    step = state.token_for(KEY, now=100.0, margin=30.0)
    assert step == NeedToken(KEY)
    assert isinstance(step, NeedToken)
    request = step.request(config(), metadata())
    body = dict(parse_qsl((request.body or b"").decode()))
    assert body == {
        "grant_type": "client_credentials",
        "resource": "https://api.example.com",
        "scope": "read write",
    }
    assert request.header("authorization") is not None  # the app's credentials

    answer = json_response(
        {
            "access_token": "m2m-token",
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "read write",
            "refresh_token": "never-kept",
        }
    )
    after, entry = state.on_response(KEY, answer, now=100.0)
    assert entry == CachedAccessToken(
        token="m2m-token", expires_at=3700.0, scope="read write", obtained_at=100.0
    )
    assert "never-kept" not in repr(after) and not hasattr(after, "refresh_token")
    assert after.token_for(KEY, now=200.0, margin=30.0) is entry
    assert after.token_for(KEY, now=3680.0, margin=30.0) == NeedToken(KEY)
    assert after.token_for(client_credentials_key(organization_id="o"), 200.0, 30.0) == (
        NeedToken(client_credentials_key(organization_id="o"))
    )
    assert after.without([KEY]).token_for(KEY, 200.0, 30.0) == NeedToken(KEY)
    assert state.token_for(KEY, 200.0, 30.0) == NeedToken(KEY)  # states are values


def test_the_request_needs_a_confidential_app_and_a_target() -> None:
    with pytest.raises(LogtoUsageError):
        NeedToken(KEY).request(config(appSecret=None), metadata())
    with pytest.raises(LogtoUsageError):
        NeedToken(client_credentials_key()).request(config(), metadata())


def test_errors_are_the_token_endpoints_own() -> None:
    state = ClientCredentialsState()
    with pytest.raises(OAuthError) as info:
        state.on_response(KEY, json_response({"error": "invalid_target"}, 400), 0.0)
    assert info.value.code == "oauth.invalid_target"


@given(st.integers(0, 10**6) | st.none(), st.none() | st.integers(-10, 10**6), st.booleans())
def test_the_lifetime_is_bounded_as_the_sessions_tokens(
    expires_in: int | None, exp_offset: int | None, with_iat: bool
) -> None:
    now = 1_000.0
    if exp_offset is None:
        access = "opaque-token"
    else:
        claims: dict[str, Any] = {"exp": now + exp_offset}
        if with_iat:
            claims["iat"] = now
        access = jwt(claims)
    token = TokenResponse(access_token=access, expires_in=expires_in)
    entry = cache_entry(token, now)
    lifetime = entry.expires_at - now
    assert entry.obtained_at == now and lifetime >= 0
    if expires_in is not None:
        assert lifetime <= expires_in
    if exp_offset is not None:
        assert lifetime <= max(exp_offset, 0) and lifetime <= (
            expires_in if expires_in is not None else MAX_JWT_LIFETIME
        )
    if expires_in is None and exp_offset is None:
        assert lifetime == UNKNOWN_LIFETIME


@given(st.integers(100, 599), st.binary(max_size=200))
def test_any_answer_gives_a_token_or_a_typed_error(status: int, body: bytes) -> None:
    state = ClientCredentialsState()
    try:
        after, entry = state.on_response(KEY, HttpResponse.build(status, {}, body), 0.0)
    except LogtoError:
        return
    assert after.tokens[KEY] is entry
