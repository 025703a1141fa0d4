"""The specifications' MUST/REQUIRED lists, as tables: one per response kind the SDK parses.

Each row is (clause, what is changed in a valid response, expected outcome): the stable code
of the typed error the parse function must raise, or ``ACCEPTED``. A row's change is applied
to a valid response of its kind, and the result runs through the core parse function, so
each row would fail if the check it names were missing (the valid response itself is a row
too). ``docs/security.md`` maps the clauses to these tables; the same checks are run end to
end through both clients in ``tests/conformance/test_spec_end_to_end.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from logto_core.errors import LogtoError, OAuthError, TransportError
from logto_core.http import HttpResponse
from logto_core.jose.keys import parse_jwks_response
from logto_core.protocol.discovery import parse_discovery_response
from logto_core.protocol.revocation import parse_revocation_response
from logto_core.protocol.token_endpoint import parse_token_response
from logto_core.protocol.userinfo import parse_userinfo_response
from tests.factories import ISSUER, config, discovery_document
from tests.jwt_factory import NOW, jwks_body

ACCEPTED = "accepted"
DROP: Any = object()
"""Marker: remove this member."""


@dataclass(frozen=True)
class Change:
    """What a row changes in the valid response of its table."""

    members: Mapping[str, Any] = field(default_factory=dict)
    """Members to set (``DROP`` removes one)."""
    key: Mapping[str, Any] = field(default_factory=dict)
    """JWKS only: members to set on the (only) key."""
    raw: str | None = None
    """The whole body text instead of the valid document."""
    extra: str | None = None
    """Raw JSON text added as the last member(s) of the object (a duplicate, a NaN...)."""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    public_client: bool = False
    """Discovery only: parse with a public client's configuration (no appSecret)."""

    def response(self, valid: Mapping[str, Any]) -> HttpResponse:
        document = copy.deepcopy(dict(valid))
        _apply(document, self.members)
        if self.key:
            _apply(document["keys"][0], self.key)
        text = self.raw if self.raw is not None else json.dumps(document, allow_nan=True)
        if self.extra is not None:
            text = text[: text.rindex("}")] + ", " + self.extra + "}"
        headers = {"content-type": "application/json", **self.headers}
        return HttpResponse.build(self.status, headers, text.encode("utf-8"))


def _apply(target: dict[str, Any], members: Mapping[str, Any]) -> None:
    for name, value in members.items():
        if value is DROP:
            target.pop(name, None)
        else:
            target[name] = value


def row(clause: str, what: str, expected: str, **change: Any) -> Any:
    """One table row; its test id reads ``clause: what -> expected``."""
    return pytest.param(Change(**change), expected, id=f"{clause}: {what} -> {expected}")


def outcome(call: Callable[[], object]) -> str:
    """``ACCEPTED`` or the code of the typed error; any other exception fails the test."""
    try:
        call()
    except LogtoError as error:
        return error.code
    return ACCEPTED


# ---- discovery: OpenID Connect Discovery 1.0 sections 3, 4.2, 4.3 -----------------------------

VALID_DISCOVERY = discovery_document(
    scopes_supported=["openid", "offline_access", "profile", "email"],
    grant_types_supported=["authorization_code", "refresh_token", "client_credentials"],
    subject_types_supported=["public"],
    token_endpoint_auth_methods_supported=["client_secret_basic", "none", "private_key_jwt"],
    claims_parameter_supported=False,
    backchannel_logout_supported=True,
)

