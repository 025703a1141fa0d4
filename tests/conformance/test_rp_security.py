"""One test per requirement of /work/shared/reference/rp-security.md, against both clients
over loopback, with the test provider misbehaving through ``Fault``s.

Each test asserts the typed error (class and ``code``), that no secret reaches its message,
and the state the session is left in. ``docs/security.md`` maps each test to its clause.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
from pydantic import SecretStr

from logto_adapters import aio, sync
from logto_core import transport_policy as policy
from logto_core.errors import (
    CallbackError,
    DiscoveryError,
    LogtoError,
    LogtoUsageError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
    SignInRequiredError,
    TokenValidationError,
    TransportError,
)
from logto_core.http import MAX_BODY_BYTES
from logto_core.jose.jwt import MAX_TOKEN_BYTES
from logto_core.models import TokenResponse
from logto_core.return_to import safe_return_to
from logto_core.session import SessionState, StorageKey
from logto_core.storage import MemoryStorage, Storage
from logto_core.testing import REUSE_WINDOW, Fault
from tests.adapters.conftest import (
    API,
    APP_ID,
    APP_SECRET,
    ORG,
    POST_LOGOUT,
    REDIRECT,
    USER,
    Clock,
    Harness,
    make_client,
    make_config,
)
from tests.factories import edit_stored, stored

from .conftest import SPA_ID, SPA_REDIRECT, expect_error, session_of
from .support import claims_of, log_params, query_of, real_json, start_and_approve

SIGNED_OUT: dict[str, str | None] = dict.fromkeys(StorageKey.ALL)
PKCE_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def tampered_discovery(harness: Harness, **changes: Any) -> Fault:
    document = real_json(harness.server, "/.well-known/openid-configuration")
    for name, value in changes.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return Fault("discovery", body=document)


# ---- discovery --------------------------------------------------------------------------------


def test_sec_discovery_issuer_exact(harness: Harness, storage: Storage) -> None:
    issuer = harness.provider.issuer
    for wrong in (issuer + "/", issuer.upper(), issuer.replace("/oidc", "")):
        harness.provider.faults.add(tampered_discovery(harness, issuer=wrong))
        expect_error(
            harness, lambda: harness.signIn(REDIRECT), DiscoveryError, "discovery.issuer_mismatch"
        )
    assert session_of(storage) == SIGNED_OUT


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        pytest.param({"drop": "token_endpoint"}, DiscoveryError, "discovery", id="missing-field"),
        pytest.param({"retype": ("jwks_uri", 42)}, DiscoveryError, "discovery", id="ill-typed"),
        pytest.param({"status": 204}, DiscoveryError, "discovery", id="status-204"),
        pytest.param(
            {"body": [1, 2]}, ProviderResponseError, "provider_response.not_object", id="array"
        ),
        pytest.param(
            {"body": b"<html>"}, ProviderResponseError, "provider_response.not_json", id="html"
        ),
        pytest.param(
            {"status": 404, "body": b"nope"},
            ProviderResponseError,
            "provider_response.status",
            id="status-404",
        ),
    ],
)
def test_sec_discovery_document_well_formed(
    harness: Harness, storage: Storage, fault: dict[str, Any], error: type[LogtoError], code: str
) -> None:
    if "drop" in fault:
        harness.provider.faults.add(tampered_discovery(harness, **{fault["drop"]: None}))
    elif "retype" in fault:
        name, value = fault["retype"]
        harness.provider.faults.add(tampered_discovery(harness, **{name: value}))
    else:
        harness.provider.faults.add(
            Fault("discovery", status=fault.get("status"), body=fault.get("body"))
        )
    expect_error(harness, lambda: harness.signIn(REDIRECT), error, code)
    assert session_of(storage) == SIGNED_OUT


@pytest.mark.parametrize(
    "url",
    [
        "http://tenant.example/oidc/token",
        "file:///etc/passwd",
        "ftp://tenant.example/token",
        "https://user:pw@tenant.example/token",
    ],
)
def test_sec_discovery_endpoints_https(harness: Harness, storage: Storage, url: str) -> None:
    harness.provider.faults.add(tampered_discovery(harness, token_endpoint=url))
    expect_error(
        harness, lambda: harness.signIn(REDIRECT), DiscoveryError, "discovery.insecure_endpoint"
    )
    assert session_of(storage) == SIGNED_OUT


def test_sec_discovery_loopback_http_only_in_development_mode(
    served: Any, kind: str, clock: Clock
) -> None:
    # Development mode (the default for a loopback endpoint): loopback http is usable...
    harness = Harness(kind, make_client(kind, served.url, clock), served)
    assert harness.signIn(REDIRECT).startswith("http://127.0.0.1:")
    # ...but a non-loopback http endpoint in the document is still refused...
    harness.provider.faults.add(tampered_discovery(harness, jwks_uri="http://keys.example/jwks"))
    fresh = Harness(kind, make_client(kind, served.url, clock), served)
    expect_error(
        fresh, lambda: fresh.signIn(REDIRECT), DiscoveryError, "discovery.insecure_endpoint"
    )
    # ...and without development mode a loopback http endpoint is not accepted at all.
    with pytest.raises(LogtoUsageError, match="https"):
        make_client(kind, served.url, clock, config={"allowInsecureLoopback": False})


def test_sec_discovery_size_timeout_not_cached(harness: Harness, clock: Clock) -> None:
    harness.provider.faults.add(Fault("discovery", body=b" " * (MAX_BODY_BYTES + 1)))
    expect_error(harness, lambda: harness.signIn(REDIRECT), TransportError, policy.BODY_TOO_LARGE)
    harness.provider.faults.add(Fault("discovery", delay=2.0))
    impatient = make_client(harness.kind, harness.server.url, clock, timeout=(0.5, 0.5))
    started = time.monotonic()
    expect_error(
        harness,
        lambda: Harness(harness.kind, impatient, harness.server).signIn(REDIRECT),
        TransportError,
        policy.TIMEOUT,
    )
    assert time.monotonic() - started < 1.8
    assert harness.signIn(REDIRECT)  # neither failure was cached


# ---- authorization request ------------------------------------------------------------------------


def test_sec_pkce_s256_verifier(harness: Harness) -> None:
    url = harness.signIn(REDIRECT)
    query = query_of(url)
    assert query["code_challenge_method"] == ["S256"]
    harness.handleSignInCallback(harness.provider.approve(url, USER))
    [exchange] = log_params(harness, "token", "authorization_code")
    verifier = exchange["code_verifier"]
    # 43 characters of base64url = 32 random bytes = 256 bits.
    assert 43 <= len(verifier) <= 128 and set(verifier) <= PKCE_ALPHABET
    digest = hashlib.sha256(verifier.encode()).digest()
    assert query["code_challenge"] == [base64.urlsafe_b64encode(digest).rstrip(b"=").decode()]


def test_sec_state_nonce_fresh_csprng(harness: Harness) -> None:
    queries = [query_of(harness.signIn(REDIRECT)) for _ in range(5)]
    for name in ("state", "nonce", "code_challenge"):
        values = [q[name][0] for q in queries]
        assert len(set(values)) == 5
        assert all(len(v) >= 22 for v in values)  # >= 128 bits in base64url


@pytest.mark.parametrize(
    "name",
    [
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "resource",
        "PROMPT",
        "Client_Id",
    ],
)
def test_sec_reserved_parameters_not_overridable(harness: Harness, name: str) -> None:
    expect_error(
        harness,
        lambda: harness.signIn(REDIRECT, extraParams={name: "attacker"}),
        LogtoUsageError,
        "sign_in.reserved_parameter",
    )
    assert stored(harness.client.storage).pending == ()


@pytest.mark.parametrize(
    "overrides",
    [
        {"resources": ["https://api.example.com/#frag"]},
        {"resources": ["api.example.com"]},
        {"endpoint": "http://127.0.0.1:3001", "allowInsecureLoopback": False},
        {"endpoint": "ftp://tenant.example"},
    ],
    ids=["resource-fragment", "resource-relative", "loopback-off", "ftp-endpoint"],
)
def test_sec_config_errors_typed(overrides: dict[str, Any]) -> None:
    """Resource indicators must be absolute URIs without fragment, and every failure is a
    LogtoError: a bad configuration must raise LogtoUsageError."""
    values = dict(overrides)
    endpoint = values.pop("endpoint", "https://tenant.example")
    with pytest.raises(LogtoUsageError):
        make_config(endpoint, **values)


def test_sec_config_error_hides_secret() -> None:
    secret = "config-secret-value-42"
    with pytest.raises(LogtoUsageError) as caught:
        sync.LogtoConfig(
            endpoint="http://127.0.0.1:3001",
            allowInsecureLoopback=False,
            appId="app",
            appSecret=secret,
        )
    assert secret not in str(caught.value) and secret not in repr(caught.value)


def test_sec_resource_indicators_absolute(served: Any, kind: str, clock: Clock) -> None:
    """The refusal itself (whatever its type, see above) happens before any request."""
    for resource in ("https://a.example/#f", "a.example", "", "https://a.example/ x"):
        with pytest.raises(LogtoUsageError, match="absolute URI"):
            make_client(kind, served.url, clock, config={"resources": [resource]})
    assert served.provider.log == []


# ---- callback --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [("/callback", "/other"), ("http://", "https://"), (":9/", ":10/"), ("127.0.0.1", "localhost")],
    ids=["path", "scheme", "port", "host"],
)
def test_sec_callback_redirect_uri_match(
    harness: Harness, storage: Storage, old: str, new: str
) -> None:
    callback = start_and_approve(harness)
    bad = callback.replace(old, new, 1)
    assert bad != callback
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(bad),
        CallbackError,
        "callback.redirect_mismatch",
    )
    assert harness.requests_to("token") == 0
    assert session_of(storage) == SIGNED_OUT  # the attempt is consumed
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        CallbackError,
        "callback.state_unknown",
    )


def test_sec_callback_state_checked_first(harness: Harness, storage: Storage) -> None:
    harness.signIn(REDIRECT)
    before = session_of(storage)
    base = REDIRECT + "?"
    iss = f"iss={harness.provider.issuer}"
    for url in (
        f"{base}code=abc&{iss}",
        f"{base}code=abc&state=forged&{iss}",
        f"{base}error=access_denied&state=forged&{iss}",
        f"{base}error=access_denied&{iss}",
    ):
        code = "callback.state_unknown" if "state=" in url else "callback.state_missing"
        expect_error(harness, partial(harness.handleSignInCallback, url), CallbackError, code)
    assert harness.requests_to("token") == 0
    assert session_of(storage) == before  # nothing consumed: the real callback still works


def test_sec_callback_error_response(harness: Harness, storage: Storage) -> None:
    denied = harness.provider.deny(
        harness.signIn(REDIRECT), "login_required", description="no session here"
    )
    error = expect_error(
        harness, lambda: harness.handleSignInCallback(denied), OAuthError, "oauth.login_required"
    )
    assert (error.error, error.error_description, error.status) == (
        "login_required",
        "no session here",
        None,
    )
    assert session_of(storage) == SIGNED_OUT  # the attempt is cleared
    uri = REDIRECT + "?error=access_denied&error_uri=https%3A%2F%2Fdocs.example%2Fe&state={}&iss={}"
    url = harness.signIn(REDIRECT)
    state = query_of(url)["state"][0]
    with_uri = uri.format(state, harness.provider.issuer)
    error = expect_error(
        harness, lambda: harness.handleSignInCallback(with_uri), OAuthError, "oauth.access_denied"
    )
    assert error.error_uri == "https://docs.example/e"


def test_sec_callback_iss(harness: Harness, storage: Storage) -> None:
    callback = start_and_approve(harness)
    issuer = harness.provider.issuer
    foreign = callback.replace(f"iss={issuer}", "iss=https%3A%2F%2Fevil.example%2Foidc")
    foreign = foreign.replace("iss=http%3A%2F%2F", "iss=https%3A%2F%2Fevil.example%2Fx%2F")
    assert foreign != callback
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(foreign),
        CallbackError,
        "callback.iss_mismatch",
    )
    callback = start_and_approve(harness)
    query = query_of(callback)
    missing = f"{REDIRECT}?code={query['code'][0]}&state={query['state'][0]}"
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(missing),
        CallbackError,
        "callback.iss_missing",
    )
    assert harness.requests_to("token") == 0
    assert session_of(storage) == SIGNED_OUT


def test_sec_callback_code_missing_and_one_time(harness: Harness, storage: Storage) -> None:
    url = harness.signIn(REDIRECT)
    state = query_of(url)["state"][0]
    no_code = f"{REDIRECT}?state={state}&iss={harness.provider.issuer}"
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(no_code),
        CallbackError,
        "callback.code_missing",
    )
    callback = start_and_approve(harness)
    harness.handleSignInCallback(callback)
    tokens = session_of(storage)
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        CallbackError,
        "callback.state_unknown",
    )
    assert session_of(storage) == tokens  # the replay changed nothing
    assert harness.requests_to("token", "authorization_code") == 1


def test_sec_callback_parallel_sign_ins(harness: Harness, storage: Storage) -> None:
    first = start_and_approve(harness)
    second = start_and_approve(harness)
    harness.handleSignInCallback(second)
    assert harness.getIdTokenClaims().sub == USER
    harness.handleSignInCallback(first)  # the other tab's attempt survived
    assert harness.getIdTokenClaims().sub == USER
    assert stored(storage).pending == ()
    assert harness.requests_to("token", "authorization_code") == 2


# ---- token responses -------------------------------------------------------------------------------


def test_sec_token_error_responses_typed(harness: Harness, storage: Storage) -> None:
    body = {
        "error": "invalid_request",
        "error_description": "bad request",
        "code": "oidc.invalid_request",
        "message": "bad",
    }
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", status=400, body=body))
    error = expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        OAuthError,
        "oauth.invalid_request",
        storage,
    )
    assert (error.error, error.error_description, error.logto_code, error.status) == (
        "invalid_request",
        "bad request",
        "oidc.invalid_request",
        400,
    )
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", status=400, body=b"<html>" + b"x" * 5000))
    error = expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        ProviderResponseError,
        "provider_response.status",
        storage,
    )
    assert error.status == 400 and error.body_excerpt.startswith("<html>")
    assert len(error.body_excerpt) <= 203
    assert session_of(storage) == SIGNED_OUT


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[]", "provider_response.not_object"),
        (b"not json", "provider_response.not_json"),
        ({"token_type": "Bearer", "expires_in": 60}, "token.access_token_missing"),
        ({"access_token": 12345, "token_type": "Bearer"}, "token.access_token_missing"),
        ({"access_token": "a" * 43, "token_type": "mac"}, "token.token_type"),
        ({"access_token": "a" * 43, "token_type": "Bearer", "expires_in": -5}, "token.expires_in"),
    ],
)
def test_sec_token_success_body_checked(
    harness: Harness, storage: Storage, body: Any, code: str
) -> None:
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", body=body))
    error = expect_error(
        harness, lambda: harness.handleSignInCallback(callback), ProviderError, code, storage
    )
    assert isinstance(error, ProviderError)
    assert session_of(storage) == SIGNED_OUT


def test_sec_token_expires_in_optional(harness: Harness, storage: Storage, clock: Clock) -> None:
    harness.sign_in_user()
    refresh = harness.getRefreshToken()
    id_token = harness.getIdToken()
    harness.provider.faults.add(
        Fault(
            "token",
            grant_type="refresh_token",
            body={"access_token": "opaque-without-lifetime-" + "z" * 30, "token_type": "Bearer"},
        )
    )
    token = harness.getAccessToken(API)
    assert token == "opaque-without-lifetime-" + "z" * 30
    assert harness.getRefreshToken() == refresh  # none returned: the old one stays
    assert harness.getIdToken() == id_token
    clock.advance(120)  # cached conservatively: a short lifetime, then refreshed again
    assert harness.getAccessToken(API) != token
    assert harness.requests_to("token", "refresh_token") == 2


def test_sec_token_code_exchange_requires_id_token(harness: Harness, storage: Storage) -> None:
    callback = start_and_approve(harness)
    harness.provider.faults.add(
        Fault("token", body={"access_token": "a" * 43, "token_type": "Bearer", "expires_in": 60})
    )
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        ProviderError,
        "token.id_token_missing",
        storage,
    )
    assert session_of(storage) == SIGNED_OUT


@pytest.mark.parametrize("endpoint", ["discovery", "jwks", "token", "userinfo", "revocation"])
def test_sec_no_redirect_followed(harness: Harness, storage: Storage, endpoint: str) -> None:
    elsewhere = harness.server.url + "/elsewhere"
    redirect = Fault(endpoint, status=307, headers={"location": elsewhere})
    if endpoint in ("token", "userinfo", "revocation"):
        harness.sign_in_user()
    if endpoint == "jwks":
        edit_stored(harness.client.storage, lambda s: replace(s, id_token=None))
    harness.provider.faults.add(redirect)
    calls = {
        "discovery": lambda: harness.signIn(REDIRECT),
        "jwks": lambda: harness.sign_in_user(),
        "token": lambda: harness.getAccessToken(API),
        "userinfo": harness.fetchUserInfo,
    }
    if endpoint == "revocation":
        harness.signOut()
        assert session_of(storage) == SIGNED_OUT  # best effort: the redirect is not followed
        assert harness.waitForRevocations(5.0) is True
        assert harness.requests_to("revocation") == 1
    else:
        error = expect_error(harness, calls[endpoint], TransportError, policy.REDIRECT, storage)
        assert error.status == 307
    assert harness.requests_to("not_found") == 0


def test_sec_public_client_sends_no_secret(served: Any, kind: str, clock: Clock) -> None:
    client = make_client(
        kind,
        served.url,
        clock,
        config={"appId": SPA_ID, "appSecret": None, "scopes": [], "resources": []},
    )
    harness = Harness(kind, client, served)
    harness.handleSignInCallback(served.provider.approve(harness.signIn(SPA_REDIRECT), USER))
    clock.advance(3601)
    assert harness.getAccessToken() is not None
    entries = [e for e in served.provider.log if e.endpoint == "token"]
    assert len(entries) == 2
    for entry in entries:
        assert entry.params["client_id"] == SPA_ID
        assert "client_secret" not in entry.params


# ---- ID token ---------------------------------------------------------------------------------------


def test_sec_id_token_algorithm_allow_list(harness: Harness, storage: Storage) -> None:
    harness.signIn(REDIRECT)  # discovery cached: the provider advertises ES384 only
    edit_stored(harness.client.storage, lambda s: replace(s, pending=()))
    with harness.server.lock:
        harness.provider.rotate_signing_key(alg="ES512")  # valid signature, unadvertised alg
    callback = start_and_approve(harness)
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        TokenValidationError,
        "id_token.alg_not_allowed",
        storage,
    )
    for header in ({"alg": "none"}, {"alg": "HS256"}, {"alg": "HS512"}):
        callback = start_and_approve(harness)
        harness.provider.faults.add(Fault("token", id_token_header=header, unsigned=True))
        expect_error(
            harness,
            partial(harness.handleSignInCallback, callback),
            TokenValidationError,
            "id_token.alg_not_allowed",
            storage,
        )
    assert session_of(storage) == SIGNED_OUT


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"typ": "at+jwt"}, "id_token.typ_not_allowed"),
        ({"typ": "logout+jwt"}, "id_token.typ_not_allowed"),
        ({"crit": ["exp"]}, "id_token.crit_unsupported"),
    ],
)
def test_sec_id_token_header_checks(
    harness: Harness, storage: Storage, header: dict[str, Any], code: str
) -> None:
    """Another kind of JWT (access or logout token) or an unknown critical extension is
    never accepted as an ID token (RFC 8725 section 3.11, RFC 7515 section 4.1.11)."""
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", id_token_header=header))
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        TokenValidationError,
        code,
        storage,
    )
    assert session_of(storage) == SIGNED_OUT


def test_sec_jwks_failure_not_cached(harness: Harness, storage: Storage) -> None:
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("jwks", status=503, times=3))
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        TransportError,
        policy.STATUS,
        storage,
    )
    assert session_of(storage) == SIGNED_OUT
    harness.sign_in_user()  # the failure was not remembered: the keys are fetched again
    assert harness.isAuthenticated() is True


def test_sec_id_token_unknown_kid_single_refetch(
    harness: Harness, storage: Storage, clock: Clock
) -> None:
    harness.sign_in_user()
    harness.signOut()
    for n in range(5):  # a stream of forged kids
        callback = start_and_approve(harness)
        harness.provider.faults.add(Fault("token", id_token_header={"kid": f"forged-{n}"}))
        expect_error(
            harness,
            partial(harness.handleSignInCallback, callback),
            LogtoError,
            "id_token.kid_unknown",
            storage,
        )
    assert harness.requests_to("jwks") == 2  # initial fetch + one refetch per cooldown
    clock.advance(61)
    with harness.server.lock:
        harness.provider.rotate_signing_key(keep_previous=False)
    harness.sign_in_user()  # the rotation is accepted after one more refetch
    assert harness.requests_to("jwks") == 3


def test_sec_id_token_no_kid_several_keys(harness: Harness, storage: Storage) -> None:
    with harness.server.lock:
        harness.provider.rotate_signing_key()
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", id_token_header={"kid": None}))
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        TokenValidationError,
        "id_token.kid_ambiguous",
        storage,
    )
    assert session_of(storage) == SIGNED_OUT


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"iss": "https://evil.example/oidc"}, "id_token.iss_mismatch"),
        ({"aud": "other-app"}, "id_token.aud_mismatch"),
        ({"aud": [APP_ID, "other-app"], "azp": APP_ID}, "id_token.aud_untrusted"),
        ({"aud": [APP_ID, "other-app"]}, "id_token.missing_claim"),
        ({"azp": "other-app"}, "id_token.azp_mismatch"),
    ],
)
def test_sec_id_token_iss_aud_azp(
    harness: Harness, storage: Storage, claims: dict[str, Any], code: str
) -> None:
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", id_token_claims=claims))
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        TokenValidationError,
        code,
        storage,
    )
    assert session_of(storage) == SIGNED_OUT


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": None}, "id_token.missing_claim"),
        ({"iat": None}, "id_token.missing_claim"),
        ({"sub": None}, "id_token.missing_claim"),
        ({"exp": -61}, "id_token.expired"),
        ({"iat": 61}, "id_token.iat_future"),
        ({"nbf": 61}, "id_token.not_yet_valid"),
        ({"exp": -59}, None),
        ({"iat": 59, "nbf": 59}, None),
    ],
)
def test_sec_id_token_times_and_tolerance(
    harness: Harness, storage: Storage, clock: Clock, claims: dict[str, Any], code: str | None
) -> None:
    """exp/iat/sub required; times checked with the default 60 s tolerance (relative seconds
    here), against the injected clock."""
    absolute = {
        name: (
            None
            if value is None
            else (clock.now - 3600 if name == "exp" else clock.now)
            + (value + 3600 if name == "exp" else value)
        )
        if name in ("exp", "iat", "nbf")
        else value
        for name, value in claims.items()
    }
    if "exp" in absolute and absolute["exp"] is not None:
        absolute["exp"] = clock.now + claims["exp"]
    callback = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", id_token_claims=absolute))
    if code is None:
        harness.handleSignInCallback(callback)  # clock skew within tolerance is accepted
        assert harness.isAuthenticated() is True
        return
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        TokenValidationError,
        code,
        storage,
    )
    assert session_of(storage) == SIGNED_OUT


def test_sec_id_token_nonce(harness: Harness, storage: Storage, clock: Clock) -> None:
    failed = start_and_approve(harness)
    harness.provider.faults.add(Fault("token", id_token_claims={"nonce": "not-the-one-sent"}))
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(failed),
        TokenValidationError,
        "id_token.nonce_mismatch",
        storage,
    )
    harness.sign_in_user()
    before = session_of(storage)
    clock.advance(3601)
    # A refreshed ID token must carry the nonce of the original sign-in.
    harness.provider.faults.add(
        Fault("token", grant_type="refresh_token", id_token_claims={"nonce": "another"})
    )
    expect_error(
        harness,
        lambda: harness.getAccessToken(),
        TokenValidationError,
        "id_token.nonce_mismatch",
        storage,
    )
    assert harness.getIdToken() == SessionState.from_values(before).id_token


def test_sec_id_token_at_hash(harness: Harness, storage: Storage) -> None:
    callback = start_and_approve(harness)
    harness.provider.faults.add(
        Fault("token", id_token_claims={"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"})
    )
    expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        TokenValidationError,
        "id_token.at_hash_mismatch",
        storage,
    )
    assert session_of(storage) == SIGNED_OUT


def test_sec_id_token_size_capped(harness: Harness, storage: Storage) -> None:
    callback = start_and_approve(harness)
    harness.provider.faults.add(
        Fault("token", id_token_claims={"padding": "p" * (MAX_TOKEN_BYTES + 10)})
    )
    error = expect_error(
        harness,
        lambda: harness.handleSignInCallback(callback),
        TokenValidationError,
        "jwt.malformed",
        storage,
    )
    assert "longer" in error.message
    assert session_of(storage) == SIGNED_OUT


# ---- userinfo -----------------------------------------------------------------------------------------


def test_sec_userinfo_sub_must_match(harness: Harness, storage: Storage) -> None:
    harness.sign_in_user()
    before = session_of(storage)
    for body in ({"sub": "user-2"}, {"name": "no sub"}):
        harness.provider.faults.add(Fault("userinfo", body=body))
        with pytest.raises(ProviderError) as caught:
            harness.fetchUserInfo()
        assert caught.value.code in ("userinfo.sub_mismatch", "userinfo.sub_missing")
    assert session_of(storage) == before


def test_sec_userinfo_401_one_refresh_one_retry(harness: Harness, storage: Storage) -> None:
    harness.sign_in_user()
    harness.provider.faults.add(
        Fault("userinfo", status=401, body={"error": "invalid_token"}, times=None)
    )
    expect_error(harness, harness.fetchUserInfo, OAuthError, "oauth.invalid_token", storage)
    assert harness.requests_to("userinfo") == 2
    assert harness.requests_to("token", "refresh_token") == 1
    harness.provider.faults.clear()
    assert harness.fetchUserInfo().sub == USER  # the session survived


def test_sec_userinfo_unknown_claims_kept(harness: Harness) -> None:
    with harness.server.lock:
        harness.provider.add_user("user-9", name="Nine", favourite_colour="teal")
    harness.sign_in_user("user-9")
    info = harness.fetchUserInfo()
    assert info.sub == "user-9"
    assert info.model_dump().get("favourite_colour") == "teal"


# ---- refresh --------------------------------------------------------------------------------------------


def test_sec_refresh_invalid_grant_clears_session(
    harness: Harness, storage: Storage, clock: Clock
) -> None:
    harness.sign_in_user()
    with harness.server.lock:
        harness.provider.revoke_grants(USER)
    clock.advance(3601)
    # The tutorial API reports the dead grant as "no token" (None, or SignInRequiredError from
    # the *Claims getters); the provider's invalid_grant itself is not retried.
    expect_error(
        harness,
        lambda: harness.getAccessTokenClaims(API),
        SignInRequiredError,
        "sign_in_required.no_token",
    )
    assert session_of(storage) == SIGNED_OUT
    assert harness.getAccessToken(API) is None  # and no new request: nothing left to refresh
    assert harness.requests_to("token", "refresh_token") == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault("token", grant_type="refresh_token", status=503, body=b"busy"),
        Fault("token", grant_type="refresh_token", status=500, body={"error": "server_error"}),
        Fault("token", grant_type="refresh_token", status=429, headers={"retry-after": "3"}),
        Fault("token", grant_type="refresh_token", delay=2.0),
        Fault("token", grant_type="refresh_token", status=502, body=b"\x00" * 10),
    ],
    ids=["503", "500-json", "429", "timeout", "502-garbage"],
)
def test_sec_refresh_transient_keeps_tokens(
    served: Any, kind: str, clock: Clock, storage: Storage, fault: Fault
) -> None:
    harness = Harness(
        kind, make_client(kind, served.url, clock, storage, timeout=(0.5, 0.7)), served
    )
    harness.sign_in_user()
    clock.advance(3601)
    before = session_of(storage)
    harness.provider.faults.add(fault)
    with pytest.raises(TransportError) as caught:
        harness.getAccessToken(API)
    assert caught.value.code in (policy.STATUS, policy.TIMEOUT)
    assert session_of(storage) == before
    assert harness.requests_to("token", "refresh_token") == 1  # a POST is never retried
    time.sleep(0.1 if fault.delay else 0)
    assert harness.getAccessToken(API) is not None  # the session still works


def test_sec_refresh_rotation_replaces_atomically(served: Any, kind: str, clock: Clock) -> None:
    storage = MemoryStorage()
    client = make_client(
        kind,
        served.url,
        clock,
        storage,
        config={"appId": SPA_ID, "appSecret": None, "scopes": [], "resources": []},
    )
    harness = Harness(kind, client, served)
    harness.handleSignInCallback(served.provider.approve(harness.signIn(SPA_REDIRECT), USER))
    seen = [harness.getRefreshToken()]
    for _ in range(3):
        clock.advance(3601)
        assert harness.getAccessToken() is not None
        seen.append(harness.getRefreshToken())
        clock.advance(REUSE_WINDOW + 1)
    assert len(set(seen)) == 4  # a public client gets a new refresh token every time
    presented = [p["refresh_token"] for p in log_params(harness, "token", "refresh_token")]
    assert presented == seen[:-1]  # each one presented exactly once, in order
    assert served.provider.is_refresh_token_active(seen[-1])


def run_concurrently(kind: str, client: Any, calls: int) -> list[Any]:
    if kind == "aio":

        async def main() -> list[Any]:
            return list(await asyncio.gather(*(client.getAccessToken() for _ in range(calls))))

        return asyncio.run(main())
    results: list[Any] = [None] * calls
    barrier = threading.Barrier(calls)

    def one(i: int) -> None:
        barrier.wait()
        results[i] = client.getAccessToken()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_sec_refresh_single_flight(served: Any, kind: str, clock: Clock) -> None:
    storage = MemoryStorage()
    client = make_client(
        kind,
        served.url,
        clock,
        storage,
        config={"appId": SPA_ID, "appSecret": None, "scopes": [], "resources": []},
    )
    harness = Harness(kind, client, served)
    harness.handleSignInCallback(served.provider.approve(harness.signIn(SPA_REDIRECT), USER))
    clock.advance(3601)
    served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.3))
    results = run_concurrently(kind, client, 12)
    assert all(r is not None for r in results) and len(set(results)) == 1
    assert harness.requests_to("token", "refresh_token") == 1
    assert served.provider.is_refresh_token_active(harness.getRefreshToken())


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"sub": "user-2"}, "id_token.sub_changed"),
    ],
)
def test_sec_refresh_id_token_same_user(
    harness: Harness, storage: Storage, clock: Clock, claims: dict[str, Any], code: str
) -> None:
    harness.sign_in_user()
    id_token = harness.getIdToken()
    clock.advance(3601)
    harness.provider.faults.add(Fault("token", grant_type="refresh_token", id_token_claims=claims))
    expect_error(harness, lambda: harness.getAccessToken(), TokenValidationError, code, storage)
    assert harness.getIdToken() == id_token
    assert claims_of(harness.getIdToken())["sub"] == USER


def test_sec_token_cache_keyed(harness: Harness) -> None:
    harness.sign_in_user()
    plain = harness.getAccessToken()
    api = harness.getAccessToken(API)
    org = harness.getOrganizationToken(ORG)
    assert len({plain, api, org}) == 3
    assert claims_of(api)["aud"] == API
    assert claims_of(org)["aud"] == f"urn:logto:organization:{ORG}"
    assert harness.getAccessToken(API) == api and harness.getOrganizationToken(ORG) == org
    assert harness.getAccessToken() == plain


# ---- sign-out ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("revocation", ["background", "inline"])
def test_sec_sign_out_clears_locally_when_provider_unreachable(
    served: Any, kind: str, clock: Clock, storage: Storage, revocation: str
) -> None:
    client = make_client(
        kind, served.url, clock, storage, timeout=(1.0, 1.0), revocation=revocation
    )
    harness = Harness(kind, client, served)
    harness.sign_in_user()
    served.provider.faults.add(Fault("revocation", delay=3.0))  # longer than the timeout
    started = time.monotonic()
    url = harness.signOut(POST_LOGOUT)
    elapsed = time.monotonic() - started
    assert url.startswith(served.provider.issuer + "/session/end?")
    assert session_of(storage) == SIGNED_OUT
    if revocation == "background":
        assert elapsed < 0.5, elapsed  # never blocked on the provider
    else:
        assert elapsed >= 0.9, elapsed  # inline: waits out the (bounded) request
    assert harness.waitForRevocations(5.0) is True
    assert harness.requests_to("revocation") == 1  # it was attempted
    harness.sign_in_user()
    served.provider.faults.add(Fault("revocation", status=503))
    harness.signOut()
    assert session_of(storage) == SIGNED_OUT
    assert harness.waitForRevocations(5.0) is True
    assert harness.requests_to("revocation") == 2


def test_sec_sign_out_revokes_refresh_token(harness: Harness) -> None:
    harness.sign_in_user()
    refresh = harness.getRefreshToken()
    assert refresh is not None and harness.provider.is_refresh_token_active(refresh)
    harness.signOut()
    assert harness.waitForRevocations(5.0) is True
    [revocation] = log_params(harness, "revocation")
    assert revocation["token"] == refresh
    assert not harness.provider.is_refresh_token_active(refresh)


def test_sec_sign_out_inline_revokes_before_returning(
    served: Any, kind: str, clock: Clock, storage: Storage
) -> None:
    client = make_client(kind, served.url, clock, storage, revocation="inline")
    harness = Harness(kind, client, served)
    harness.sign_in_user()
    refresh = harness.getRefreshToken()
    assert refresh is not None
    harness.signOut()
    [revocation] = log_params(harness, "revocation")  # no wait needed
    assert revocation["token"] == refresh
    assert not harness.provider.is_refresh_token_active(refresh)
    assert harness.waitForRevocations(0) is True  # nothing was left to the background


def test_sec_end_session_url(harness: Harness) -> None:
    harness.sign_in_user()
    id_token = harness.getIdToken()
    query = query_of(harness.signOut(POST_LOGOUT))
    assert query["client_id"] == [APP_ID]
    assert query["post_logout_redirect_uri"] == [POST_LOGOUT]
    assert query["id_token_hint"] == [id_token]
    assert APP_SECRET not in str(query)


# ---- transport and storage -----------------------------------------------------------------------------------


def test_sec_transport_timeouts_configurable(served: Any, kind: str, clock: Clock) -> None:
    for total in (0.3, 0.8):
        served.provider.faults.add(Fault("discovery", delay=total + 1.0))
        client = make_client(kind, served.url, clock, timeout=(0.2, total))
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            Harness(kind, client, served).signIn(REDIRECT)
        elapsed = time.monotonic() - started
        assert caught.value.code == policy.TIMEOUT
        # The fault stalls for total + 1 s: finishing earlier means the timeout was honoured.
        assert total - 0.05 <= elapsed < total + 0.95


def test_sec_transport_bodies_capped(harness: Harness, storage: Storage) -> None:
    harness.sign_in_user()
    before = session_of(storage)
    harness.provider.faults.add(Fault("userinfo", body=b"{" + b" " * MAX_BODY_BYTES + b"}"))
    expect_error(harness, harness.fetchUserInfo, TransportError, policy.BODY_TOO_LARGE, storage)
    assert session_of(storage) == before


def test_sec_storage_private_per_client(kind: str, clock: Clock) -> None:
    first = make_client(kind, "http://127.0.0.1:9", clock)
    second = make_client(kind, "http://127.0.0.1:9", clock)
    assert first.storage is not second.storage
    first.storage.set(StorageKey.SESSION, "r")
    assert second.storage.get(StorageKey.SESSION) is None


def test_sec_repr_redacts_secrets(harness: Harness) -> None:
    harness.sign_in_user()
    config = harness.client.config
    assert APP_SECRET not in repr(config) and APP_SECRET not in str(config)
    assert isinstance(config.appSecret, SecretStr)
    token = TokenResponse(
        access_token="at-secret-value", refresh_token="rt-secret-value", id_token="id-secret"
    )
    for secret in ("at-secret-value", "rt-secret-value", "id-secret"):
        assert secret not in repr(token) and secret not in str(token)
    for entry in harness.provider.log:
        assert APP_SECRET not in repr(entry)
    refresh = harness.getRefreshToken()
    assert refresh is not None
    assert refresh not in repr(harness.client.storage) and refresh not in repr(harness.client)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/orders?id=1#top", "/orders?id=1#top"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("\x00/x", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_sec_return_to_relative_only(target: str, expected: str) -> None:
    assert safe_return_to(target) == expected


def test_sec_errors_typed_everywhere() -> None:
    """Both clients export one hierarchy: every exported error is a LogtoError."""
    for module in (sync, aio):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, Exception):
                assert issubclass(value, LogtoError), name
