"""Rows of the specification tables (``tests/test_spec_requirements.py``) run end to end:
both clients against the test provider over loopback, the provider made to break one
REQUIRED/MUST item through a ``Fault``. Each row shows that the typed error, with its stable
code and without a secret in its text, reaches the caller of the public API, and what the
session keeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from logto_core.errors import (
    DiscoveryError,
    JwksError,
    LogtoError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
)
from logto_core.session import StorageKey
from logto_core.storage import Storage
from logto_core.testing import Fault
from tests.adapters.conftest import API, REDIRECT, USER, Clock, Harness

from .conftest import expect_error, session_of
from .support import real_json, start_and_approve

SIGNED_OUT: dict[str, str | None] = dict.fromkeys(StorageKey.ALL)


def discovery_with(harness: Harness, **changes: Any) -> Fault:
    document = real_json(harness.server, "/.well-known/openid-configuration")
    for name, value in changes.items():
        if value is None:
            document.pop(name)
        else:
            document[name] = value
    return Fault("discovery", body=document)


def raw_extra(harness: Harness, path: str, endpoint: str, extra: str) -> Fault:
    """The real document at ``path`` with raw JSON ``extra`` appended as members."""
    text = json.dumps(real_json(harness.server, path))
    return Fault(endpoint, body=(text[:-1] + ", " + extra + "}").encode())


@dataclass(frozen=True)
class SignInRow:
    """A fault met while signing in: at ``signIn`` (discovery) or at the callback."""

    clause: str
    fault: Callable[[Harness], Fault]
    error: type[LogtoError]
    code: str
    at_callback: bool = False


TOKEN = {"access_token": "a" * 43, "expires_in": 3600}

SIGN_IN_ROWS = [
    SignInRow(
        "OIDC Discovery 3: subject_types_supported REQUIRED",
        lambda h: discovery_with(h, subject_types_supported=None),
        DiscoveryError,
        "discovery",
    ),
    SignInRow(
        "OIDC Discovery 3: scopes_supported MUST contain openid",
        lambda h: discovery_with(h, scopes_supported=["profile"]),
        DiscoveryError,
        "discovery.openid_scope_missing",
    ),
    SignInRow(
        "OIDC Discovery 3: token endpoint must accept client_secret_basic",
        lambda h: discovery_with(h, token_endpoint_auth_methods_supported=["private_key_jwt"]),
        DiscoveryError,
        "discovery.auth_method_unsupported",
    ),
    SignInRow(
        "RFC 8259 6: NaN in the discovery document",
        lambda h: raw_extra(h, "/.well-known/openid-configuration", "discovery", '"x": NaN'),
        ProviderResponseError,
        "provider_response.not_json",
    ),
    SignInRow(
        "RFC 6749 5.1: token_type REQUIRED",
        lambda h: Fault("token", body=TOKEN),
        ProviderError,
        "token.token_type",
        at_callback=True,
    ),
    SignInRow(
        "RFC 9449: a DPoP-bound token is unusable without proofs",
        lambda h: Fault("token", body={**TOKEN, "token_type": "DPoP"}),
        ProviderError,
        "token.token_type_dpop",
        at_callback=True,
    ),
    SignInRow(
        "OIDC Core 3.1.3.7 (1): an encrypted ID token is unsupported",
        lambda h: Fault(
            "token", body={**TOKEN, "token_type": "Bearer", "id_token": "eyJ.a2V5.aXY.Yw.dGFn"}
        ),
        ProviderError,
        "token.id_token_encrypted",
        at_callback=True,
    ),
    SignInRow(
        "RFC 8259 4: access_token repeated",
        lambda h: Fault(
            "token",
            body=b'{"access_token": "aaaa", "token_type": "Bearer", "access_token": "bbbb"}',
        ),
        ProviderResponseError,
        "provider_response.not_json",
        at_callback=True,
    ),
    SignInRow(
        "RFC 7517 5: keys repeated in the JWKS",
        lambda h: raw_extra(h, "/jwks", "jwks", '"keys": []'),
        JwksError,
        "jwks.malformed",
        at_callback=True,
    ),
]


@pytest.mark.parametrize("case", SIGN_IN_ROWS, ids=lambda case: case.clause)
def test_sign_in_meets_the_typed_error(harness: Harness, storage: Storage, case: SignInRow) -> None:
    callback = start_and_approve(harness) if case.at_callback else None
    harness.provider.faults.add(case.fault(harness))
    if callback is None:
        expect_error(harness, lambda: harness.signIn(REDIRECT), case.error, case.code, storage)
    else:
        expect_error(
            harness, lambda: harness.handleSignInCallback(callback), case.error, case.code, storage
        )
    assert session_of(storage) == SIGNED_OUT
    harness.provider.faults.clear()
    harness.sign_in_user()  # nothing bad was cached: the next sign-in works
    assert harness.isAuthenticated()


def test_refresh_with_a_mistyped_expires_in_keeps_the_session(
    harness: Harness, storage: Storage, clock: Clock
) -> None:
    harness.sign_in_user()
    before = session_of(storage)
    harness.provider.faults.add(
        Fault(
            "token",
            grant_type="refresh_token",
            body={"access_token": "b" * 43, "token_type": "Bearer", "expires_in": "3600"},
        )
    )
    expect_error(
        harness, lambda: harness.getAccessToken(API), ProviderError, "token.expires_in", storage
    )
    assert session_of(storage)[StorageKey.REFRESH_TOKEN] == before[StorageKey.REFRESH_TOKEN]
    assert harness.getAccessToken(API)  # the grant still works


def test_signed_userinfo_is_a_typed_error(harness: Harness, storage: Storage) -> None:
    harness.sign_in_user()
    harness.provider.faults.add(
        Fault("userinfo", body=b"eyJ.eyJ.c2ln", headers={"content-type": "application/jwt"})
    )
    expect_error(
        harness, harness.fetchUserInfo, ProviderError, "userinfo.signed_unsupported", storage
    )
    assert harness.fetchUserInfo().sub == USER


def test_userinfo_error_only_in_the_bearer_challenge(harness: Harness, storage: Storage) -> None:
    # RFC 6750 section 3: the error may come only in WWW-Authenticate. It is an OAuthError, so
    # the one-refresh-one-retry rule of a 401 invalid_token applies to it too.
    harness.sign_in_user()
    challenge = 'Bearer realm="logto", error="invalid_token", error_description="expired"'
    harness.provider.faults.add(
        Fault(
            "userinfo",
            status=401,
            body=b"",
            headers={"www-authenticate": challenge, "content-type": None},
            times=None,
        )
    )
    error = expect_error(harness, harness.fetchUserInfo, OAuthError, "oauth.invalid_token", storage)
    assert error.status == 401 and error.error_description == "expired"
    assert harness.requests_to("userinfo") == 2
    assert harness.requests_to("token", "refresh_token") == 1
    harness.provider.faults.clear()
    assert harness.fetchUserInfo().sub == USER