D3 = "OIDC Discovery 3"
DISCOVERY_TABLE = [
    row(D3, "a valid Logto-like document", ACCEPTED),
    row("OIDC Discovery 4.2", "status 204", "discovery", status=204, raw=""),
    row("OIDC Discovery 4.2", "status 404", "provider_response.status", status=404, raw="x"),
    row("OIDC Discovery 4.2", "a JSON array", "provider_response.not_object", raw="[]"),
    row("RFC 8259 6", "NaN in an unknown member", "provider_response.not_json", extra='"x": NaN'),
    row("RFC 8259 6", "1e400", "provider_response.not_json", extra='"x": 1e400'),
    row("RFC 8259 4", "issuer repeated", "provider_response.not_json", extra='"issuer": "x"'),
    row(D3, "issuer missing", "discovery", members={"issuer": DROP}),
    row(D3, "issuer not a string", "discovery", members={"issuer": 5}),
    row("OIDC Discovery 4.3", "issuer with a trailing slash", "discovery.issuer_mismatch",
        members={"issuer": ISSUER + "/"}),
    row(D3, "authorization_endpoint missing", "discovery",
        members={"authorization_endpoint": DROP}),
    row(D3, "token_endpoint missing", "discovery", members={"token_endpoint": DROP}),
    row(D3, "jwks_uri missing", "discovery", members={"jwks_uri": DROP}),
    row(D3, "token_endpoint over http", "discovery.insecure_endpoint",
        members={"token_endpoint": "http://tenant.example.com/oidc/token"}),
    row(D3, "userinfo_endpoint not a string", "discovery", members={"userinfo_endpoint": 5}),
    row(D3, "response_types_supported missing", "discovery",
        members={"response_types_supported": DROP}),
    row(D3, "response_types_supported a string", "discovery",
        members={"response_types_supported": "code"}),
    row(D3, "response_types_supported holds a number", "discovery",
        members={"response_types_supported": ["code", 1]}),
    row(D3, "response_types_supported without code", "discovery.response_type_unsupported",
        members={"response_types_supported": ["id_token", "code id_token"]}),
    row(D3, "response_types_supported with code among others", ACCEPTED,
        members={"response_types_supported": ["code id_token", "code"]}),
    row(D3, "subject_types_supported missing", "discovery",
        members={"subject_types_supported": DROP}),
    row(D3, "subject_types_supported a string", "discovery",
        members={"subject_types_supported": "public"}),
    row(D3, "subject_types_supported empty", "discovery.subject_types_empty",
        members={"subject_types_supported": []}),
    row(D3, "subject_types_supported pairwise", ACCEPTED,
        members={"subject_types_supported": ["pairwise"]}),
    row(D3, "id_token_signing_alg_values_supported missing", "discovery",
        members={"id_token_signing_alg_values_supported": DROP}),
    row(D3, "id_token_signing_alg_values_supported empty", "discovery.id_token_alg_unsupported",
        members={"id_token_signing_alg_values_supported": []}),
    row(D3, "only HS256 and none", "discovery.id_token_alg_unsupported",
        members={"id_token_signing_alg_values_supported": ["HS256", "none"]}),
    row(D3, "none beside ES384 (code flow: none is never used)", ACCEPTED,
        members={"id_token_signing_alg_values_supported": ["none", "ES384"]}),
    row(D3 + " (not enforced, see security.md)", "RS256 not listed (Logto: tenant alg only)",
        ACCEPTED, members={"id_token_signing_alg_values_supported": ["ES384"]}),
    row(D3, "scopes_supported without openid", "discovery.openid_scope_missing",
        members={"scopes_supported": ["profile", "email"]}),
    row(D3, "scopes_supported empty", "discovery.openid_scope_missing",
        members={"scopes_supported": []}),
    row(D3, "scopes_supported absent", ACCEPTED, members={"scopes_supported": DROP}),
    row(D3, "scopes_supported holds a number", "discovery",
        members={"scopes_supported": ["openid", 7]}),
    row(D3, "grant_types_supported without authorization_code",
        "discovery.grant_type_unsupported",
        members={"grant_types_supported": ["client_credentials"]}),
    row(D3, "grant_types_supported absent (default includes the code grant)", ACCEPTED,
        members={"grant_types_supported": DROP}),
    row("RFC 8414 2 / RFC 7636", "code_challenge_methods_supported plain only",
        "discovery.pkce_unsupported", members={"code_challenge_methods_supported": ["plain"]}),
    row(D3, "confidential app, no client_secret_basic", "discovery.auth_method_unsupported",
        members={"token_endpoint_auth_methods_supported": ["private_key_jwt", "none"]}),
    row(D3, "public app, no none", "discovery.auth_method_unsupported", public_client=True,
        members={"token_endpoint_auth_methods_supported": ["client_secret_basic"]}),
    row(D3, "public app, none listed", ACCEPTED, public_client=True,
        members={"token_endpoint_auth_methods_supported": ["none"]}),
    row(D3 + " (default not enforced)", "public app, auth methods absent", ACCEPTED,
        public_client=True, members={"token_endpoint_auth_methods_supported": DROP}),
    row(D3, "token_endpoint_auth_methods_supported a string", "discovery",
        members={"token_endpoint_auth_methods_supported": "client_secret_basic"}),
    row(D3, "claims_supported a string", "discovery", members={"claims_supported": "sub"}),
    row(D3, "ui_locales_supported holds a number", "discovery",
        members={"ui_locales_supported": [1]}),
    row(D3, "response_modes_supported null", "discovery",
        members={"response_modes_supported": None}),
    row(D3, "claims_parameter_supported is 1", "discovery",
        members={"claims_parameter_supported": 1}),
    row("RFC 9207 3", "authorization_response_iss_parameter_supported is \"true\"", "discovery",
        members={"authorization_response_iss_parameter_supported": "true"}),
    row("OIDC Back-Channel Logout 2.1", "backchannel_logout_supported is \"yes\"", "discovery",
        members={"backchannel_logout_supported": "yes"}),
    row(D3, "an unknown member of any type", ACCEPTED, members={"x_custom": {"a": [1, None]}}),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), DISCOVERY_TABLE)
