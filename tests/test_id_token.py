"""ID token verification: every check on its own, then properties over mutations and time."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from joserfc.jwk import generate_key

from logto_core.errors import JwksError, LogtoError, TokenValidationError
from logto_core.jose.jwt import MAX_TOKEN_BYTES
from logto_core.jose.keys import SUPPORTED_ALGORITHMS, KeySet
from logto_core.models import IdTokenClaims
from logto_core.protocol.id_token import (
    UnknownKeyError,
    allowed_algorithms,
    check_refreshed_id_token,
    verify_id_token,
)
from tests.jwt_factory import (
    ACCESS_TOKEN,
    ALL_ALGORITHMS,
    CLIENT_ID,
    ISSUER,
    KEY_FOR_ALG,
    KEYS,
    NONCE,
    NOW,
    REMOVE,
    SUBJECT,
    TOLERANCE,
    SigningKey,
    b64,
    base_claims,
    key_set,
    make_token,
    sign,
)

KEY_SET = key_set()


def verify(
    token: str,
    *,
    keys: KeySet = KEY_SET,
    now: float = NOW,
    algorithms: Collection[str] = ALL_ALGORITHMS,
    expected_nonce: str | None = NONCE,
    access_token: str | None = ACCESS_TOKEN,
    max_age: float | None = None,
) -> IdTokenClaims:
    return verify_id_token(
        token,
        keys=keys,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        now=now,
        clock_tolerance=TOLERANCE,
        algorithms=algorithms,
        expected_nonce=expected_nonce,
        access_token=access_token,
        max_age=max_age,
    )


def rejected(token: str, code: str, claim: str | None = None, **kwargs: Any) -> LogtoError:
    with pytest.raises(LogtoError) as info:
        verify(token, **kwargs)
    error = info.value
    assert error.code == code, repr(error)
    if isinstance(error, TokenValidationError):
        assert error.claim == claim
    # Nothing secret in the message: not the token, not any of its parts, not the nonce.
    for text in (str(error), repr(error)):
        assert token not in text
        assert token.split(".")[-1] not in text or not token.split(".")[-1]
        assert NONCE not in text
        assert ACCESS_TOKEN not in text
    return error


def token_with(claims: dict[str, Any] | None = None, **kwargs: Any) -> str:
    return make_token(claims=claims, **kwargs)


# ---- the valid case ------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALL_ALGORITHMS)
def test_valid_token_for_every_algorithm(alg: str) -> None:
    claims = verify(make_token(alg))
    assert claims.iss == ISSUER
    assert claims.sub == SUBJECT
    assert claims.aud == CLIENT_ID
    assert claims.nonce == NONCE
    assert claims.exp == int(NOW) + 3600
    assert claims.model_extra == {}


def test_ed448_token_and_its_at_hash() -> None:
    digest = hashlib.shake_256(ACCESS_TOKEN.encode()).digest(114)
    good = b64(digest[:57])
    assert verify(make_token("EdDSA", key_name="Ed448", claims={"at_hash": good})).sub == SUBJECT
    wrong = b64(hashlib.sha512(ACCESS_TOKEN.encode()).digest()[:32])
    rejected(
        make_token("EdDSA", key_name="Ed448", claims={"at_hash": wrong}),
        "id_token.at_hash_mismatch",
        "at_hash",
    )


def test_unknown_claims_are_kept() -> None:
    claims = verify(token_with({"custom": {"a": 1}, "roles": ["admin"]}))
    assert claims.roles == ["admin"]
    assert claims.model_extra == {"custom": {"a": 1}}


def test_fractional_times_are_rounded_down() -> None:
    claims = verify(token_with({"exp": NOW + 100.9, "iat": NOW - 0.5, "auth_time": NOW - 10.5}))
    assert claims.exp == int(NOW) + 100
    assert claims.iat == int(NOW) - 1
    assert claims.auth_time == int(NOW) - 11


def test_model_type_error_names_the_claim() -> None:
    rejected(token_with({"name": ["Ada"]}), "id_token.invalid_claim", "name")


# ---- header ----------------------------------------------------------------------------------


def test_alg_none_refused_even_if_allowed() -> None:
    token = sign({"alg": "none"}, base_claims())
    rejected(token, "id_token.alg_not_allowed", "alg", algorithms=[*ALL_ALGORITHMS, "none"])


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "hs256", "None", "NONE"])
def test_hmac_refused_even_if_allowed_and_key_present(alg: str) -> None:
    secret = generate_key("oct", 256)
    keys = KeySet((dict(secret.as_dict(private=True), kid="h"), *KEY_SET.keys), NOW)
    sign_alg = alg.upper() if alg.upper().startswith("HS") else "none"
    token = sign({"alg": alg, "kid": "h"}, base_claims(), key=secret, sign_alg=sign_alg)
    rejected(token, "id_token.alg_not_allowed", "alg", keys=keys, algorithms=[alg])


def test_alg_not_in_allow_list() -> None:
    rejected(make_token("RS256"), "id_token.alg_not_allowed", "alg", algorithms=["ES384"])


def test_unsupported_alg_refused_even_if_listed() -> None:
    token = make_token("ES256", header={"alg": "ES256K"})
    rejected(token, "id_token.alg_not_allowed", "alg", algorithms=["ES256K"])


@pytest.mark.parametrize("alg", [REMOVE, None, 256, ["ES384"]])
def test_missing_or_non_string_alg(alg: Any) -> None:
    rejected(make_token(header={"alg": alg}), "id_token.alg_not_allowed", "alg")


@pytest.mark.parametrize("crit", [["exp"], [], ["b64"], None])
def test_crit_header_refused(crit: Any) -> None:
    rejected(make_token(header={"crit": crit}), "id_token.crit_unsupported", "crit")


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt", "application/JWT", REMOVE, None])
def test_plain_jwt_types_accepted(typ: Any) -> None:
    assert verify(make_token(header={"typ": typ})).sub == SUBJECT


@pytest.mark.parametrize("typ", ["at+jwt", "logout+jwt", "JWE", "", 1, ["JWT"]])
def test_other_token_types_refused(typ: Any) -> None:
    rejected(make_token(header={"typ": typ}), "id_token.typ_not_allowed", "typ")


@pytest.mark.parametrize("kid", [1, None, ["p384-1"], {"kid": "p384-1"}])
def test_non_string_kid(kid: Any) -> None:
    rejected(make_token(header={"kid": kid}), "id_token.header_invalid", "kid")


def test_unknown_header_parameters_are_ignored() -> None:
    # jku/x5u/jwk must never be followed or trusted: the key still comes from the key set.
    attacker = generate_key("EC", "P-384")
    header = {"jwk": attacker.as_dict(private=False), "jku": "https://evil.example/jwks"}
    assert verify(make_token(header=header)).sub == SUBJECT
    forged = sign({"alg": "ES384", "kid": "p384-1", **header}, base_claims(), key=attacker)
    rejected(forged, "id_token.bad_signature")


# ---- key selection ---------------------------------------------------------------------------


def test_no_kid_single_candidate_is_used() -> None:
    assert verify(make_token("ES256", header={"kid": REMOVE})).sub == SUBJECT


def test_no_kid_several_candidates_is_ambiguous() -> None:
    second = SigningKey("p384-2", generate_key("EC", "P-384"))
    keys = KeySet((KEYS["P-384"].public_jwk(), second.public_jwk()), NOW)
    token = make_token("ES384", header={"kid": REMOVE})
    rejected(token, "id_token.kid_ambiguous", "kid", keys=keys)
    # the same token with its kid is fine
    assert verify(make_token("ES384"), keys=keys).sub == SUBJECT


def test_no_kid_eddsa_with_two_curves_is_ambiguous() -> None:
    rejected(make_token("EdDSA", header={"kid": REMOVE}), "id_token.kid_ambiguous", "kid")


def test_duplicate_kid_is_ambiguous() -> None:
    twin = SigningKey("p384-1", generate_key("EC", "P-384"))
    keys = KeySet((KEYS["P-384"].public_jwk(), twin.public_jwk()), NOW)
    rejected(make_token("ES384"), "id_token.kid_ambiguous", "kid", keys=keys)


def test_unknown_kid_raises_unknown_key_error() -> None:
    error = rejected(make_token(header={"kid": "rotated-2"}), "id_token.kid_unknown")
    assert isinstance(error, UnknownKeyError)
    assert isinstance(error, JwksError)


def test_rotation_is_accepted_with_the_new_key_set() -> None:
    new_key = SigningKey("p384-next", generate_key("EC", "P-384"))
    token = sign({"alg": "ES384", "kid": "p384-next"}, base_claims(), key=new_key.private)
    with pytest.raises(UnknownKeyError):
        verify(token)
    refreshed = KeySet((*KEY_SET.keys, new_key.public_jwk()), NOW + 5)
    assert verify(token, keys=refreshed).sub == SUBJECT


def test_no_kid_and_no_key_of_the_type_is_unknown_key() -> None:
    keys = key_set(["rsa"])
    error = rejected(make_token("ES384", header={"kid": REMOVE}), "id_token.kid_unknown", keys=keys)
    assert isinstance(error, UnknownKeyError)


@pytest.mark.parametrize(
    ("alg", "kid"), [("ES256", "p384-1"), ("RS256", "p384-1"), ("EdDSA", "rsa-1")]
)
def test_kid_of_a_key_of_another_type(alg: str, kid: str) -> None:
    rejected(make_token(alg, header={"kid": kid}), "id_token.key_mismatch", "alg")


def test_key_declaring_another_alg_is_not_used() -> None:
    keys = KeySet((KEYS["rsa"].public_jwk(alg="RS256"),), NOW)
    assert verify(make_token("RS256"), keys=keys).sub == SUBJECT
    rejected(make_token("PS256"), "id_token.key_mismatch", "alg", keys=keys)


# ---- signature -------------------------------------------------------------------------------


def _flip_last_signature_char(token: str) -> str:
    head, _, signature = token.rpartition(".")
    flipped = ("B" if signature[-2] == "A" else "A") + signature[-1]
    return f"{head}.{signature[:-2]}{flipped}"


@pytest.mark.parametrize("alg", ALL_ALGORITHMS)
def test_tampered_signature(alg: str) -> None:
    rejected(_flip_last_signature_char(make_token(alg)), "id_token.bad_signature")


def test_tampered_payload() -> None:
    header, _, signature = make_token().split(".")
    other_payload = b64(json.dumps(base_claims() | {"sub": "admin"}).encode())
    rejected(f"{header}.{other_payload}.{signature}", "id_token.bad_signature")


def test_empty_signature() -> None:
    head, _, _ = make_token().rpartition(".")
    rejected(head + ".", "id_token.bad_signature")


def test_signature_of_wrong_length() -> None:
    head, _, signature = make_token().rpartition(".")
    rejected(f"{head}.{signature[:40]}", "id_token.bad_signature")


def test_signature_by_another_key_with_same_kid() -> None:
    impostor = generate_key("RSA", 2048)
    token = sign({"alg": "RS256", "kid": "rsa-1"}, base_claims(), key=impostor)
    rejected(token, "id_token.bad_signature")


def test_signature_not_canonical_base64() -> None:
    head, _, signature = make_token().rpartition(".")
    rejected(f"{head}.{signature}A", "jwt.malformed")


def test_key_the_library_refuses_counts_as_bad_signature() -> None:
    # A key set built by hand (not parsed) holding a key whose ops forbid verification.
    keys = KeySet((KEYS["P-384"].public_jwk(key_ops=["sign"]),), NOW)
    rejected(make_token(), "id_token.bad_signature", keys=keys)


def test_oversized_token_is_refused_before_decoding() -> None:
    token = make_token(claims={"pad": "x" * MAX_TOKEN_BYTES})
    rejected(token, "jwt.malformed")


@pytest.mark.parametrize("token", ["", "a.b.c", "x" * 100, "a.b.c.d.e"])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(TokenValidationError) as info:
        verify(token)
    assert info.value.code == "jwt.malformed"


# ---- issuer, subject, audience ----------------------------------------------------------------


def test_issuer_mismatch() -> None:
    rejected(token_with({"iss": ISSUER + "/"}), "id_token.iss_mismatch", "iss")
    rejected(token_with({"iss": "https://evil.example/oidc"}), "id_token.iss_mismatch", "iss")


@pytest.mark.parametrize("name", ["iss", "sub", "aud", "exp", "iat"])
def test_required_claims(name: str) -> None:
    rejected(token_with({name: REMOVE}), "id_token.missing_claim", name)
    rejected(token_with({name: None}), "id_token.missing_claim", name)


@pytest.mark.parametrize("value", ["", 42, True, ["user"], {"id": 1}])
def test_sub_must_be_non_empty_string(value: Any) -> None:
    rejected(token_with({"sub": value}), "id_token.invalid_claim", "sub")


@pytest.mark.parametrize("value", [42, ["x", 1], [], [""], "", {"a": 1}])
def test_aud_type(value: Any) -> None:
    rejected(token_with({"aud": value}), "id_token.invalid_claim", "aud")


def test_aud_without_client() -> None:
    rejected(token_with({"aud": "other-app"}), "id_token.aud_mismatch", "aud")
    rejected(token_with({"aud": ["a", "b"], "azp": CLIENT_ID}), "id_token.aud_mismatch", "aud")


def test_aud_list_with_only_client() -> None:
    assert verify(token_with({"aud": [CLIENT_ID]})).aud == [CLIENT_ID]
    assert verify(token_with({"aud": [CLIENT_ID, CLIENT_ID]})).sub == SUBJECT


def test_several_audiences_need_azp() -> None:
    rejected(token_with({"aud": [CLIENT_ID, "api"]}), "id_token.missing_claim", "azp")


def test_several_audiences_azp_must_be_client() -> None:
    token = token_with({"aud": [CLIENT_ID, "api"], "azp": "api"})
    rejected(token, "id_token.azp_mismatch", "azp")


def test_several_audiences_extra_audience_untrusted() -> None:
    token = token_with({"aud": [CLIENT_ID, "api"], "azp": CLIENT_ID})
    rejected(token, "id_token.aud_untrusted", "aud")


def test_azp_present_must_be_client() -> None:
    assert verify(token_with({"azp": CLIENT_ID})).azp == CLIENT_ID
    rejected(token_with({"azp": "someone-else"}), "id_token.azp_mismatch", "azp")
    rejected(token_with({"azp": 5}), "id_token.azp_mismatch", "azp")


# ---- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [True, False, "1700000000", [1], {"t": 1}])
def test_time_claims_must_be_numbers(name: str, value: Any) -> None:
    rejected(token_with({name: value}), "id_token.invalid_claim", name)


def test_infinite_time_is_refused() -> None:
    payload = json.dumps(base_claims()).replace(f'"exp": {int(NOW) + 3600}', '"exp": 1e999')
    token = sign({"alg": "ES384", "kid": "p384-1"}, payload.encode())
    # 1e999 is no double: the strict JSON decoder refuses the payload before any claim check.
    rejected(token, "jwt.malformed")


def test_expiry_boundary() -> None:
    exp = NOW + 10
    token = token_with({"exp": exp})
    assert verify(token, now=exp + TOLERANCE - 0.001).sub == SUBJECT
    rejected(token, "id_token.expired", "exp", now=exp + TOLERANCE)
    rejected(token, "id_token.expired", "exp", now=exp + 10 * TOLERANCE)


def test_not_before_boundary() -> None:
    nbf = NOW + 30
    token = token_with({"nbf": nbf})
    assert verify(token, now=nbf - TOLERANCE).sub == SUBJECT
    rejected(token, "id_token.not_yet_valid", "nbf", now=nbf - TOLERANCE - 0.001)


def test_issued_in_the_future() -> None:
    iat = NOW + 100
    token = token_with({"iat": iat})
    assert verify(token, now=iat - TOLERANCE).sub == SUBJECT
    rejected(token, "id_token.iat_future", "iat", now=iat - TOLERANCE - 1)


def test_old_iat_is_fine() -> None:
    assert verify(token_with({"iat": 0})).sub == SUBJECT


def test_zero_tolerance() -> None:
    token = token_with({"exp": NOW})
    with pytest.raises(TokenValidationError) as info:
        verify_id_token(
            token,
            keys=KEY_SET,
            issuer=ISSUER,
            client_id=CLIENT_ID,
            now=NOW,
            clock_tolerance=0,
            algorithms=ALL_ALGORITHMS,
            expected_nonce=NONCE,
        )
    assert info.value.code == "id_token.expired"


def test_max_age() -> None:
    token = token_with({"auth_time": NOW - 300})
    assert verify(token, max_age=300).auth_time == int(NOW) - 300
    assert verify(token, max_age=240 + 1).sub == SUBJECT  # within tolerance
    rejected(token, "id_token.auth_time_too_old", "auth_time", max_age=200)


def test_max_age_needs_auth_time() -> None:
    rejected(make_token(), "id_token.missing_claim", "auth_time", max_age=300)
    rejected(token_with({"auth_time": "yesterday"}), "id_token.invalid_claim", "auth_time")
    rejected(token_with({"auth_time": True}), "id_token.invalid_claim", "auth_time", max_age=5)


def test_auth_time_in_the_future() -> None:
    token = token_with({"auth_time": NOW + 3 * TOLERANCE})
    rejected(token, "id_token.auth_time_future", "auth_time")


# ---- nonce and at_hash -----------------------------------------------------------------------


def test_nonce_mismatch() -> None:
    rejected(token_with({"nonce": NONCE + "x"}), "id_token.nonce_mismatch", "nonce")
    rejected(make_token(), "id_token.nonce_mismatch", "nonce", expected_nonce="other")


def test_nonce_missing() -> None:
    rejected(token_with({"nonce": REMOVE}), "id_token.missing_claim", "nonce")


@pytest.mark.parametrize("value", [1, ["n"], True])
def test_nonce_type(value: Any) -> None:
    rejected(token_with({"nonce": value}), "id_token.invalid_claim", "nonce")


def test_unexpected_nonce() -> None:
    rejected(make_token(), "id_token.unexpected_nonce", "nonce", expected_nonce=None)
    assert verify(token_with({"nonce": REMOVE}), expected_nonce=None).nonce is None


def test_at_hash_mismatch() -> None:
    rejected(make_token(), "id_token.at_hash_mismatch", "at_hash", access_token="another")


def test_at_hash_of_another_hash_size() -> None:
    # A SHA-256 at_hash on an ES384 token is wrong.
    token = token_with({"at_hash": b64(hashlib.sha256(ACCESS_TOKEN.encode()).digest()[:16])})
    rejected(token, "id_token.at_hash_mismatch", "at_hash")


def test_at_hash_not_checked_without_access_token() -> None:
    assert verify(token_with({"at_hash": "bogus"}), access_token=None).sub == SUBJECT


def test_at_hash_absent_is_fine() -> None:
    assert verify(token_with({"at_hash": REMOVE})).at_hash is None


def test_at_hash_type() -> None:
    rejected(token_with({"at_hash": 5}), "id_token.invalid_claim", "at_hash")


# ---- allowed algorithms ----------------------------------------------------------------------


def test_allowed_algorithms_intersection() -> None:
    assert allowed_algorithms(["ES384", "RS256"], ["ES384"]) == {"ES384"}
    assert allowed_algorithms(["ES384"], ["RS256"]) == frozenset()


def test_allowed_algorithms_without_advertised_list() -> None:
    assert allowed_algorithms(ALL_ALGORITHMS, []) == set(ALL_ALGORITHMS)


def test_allowed_algorithms_never_none_or_hmac() -> None:
    client = ["none", "HS256", "HS512", "ES256", "ES256K", "hs384"]
    assert allowed_algorithms(client, client) == {"ES256"}
    assert allowed_algorithms(client, []) == {"ES256"}


@settings(max_examples=100, deadline=None)
@given(
    st.sets(st.sampled_from([*ALL_ALGORITHMS, "none", "HS256", "HS384", "HS512", "ES256K", "x"])),
    st.sets(st.sampled_from([*ALL_ALGORITHMS, "none", "HS256", "ES256K"])),
)
def test_allowed_algorithms_property(client: set[str], advertised: set[str]) -> None:
    result = allowed_algorithms(client, advertised)
    assert result <= client
    assert result <= SUPPORTED_ALGORITHMS
    if advertised:
        assert result <= advertised
    assert "none" not in result
    assert not any(alg.startswith("HS") for alg in result)


# ---- refreshed tokens ------------------------------------------------------------------------


def _claims(**changes: Any) -> IdTokenClaims:
    return IdTokenClaims.model_validate(base_claims() | changes)


def test_refreshed_token_same_user() -> None:
    previous = _claims(auth_time=5)
    check_refreshed_id_token(previous, _claims(iat=int(NOW) + 600, auth_time=5))
    check_refreshed_id_token(previous, _claims(iat=int(NOW) + 600))
    check_refreshed_id_token(_claims(aud=[CLIENT_ID, "x"]), _claims(aud=["x", CLIENT_ID]))


@pytest.mark.parametrize(
    ("change", "code", "claim"),
    [
        ({"sub": "someone-else"}, "id_token.sub_changed", "sub"),
        ({"iss": "https://other.example/oidc"}, "id_token.iss_changed", "iss"),
        ({"aud": "another-app"}, "id_token.aud_changed", "aud"),
        ({"aud": [CLIENT_ID, "extra"]}, "id_token.aud_changed", "aud"),
        ({"auth_time": 6}, "id_token.auth_time_changed", "auth_time"),
    ],
)
def test_refreshed_token_changes_refused(change: dict[str, Any], code: str, claim: str) -> None:
    with pytest.raises(TokenValidationError) as info:
        check_refreshed_id_token(_claims(auth_time=5), _claims(**change))
    assert info.value.code == code
    assert info.value.claim == claim


# ---- property: single mutations --------------------------------------------------------------

_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)

_CLAIM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "iss": st.sampled_from([ISSUER, ISSUER + "/", "https://evil.example/oidc", ""]),
    "sub": st.sampled_from(["other-user", ""]),
    "aud": st.sampled_from(
        ["other", CLIENT_ID, [CLIENT_ID], [CLIENT_ID, "api"], ["api"], [], [""], [CLIENT_ID, 3]]
    ),
    "azp": st.sampled_from([CLIENT_ID, "api", ""]),
    "exp": st.integers(int(NOW) - 10_000, int(NOW) + 10_000),
    "iat": st.integers(int(NOW) - 10_000, int(NOW) + 10_000),
    "nbf": st.integers(int(NOW) - 10_000, int(NOW) + 10_000),
    "nonce": st.sampled_from([NONCE, NONCE + "x", "", NONCE.upper()]),
    "at_hash": st.sampled_from(["", "AAAA", "bogus"]),
}
_REQUIRED = {"iss", "sub", "aud", "exp", "iat", "nonce"}


def _expected_for_claim(name: str, value: Any, alg: str) -> tuple[str, str | None] | None:
    """The oracle: what a single changed claim must produce (``None``: accepted)."""
    if value is REMOVE or value is None:
        return ("id_token.missing_claim", name) if name in _REQUIRED else None
    if name in {"exp", "iat", "nbf"}:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return ("id_token.invalid_claim", name)
        if name == "exp" and value + TOLERANCE <= NOW:
            return ("id_token.expired", "exp")
        if name == "iat" and value > NOW + TOLERANCE:
            return ("id_token.iat_future", "iat")
        if name == "nbf" and value > NOW + TOLERANCE:
            return ("id_token.not_yet_valid", "nbf")
        return None
    if name == "azp":
        return None if value == CLIENT_ID else ("id_token.azp_mismatch", "azp")
    if name == "aud":
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v for v in values):
            return ("id_token.invalid_claim", "aud")
        if CLIENT_ID not in values:
            return ("id_token.aud_mismatch", "aud")
        return ("id_token.missing_claim", "azp") if len(set(values)) > 1 else None
    if not isinstance(value, str) or (name in {"iss", "sub"} and not value):
        return ("id_token.invalid_claim", name)
    if name == "iss":
        return None if value == ISSUER else ("id_token.iss_mismatch", "iss")
    if name == "nonce":
        return None if value == NONCE else ("id_token.nonce_mismatch", "nonce")
    if name == "at_hash":
        return (
            None
            if value == base_claims(NOW, alg)["at_hash"]
            else ("id_token.at_hash_mismatch", name)
        )
    return None  # sub: any other non-empty string is another, valid, subject


def _expected_for_header(name: str, value: Any, alg: str) -> tuple[str, str | None] | None:
    key_name = KEY_FOR_ALG[alg]
    if name == "crit":
        return None if value is REMOVE else ("id_token.crit_unsupported", "crit")
    if name == "typ":
        if value is REMOVE or value is None:
            return None
        ok = isinstance(value, str) and value.lower() in {"jwt", "application/jwt"}
        return None if ok else ("id_token.typ_not_allowed", "typ")
    if name == "alg":
        if not isinstance(value, str) or value not in SUPPORTED_ALGORITHMS:
            return ("id_token.alg_not_allowed", "alg")
        if value == alg:
            return None
        if KEY_FOR_ALG[value] == key_name:  # same key, other hash or padding
            return ("id_token.bad_signature", None)
        return ("id_token.key_mismatch", "alg")
    # kid
    if value is REMOVE:
        return ("id_token.kid_ambiguous", "kid") if alg == "EdDSA" else None
    if not isinstance(value, str):
        return ("id_token.header_invalid", "kid")
    owner = next((n for n, k in KEYS.items() if k.kid == value), None)
    if owner is None:
        return ("id_token.kid_unknown", None)
    if owner == key_name:
        return None
    if alg == "EdDSA" and owner in {"Ed25519", "Ed448"}:
        return ("id_token.bad_signature", None)
    return ("id_token.key_mismatch", "alg")


_HEADER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "alg": st.sampled_from([*ALL_ALGORITHMS, "none", "HS256", "ES256K", "", None, 1]),
    "kid": st.one_of(
        st.sampled_from([k.kid for k in KEYS.values()]), st.text(max_size=6), _ANY_JSON
    ),
    "typ": st.one_of(st.sampled_from(["JWT", "jwt", "application/jwt", "at+jwt"]), _ANY_JSON),
    "crit": _ANY_JSON,
}


@st.composite
def _mutation(draw: st.DrawFn) -> tuple[str, str, str, Any]:
    alg = draw(st.sampled_from(ALL_ALGORITHMS))
    where = draw(st.sampled_from(["claim", "header"]))
    table = _CLAIM_VALUES if where == "claim" else _HEADER_VALUES
    name = draw(st.sampled_from(sorted(table)))
    value = draw(st.one_of(st.just(REMOVE), table[name], _ANY_JSON))
    return alg, where, name, value


@settings(max_examples=200, deadline=None)
@given(_mutation())
def test_every_single_mutation_gives_its_code(mutation: tuple[str, str, str, Any]) -> None:
    alg, where, name, value = mutation
    if where == "claim":
        token = make_token(alg, claims={name: value})
        expected = _expected_for_claim(name, value, alg)
    else:
        token = make_token(alg, header={name: value})
        expected = _expected_for_header(name, value, alg)
    event(f"{where} {name}: {expected[0] if expected else 'accepted'}")
    if expected is None:
        assert verify(token).sub
        return
    code, claim = expected
    error = rejected(token, code, claim)  # the claim is None for signature and key errors
    assert isinstance(error, UnknownKeyError) == (code == "id_token.kid_unknown")


# ---- property: arbitrary input never escapes the error hierarchy ------------------------------


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_strings_raise_only_sdk_errors(token: str) -> None:
    with pytest.raises(LogtoError):
        verify(token)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "x"]), _ANY_JSON, max_size=4),
    st.one_of(
        st.dictionaries(
            st.sampled_from([*_CLAIM_VALUES, "auth_time", "name", "roles"]), _ANY_JSON, max_size=6
        ),
        _ANY_JSON,
    ),
    st.sampled_from(ALL_ALGORITHMS),
    st.booleans(),
)
def test_arbitrary_signed_content_gives_claims_or_sdk_error(
    header: dict[str, Any], claims: Any, alg: str, with_real_header: bool
) -> None:
    if with_real_header:
        header = {**header, "alg": alg, "kid": KEYS[KEY_FOR_ALG[alg]].kid}
        header.pop("crit", None)
    payload = json.dumps(base_claims() | claims if isinstance(claims, dict) else claims).encode()
    token = sign(header, payload, sign_alg=alg)
    try:
        result = verify(token, max_age=10_000)
    except LogtoError:
        return
    assert isinstance(result, IdTokenClaims)
    assert result.aud == CLIENT_ID or CLIENT_ID in result.aud


# ---- property: time checks are monotone in the clock -----------------------------------------

_TIME_CODES = {"id_token.expired", "id_token.not_yet_valid", "id_token.iat_future"}


def _outcome(token: str, now: float) -> str | None:
    code: str | None = None
    try:
        verify(token, now=now)
    except TokenValidationError as error:
        code = error.code
    assert code is None or code in _TIME_CODES
    return code


@settings(max_examples=120, deadline=None)
@given(
    exp=st.integers(-5000, 5000),
    iat=st.integers(-5000, 5000),
    nbf=st.one_of(st.none(), st.integers(-5000, 5000)),
    times=st.lists(st.floats(-8000, 8000, allow_nan=False), min_size=2, max_size=6),
)
def test_time_checks_are_monotone(exp: int, iat: int, nbf: int | None, times: list[float]) -> None:
    claims: dict[str, Any] = {"exp": NOW + exp, "iat": NOW + iat, "nbf": REMOVE}
    if nbf is not None:
        claims["nbf"] = NOW + nbf
    token = make_token(claims=claims)
    outcomes = [(NOW + t, _outcome(token, NOW + t)) for t in sorted(times)]
    deadline = NOW + exp + TOLERANCE
    for i, (t, result) in enumerate(outcomes):
        assert (result == "id_token.expired") == (t >= deadline)
        later = outcomes[i + 1 :]
        if result == "id_token.expired":
            assert all(r == "id_token.expired" for _, r in later)
        if result is None:
            # accepted once: accepted at every later time until exp + tolerance
            assert all(r is None for t2, r in later if t2 < deadline)
        if result in {"id_token.not_yet_valid", "id_token.iat_future"}:
            # too early now: was too early at every earlier time as well
            assert all(r is not None for _, r in outcomes[:i])
