from __future__ import annotations

from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from logto_core.errors import (
    LogtoUsageError,
    OAuthError,
    ProviderError,
    TokenValidationError,
    TransportError,
)
from logto_core.http import HttpResponse
from logto_core.protocol.end_session import build_end_session_url
from logto_core.protocol.revocation import build_revocation_request, parse_revocation_response
from logto_core.protocol.userinfo import build_userinfo_request, parse_userinfo_response
from tests.factories import ISSUER, config, json_response, metadata


def test_userinfo_request_uses_bearer() -> None:
    request = build_userinfo_request(metadata(), "opaque-token")
    assert request.url == f"{ISSUER}/me"
    assert request.header("authorization") == "Bearer opaque-token"
    assert "opaque-token" not in repr(request)


def test_userinfo_needs_an_endpoint() -> None:
    with pytest.raises(LogtoUsageError):
        build_userinfo_request(metadata(userinfo_endpoint=None), "t")


def test_userinfo_keeps_unknown_claims_and_nested_models() -> None:
    payload = {
        "sub": "u1",
        "custom_data": {"plan": "pro"},
        "identities": {"google": {"userId": "g1", "details": {"x": 1}}},
        "organization_data": [{"id": "o1", "name": "Org"}],
        "brand_new_claim": [1, 2],
    }
    info = parse_userinfo_response(json_response(payload), expected_sub="u1")
    assert info.custom_data == {"plan": "pro"}
    assert info.identities is not None and info.identities["google"].userId == "g1"
    assert info.model_extra == {"brand_new_claim": [1, 2]}
    assert '"email"' not in info.model_dump_json(exclude_unset=True)


def test_userinfo_sub_must_match() -> None:
    with pytest.raises(TokenValidationError) as info:
        parse_userinfo_response(json_response({"sub": "other"}), expected_sub="u1")
    assert info.value.code == "userinfo.sub_mismatch"
    with pytest.raises(ProviderError):
        parse_userinfo_response(json_response({"name": "x"}), expected_sub="u1")
    with pytest.raises(ProviderError):
        parse_userinfo_response(json_response({"sub": "u1", "identities": 5}), expected_sub="u1")


def test_userinfo_invalid_token_is_an_oauth_error_with_status() -> None:
    with pytest.raises(OAuthError) as info:
        parse_userinfo_response(
            json_response({"error": "invalid_token"}, status=401), expected_sub="u"
        )
    assert info.value.status == 401


def test_revocation_request() -> None:
    request = build_revocation_request(config(), metadata(), "rt-value")
    assert request.url == f"{ISSUER}/token/revocation"
    assert dict(parse_qsl((request.body or b"").decode())) == {
        "token": "rt-value",
        "token_type_hint": "refresh_token",
    }
    assert request.header(
        "authorization",
    ).startswith("Basic ")  # type: ignore[union-attr]
    public = build_revocation_request(config(appSecret=None), metadata(), "t", token_type_hint=None)
    assert dict(parse_qsl((public.body or b"").decode())) == {"token": "t", "client_id": "app"}
    with pytest.raises(LogtoUsageError):
        build_revocation_request(config(), metadata(revocation_endpoint=None), "t")


def test_revocation_response() -> None:
    parse_revocation_response(HttpResponse.build(200))
    with pytest.raises(OAuthError):
        parse_revocation_response(json_response({"error": "invalid_client"}, status=401))
    with pytest.raises(TransportError):
        parse_revocation_response(HttpResponse.build(503))


def test_end_session_url() -> None:
    url = build_end_session_url(
        config(),
        metadata(),
        post_logout_redirect_uri="https://app.example/",
        id_token_hint="idt",
        state="s",
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ISSUER}/session/end"
    assert parse_qs(parts.query) == {
        "client_id": ["app"],
        "post_logout_redirect_uri": ["https://app.example/"],
        "id_token_hint": ["idt"],
        "state": ["s"],
    }


def test_end_session_without_metadata_uses_logto_path() -> None:
    url = build_end_session_url(config(), None)
    assert url == f"{ISSUER}/session/end?client_id=app"
    merged = build_end_session_url(config(), metadata(end_session_endpoint=f"{ISSUER}/end?x=1"))
    assert merged == f"{ISSUER}/end?x=1&client_id=app"


@pytest.mark.parametrize("bad", ["/relative", "javascript:alert(1)", "https://a/#f", "ftp://x/"])
def test_end_session_refuses_bad_redirects(bad: str) -> None:
    with pytest.raises(LogtoUsageError):
        build_end_session_url(config(), None, post_logout_redirect_uri=bad)