def test_discovery_requirements(change: Change, expected: str) -> None:
    cfg = config(appSecret=None) if change.public_client else config()
    response = change.response(VALID_DISCOVERY)
    assert outcome(lambda: parse_discovery_response(response, cfg)) == expected


# ---- token endpoint: RFC 6749 5.1, 5.2, 3.3, appendix A; RFC 6750; OIDC Core 3.1.3.3 -----------

VALID_TOKEN = {
    "access_token": "at-0123456789abcdef",
    "token_type": "Bearer",
    "expires_in": 3600,
    "refresh_token": "rt-0123456789abcdef",
    "id_token": "eyJhbGciOiJFUzM4NCJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl",
    "scope": "openid offline_access profile",
}

R51 = "RFC 6749 5.1"
TOKEN_TABLE = [
    row(R51, "a valid response", ACCEPTED),
    row(R51, "status 201", "token.status", status=201),
    row(R51, "a JSON array", "provider_response.not_object", raw="[]"),
    row("RFC 8259 6", "expires_in NaN", "provider_response.not_json",
        members={"expires_in": DROP}, extra='"expires_in": NaN'),
    row("RFC 8259 6", "expires_in Infinity", "provider_response.not_json",
        members={"expires_in": DROP}, extra='"expires_in": Infinity'),
    row("RFC 8259 6", "expires_in 1e400", "provider_response.not_json",
        members={"expires_in": DROP}, extra='"expires_in": 1e400'),
    row("RFC 8259 4", "access_token repeated", "provider_response.not_json",
        extra='"access_token": "other"'),
    row(R51, "access_token missing", "token.access_token_missing",
        members={"access_token": DROP}),
    row(R51, "access_token empty", "token.access_token_missing", members={"access_token": ""}),
    row(R51, "access_token a number", "token.access_token_missing", members={"access_token": 5}),
    row("RFC 6750 2.1", "access_token with a space", "token.access_token",
        members={"access_token": "at 1"}),
    row("RFC 6750 2.1", "access_token non-ASCII", "token.access_token",
        members={"access_token": "caf\u00e9"}),
    row("RFC 6750 2.1", "access_token a JWT with padding", ACCEPTED,
        members={"access_token": "eyJ.eyJ.sig=="}),
    row(R51, "token_type missing", "token.token_type", members={"token_type": DROP}),
    row(R51, "token_type null", "token.token_type", members={"token_type": None}),
    row(R51, "token_type a number", "token.token_type", members={"token_type": 1}),
    row("RFC 6749 7.1", "token_type bearer (case-insensitive)", ACCEPTED,
        members={"token_type": "bearer"}),
    row("RFC 6749 7.1", "token_type BEARER", ACCEPTED, members={"token_type": "BEARER"}),
    row("RFC 6749 7.1", "token_type mac", "token.token_type", members={"token_type": "mac"}),
    row("RFC 6749 7.1", "token_type with a trailing space", "token.token_type",
        members={"token_type": "Bearer "}),
    row("RFC 9449 / OIDC Core 3.1.3.3", "token_type DPoP (no proofs sent)",
        "token.token_type_dpop", members={"token_type": "DPoP"}),
    row("RFC 9449", "token_type dpop", "token.token_type_dpop", members={"token_type": "dpop"}),
    row(R51, "expires_in a string", "token.expires_in", members={"expires_in": "3600"}),
    row(R51, "expires_in true", "token.expires_in", members={"expires_in": True}),
    row(R51, "expires_in negative", "token.expires_in", members={"expires_in": -1}),
    row(R51, "expires_in an object", "token.expires_in", members={"expires_in": {}}),
    row(R51, "expires_in 0", ACCEPTED, members={"expires_in": 0}),
    row(R51, "expires_in a fraction", ACCEPTED, members={"expires_in": 3600.5}),
    row(R51, "expires_in absent (RECOMMENDED only)", ACCEPTED, members={"expires_in": DROP}),
    row(R51 + " (null read as absent)", "expires_in null", ACCEPTED,
        members={"expires_in": None}),
    row("RFC 6749 A.17", "refresh_token empty", "token.refresh_token",
        members={"refresh_token": ""}),
    row("RFC 6749 A.17", "refresh_token a number", "token.refresh_token",
        members={"refresh_token": 1}),
    row("RFC 6749 A.17", "refresh_token with a newline", "token.refresh_token",
        members={"refresh_token": "r\nx"}),
    row("RFC 6749 A.17", "refresh_token absent", ACCEPTED, members={"refresh_token": DROP}),
    row("RFC 6749 3.3", "scope a list", "token.scope", members={"scope": ["openid"]}),
    row("RFC 6749 3.3", "scope with two spaces", "token.scope",
        members={"scope": "openid  profile"}),
    row("RFC 6749 3.3", "scope with a leading space", "token.scope",
        members={"scope": " openid"}),
    row("RFC 6749 3.3", "scope token with a quote", "token.scope",
        members={"scope": 'openid a"b'}),
    row("RFC 6749 3.3", "scope token with a backslash", "token.scope",
        members={"scope": "openid a\\b"}),
    row("RFC 6749 3.3", "scope with a URN and colons", ACCEPTED,
        members={"scope": "openid urn:logto:scope:organizations read:docs"}),
    row("RFC 6749 3.3 (empty read as no scope)", "scope empty", ACCEPTED,
        members={"scope": ""}),
    row("OIDC Core 3.1.3.3", "id_token a number", "token.id_token", members={"id_token": 5}),
    row("OIDC Core 3.1.3.3", "id_token empty", "token.id_token", members={"id_token": ""}),
    row("OIDC Core 3.1.3.3", "id_token two segments", "token.id_token",
        members={"id_token": "eyJ.eyJ"}),
    row("OIDC Core 3.1.3.3", "id_token with padding", "token.id_token",
        members={"id_token": "eyJ=.eyJ.sig"}),
    row("OIDC Core 3.1.3.7 (1)", "id_token a JWE (five segments)", "token.id_token_encrypted",
        members={"id_token": "eyJ.a2V5.aXY.Y2lwaGVy.dGFn"}),
    row(R51, "an unknown member", ACCEPTED, members={"issued_token_type": "x", "n": [1]}),
    row("RFC 6749 5.2", "an OAuth error", "oauth.invalid_grant", status=400,
        raw='{"error": "invalid_grant", "error_description": "grant request is invalid"}'),
    row("RFC 6749 5.2", "an error body repeating error", "provider_response.status",
        status=400, raw='{"error": "invalid_grant", "error": "server_error"}'),
    row("RFC 6749 5.2", "a 503", "transport.status", status=503, raw=""),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), TOKEN_TABLE)
