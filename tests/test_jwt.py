"""Unverified JWT decoding: strict shape checks, the size cap, and claim models."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import LogtoError, TokenValidationError
from logto_core.jose.jwt import (
    MAX_TOKEN_BYTES,
    b64url_decode,
    decode_access_token_claims,
    decode_id_token_claims,
    decode_unverified,
)
from tests.jwt_factory import CLIENT_ID, ISSUER, SUBJECT, b64, b64_json, make_token, sign

HEADER = b64_json({"alg": "ES384"})


def _token(payload: str, header: str = HEADER, signature: str = "c2ln") -> str:
    return f"{header}.{payload}.{signature}"


def _malformed(token: object) -> TokenValidationError:
    with pytest.raises(TokenValidationError) as info:
        decode_unverified(token)  # type: ignore[arg-type]
    assert info.value.code == "jwt.malformed"
    return info.value


def test_decodes_header_and_claims() -> None:
    header, claims = decode_unverified(make_token("ES256"))
    assert header == {"alg": "ES256", "kid": "p256-1"}
    assert claims["iss"] == ISSUER
    assert claims["aud"] == CLIENT_ID


def test_empty_signature_is_allowed_when_not_verifying() -> None:
    header, claims = decode_unverified(_token(b64_json({"a": 1}), signature=""))
    assert header == {"alg": "ES384"}
    assert claims == {"a": 1}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",  # an encrypted (JWE) token
        f"{HEADER}..sig",
        f".{b64_json({'a': 1})}.sig",
        _token(b64_json({"a": 1}) + "="),  # padding is not allowed
        _token(b64_json({"a": 1}) + "+"),  # standard alphabet is not allowed
        _token(b64_json({"a": 1}), signature="a b"),
        _token("AAAAA"),  # a length no byte string encodes to
        _token("AB"),  # non-canonical: unused bits set
        _token(b64(b"\xff\xfe")),  # not UTF-8
        _token(b64(b"not json")),
        _token(b64(b"[1, 2]")),  # JSON but not an object
        _token(b64(b'{"a": NaN}')),
        _token(b64(b'{"a": 1, "a": 2}')),  # duplicate member names
        _token(b64(b'{"a": ' + b"9" * 5000 + b"}")),  # integer too long to convert
        _token(b64(b"[" * 5000 + b"]" * 5000)),
        _token(b64_json({"a": 1}), header=b64(b'"just a string"')),
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    error = _malformed(token)
    assert token[:40] not in str(error) or not token


def test_non_string_is_refused() -> None:
    _malformed(b"a.b.c")
    _malformed(None)


def test_size_cap_applies_before_decoding() -> None:
    claims = b64_json({"pad": "x" * MAX_TOKEN_BYTES})
    _malformed(_token(claims))
    fits = _token(b64_json({"pad": "x" * 100}))
    assert len(fits) <= MAX_TOKEN_BYTES
    assert decode_unverified(fits)[1] == {"pad": "x" * 100}


def test_token_exactly_at_cap_is_decoded_one_more_is_not() -> None:
    base = _token(b64_json({"a": 1}), signature="")
    # The signature segment is not decoded here, so it can pad the token to any length.
    at_cap = base + "A" * (MAX_TOKEN_BYTES - len(base))
    assert len(at_cap) == MAX_TOKEN_BYTES
    assert decode_unverified(at_cap)[1] == {"a": 1}
    _malformed(at_cap + "A")


def test_b64url_decode_roundtrip() -> None:
    assert b64url_decode(b64(b"\x00\x01\xfe\xff")) == b"\x00\x01\xfe\xff"


def test_error_message_never_quotes_token() -> None:
    secret_payload = b64_json({"secret": "s3cr3t-token-material"})
    error = _malformed(_token(secret_payload) + ".extra")
    assert "s3cr3t" not in str(error)
    assert secret_payload not in repr(error)


def test_decode_id_token_claims() -> None:
    claims = decode_id_token_claims(make_token())
    assert claims.sub == SUBJECT
    assert claims.sid == "session-1"
    assert claims.name == "Ada"


def test_decode_id_token_claims_wrong_type_names_claim_not_value() -> None:
    token = sign({"alg": "ES384"}, {"iss": ISSUER, "sub": ["private-value"], "aud": "a"})
    with pytest.raises(TokenValidationError) as info:
        decode_id_token_claims(token)
    assert info.value.code == "jwt.claims_invalid"
    assert info.value.claim in {"sub", "exp", "iat"}
    assert "private-value" not in str(info.value)


def test_decode_access_token_claims() -> None:
    token = sign(
        {"alg": "ES384", "typ": "at+jwt"},
        {
            "iss": ISSUER,
            "sub": SUBJECT,
            "aud": "https://api.example.com",
            "exp": 2,
            "iat": 1,
            "scope": "read write",
            "client_id": CLIENT_ID,
            "jti": "j1",
            "organization_id": "org1",
            "act": {"sub": "actor"},
        },
    )
    claims = decode_access_token_claims(token)
    assert claims.aud == "https://api.example.com"
    assert claims.scope == "read write"
    assert claims.organization_id == "org1"
    assert claims.model_extra == {"act": {"sub": "actor"}}


def test_decode_access_token_claims_missing_field() -> None:
    token = sign({"alg": "ES384"}, {"iss": ISSUER})
    with pytest.raises(TokenValidationError) as info:
        decode_access_token_claims(token)
    assert info.value.code == "jwt.claims_invalid"
    assert info.value.claim in {"sub", "aud", "exp", "iat"}


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_strings_decode_or_raise_sdk_error(token: str) -> None:
    try:
        header, claims = decode_unverified(token)
    except LogtoError as error:
        code: str | None = error.code
    else:
        code = None
        assert isinstance(header, dict)
        assert isinstance(claims, dict)
    assert code in {None, "jwt.malformed"}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(st.binary(max_size=60).map(b64), st.text(max_size=20)), min_size=1, max_size=5
    )
)
def test_arbitrary_segments_decode_or_raise_sdk_error(segments: list[str]) -> None:
    token = ".".join(segments)
    try:
        decode_unverified(token)
    except LogtoError as error:
        failure: LogtoError | None = error
    else:
        failure = None
    assert failure is None or isinstance(failure, TokenValidationError)
