"""Provider and browser text in errors: bounded, printable, and ``error`` an RFC 6749 code."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import (
    CallbackError,
    OAuthError,
    ProviderResponseError,
    describe_error_body,
    is_oauth_error_code,
)
from logto_core.excerpts import MESSAGE_CHARS
from logto_core.http import HttpResponse
from logto_core.protocol.callback import parse_callback
from logto_core.responses import raise_for_status, read_object
from logto_core.session import PendingSignIn

RFC_ERROR = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
# Longest message an OAuthError can have without a hint: fixed text, the error code, the
# description excerpt and the status.
MESSAGE_BOUND = 200 + MESSAGE_CHARS


def _error_response(payload: Any, status: int = 400) -> HttpResponse:
    return HttpResponse.json(status, payload)


def _raised(response: HttpResponse) -> Exception:
    with pytest.raises((OAuthError, ProviderResponseError)) as info:
        raise_for_status(response, what="token")
    return info.value


def test_a_huge_description_is_an_excerpt_in_the_message_and_whole_on_the_attribute() -> None:
    description = "d" * 10_000
    error = _raised(_error_response({"error": "invalid_grant", "error_description": description}))
    assert isinstance(error, OAuthError)
    assert len(str(error)) < MESSAGE_BOUND and len(repr(error)) < MESSAGE_BOUND + 60
    assert "d" * MESSAGE_CHARS + "..." in str(error)
    assert error.error_description == description


def test_control_characters_never_reach_a_message() -> None:
    forged = "ok\r\n2024-01-01 CRITICAL forged log line\x1b[31m\u202e\x00"
    error = _raised(
        _error_response({"error": "invalid_grant", "error_description": forged, "message": forged})
    )
    assert error.args[0].isprintable()
    assert "forged log line" in str(error)
    body = _raised(HttpResponse.build(400, {}, forged.encode()))
    assert isinstance(body, ProviderResponseError)
    assert body.body_excerpt.isprintable() and "forged log line" in body.body_excerpt


def test_logto_message_stands_in_for_a_missing_description() -> None:
    error = _raised(
        _error_response({"error": "invalid_target", "code": "oidc.invalid_target", "message": "m"})
    )
    assert isinstance(error, OAuthError)
    assert (error.logto_code, error.logto_message) == ("oidc.invalid_target", "m")
    assert str(error) == "provider answered invalid_target: m (HTTP 400)"


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.text(max_size=90), st.integers(), st.none(), st.lists(st.text())))
def test_error_must_be_an_rfc_6749_code(value: object) -> None:
    error = _raised(_error_response({"error": value, "error_description": "x"}))
    conforming = isinstance(value, str) and bool(RFC_ERROR.fullmatch(value)) and len(value) <= 64
    assert is_oauth_error_code(value) is conforming
    if conforming:
        assert isinstance(error, OAuthError) and error.code == f"oauth.{value}"
    else:
        assert isinstance(error, ProviderResponseError)
        assert error.code == "provider_response.invalid_error"
        assert error.body_excerpt.isprintable() and len(error.body_excerpt) <= 203


def test_error_bounds() -> None:
    assert is_oauth_error_code("x" * 64) and not is_oauth_error_code("x" * 65)
    for bad in ("", 'a"b', "a\\b", "caf\u00e9", "a\nb", "a\x7f"):
        assert not is_oauth_error_code(bad), bad
    assert describe_error_body({"error": 'a"b'}) is None
    assert describe_error_body({"error": "x", "message": "m"}) == {"error": "x", "message": "m"}


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=3000))
def test_unexpected_bodies_give_a_bounded_printable_excerpt(body: bytes) -> None:
    error = _raised(HttpResponse.build(400, {}, body))
    if isinstance(error, ProviderResponseError):
        assert error.body_excerpt.isprintable() and len(error.body_excerpt) <= 203
    with pytest.raises(ProviderResponseError) as info:
        read_object(HttpResponse.build(200, {}, json.dumps([body.hex()]).encode()), what="x")
    assert len(info.value.body_excerpt) <= 203


# ---- the authorization response (browser text) ----------------------------------------

STATE = "state-" + "A" * 40
ISSUER = "https://tenant.logto.app/oidc"
REDIRECT = "https://app.example.com/callback"


def _callback(**params: str) -> Exception | None:
    attempt = PendingSignIn(
        state=STATE, nonce="n" * 22, code_verifier="v" * 43, redirect_uri=REDIRECT, created_at=0
    )
    query = urlencode({"state": STATE, "iss": ISSUER, **params})
    result = parse_callback(
        f"{REDIRECT}?{query}", pending=[attempt], issuer=ISSUER, iss_required=True, now=1
    )
    return result.error


def test_callback_error_must_be_an_rfc_6749_code() -> None:
    for bad in ('a"b', "x" * 65, "line\nbreak", "\u00e9"):
        error = _callback(error=bad)
        assert isinstance(error, CallbackError) and error.code == "callback.malformed"
        assert str(error).isprintable() and len(str(error)) < 300
    error = _callback(error="access_denied", error_description="d" * 10_000 + "\n")
    assert isinstance(error, OAuthError) and error.code == "oauth.access_denied"
    assert len(str(error)) < MESSAGE_BOUND and str(error).isprintable()
    assert error.error_description == "d" * 10_000 + "\n"


def test_a_foreign_iss_is_quoted_bounded() -> None:
    error = _callback(iss="https://evil.example/" + "x" * 5000 + "\r\n", code="c")
    assert isinstance(error, CallbackError) and error.code == "callback.iss_mismatch"
    assert len(str(error)) < 400 and str(error).isprintable()