def test_token_response_requirements(change: Change, expected: str) -> None:
    response = change.response(VALID_TOKEN)
    assert outcome(lambda: parse_token_response(response)) == expected


# ---- userinfo: OIDC Core 5.3.2, 5.3.3, 5.1; RFC 6750 3 -------------------------------------------

SUB = "user-1"
VALID_USERINFO = {
    "sub": SUB,
    "name": "Ada",
    "email": "ada@example.com",
    "email_verified": True,
    "address": {"country": "UK"},
    "updated_at": 1_700_000_000,
    "custom_data": {"tier": [1, 2]},
    "identities": {"github": {"userId": "42", "details": {}}},
}

U532 = "OIDC Core 5.3.2"
CHALLENGE = 'Bearer realm="x", error="invalid_token", error_description="token expired"'
USERINFO_TABLE = [
    row(U532, "a valid response", ACCEPTED),
    row(U532, "content type with charset", ACCEPTED,
        headers={"content-type": "application/json; charset=utf-8"}),
    row(U532, "a JSON array", "provider_response.not_object", raw="[]"),
    row("RFC 8259 6", "NaN in a claim", "provider_response.not_json", extra='"x": NaN'),
    row("RFC 8259 4", "sub repeated", "provider_response.not_json", extra='"sub": "user-2"'),
    row(U532, "sub missing", "userinfo.sub_missing", members={"sub": DROP}),
    row(U532, "sub a number", "userinfo.sub_missing", members={"sub": 1}),
    row(U532, "sub of another user", "userinfo.sub_mismatch", members={"sub": "user-2"}),
    row(U532, "signed response (application/jwt)", "userinfo.signed_unsupported",
        raw="eyJ.eyJ.sig", headers={"content-type": "application/jwt"}),
    row(U532, "signed response with parameters", "userinfo.signed_unsupported",
        raw="eyJ.eyJ.sig", headers={"content-type": "Application/JWT; charset=utf-8"}),
    row("OIDC Core 5.1", "email_verified \"true\"", "userinfo.claims_invalid",
        members={"email_verified": "true"}),
    row("OIDC Core 5.1", "phone_number_verified 1", "userinfo.claims_invalid",
        members={"phone_number_verified": 1}),
    row("OIDC Core 5.1", "updated_at a string", "userinfo.claims_invalid",
        members={"updated_at": "1700000000"}),
    row("OIDC Core 5.1", "updated_at true", "userinfo.claims_invalid",
        members={"updated_at": True}),
    row("OIDC Core 5.1", "updated_at a fraction (a JSON number)", ACCEPTED,
        members={"updated_at": 1_700_000_000.5}),
    row("OIDC Core 5.1", "address a string", "userinfo.claims_invalid",
        members={"address": "10 Downing St"}),
    row("OIDC Core 5.1", "name a number", "userinfo.claims_invalid", members={"name": 5}),
    row("Logto userinfo", "roles holding a number", "userinfo.claims_invalid",
        members={"roles": ["admin", 1]}),
    row("Logto userinfo", "identity without userId", "userinfo.claims_invalid",
        members={"identities": {"github": {}}}),
    row(U532, "an unknown claim of any type", ACCEPTED, members={"favourite": [{"a": None}]}),
    row("OIDC Core 5.3.3", "401 with an OAuth error body", "oauth.invalid_token", status=401,
        raw='{"error": "invalid_token"}'),
    row("RFC 6750 3", "401 with the error only in WWW-Authenticate", "oauth.invalid_token",
        status=401, raw="", headers={"www-authenticate": CHALLENGE}),
    row("RFC 6750 3", "403 insufficient_scope only in WWW-Authenticate",
        "oauth.insufficient_scope", status=403, raw="",
        headers={"www-authenticate": 'Bearer error="insufficient_scope", scope="openid"'}),
    row("RFC 6750 3", "401 with a Bearer challenge and no error", "provider_response.status",
        status=401, raw="", headers={"www-authenticate": 'Bearer realm="x"'}),
    row("RFC 6750 3", "401 with an error that breaks the RFC 6750 charset",
        "provider_response.status", status=401, raw="",
        headers={"www-authenticate": 'Bearer error="bad\\"quote"'}),
    row("RFC 6750 3", "401 with neither body nor challenge", "provider_response.status",
        status=401, raw=""),
    row("RFC 6749 5.2 (transient)", "a 503", "transport.status", status=503, raw=""),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), USERINFO_TABLE)
