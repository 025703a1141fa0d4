"""JWKS request, response parsing, key filtering, candidates and the cache export."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import generate_key

from logto_core.errors import JwksError, LogtoError, ProviderResponseError
from logto_core.http import MAX_BODY_BYTES, HttpResponse
from logto_core.jose.keys import (
    MAX_KEYS,
    SUPPORTED_ALGORITHMS,
    KeySet,
    build_jwks_request,
    load_public_key,
    parse_jwks_response,
    public_signature_key,
)
from logto_core.models import OidcProviderMetadata
from tests.jwt_factory import KEYS, NOW, jwks_body, key_set

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def _parse(payload: Any, status: int = 200) -> KeySet:
    return parse_jwks_response(HttpResponse.json(status, payload), now=NOW)


def _jwks_error(payload: Any, code: str) -> JwksError:
    with pytest.raises(JwksError) as info:
        _parse(payload)
    assert info.value.code == code
    return info.value


def test_build_request() -> None:
    metadata = OidcProviderMetadata(
        issuer="https://t.example/oidc",
        authorization_endpoint="https://t.example/oidc/auth",
        token_endpoint="https://t.example/oidc/token",
        jwks_uri="https://t.example/oidc/jwks",
        response_types_supported=["code"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=["ES384"],
    )
    request = build_jwks_request(metadata)
    assert request.method == "GET"
    assert request.url == "https://t.example/oidc/jwks"
    assert request.purpose == "jwks"
    assert request.body is None
    assert request.idempotent


def test_parse_keeps_all_signature_keys() -> None:
    keys = _parse(jwks_body())
    assert keys.fetched_at == NOW
    assert keys.key_ids() == {key.kid for key in KEYS.values()}


def test_private_members_are_never_kept() -> None:
    entries = [dict(key.private.as_dict(private=True), kid=key.kid) for key in KEYS.values()]
    assert all(PRIVATE_MEMBERS & set(entry) for entry in entries)
    keys = _parse({"keys": entries})
    assert len(keys.keys) == len(entries)
    for key in keys.keys:
        assert not PRIVATE_MEMBERS & set(key)
    assert '"d"' not in keys.to_json()


def test_unknown_members_are_dropped() -> None:
    entry = KEYS["P-256"].public_jwk(x5c=["cert"], extra="x", use="sig", key_ops=["verify"])
    (key,) = _parse({"keys": [entry]}).keys
    assert set(key) == {"kty", "kid", "crv", "x", "y", "use", "key_ops"}


@pytest.mark.parametrize(
    "change",
    [
        {"use": "enc"},
        {"use": 5},
        {"key_ops": ["encrypt"]},
        {"key_ops": "verify"},
        {"kid": 7},
        {"alg": "RSA-OAEP"},
        {"alg": "HS256"},
        {"alg": "ES256"},  # a P-384 key cannot make ES256 signatures
        {"alg": 3},
        {"crv": "P-192"},
        {"crv": "X25519"},
        {"kty": "oct"},
        {"kty": "XYZ"},
        {"kty": None},
        {"x": 12},
        {"x": "AAAA"},  # not a point on the curve
    ],
)
def test_unusable_keys_are_ignored(change: dict[str, Any]) -> None:
    bad = KEYS["P-384"].public_jwk(**change)
    keys = _parse({"keys": [bad, KEYS["P-256"].public_jwk()]})
    assert keys.key_ids() == {"p256-1"}


def test_missing_member_and_non_object_ignored() -> None:
    bad = KEYS["P-384"].public_jwk()
    del bad["y"]
    keys = _parse({"keys": [bad, "text", 3, None, KEYS["rsa"].public_jwk()]})
    assert keys.key_ids() == {"rsa-1"}


def test_symmetric_key_is_ignored() -> None:
    oct_key = dict(generate_key("oct", 256).as_dict(private=True), kid="hmac")
    _jwks_error({"keys": [oct_key]}, "jwks.no_usable_keys")


def test_weak_rsa_key_is_ignored() -> None:
    # A 1024-bit modulus: the public numbers suffice, no key generation needed.
    weak = dict(KEYS["rsa"].public_jwk(), kid="weak")
    weak["n"] = "A" + "B" * 170
    assert public_signature_key(weak) is None
    weak["n"] = "AAAAA"  # not base64url at all
    assert public_signature_key(weak) is None


def test_declared_alg_and_sig_use_are_accepted() -> None:
    entry = KEYS["P-384"].public_jwk(alg="ES384", use="sig", key_ops=["verify"])
    keys = _parse({"keys": [entry]})
    assert keys.candidates("p384-1", "ES384") == [entry]


@pytest.mark.parametrize("status", [201, 204, 301, 404, 500, 503])
def test_non_200_status(status: int) -> None:
    body = b"<html>" + b"x" * 5000 + b"</html>"
    with pytest.raises(ProviderResponseError) as info:
        parse_jwks_response(HttpResponse.build(status, {}, body), now=NOW)
    assert info.value.status == status
    assert info.value.code == "jwks.bad_status"
    assert info.value.body_excerpt.startswith("<html>")
    assert len(info.value.body_excerpt) <= 200


def test_excerpt_is_printable() -> None:
    with pytest.raises(ProviderResponseError) as info:
        parse_jwks_response(HttpResponse.build(500, {}, b"a\x00b\nc\xff"), now=NOW)
    assert info.value.body_excerpt.isprintable()


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe\x00", b"[]", b'"keys"', b'{"keys": {}}', b"{}", b"[" * 100000],
)
def test_malformed_body(body: bytes) -> None:
    with pytest.raises(JwksError) as info:
        parse_jwks_response(HttpResponse.build(200, {}, body), now=NOW)
    assert info.value.code == "jwks.malformed"


def test_oversized_body() -> None:
    body = b'{"keys": [], "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'
    with pytest.raises(JwksError) as info:
        parse_jwks_response(HttpResponse.build(200, {}, body), now=NOW)
    assert info.value.code == "jwks.too_large"


def test_empty_key_list_refused() -> None:
    _jwks_error({"keys": []}, "jwks.no_usable_keys")


def test_only_encryption_keys_refused() -> None:
    _jwks_error({"keys": [KEYS["rsa"].public_jwk(use="enc")]}, "jwks.no_usable_keys")


def test_entries_beyond_cap_are_ignored() -> None:
    filler = [{"kty": "oct", "k": "AAAA"}] * MAX_KEYS
    _jwks_error({"keys": [*filler, KEYS["rsa"].public_jwk()]}, "jwks.no_usable_keys")


def test_candidates_by_kid_and_alg() -> None:
    keys = key_set()
    assert [key["kid"] for key in keys.candidates("p384-1", "ES384")] == ["p384-1"]
    assert keys.candidates("p384-1", "ES256") == []
    assert keys.candidates("nope", "ES384") == []
    assert [key["kid"] for key in keys.candidates(None, "ES256")] == ["p256-1"]
    assert [key["kid"] for key in keys.candidates(None, "PS512")] == ["rsa-1"]
    assert {key["kid"] for key in keys.candidates(None, "EdDSA")} == {"ed25519-1", "ed448-1"}
    assert keys.candidates(None, "HS256") == []
    assert keys.candidates(None, "none") == []


def test_candidates_respect_declared_alg() -> None:
    rs = KEYS["rsa"].public_jwk(alg="RS256")
    keys = KeySet((rs,), NOW)
    assert keys.candidates(None, "RS256") == [rs]
    assert keys.candidates(None, "PS256") == []


def test_is_fresh() -> None:
    keys = key_set(fetched_at=1000.0)
    assert keys.is_fresh(1000.0, 60)
    assert keys.is_fresh(1059.9, 60)
    assert not keys.is_fresh(1060.0, 60)
    assert not keys.is_fresh(999.0, 60)  # clock went back


def test_json_roundtrip() -> None:
    keys = _parse(jwks_body())
    restored = KeySet.from_json(keys.to_json())
    assert restored == keys
    assert restored.fetched_at == NOW
    assert json.loads(keys.to_json())["fetched_at"] == NOW


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"keys": []}',
        '{"fetched_at": 1}',
        '{"fetched_at": "1", "keys": []}',
        '{"fetched_at": true, "keys": []}',
        '{"fetched_at": 1e999, "keys": []}',
        '{"fetched_at": 1, "keys": {}}',
    ],
)
def test_from_json_refuses_bad_cache(text: str) -> None:
    with pytest.raises(JwksError) as info:
        KeySet.from_json(text)
    assert info.value.code == "jwks.cache_invalid"


def test_from_json_rechecks_keys() -> None:
    text = json.dumps({"fetched_at": 5, "keys": [{"kty": "oct", "k": "AAAA"}]})
    with pytest.raises(JwksError) as info:
        KeySet.from_json(text)
    assert info.value.code == "jwks.no_usable_keys"
    private = dict(KEYS["P-256"].private.as_dict(private=True), kid="k")
    restored = KeySet.from_json(json.dumps({"fetched_at": 5, "keys": [private]}))
    assert "d" not in restored.keys[0]


def test_kept_keys_are_read_only() -> None:
    keys = key_set(["P-256"])
    parsed = _parse({"keys": [dict(keys.keys[0])]})
    with pytest.raises(TypeError):
        parsed.keys[0]["kid"] = "other"  # type: ignore[index]


def test_load_public_key_refuses_garbage() -> None:
    with pytest.raises(JwksError) as info:
        load_public_key({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})
    assert info.value.code == "jwks.bad_key"


def test_supported_algorithms_exclude_symmetric_and_none() -> None:
    assert "none" not in SUPPORTED_ALGORITHMS
    assert not {alg for alg in SUPPORTED_ALGORITHMS if alg.startswith("HS")}
    assert len(SUPPORTED_ALGORITHMS) == 10


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_jwk_like = st.fixed_dictionaries(
    {"kty": st.sampled_from(["RSA", "EC", "OKP", "oct", "x"])},
    optional={
        "crv": st.sampled_from(["P-256", "P-384", "P-521", "Ed25519", "Ed448", "X25519"]),
        "x": st.sampled_from(["", "AAAA", KEYS["P-256"].public_jwk()["x"]]),
        "y": st.sampled_from(["", "AAAA", KEYS["P-256"].public_jwk()["y"]]),
        "n": st.sampled_from(["", "AQAB", KEYS["rsa"].public_jwk()["n"]]),
        "e": st.sampled_from(["AQAB", "", "Aw"]),
        "use": st.sampled_from(["sig", "enc", 1]),
        "alg": st.sampled_from([*sorted(SUPPORTED_ALGORITHMS), "none", "HS256"]),
        "kid": st.text(max_size=5),
        "d": st.just("AAAA"),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.binary(max_size=200), _json_values.map(lambda v: json.dumps(v).encode())))
def test_arbitrary_bodies_give_key_set_or_sdk_error(body: bytes) -> None:
    try:
        keys = parse_jwks_response(HttpResponse.build(200, {}, body), now=NOW)
    except LogtoError as error:
        failure: LogtoError | None = error
    else:
        failure = None
        assert keys.keys
    assert failure is None or isinstance(failure, JwksError)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_jwk_like, _json_values), max_size=5))
def test_arbitrary_key_lists_give_key_set_or_sdk_error(entries: list[Any]) -> None:
    try:
        keys = _parse({"keys": entries})
    except LogtoError as error:
        code: str | None = error.code
    else:
        code = None
        for key in keys.keys:
            assert key["kty"] in {"RSA", "EC", "OKP"}
            assert "d" not in key
            assert key.get("use", "sig") == "sig"
        assert KeySet.from_json(keys.to_json()) == keys
    assert code in {None, "jwks.no_usable_keys"}
