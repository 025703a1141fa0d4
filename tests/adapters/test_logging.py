"""The SDK logs each protocol step under one logger, and never a secret, at any level."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlsplit

import pytest

from logto_core.errors import LogtoError
from logto_core.log import LOGGER_NAME
from logto_core.session import SessionState
from logto_core.storage import MemoryStorage
from logto_core.testing import Fault
from tests.adapters.conftest import API, APP_SECRET, ORG, POST_LOGOUT, REDIRECT, USER, Harness


def _secrets_of(storage: MemoryStorage, seen: set[str]) -> None:
    session = SessionState.load(storage.get)
    seen.update(token for token in (session.id_token, session.refresh_token) if token)
    for entry in session.pending:
        seen.update({entry.state, entry.nonce, entry.code_verifier})
    seen.update(cached.token for cached in session.access_tokens.values())


def test_no_secret_in_any_record(
    harness: Harness, storage: MemoryStorage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    secrets: set[str] = {APP_SECRET}
    url = harness.signIn(REDIRECT)
    _secrets_of(storage, secrets)
    callback = harness.provider.approve(url, USER)
    secrets.update(v for k, v in parse_qsl(urlsplit(callback).query) if k in ("code", "state"))
    harness.handleSignInCallback(callback)
    _secrets_of(storage, secrets)
    harness.fetchUserInfo()
    harness.getAccessToken(API)
    harness.getOrganizationToken(ORG)
    _secrets_of(storage, secrets)
    # A few failures, so that error paths log too.
    harness.provider.faults.add(Fault(endpoint="token", status=503))
    with pytest.raises(LogtoError):
        harness.getOrganizationToken("org-elsewhere")
    harness.provider.rotate_signing_key(keep_previous=False)
    harness.provider.revoke_grants(USER)
    assert harness.getOrganizationToken("org-elsewhere") is None
    harness.provider.faults.add(Fault(endpoint="discovery", status=500, times=None))
    harness.signOut(POST_LOGOUT)
    assert harness.waitForRevocations(5.0) is True  # its records too

    records = [r for r in caplog.records if r.name.startswith(LOGGER_NAME)]
    messages = [r.getMessage() for r in records]
    assert any("-> POST" in m and "grant_type=authorization_code" in m for m in messages)
    assert any("grant_type=refresh_token" in m for m in messages)
    assert any("invalid_grant" in m for m in messages)
    assert all(len(s) >= 8 for s in secrets)
    for record, message in zip(records, messages, strict=True):
        text = message + repr(record.args)
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {message[:80]}"


def test_revocation_failure_is_a_warning(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness.sign_in_user()
    harness.provider.faults.add(Fault(endpoint="revocation", status=503))
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    harness.signOut(POST_LOGOUT)
    assert harness.waitForRevocations(5.0) is True
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "revocation failed (transport.status)" in caplog.records[0].getMessage()


def test_silent_by_default(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    harness.sign_in_user()
    harness.getAccessToken(API)
    assert caplog.records == []