def test_userinfo_requirements(change: Change, expected: str) -> None:
    response = change.response(VALID_USERINFO)
    assert outcome(lambda: parse_userinfo_response(response, expected_sub=SUB)) == expected


def test_userinfo_challenge_fields_reach_the_error() -> None:
    response = Change(status=401, raw="", headers={"www-authenticate": CHALLENGE}).response({})
    with pytest.raises(OAuthError) as info:
        parse_userinfo_response(response, expected_sub=SUB)
    assert (info.value.error, info.value.status) == ("invalid_token", 401)
    assert info.value.error_description == "token expired"


# ---- revocation: RFC 7009 2.2, 2.2.1 ------------------------------------------------------------

R22 = "RFC 7009 2.2"
REVOCATION_TABLE = [
    row(R22, "200, empty body", ACCEPTED, raw=""),
    row(R22, "200, a body that is not JSON (ignored)", ACCEPTED, raw="<html>ok</html>"),
    row(R22, "200, NaN in a body (never decoded)", ACCEPTED, raw='{"x": NaN}'),
    row(R22, "204 (200 is the success status)", "revocation.status", status=204, raw=""),
    row("RFC 7009 2.2.1", "unsupported_token_type", "oauth.unsupported_token_type",
        status=400, raw='{"error": "unsupported_token_type"}'),
    row("RFC 7009 2.2.1", "invalid_client", "oauth.invalid_client", status=401,
        raw='{"error": "invalid_client"}'),
    row("RFC 7009 2.2.1", "400 without an OAuth error", "provider_response.status",
        status=400, raw="bad"),
    row("RFC 7009 2.2.1", "503 (token still valid, retry later)", "transport.status",
        status=503, raw="", headers={"retry-after": "30"}),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), REVOCATION_TABLE)
