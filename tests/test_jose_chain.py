"""The JWT verification chain itself (logto_core.jose.chain), configured with rules that are
not an ID token's: an RFC 9068 access token (``at+jwt``, several audiences allowed, extra
required claims) and a logout-like token (OIDC audience rules, ``sub`` optional)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import LogtoError, TokenValidationError
from logto_core.jose.chain import (
    CHECK_CODES,
    AudiencePolicy,
    JwtRules,
    UnknownKeyError,
    VerifiedJwt,
    allowed_algorithms,
    is_forbidden_algorithm,
    verify_jwt,
)
from logto_core.jose.keys import NEED_KEYS, KeyConflict, KeySet, select_key
from tests.jwt_factory import (
    ALL_ALGORITHMS,
    CLIENT_ID,
    ISSUER,
    KEY_FOR_ALG,
    KEYS,
    NOW,
    REMOVE,
    SUBJECT,
    TOLERANCE,
    key_set,
    sign,
)

API = "https://api.example.com"
KEY_SET = key_set()
AT_TYPES = ("at+jwt", "application/at+jwt")

AT_RULES = JwtRules(
    name="access token",
    code_prefix="access_token",
    issuer=ISSUER,
    audience=API,
    algorithms=frozenset({"ES384", "RS256", "EdDSA"}),
    types=frozenset(AT_TYPES),
    typ_required=True,
    required_claims=("sub", "exp", "iat", "client_id", "jti"),
    leeway=TOLERANCE,
    audience_policy=AudiencePolicy.CONTAINS,
    audience_name="this API",
)
# Back-channel logout shape: no sub required, OIDC audience rules, one extra claim.
LOGOUT_RULES = JwtRules(
    name="logout token",
    code_prefix="logout_token",
    issuer=ISSUER,
    audience=CLIENT_ID,
    algorithms=frozenset({"ES384"}),
    types=frozenset({"logout+jwt"}),
    required_claims=("iat", "events"),
    leeway=TOLERANCE,
)


def at_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": [API, "https://other.example.com"],
        "exp": int(NOW) + 3600,
        "iat": int(NOW),
        "client_id": CLIENT_ID,
        "jti": "at-1",
        "scope": "read:stuff",
    }
    for name, value in changes.items():
        if value is REMOVE:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def at_token(alg: str = "ES384", *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    base = {"alg": alg, "kid": KEYS[KEY_FOR_ALG[alg]].kid, "typ": "at+jwt"}
    for name, value in (header or {}).items():
        if value is REMOVE:
            base.pop(name, None)
        else:
            base[name] = value
    return sign(base, at_claims(**claims))


def failure(token: str, rules: JwtRules = AT_RULES, keys: KeySet | None = KEY_SET) -> LogtoError:
    with pytest.raises(LogtoError) as info:
        verify_jwt(token, rules, keys, now=NOW)
    return info.value


def accepted(token: str, rules: JwtRules = AT_RULES, keys: KeySet | None = KEY_SET) -> VerifiedJwt:
    result = verify_jwt(token, rules, keys, now=NOW)
    assert isinstance(result, VerifiedJwt), result
    return result


def test_a_valid_access_token_passes_the_chain() -> None:
    result = accepted(at_token())
    assert result.alg == "ES384"
    assert result.claims["client_id"] == CLIENT_ID
    assert result.key["kid"] == KEYS["P-384"].kid


# ---- typ --------------------------------------------------------------------------------------


def _case_variants(text: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(text, upper, strict=True))
    )


_TYP = st.one_of(
    st.sampled_from(
        [*AT_TYPES, "JWT", "jwt", "application/jwt", "logout+jwt", "at+JWE", ""]
    ).flatmap(_case_variants),
    st.text(max_size=20),
)


@settings(max_examples=150, deadline=None)
@given(typ=_TYP)
def test_at_jwt_rules_accept_exactly_the_access_token_types(typ: str) -> None:
    token = at_token(header={"typ": typ})
    if typ.lower() in AT_TYPES:
        assert accepted(token).header["typ"] == typ
    else:
        error = failure(token)
        assert isinstance(error, TokenValidationError)
        assert (error.code, error.claim) == ("access_token.typ_not_allowed", "typ")
        assert "not an access token" in str(error)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt", REMOVE, None])
def test_at_jwt_rules_refuse_a_plain_jwt_or_an_untyped_token(typ: Any) -> None:
    error = failure(at_token(header={"typ": typ}))
    assert (error.code, getattr(error, "claim", None)) == ("access_token.typ_not_allowed", "typ")


def test_without_typ_required_an_untyped_token_is_accepted() -> None:
    rules = dataclasses.replace(AT_RULES, typ_required=False)
    assert accepted(at_token(header={"typ": REMOVE}), rules).claims["jti"] == "at-1"
    assert failure(at_token(header={"typ": "JWT"}), rules).code == "access_token.typ_not_allowed"


# ---- algorithms and keys ----------------------------------------------------------------------


_ALGS = st.sampled_from([*ALL_ALGORITHMS, "none", "None", "HS256", "HS512", "ES256K"])


class _NoKeyLookup(KeySet):
    """A key set that fails the test when the chain looks a key up in it."""

    def candidates(self, kid: str | None, alg: str) -> list[Any]:
        raise AssertionError("the chain looked for a key")


@settings(max_examples=150, deadline=None)
@given(alg=_ALGS, allowed=st.frozensets(_ALGS))
def test_an_algorithm_off_the_allow_list_is_refused_before_any_key_lookup(
    alg: str, allowed: frozenset[str]
) -> None:
    rules = dataclasses.replace(AT_RULES, algorithms=allowed)
    signable = alg in KEY_FOR_ALG
    token = (
        at_token(alg)
        if signable
        else sign({"alg": alg, "typ": "at+jwt"}, at_claims(), sign_alg="none")
    )
    if signable and alg in allowed:
        assert accepted(token, rules).alg == alg
        return
    for keys in (None, _NoKeyLookup(KEY_SET.keys, NOW)):
        error = failure(token, rules, keys)
        assert (error.code, getattr(error, "claim", None)) == (
            "access_token.alg_not_allowed",
            "alg",
        )


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_never_accepted(alg: str) -> None:
    rules = dataclasses.replace(AT_RULES, algorithms=frozenset({alg, "none", *ALL_ALGORITHMS}))
    token = sign({"alg": alg, "typ": "at+jwt"}, at_claims(), sign_alg="none")
    for keys in (None, KEY_SET):
        assert failure(token, rules, keys).code == "access_token.alg_not_allowed"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "HS256", "hs384", "HS512"])
def test_none_and_hmac_are_forbidden_whatever_the_lists_say(alg: str) -> None:
    assert is_forbidden_algorithm(alg)
    assert allowed_algorithms([alg, "ES384"], [alg, "ES384"]) == {"ES384"}
    assert not is_forbidden_algorithm("ES384")


@settings(max_examples=100, deadline=None)
@given(kid=st.text(max_size=30).filter(lambda kid: kid not in KEY_SET.key_ids()))
def test_an_unknown_kid_needs_keys(kid: str) -> None:
    assert verify_jwt(at_token(header={"kid": kid}), AT_RULES, KEY_SET, now=NOW) is NEED_KEYS


def test_without_any_key_set_a_well_formed_token_needs_keys() -> None:
    assert verify_jwt(at_token(), AT_RULES, None, now=NOW) is NEED_KEYS
    # The claims are not looked at before the keys are there.
    assert verify_jwt(at_token(iss="https://evil.example"), AT_RULES, None, now=NOW) is NEED_KEYS


def test_key_selection_is_a_pure_answer() -> None:
    es384 = KEYS["P-384"].kid
    assert select_key(None, es384, "ES384") is NEED_KEYS
    assert repr(NEED_KEYS) == "NEED_KEYS"
    assert select_key(KEY_SET, "rotated-2", "ES384") is NEED_KEYS
    assert select_key(KEY_SET, es384, "RS256") is KeyConflict.MISMATCH
    assert select_key(KEY_SET, None, "EdDSA") is KeyConflict.AMBIGUOUS  # Ed25519 and Ed448
    assert select_key(KEY_SET, es384, "ES384") == KEYS["P-384"].public_jwk()


def test_key_conflicts_are_errors_with_the_rules_prefix() -> None:
    ambiguous = failure(at_token("EdDSA", header={"kid": REMOVE}))
    assert (ambiguous.code, getattr(ambiguous, "claim", None)) == (
        "access_token.kid_ambiguous",
        "kid",
    )
    mismatch = failure(at_token("RS256", header={"kid": KEYS["P-384"].kid}))
    assert (mismatch.code, getattr(mismatch, "claim", None)) == ("access_token.key_mismatch", "alg")


def test_the_unknown_key_error_carries_the_rules_code() -> None:
    error = AT_RULES.unknown_key()
    assert isinstance(error, UnknownKeyError)
    assert error.code == "access_token.kid_unknown"
    assert "access token" in str(error)


# ---- audience ---------------------------------------------------------------------------------


_AUDIENCES = st.lists(st.sampled_from([API, CLIENT_ID, "https://other.example.com"]), max_size=3)


@settings(max_examples=100, deadline=None)
@given(aud=st.one_of(_AUDIENCES, st.sampled_from([API, CLIENT_ID])))
def test_the_access_token_audience_must_contain_the_api(aud: list[str] | str) -> None:
    audiences = aud if isinstance(aud, list) else [aud]
    token = at_token(aud=aud)
    if not audiences:
        assert failure(token).code == "access_token.invalid_claim"
    elif API in audiences:
        assert accepted(token).claims["aud"] == aud
    else:
        error = failure(token)
        assert (error.code, getattr(error, "claim", None)) == ("access_token.aud_mismatch", "aud")
        assert "not issued to this API" in str(error)


def test_the_exclusive_audience_policy_refuses_other_audiences() -> None:
    token = sign({"alg": "ES384", "kid": KEYS["P-384"].kid}, logout_claims(aud=[CLIENT_ID, API]))
    assert failure(token, LOGOUT_RULES).code == "logout_token.missing_claim"  # azp needed
    token = sign(
        {"alg": "ES384", "kid": KEYS["P-384"].kid},
        logout_claims(aud=[CLIENT_ID, API], azp=CLIENT_ID),
    )
    assert failure(token, LOGOUT_RULES).code == "logout_token.aud_untrusted"
    relaxed = dataclasses.replace(LOGOUT_RULES, audience_policy=AudiencePolicy.CONTAINS)
    assert accepted(token, relaxed).claims["azp"] == CLIENT_ID


# ---- required claims --------------------------------------------------------------------------

# The order in which the chain meets the claims (iss, sub, aud, times, then the others).
_CHAIN_ORDER = ("sub", "exp", "iat", "client_id", "jti")


@settings(max_examples=100, deadline=None)
@given(missing=st.sets(st.sampled_from(_CHAIN_ORDER)), null=st.booleans())
def test_missing_required_claims_are_typed_errors_with_the_rules_prefix(
    missing: set[str], null: bool
) -> None:
    token = at_token(**dict.fromkeys(missing, None if null else REMOVE))
    if not missing:
        accepted(token)
        return
    error = failure(token)
    assert isinstance(error, TokenValidationError)
    first = next(name for name in _CHAIN_ORDER if name in missing)
    assert (error.code, error.claim) == ("access_token.missing_claim", first)
    assert f"access token has no {first!r} claim" == str(error)


def logout_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": int(NOW),
        "jti": "lt-1",
        "sid": "session-1",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not REMOVE}


def test_a_claim_the_rules_do_not_require_may_be_absent() -> None:
    header = {"alg": "ES384", "kid": KEYS["P-384"].kid, "typ": "logout+jwt"}
    result = accepted(sign(header, logout_claims()), LOGOUT_RULES)
    assert "sub" not in result.claims and "exp" not in result.claims
    # ... but a present one is still checked.
    error = failure(sign(header, logout_claims(sub="")), LOGOUT_RULES)
    assert (error.code, getattr(error, "claim", None)) == ("logout_token.invalid_claim", "sub")
    error = failure(sign(header, logout_claims(events=REMOVE)), LOGOUT_RULES)
    assert (error.code, getattr(error, "claim", None)) == ("logout_token.missing_claim", "events")


# ---- times ------------------------------------------------------------------------------------


def test_only_the_time_claims_a_kind_defines_are_read() -> None:
    # auth_time is an ID token's (and an access token's) claim; a kind whose rules leave it
    # out never reads it, so a value that would be refused elsewhere is ignored there.
    header = {"alg": "ES384", "kid": KEYS["P-384"].kid, "typ": "logout+jwt"}
    token = sign(header, logout_claims(auth_time="later"))
    assert failure(token, LOGOUT_RULES).code == "logout_token.invalid_claim"  # the default
    narrow = dataclasses.replace(LOGOUT_RULES, time_claims=frozenset({"exp", "iat", "nbf"}))
    assert accepted(token, narrow).claims["auth_time"] == "later"
    # A required time claim is read whatever the list says.
    late = sign(header, logout_claims(iat=int(NOW) + 3600))
    assert failure(late, dataclasses.replace(narrow, time_claims=frozenset())).code == (
        "logout_token.iat_future"
    )


@settings(max_examples=150, deadline=None)
@given(
    exp_offset=st.integers(-400, 400),
    leeway=st.sampled_from([0.0, 30.0, 120.0]),
)
def test_exp_is_checked_with_the_rules_leeway(exp_offset: int, leeway: float) -> None:
    rules = dataclasses.replace(AT_RULES, leeway=leeway)
    token = at_token(exp=int(NOW) + exp_offset, iat=int(NOW) - 500)
    if exp_offset + leeway > 0:  # valid strictly before exp, plus the leeway
        accepted(token, rules)
    else:
        error = failure(token, rules)
        assert (error.code, getattr(error, "claim", None)) == ("access_token.expired", "exp")


# ---- whatever the token: accepted, NEED_KEYS, or a typed error with the rules' prefix ----------


_HEADER_VALUES = st.one_of(
    st.none(), st.integers(), st.text(max_size=12), st.sampled_from([*AT_TYPES, "ES384", "JWT"])
)
_CLAIM_VALUES = st.one_of(
    st.none(),
    st.integers(int(NOW) - 10_000, int(NOW) + 10_000),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from([ISSUER, API, CLIENT_ID, SUBJECT]),
    st.lists(st.sampled_from([API, CLIENT_ID, ""]), max_size=3),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit"]), _HEADER_VALUES, max_size=3
    ),
    claims=st.dictionaries(
        st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "client_id", "jti"]),
        _CLAIM_VALUES,
        max_size=4,
    ),
    rules=st.sampled_from([AT_RULES, LOGOUT_RULES]),
)
def test_the_chain_accepts_needs_keys_or_raises_its_own_codes(
    header: dict[str, Any], claims: dict[str, Any], rules: JwtRules
) -> None:
    base_header: dict[str, Any] = {"alg": "ES384", "kid": KEYS["P-384"].kid, "typ": "at+jwt"}
    token = sign(
        {**base_header, **header}, at_claims(**claims), key=KEYS["P-384"].private, sign_alg="ES384"
    )
    outcome: object
    try:
        outcome = verify_jwt(token, rules, KEY_SET, now=NOW)
    except TokenValidationError as error:
        outcome = error
    if not isinstance(outcome, TokenValidationError):
        assert outcome is NEED_KEYS or isinstance(outcome, VerifiedJwt)
        return
    if outcome.code == "jwt.malformed":  # the token does not decode: no rule applies yet
        return
    prefix, _, check = outcome.code.partition(".")
    assert prefix == rules.code_prefix
    assert check in CHECK_CODES
    assert rules.name in str(outcome) or check == "auth_time_too_old"
    other = LOGOUT_RULES if rules is AT_RULES else AT_RULES
    assert other.name not in str(outcome)


# ---- the rules value --------------------------------------------------------------------------


def test_rules_are_frozen_and_copy_what_they_are_given() -> None:
    types = {"AT+JWT"}
    algorithms = {"ES384"}
    rules = JwtRules(
        name="access token",
        code_prefix="access_token",
        issuer=ISSUER,
        audience=API,
        algorithms=algorithms,  # type: ignore[arg-type]
        types=types,  # type: ignore[arg-type]
        typ_required=True,
    )
    types.add("jwt")
    algorithms.add("RS256")
    assert rules.types == frozenset({"at+jwt"})
    assert rules.algorithms == frozenset({"ES384"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.issuer = "https://evil.example"  # type: ignore[misc]
    assert rules.a_name == "an access token"
    assert LOGOUT_RULES.a_name == "a logout token"
