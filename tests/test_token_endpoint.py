from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import (
    LogtoError,
    LogtoUsageError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
    TransportError,
)
from logto_core.http import HttpRequest, HttpResponse
from logto_core.protocol.token_endpoint import (
    build_client_credentials,
    build_code_exchange,
    build_refresh,
    client_authentication,
    parse_token_response,
)
from logto_core.session import PendingSignIn
from tests.factories import ISSUER, config, json_response, metadata

ATTEMPT = PendingSignIn(
    state="st",
    nonce="n",
    code_verifier="v" * 43,
    redirect_uri="https://app.example/cb",
    created_at=0,
)


def form(request: HttpRequest) -> dict[str, str]:
    assert request.body is not None
    return dict(parse_qsl(request.body.decode()))


def test_confidential_client_uses_basic_with_form_encoded_credentials() -> None:
    cfg = config(appId="my app:1", appSecret="p@ss:w rd+")
    headers, extra = client_authentication(cfg)
    assert extra == []
    raw = base64.b64decode(headers["authorization"].removeprefix("Basic ")).decode()
    user, _, password = raw.partition(":")
    assert unquote_plus(user) == "my app:1"
    assert unquote_plus(password) == "p@ss:w rd+"
    assert ":" not in user and ":" not in password


def test_public_client_sends_client_id_and_no_secret() -> None:
    request = build_code_exchange(config(appSecret=None), metadata(), code="c", attempt=ATTEMPT)
    body = form(request)
    assert body["client_id"] == "app"
    assert "client_secret" not in body
    assert request.header("authorization") is None


def test_code_exchange_body() -> None:
    request = build_code_exchange(config(), metadata(), code="the-code", attempt=ATTEMPT)
    assert request.method == "POST"
    assert request.url == f"{ISSUER}/token"
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert form(request) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "https://app.example/cb",
        "code_verifier": "v" * 43,
    }
    assert not request.idempotent
    assert "the-code" not in repr(request) and "s3cr3t" not in repr(request)
    assert "Basic" not in repr(request)


def test_refresh_with_resource_organization_and_scopes() -> None:
    request = build_refresh(
        config(),
        metadata(),
        refresh_token="rt",
        resource="https://api",
        organization_id="o1",
        scopes=["read", "write", "read"],
    )
    assert form(request) == {
        "grant_type": "refresh_token",
        "refresh_token": "rt",
        "resource": "https://api",
        "organization_id": "o1",
        "scope": "read write",
    }
    plain = form(build_refresh(config(), metadata(), refresh_token="rt"))
    assert plain == {"grant_type": "refresh_token", "refresh_token": "rt"}


def test_bad_scopes_are_refused() -> None:
    with pytest.raises(LogtoUsageError):
        build_refresh(config(), metadata(), refresh_token="rt", scopes=["a b"])


def test_client_credentials() -> None:
    body = form(
        build_client_credentials(config(), metadata(), resource="https://api", scopes=["x"])
    )
    assert body == {"grant_type": "client_credentials", "resource": "https://api", "scope": "x"}
    body = form(build_client_credentials(config(), metadata(), organization_id="o"))
    assert body == {"grant_type": "client_credentials", "organization_id": "o"}
    with pytest.raises(LogtoUsageError):
        build_client_credentials(config(appSecret=None), metadata(), resource="https://api")
    with pytest.raises(LogtoUsageError):
        build_client_credentials(config(), metadata())


def test_successful_response() -> None:
    token = parse_token_response(
        json_response(
            {
                "access_token": "at",
                "expires_in": 3600.0,
                "token_type": "Bearer",
                "id_token": "a.b.c",
                "refresh_token": "rt",
                "scope": "openid",
                "extra": 1,
            }
        )
    )
    assert token.access_token == "at" and token.expires_in == 3600
    assert token.refresh_token == "rt" and token.id_token == "a.b.c"
    assert "at" not in repr(token).replace("Bearer", "").replace("extra", "").replace("expires", "")


def test_expires_in_may_be_missing() -> None:
    token = parse_token_response(json_response({"access_token": "at", "token_type": "Bearer"}))
    assert token.expires_in is None


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"access_token": ""},
        {"access_token": 5},
        {"access_token": "at", "token_type": "mac"},
        {"access_token": "at", "token_type": 1},
        {"access_token": "at", "token_type": "Bearer", "expires_in": "3600"},
        {"access_token": "at", "token_type": "Bearer", "expires_in": -1},
        {"access_token": "at", "token_type": "Bearer", "expires_in": True},
        {"access_token": "at", "token_type": "Bearer", "refresh_token": 1},
        {"access_token": "at", "token_type": "Bearer", "refresh_token": ""},
        {"access_token": "at", "token_type": "Bearer", "id_token": ["x"]},
        {"access_token": "at", "token_type": "Bearer", "scope": 3},
    ],
)
def test_invalid_success_bodies(payload: dict[str, Any]) -> None:
    with pytest.raises(ProviderError):
        parse_token_response(json_response(payload))


def test_oauth_error_body_carries_logto_fields() -> None:
    body = {
        "error": "invalid_grant",
        "error_description": "grant request is invalid",
        "code": "oidc.invalid_grant",
        "message": "Grant request is invalid.",
        "error_uri": "https://example.com/e",
    }
    with pytest.raises(OAuthError) as info:
        parse_token_response(json_response(body, status=400))
    error = info.value
    assert (error.error, error.status, error.logto_code) == (
        "invalid_grant",
        400,
        "oidc.invalid_grant",
    )
    assert error.error_uri == "https://example.com/e"
    assert error.code == "oauth.invalid_grant"
    assert "grant request is invalid" in str(error)


def test_non_oauth_error_keeps_status_and_truncated_body() -> None:
    with pytest.raises(ProviderResponseError) as info:
        parse_token_response(HttpResponse.build(418, {}, b"x" * 5000))
    assert info.value.status == 418
    assert len(info.value.body_excerpt) <= 203


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_transient_statuses_are_transport_errors(status: int) -> None:
    with pytest.raises(TransportError) as info:
        parse_token_response(json_response({"error": "server_error"}, status=status))
    assert info.value.status == status


@settings(max_examples=300)
@given(st.integers(100, 599), st.binary(max_size=200))
def test_arbitrary_responses_give_token_or_sdk_error(status: int, body: bytes) -> None:
    try:
        token = parse_token_response(HttpResponse.build(status, {}, body))
    except LogtoError:
        return
    assert token.access_token


@pytest.mark.parametrize(
    "payload",
    [
        {"access_token": "a", "token_type": "Bearer", "expires_in": float("nan")},
        {"access_token": "a", "token_type": "Bearer", "expires_in": float("inf")},
        {"access_token": "caf\u00e9", "token_type": "Bearer"},
        {"access_token": "a\ud800", "token_type": "Bearer"},
        {"access_token": "a", "token_type": "Bearer", "refresh_token": "r\nx"},
        {"access_token": "a", "token_type": "Bearer", "id_token": "x.y.\u00e9"},
    ],
)
def test_values_that_could_not_be_sent_back_are_refused(payload: dict[str, Any]) -> None:
    body = json.dumps(payload, allow_nan=True).encode()
    with pytest.raises(ProviderError):
        parse_token_response(HttpResponse.build(200, {}, body))