def test_revocation_requirements(change: Change, expected: str) -> None:
    response = change.response({})
    assert outcome(lambda: parse_revocation_response(response)) == expected


def test_revocation_503_carries_retry_after() -> None:
    response = Change(status=503, raw="", headers={"retry-after": "30"}).response({})
    with pytest.raises(TransportError) as info:
        parse_revocation_response(response)
    assert info.value.retry_after == 30.0


# ---- JWKS: RFC 7517 4, 5; RFC 7518 6 -------------------------------------------------------------

VALID_JWKS = jwks_body(["P-384"])

J5 = "RFC 7517 5"
J4 = "RFC 7517 4"
JWKS_TABLE = [
    row(J5, "a valid set", ACCEPTED),
    row(J5, "status 404", "jwks.bad_status", status=404, raw="{}"),
    row(J5, "keys missing", "jwks.malformed", members={"keys": DROP}),
    row(J5, "keys an object", "jwks.malformed", members={"keys": {}}),
    row(J5, "keys empty", "jwks.no_usable_keys", members={"keys": []}),
    row(J5, "a JSON array", "jwks.malformed", raw="[]"),
    row("RFC 8259 6", "NaN in the set", "jwks.malformed", extra='"x": NaN'),
    row("RFC 7517 5 / RFC 8259 4", "keys repeated", "jwks.malformed", extra='"keys": []'),
    row(J5, "an unknown member of the set", ACCEPTED, members={"x": {"y": 1}}),
    row(J5, "an unknown kty beside the key (ignored)", ACCEPTED,
        members={"keys": [*VALID_JWKS["keys"], {"kty": "XYZ", "k": "v"}]}),
    row("RFC 7517 4.1", "kty missing", "jwks.no_usable_keys", key={"kty": DROP}),
    row("RFC 7517 4.1", "kty a number", "jwks.no_usable_keys", key={"kty": 3}),
    row("RFC 7517 4.2", "use enc", "jwks.no_usable_keys", key={"use": "enc"}),
    row("RFC 7517 4.2", "use a number", "jwks.no_usable_keys", key={"use": 1}),
    row("RFC 7517 4.2", "use sig", ACCEPTED, key={"use": "sig"}),
    row("RFC 7517 4.3", "key_ops without verify", "jwks.no_usable_keys",
        key={"key_ops": ["encrypt"]}),
    row("RFC 7517 4.3", "key_ops with a duplicate", "jwks.no_usable_keys",
        key={"key_ops": ["verify", "verify"]}),
    row("RFC 7517 4.3", "key_ops holding a number", "jwks.no_usable_keys",
        key={"key_ops": ["verify", 1]}),
    row("RFC 7517 4.3", "key_ops a string", "jwks.no_usable_keys", key={"key_ops": "verify"}),
    row("RFC 7517 4.3", "use sig with key_ops encrypt (inconsistent)", "jwks.no_usable_keys",
        key={"use": "sig", "key_ops": ["verify", "encrypt"]}),
    row("RFC 7517 4.3", "key_ops verify", ACCEPTED, key={"key_ops": ["verify"]}),
    row("RFC 7517 4.4", "alg of another key type", "jwks.no_usable_keys", key={"alg": "RS256"}),
    row("RFC 7517 4.5", "kid a number", "jwks.no_usable_keys", key={"kid": 5}),
    row("RFC 7518 6.2.1", "unknown crv", "jwks.no_usable_keys", key={"crv": "P-999"}),
    row("RFC 7518 6.2.1", "y missing", "jwks.no_usable_keys", key={"y": DROP}),
    row("RFC 7517 4 (private part)", "d published (dropped, key kept)", ACCEPTED,
        key={"d": "c2VjcmV0"}),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), JWKS_TABLE)
def test_jwks_requirements(change: Change, expected: str) -> None:
    response = change.response(VALID_JWKS)
    assert outcome(lambda: parse_jwks_response(response, now=NOW)) == expected
