from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import (
    DiscoveryError,
    LogtoError,
    OAuthError,
    ProviderResponseError,
    TransportError,
)
from logto_core.http import HttpResponse
from logto_core.protocol.discovery import build_discovery_request, parse_discovery_response
from tests.factories import ISSUER, config, discovery_document, json_response


def test_request_targets_the_well_known_path() -> None:
    request = build_discovery_request(config())
    assert request.method == "GET"
    assert request.url == f"{ISSUER}/.well-known/openid-configuration"
    assert request.purpose == "discovery"
    assert request.idempotent


def test_valid_document_is_parsed_and_keeps_unknown_fields() -> None:
    doc = discovery_document(x_custom="kept")
    metadata = parse_discovery_response(json_response(doc), config())
    assert metadata.issuer == ISSUER
    assert metadata.authorization_response_iss_parameter_supported is True
    assert metadata.model_extra == {"x_custom": "kept"}


def test_issuer_must_match_exactly() -> None:
    for issuer in (ISSUER + "/", "https://evil.example.com/oidc", ISSUER.upper()):
        with pytest.raises(DiscoveryError) as info:
            parse_discovery_response(json_response(discovery_document(issuer=issuer)), config())
        assert info.value.code == "discovery.issuer_mismatch"


@pytest.mark.parametrize(
    "field", ["token_endpoint", "jwks_uri", "userinfo_endpoint", "revocation_endpoint"]
)
@pytest.mark.parametrize(
    "url",
    ["http://tenant.example.com/oidc/x", "file:///etc/passwd", "ftp://h/x", "javascript:alert(1)"],
)
def test_insecure_endpoints_are_refused(field: str, url: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        parse_discovery_response(json_response(discovery_document(**{field: url})), config())
    assert info.value.code == "discovery.insecure_endpoint"


def test_https_tenant_never_accepts_loopback_http_endpoints() -> None:
    doc = discovery_document(token_endpoint="http://127.0.0.1:3001/oidc/token")
    with pytest.raises(DiscoveryError) as info:
        parse_discovery_response(json_response(doc), config())
    assert info.value.code == "discovery.insecure_endpoint"


def test_loopback_http_is_allowed_only_when_configured() -> None:
    cfg = config(endpoint="http://127.0.0.1:3001")
    doc = discovery_document(
        issuer="http://127.0.0.1:3001/oidc",
        authorization_endpoint="http://127.0.0.1:3001/oidc/auth",
        token_endpoint="http://localhost:3001/oidc/token",
        userinfo_endpoint="http://[::1]:3001/oidc/me",
        jwks_uri="http://127.0.0.1:3001/oidc/jwks",
        end_session_endpoint=None,
        revocation_endpoint=None,
        introspection_endpoint=None,
    )
    assert parse_discovery_response(json_response(doc), cfg).token_endpoint.startswith("http://")
    with pytest.raises(Exception):  # noqa: B017 - pydantic refuses at construction
        config(endpoint="http://127.0.0.1:3001", allowInsecureLoopback=False)


@pytest.mark.parametrize(
    "missing", ["authorization_endpoint", "token_endpoint", "jwks_uri", "issuer"]
)
def test_required_fields(missing: str) -> None:
    with pytest.raises(DiscoveryError) as info:
        parse_discovery_response(json_response(discovery_document(**{missing: None})), config())
    assert missing in str(info.value)


def test_wrong_types_are_refused_without_echoing_values() -> None:
    doc = discovery_document(token_endpoint=["not", "a", "string"])
    with pytest.raises(DiscoveryError) as info:
        parse_discovery_response(json_response(doc), config())
    assert "token_endpoint" in str(info.value)
    assert "not" not in str(info.value).replace("not_", "")


def test_pkce_s256_must_be_supported_when_advertised() -> None:
    doc = discovery_document(code_challenge_methods_supported=["plain"])
    with pytest.raises(DiscoveryError) as info:
        parse_discovery_response(json_response(doc), config())
    assert info.value.code == "discovery.pkce_unsupported"


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (HttpResponse.build(404, {}, b"nope"), ProviderResponseError),
        (HttpResponse.build(503, {"retry-after": "7"}, b""), TransportError),
        (HttpResponse.build(200, {}, b"<html>"), ProviderResponseError),
        (HttpResponse.build(200, {}, b"[1, 2]"), ProviderResponseError),
        (HttpResponse.build(204, {}, b""), DiscoveryError),
        (HttpResponse.build(400, {}, b'{"error":"invalid_request"}'), OAuthError),
        (HttpResponse.build(200, {}, b"{" * 100_000), ProviderResponseError),
        (HttpResponse.build(200, {}, b" " * (1024 * 1024 + 1)), ProviderResponseError),
    ],
)
def test_bad_responses_give_typed_errors(response: HttpResponse, error: type[LogtoError]) -> None:
    with pytest.raises(error):
        parse_discovery_response(response, config())


def test_retry_after_is_carried() -> None:
    with pytest.raises(TransportError) as info:
        parse_discovery_response(HttpResponse.build(429, {"retry-after": "7"}, b""), config())
    assert info.value.retry_after == 7.0
    assert info.value.status == 429


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_metadata_or_sdk_error(body: bytes) -> None:
    with contextlib.suppress(LogtoError):
        parse_discovery_response(HttpResponse.build(200, {}, body), config())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(list(discovery_document())), json_values))
def test_arbitrary_field_values_give_metadata_or_sdk_error(overrides: dict[str, Any]) -> None:
    doc = {**discovery_document(), **overrides}
    try:
        metadata = parse_discovery_response(json_response(doc), config())
    except LogtoError:
        return
    assert metadata.issuer == ISSUER
