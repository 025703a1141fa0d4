"""The OpenID Foundation's relying-party certification tests that apply to a code-flow client
(Basic RP and Config RP plans), one test each, run against both clients over loopback.

Names follow the plan's test ids (``rp-id_token-aud-mismatch`` -> ``test_rp_id_token_aud_mismatch``).
Tests of other response types, dynamic registration, request objects and front/back-channel
logout are not applicable; ``docs/security.md`` lists them with the reason.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from functools import partial
from typing import Any

import pytest

from logto_core.errors import (
    CallbackError,
    DiscoveryError,
    LogtoUsageError,
    TokenValidationError,
)
from logto_core.protocol.id_token import UnknownKeyError
from logto_core.session import StorageKey
from logto_core.storage import Storage
from logto_core.testing import Fault
from tests.adapters.conftest import APP_ID, REDIRECT, USER, Clock, Harness, make_client
from tests.factories import edit_stored

from .conftest import Serve, expect_error, session_of
from .support import header_of, log_params, query_of, real_json, start_and_approve

SIGNED_OUT: dict[str, str | None] = dict.fromkeys(StorageKey.ALL)


def failed_sign_in(
    harness: Harness, storage: Storage, fault: Fault, error: type[Any], code: str
) -> None:
    """The callback fails with ``error``/``code`` after ``fault``; the session is left signed
    out with the one-time attempt consumed (so a replay cannot retry it)."""
    callback = start_and_approve(harness)
    harness.provider.faults.add(fault)
    expect_error(harness, lambda: harness.handleSignInCallback(callback), error, code, storage)
    assert session_of(storage) == SIGNED_OUT
    assert harness.isAuthenticated() is False
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        CallbackError,
        "callback.state_unknown",
    )


def signed_in_with(serve: Serve, kind: str, clock: Clock, storage: Storage, alg: str) -> Harness:
    served = serve(alg)
    harness = Harness(kind, make_client(kind, served.url, clock, storage), served)
    harness.sign_in_user()
    return harness


# ---- response type, scope, client authentication -------------------------------------------


def test_rp_response_type_code(harness: Harness) -> None:
    query = query_of(harness.signIn(REDIRECT))
    assert query["response_type"] == ["code"]
    assert "response_mode" not in query


def test_rp_scope_userinfo_claims(harness: Harness) -> None:
    query = query_of(harness.signIn(REDIRECT))
    assert {"openid", "email"} <= set(query["scope"][0].split())
    harness.sign_in_user()
    info = harness.fetchUserInfo()
    assert (info.sub, info.email, info.email_verified) == (USER, "ada@example.com", True)


def test_rp_token_endpoint_client_secret_basic(harness: Harness) -> None:
    harness.sign_in_user()
    [exchange] = log_params(harness, "token", "authorization_code")
    assert "client_secret" not in exchange  # Basic, not the body
    [entry] = [e for e in harness.provider.log if e.grant_type == "authorization_code"]
    assert entry.client_id == APP_ID  # the provider read it from the Basic header
    assert harness.isAuthenticated() is True


# ---- nonce -------------------------------------------------------------------------------------


def test_rp_nonce_invalid(harness: Harness, storage: Storage) -> None:
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_claims={"nonce": "a-nonce-nobody-sent"}),
        TokenValidationError,
        "id_token.nonce_mismatch",
    )


def test_rp_nonce_unless_code_flow(harness: Harness, storage: Storage) -> None:
    # The code flow makes the nonce optional; this client always sends one and then requires it.
    first, second = (query_of(harness.signIn(REDIRECT))["nonce"][0] for _ in range(2))
    assert first != second and len(first) >= 22
    edit_stored(harness.client.storage, lambda s: replace(s, pending=()))
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_claims={"nonce": None}),
        TokenValidationError,
        "id_token.missing_claim",
    )


# ---- ID token signature and keys ----------------------------------------------------------------


def test_rp_id_token_sig_none(harness: Harness, storage: Storage) -> None:
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_header={"alg": "none"}, unsigned=True),
        TokenValidationError,
        "id_token.alg_not_allowed",
    )


def test_rp_id_token_sig_hs256(harness: Harness, storage: Storage) -> None:
    # An HMAC "signature" keyed with the client secret must never be accepted.
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_header={"alg": "HS256"}),
        TokenValidationError,
        "id_token.alg_not_allowed",
    )


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_rp_id_token_sig_accepted(
    serve: Serve, kind: str, clock: Clock, storage: Storage, alg: str
) -> None:
    """rp-id_token-sig-rs256 / rp-id_token-sig-es256."""
    harness = signed_in_with(serve, kind, clock, storage, alg)
    assert header_of(harness.getIdToken())["alg"] == alg
    assert harness.getIdTokenClaims().sub == USER


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_rp_id_token_bad_sig(
    serve: Serve, kind: str, clock: Clock, storage: Storage, alg: str
) -> None:
    """rp-id_token-bad-sig-rs256 / rp-id_token-bad-sig-es256."""
    served = serve(alg)
    harness = Harness(kind, make_client(kind, served.url, clock, storage), served)
    failed_sign_in(
        harness,
        storage,
        Fault("token", bad_signature=True),
        TokenValidationError,
        "id_token.bad_signature",
    )


def test_rp_id_token_kid_absent_single_jwks(harness: Harness, storage: Storage) -> None:
    harness.provider.faults.add(Fault("token", id_token_header={"kid": None}))
    harness.sign_in_user()
    assert "kid" not in header_of(harness.getIdToken())
    assert len(real_json(harness.server, "/jwks")["keys"]) == 1
    assert harness.getIdTokenClaims().sub == USER


def test_rp_id_token_kid_absent_multiple_jwks(harness: Harness, storage: Storage) -> None:
    with harness.server.lock:
        harness.provider.rotate_signing_key()  # the JWKS now holds two ES384 keys
    assert len(real_json(harness.server, "/jwks")["keys"]) == 2
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_header={"kid": None}),
        TokenValidationError,
        "id_token.kid_ambiguous",
    )


def test_rp_key_rotation_op_sign_key(harness: Harness, clock: Clock, storage: Storage) -> None:
    harness.sign_in_user()
    old_kid = header_of(harness.getIdToken())["kid"]
    assert harness.requests_to("jwks") == 1
    clock.advance(120)  # past the refetch cooldown
    with harness.server.lock:
        new_kid = harness.provider.rotate_signing_key(keep_previous=False)
    # A refresh brings an ID token signed with a key the client has never seen.
    edit_stored(storage, lambda s: s.without_access_tokens())
    assert harness.getAccessToken() is not None
    assert header_of(harness.getIdToken())["kid"] == new_kid != old_kid
    assert harness.requests_to("jwks") == 2  # exactly one refetch
    assert harness.isAuthenticated() is True


def test_rp_key_rotation_op_sign_key_unknown_kid_refetch_is_bounded(
    harness: Harness, storage: Storage
) -> None:
    """rp-id_token-kid-unknown: a forged kid costs at most one refetch per cooldown."""
    harness.sign_in_user()  # the key set is cached now
    harness.signOut()
    assert harness.requests_to("jwks") == 1
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_header={"kid": "forged-kid-1"}),
        UnknownKeyError,
        "id_token.kid_unknown",
    )
    assert harness.requests_to("jwks") == 2  # one forced refetch
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", id_token_header={"kid": "forged-kid-2"}))
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        UnknownKeyError,
        "id_token.kid_unknown",
    )
    assert harness.requests_to("jwks") == 2  # within the cooldown: no further fetch


# ---- ID token claims ---------------------------------------------------------------------------


def test_rp_id_token_issuer_mismatch(harness: Harness, storage: Storage) -> None:
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_claims={"iss": "https://evil.example/oidc"}),
        TokenValidationError,
        "id_token.iss_mismatch",
    )


def test_rp_id_token_aud_mismatch(harness: Harness, storage: Storage) -> None:
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_claims={"aud": "another-app"}),
        TokenValidationError,
        "id_token.aud_mismatch",
    )


def test_rp_id_token_sub(harness: Harness, storage: Storage) -> None:
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_claims={"sub": None}),
        TokenValidationError,
        "id_token.missing_claim",
    )


def test_rp_id_token_iat(harness: Harness, storage: Storage) -> None:
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_claims={"iat": None}),
        TokenValidationError,
        "id_token.missing_claim",
    )


def test_rp_id_token_bad_at_hash(harness: Harness, storage: Storage) -> None:
    """rp-id_token-bad-at_hash (code flow: checked whenever the provider sends one)."""
    bogus = base64.urlsafe_b64encode(b"\x00" * 24).rstrip(b"=").decode()
    failed_sign_in(
        harness,
        storage,
        Fault("token", id_token_claims={"at_hash": bogus}),
        TokenValidationError,
        "id_token.at_hash_mismatch",
    )


# ---- userinfo ------------------------------------------------------------------------------------


def test_rp_userinfo_bad_sub_claim(harness: Harness, storage: Storage) -> None:
    harness.sign_in_user()
    before = session_of(storage)
    harness.provider.faults.add(Fault("userinfo", body={"sub": "someone-else", "name": "Eve"}))
    expect_error(
        harness, harness.fetchUserInfo, TokenValidationError, "userinfo.sub_mismatch", storage
    )
    assert session_of(storage) == before  # the refused claims change nothing


def test_rp_userinfo_bearer_header(harness: Harness) -> None:
    harness.sign_in_user()
    assert harness.fetchUserInfo().sub == USER
    [request] = log_params(harness, "userinfo")
    # The token travelled in the Authorization header (the provider accepts nothing else),
    # never in the query or the body.
    assert "access_token" not in request


# ---- discovery -------------------------------------------------------------------------------------


def test_rp_discovery_openid_configuration(harness: Harness) -> None:
    url = harness.signIn(REDIRECT)
    assert url.startswith(harness.provider.issuer + "/auth?")
    assert harness.requests_to("discovery") == 1


def test_rp_discovery_jwks_uri_keys(harness: Harness) -> None:
    harness.sign_in_user()
    assert harness.requests_to("jwks") == 1
    assert header_of(harness.getIdToken())["kid"] in {
        key["kid"] for key in real_json(harness.server, "/jwks")["keys"]
    }


def test_rp_discovery_issuer_not_matching(harness: Harness, storage: Storage) -> None:
    document = real_json(harness.server, "/.well-known/openid-configuration")
    document["issuer"] = "https://impostor.example/oidc"
    harness.provider.faults.add(Fault("discovery", body=document))
    fetched = harness.requests_to("discovery")
    expect_error(
        harness, lambda: harness.signIn(REDIRECT), DiscoveryError, "discovery.issuer_mismatch"
    )
    assert session_of(storage) == SIGNED_OUT  # no attempt recorded
    assert harness.signIn(REDIRECT)  # the bad document was not cached
    assert harness.requests_to("discovery") == fetched + 2


def test_rp_request_uri_unsigned_not_applicable(harness: Harness) -> None:
    """rp-request_uri-* and rp-request-* are n/a: the client never sends request objects, and
    a caller cannot smuggle one in."""
    for name in ("request_uri", "request", "REQUEST_URI"):
        expect_error(
            harness,
            partial(harness.signIn, REDIRECT, extraParams={name: "https://x.example/r"}),
            LogtoUsageError,
            "sign_in.reserved_parameter",
        )
