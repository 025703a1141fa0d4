"""Regression tests for the defects the fuzzers found (see ``KNOWN_FINDINGS`` in targets.py).

The fixed ones failed before the fix because the SDK let an untyped ``UnicodeEncodeError``
escape; each now pins the typed error. A finding that is not fixed yet is in
``KNOWN_FINDINGS`` with a strict xfail here (it XPASSes, and so fails, once the SDK is fixed).
"""

from __future__ import annotations

import pytest

from logto_adapters import sync
from logto_core.errors import LogtoError, LogtoUsageError
from logto_core.http import HttpResponse
from logto_core.protocol.end_session import build_end_session_url
from logto_core.protocol.id_token import verify_id_token
from logto_core.protocol.token_endpoint import parse_token_response
from logto_core.protocol.userinfo import parse_userinfo_response
from tests import jwt_factory as jf

from .targets import CONFIG, KNOWN_FINDINGS


def test_known_findings_registry() -> None:
    assert KNOWN_FINDINGS == ()  # every finding so far is fixed and pinned below


@pytest.mark.parametrize("claim", ["nonce", "at_hash"])
def test_id_token_claim_lone_surrogate_is_typed(claim: str) -> None:
    token = jf.make_token("ES256", claims={claim: "\ud800"})
    with pytest.raises(LogtoError):
        verify_id_token(
            token,
            keys=jf.key_set(["P-256"]),
            issuer=jf.ISSUER,
            client_id=jf.CLIENT_ID,
            now=jf.NOW,
            clock_tolerance=jf.TOLERANCE,
            algorithms={"ES256"},
            expected_nonce=jf.NONCE,
            access_token=jf.ACCESS_TOKEN,
        )


@pytest.mark.parametrize("value", [b"NaN", b"Infinity"])
def test_token_expires_in_not_finite_is_typed(value: bytes) -> None:
    body = b'{"access_token": "a", "token_type": "Bearer", "expires_in": ' + value + b"}"
    with pytest.raises(LogtoError):
        parse_token_response(HttpResponse(200, {}, body))


def test_userinfo_sub_lone_surrogate_is_typed() -> None:
    body = b'{"sub": "\\ud800"}'
    with pytest.raises(LogtoError):
        parse_userinfo_response(HttpResponse(200, {}, body), expected_sub="user-1")


@pytest.mark.parametrize("where", ["post_logout_redirect_uri", "state"])
def test_end_session_lone_surrogate_is_typed(where: str) -> None:
    value = "https://app.example.com/\ud800" if where != "state" else "\ud800"
    with pytest.raises(LogtoUsageError):
        build_end_session_url(CONFIG, None, **{where: value})


def test_sign_out_lone_surrogate_is_typed() -> None:
    client = sync.LogtoClient(
        sync.LogtoConfig(endpoint="https://tenant.logto.app", appId="app", appSecret="s")
    )
    with pytest.raises(LogtoUsageError):
        client.signOut("https://app.example.com/\ud800")
