"""Regression tests for the defects the fuzzers found (see ``KNOWN_FINDINGS`` in targets.py).

Each failed before the fix because the SDK let an untyped ``UnicodeEncodeError`` escape; each
now pins the typed error. A new finding that cannot be fixed at once goes into
``KNOWN_FINDINGS`` with a strict xfail here.
"""

from __future__ import annotations

import pytest

from logto_adapters import sync
from logto_core.end_session import build_end_session_url
from logto_core.errors import LogtoError, LogtoUsageError
from logto_core.http import HttpResponse
from logto_core.userinfo import parse_userinfo_response

from .targets import CONFIG, KNOWN_FINDINGS


def test_known_findings_registry() -> None:
    assert KNOWN_FINDINGS == ()  # every finding so far is fixed and pinned below


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
