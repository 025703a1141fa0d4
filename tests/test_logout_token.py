"""Logout token verification (Back-Channel Logout 1.0 section 2.6): every MUST on its own, then
properties over single mutations, time, and arbitrary input."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from joserfc.jwk import OctKey

from logto_core.errors import LogtoError, TokenValidationError
from logto_core.jose.chain import UnknownKeyError
from logto_core.jose.keys import NEED_KEYS, KeySet
from logto_core.protocol.logout_token import (
    BACKCHANNEL_LOGOUT_EVENT,
    MAX_AGE,
    LogoutToken,
    check_logout_token,
    verify_logout_token,
)
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
    b64_json,
    key_set,
    make_token,
    sign,
)

KEY_SET = key_set()
SID = "session-1"
JTI = "jti-0123456789"
EVENTS: dict[str, Any] = {BACKCHANNEL_LOGOUT_EVENT: {}}


def logout_claims(now: float = NOW) -> dict[str, Any]:
    """What Logto puts in a logout token (no exp)."""
    return {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": int(now),
        "jti": JTI,
        "sub": SUBJECT,
        "sid": SID,
        "events": EVENTS,
    }


def _apply(base: Mapping[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    result = dict(base)
    for name, value in (changes or {}).items():
        if value is REMOVE:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def logout_token(
    alg: str = "ES384",
    *,
    claims: Mapping[str, Any] | None = None,
    header: Mapping[str, Any] | None = None,
    now: float = NOW,
) -> str:
    key = KEYS[KEY_FOR_ALG[alg]]
    base_header = {"alg": alg, "kid": key.kid, "typ": "logout+jwt"}
    return sign(
        _apply(base_header, header),
        _apply(logout_claims(now), claims),
        key=key.private,
        sign_alg=alg,
    )


def verify(
    token: str,
    *,
    keys: KeySet = KEY_SET,
    now: float = NOW,
    algorithms: Collection[str] = ALL_ALGORITHMS,
    max_age: float = MAX_AGE,
) -> LogoutToken:
    return verify_logout_token(
        token,
        keys=keys,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        now=now,
        clock_tolerance=TOLERANCE,
        algorithms=algorithms,
        max_age=max_age,
    )


def rejected(token: str, code: str, claim: str | None = None, **kwargs: Any) -> LogtoError:
    with pytest.raises(LogtoError) as info:
        verify(token, **kwargs)
    error = info.value
    assert error.code == code, repr(error)
    if isinstance(error, TokenValidationError):
        assert error.claim == claim
    # Never the token, its signature, or what it names in what the error shows.
    for text in (str(error), repr(error)):
        assert token not in text
        assert token.rsplit(".", 1)[-1] not in text or not token.rsplit(".", 1)[-1]
        for secret in (JTI, SID, SUBJECT):
            assert secret not in text
    return error


# ---- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALL_ALGORITHMS)
def test_a_logto_logout_token_is_accepted_for_every_algorithm(alg: str) -> None:
    logout = verify(logout_token(alg))
    assert (logout.iss, logout.sub, logout.sid, logout.jti) == (ISSUER, SUBJECT, SID, JTI)
    assert logout.iat == NOW and logout.exp is None
    # Without exp, it is acceptable (and remembered) until iat + the window + the tolerance.
    assert logout.until == NOW + MAX_AGE + TOLERANCE


def test_exp_shortens_the_time_a_token_is_remembered() -> None:
    logout = verify(logout_token(claims={"exp": NOW + 30}))
    assert logout.exp == NOW + 30
    assert logout.until == NOW + 30 + TOLERANCE
    assert verify(logout_token(claims={"exp": NOW + 3600})).until == NOW + MAX_AGE + TOLERANCE


def test_the_jti_is_kept_out_of_repr() -> None:
    logout = verify(logout_token())
    assert JTI not in repr(logout)
    assert len(logout.replay_key) == 64


def test_the_replay_key_is_the_issuer_and_the_jti() -> None:
    one = verify(logout_token()).replay_key
    assert verify(logout_token(claims={"sid": "other"})).replay_key == one
    assert verify(logout_token(claims={"jti": "other"})).replay_key != one
    other_issuer = LogoutToken(ISSUER + "x", SUBJECT, SID, NOW, None, NOW + 1, jti=JTI)
    assert other_issuer.replay_key != one


@pytest.mark.parametrize("claims", [{"sid": REMOVE}, {"sub": REMOVE}, {"sub": None}])
def test_sid_or_sub_alone_is_enough(claims: dict[str, Any]) -> None:
    logout = verify(logout_token(claims=claims))
    assert (logout.sid is None) != (logout.sub is None)


def test_claims_not_understood_are_ignored() -> None:
    # Section 2.4: any claim not understood MUST be ignored; auth_time means nothing here.
    extra = {"auth_time": "yesterday", "custom": {"a": [1]}, "acr": 3, "roles": None}
    assert verify(logout_token(claims=extra)).sid == SID
    assert verify(logout_token(claims={"auth_time": NOW + 10_000})).sid == SID


def test_an_event_with_members_and_other_events_are_accepted() -> None:
    events = {BACKCHANNEL_LOGOUT_EVENT: {"reason": "admin"}, "urn:other": {"x": 1}}
    assert verify(logout_token(claims={"events": events})).sid == SID


@pytest.mark.parametrize("typ", ["logout+jwt", "LOGOUT+JWT", "application/logout+jwt"])
def test_logout_types_accepted(typ: str) -> None:
    assert verify(logout_token(header={"typ": typ})).sid == SID


# ---- the MUSTs of section 2.6, one by one -----------------------------------------------------


@pytest.mark.parametrize("typ", [REMOVE, None, "JWT", "application/jwt", "at+jwt", "logout", 5])
def test_anything_but_the_logout_type_is_refused(typ: Any) -> None:
    rejected(logout_token(header={"typ": typ}), "logout_token.typ_not_allowed", "typ")


def test_an_id_token_is_not_a_logout_token() -> None:
    # Everything a logout token needs, but signed as an ID token is (no typ): refused first.
    token = make_token(claims={"jti": JTI, "events": EVENTS, "nonce": REMOVE})
    rejected(token, "logout_token.typ_not_allowed", "typ")


def test_alg_none_refused() -> None:
    token = sign({"alg": "none", "typ": "logout+jwt"}, logout_claims())
    rejected(token, "logout_token.alg_not_allowed", "alg", algorithms=[*ALL_ALGORITHMS, "none"])


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_the_public_key_refused(alg: str) -> None:
    # The classic confusion: the published public key (its JWK text, as a verifier that
    # trusts the header would load it) used as an HMAC secret; even with HMAC "allowed".
    key = KEYS["P-384"]
    public = json.dumps(key.public_jwk(), sort_keys=True).encode()
    token = sign(
        {"alg": alg, "kid": key.kid, "typ": "logout+jwt"},
        logout_claims(),
        key=OctKey.import_key(public),
        sign_alg=alg,
    )
    rejected(token, "logout_token.alg_not_allowed", "alg", algorithms=[*ALL_ALGORITHMS, alg])


def test_alg_outside_the_allow_list_refused() -> None:
    rejected(logout_token("RS256"), "logout_token.alg_not_allowed", "alg", algorithms=["ES384"])


def test_a_bad_signature_is_refused() -> None:
    # A genuine token's signature over other claims (another user to sign out).
    head, _, signature = logout_token().split(".")
    forged = _apply(logout_claims(), {"sub": "someone-else", "sid": REMOVE})
    rejected(f"{head}.{b64_json(forged)}.{signature}", "logout_token.bad_signature")


def test_an_unknown_kid_needs_keys_then_is_an_unknown_key() -> None:
    token = logout_token(header={"kid": "rotated-away"})
    for keys in (KEY_SET, None):  # the set lacks the key, or there is no set yet
        result = check_logout_token(
            token,
            keys=keys,
            issuer=ISSUER,
            client_id=CLIENT_ID,
            now=NOW,
            clock_tolerance=TOLERANCE,
            algorithms=ALL_ALGORITHMS,
        )
        assert result is NEED_KEYS
    error = rejected(token, "logout_token.kid_unknown")
    assert isinstance(error, UnknownKeyError)


def test_crit_refused() -> None:
    rejected(logout_token(header={"crit": ["exp"]}), "logout_token.crit_unsupported", "crit")


@pytest.mark.parametrize(
    ("claims", "code", "claim"),
    [
        ({"iss": "https://evil.example/oidc"}, "logout_token.iss_mismatch", "iss"),
        ({"iss": REMOVE}, "logout_token.missing_claim", "iss"),
        ({"aud": "another-app"}, "logout_token.aud_mismatch", "aud"),
        ({"aud": REMOVE}, "logout_token.missing_claim", "aud"),
        ({"aud": [CLIENT_ID, "api"]}, "logout_token.missing_claim", "azp"),
        ({"aud": [CLIENT_ID, "api"], "azp": CLIENT_ID}, "logout_token.aud_untrusted", "aud"),
        ({"azp": "another-app"}, "logout_token.azp_mismatch", "azp"),
        ({"iat": REMOVE}, "logout_token.missing_claim", "iat"),
        ({"iat": "now"}, "logout_token.invalid_claim", "iat"),
        ({"iat": NOW + TOLERANCE + 1}, "logout_token.iat_future", "iat"),
        ({"iat": NOW - MAX_AGE - TOLERANCE - 1}, "logout_token.too_old", "iat"),
        ({"exp": NOW - TOLERANCE}, "logout_token.expired", "exp"),
        ({"exp": True}, "logout_token.invalid_claim", "exp"),
        ({"nbf": NOW + TOLERANCE + 1}, "logout_token.not_yet_valid", "nbf"),
        ({"jti": REMOVE}, "logout_token.missing_claim", "jti"),
        ({"jti": None}, "logout_token.missing_claim", "jti"),
        ({"jti": ""}, "logout_token.invalid_claim", "jti"),
        ({"jti": 42}, "logout_token.invalid_claim", "jti"),
        ({"events": REMOVE}, "logout_token.missing_claim", "events"),
        ({"events": {}}, "logout_token.events_invalid", "events"),
        ({"events": [BACKCHANNEL_LOGOUT_EVENT]}, "logout_token.events_invalid", "events"),
        ({"events": BACKCHANNEL_LOGOUT_EVENT}, "logout_token.events_invalid", "events"),
        ({"events": {BACKCHANNEL_LOGOUT_EVENT: "yes"}}, "logout_token.events_invalid", "events"),
        ({"events": {BACKCHANNEL_LOGOUT_EVENT: None}}, "logout_token.events_invalid", "events"),
        ({"events": {"urn:other": {}}}, "logout_token.events_invalid", "events"),
        ({"sid": REMOVE, "sub": REMOVE}, "logout_token.subject_missing", "sid"),
        ({"sid": None, "sub": None}, "logout_token.subject_missing", "sid"),
        ({"sid": ""}, "logout_token.invalid_claim", "sid"),
        ({"sid": 7}, "logout_token.invalid_claim", "sid"),
        ({"sub": ""}, "logout_token.invalid_claim", "sub"),
        ({"sub": ["u"]}, "logout_token.invalid_claim", "sub"),
        ({"nonce": "n-0S6"}, "logout_token.nonce_present", "nonce"),
        ({"nonce": None}, "logout_token.nonce_present", "nonce"),
        ({"nonce": ""}, "logout_token.nonce_present", "nonce"),
    ],
)
def test_each_check_refuses_its_token(claims: dict[str, Any], code: str, claim: str) -> None:
    rejected(logout_token(claims=claims), code, claim)


def test_the_time_bounds_are_exact() -> None:
    # iat in the future within the tolerance: accepted; one second more: refused.
    assert verify(logout_token(claims={"iat": NOW + TOLERANCE})).sid == SID
    # The age window ends at iat + MAX_AGE + TOLERANCE, inclusive.
    assert verify(logout_token(), now=NOW + MAX_AGE + TOLERANCE).sid == SID
    rejected(logout_token(), "logout_token.too_old", "iat", now=NOW + MAX_AGE + TOLERANCE + 0.5)
    # exp: valid strictly before exp + tolerance.
    assert verify(logout_token(claims={"exp": NOW + 10}), now=NOW + 10 + TOLERANCE - 0.5)
    rejected(
        logout_token(claims={"exp": NOW + 10}),
        "logout_token.expired",
        "exp",
        now=NOW + 10 + TOLERANCE,
    )


def test_a_shorter_window_is_honoured() -> None:
    rejected(logout_token(), "logout_token.too_old", "iat", now=NOW + TOLERANCE + 11, max_age=10)


# ---- properties --------------------------------------------------------------------------------

_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
_TIMES = st.integers(int(NOW) - 10_000, int(NOW) + 10_000)
_CLAIM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "iss": st.sampled_from([ISSUER, ISSUER + "/", "https://evil.example/oidc", ""]),
    "aud": st.sampled_from(
        ["other", CLIENT_ID, [CLIENT_ID], [CLIENT_ID, "api"], ["api"], [], [""], [CLIENT_ID, 3]]
    ),
    "azp": st.sampled_from([CLIENT_ID, "api", ""]),
    "iat": _TIMES,
    "exp": _TIMES,
    "nbf": _TIMES,
    "jti": st.sampled_from(["another-jti", "", "x" * 300]),
    "sub": st.sampled_from(["other-user", ""]),
    "sid": st.sampled_from(["other-session", ""]),
    "events": st.sampled_from(
        [EVENTS, {}, {BACKCHANNEL_LOGOUT_EVENT: {"a": 1}}, {BACKCHANNEL_LOGOUT_EVENT: 1}]
    ),
    "nonce": st.sampled_from(["n", ""]),
    "auth_time": _ANY_JSON,
}
_REQUIRED = {"iss", "aud", "iat", "jti", "events"}


def _expected(name: str, value: Any) -> tuple[str, str] | None:
    """The oracle: what a single changed claim must produce (``None``: accepted)."""
    if name == "nonce":
        return None if value is REMOVE else ("logout_token.nonce_present", "nonce")
    if name == "auth_time":
        return None  # not a logout token's claim: ignored
    if value is REMOVE or value is None:
        return ("logout_token.missing_claim", name) if name in _REQUIRED else None
    if name in {"exp", "iat", "nbf"}:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return ("logout_token.invalid_claim", name)
        if name == "exp" and value + TOLERANCE <= NOW:
            return ("logout_token.expired", "exp")
        if name == "iat" and value > NOW + TOLERANCE:
            return ("logout_token.iat_future", "iat")
        if name == "nbf" and value > NOW + TOLERANCE:
            return ("logout_token.not_yet_valid", "nbf")
        if name == "iat" and value + MAX_AGE + TOLERANCE < NOW:
            return ("logout_token.too_old", "iat")
        return None
    if name == "azp":
        return None if value == CLIENT_ID else ("logout_token.azp_mismatch", "azp")
    if name == "aud":
        values = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) and v for v in values):
            return ("logout_token.invalid_claim", "aud")
        if CLIENT_ID not in values:
            return ("logout_token.aud_mismatch", "aud")
        return ("logout_token.missing_claim", "azp") if len(set(values)) > 1 else None
    if name == "events":
        ok = isinstance(value, dict) and isinstance(value.get(BACKCHANNEL_LOGOUT_EVENT), dict)
        return None if ok else ("logout_token.events_invalid", "events")
    if not isinstance(value, str) or not value:
        return ("logout_token.invalid_claim", name)
    if name == "iss" and value != ISSUER:
        return ("logout_token.iss_mismatch", "iss")
    return None  # another jti, sub or sid: another, valid, logout


@st.composite
def _mutation(draw: st.DrawFn) -> tuple[str, str, Any]:
    alg = draw(st.sampled_from(ALL_ALGORITHMS))
    name = draw(st.sampled_from(sorted(_CLAIM_VALUES)))
    value = draw(st.one_of(st.just(REMOVE), _CLAIM_VALUES[name], _ANY_JSON))
    return alg, name, value


@settings(max_examples=300, deadline=None)
@given(_mutation())
def test_every_single_claim_mutation_gives_its_code(mutation: tuple[str, str, Any]) -> None:
    alg, name, value = mutation
    expected = _expected(name, value)
    event(f"{name}: {expected[0] if expected else 'accepted'}")
    token = logout_token(alg, claims={name: value})
    if expected is None:
        logout = verify(token)
        assert logout.until > NOW  # an accepted token is always remembered for a while
        return
    rejected(token, *expected)


@settings(max_examples=200, deadline=None)
@given(
    iat=st.floats(NOW - 1000, NOW + 1000),
    exp=st.none() | st.floats(NOW - 1000, NOW + 1000),
    now=st.floats(NOW - 1000, NOW + 1000),
)
def test_time_acceptance_and_the_replay_horizon(iat: float, exp: float | None, now: float) -> None:
    token = logout_token(claims={"iat": iat, "exp": REMOVE if exp is None else exp})
    accepted = iat <= now + TOLERANCE and now <= iat + MAX_AGE + TOLERANCE
    accepted = accepted and (exp is None or now < exp + TOLERANCE)
    logout = _outcome(token, now=now)
    if isinstance(logout, LogtoError):
        assert isinstance(logout, TokenValidationError) and not accepted, logout.code
        return
    assert accepted
    # Remembered exactly as long as it would be accepted again: a replay after `until` is
    # refused by the time checks, so the replay cache can forget it then.
    assert now < logout.until or now == iat + MAX_AGE + TOLERANCE
    later = logout.until + 0.5
    with pytest.raises(TokenValidationError):
        verify(token, now=later)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _ANY_JSON, max_size=8))
def test_arbitrary_claims_are_accepted_or_refused_with_the_sdk_s_error(
    claims: dict[str, Any],
) -> None:
    key = KEYS["P-384"]
    token = sign({"alg": "ES384", "kid": key.kid, "typ": "logout+jwt"}, claims, key=key.private)
    outcome = _outcome(token)
    if isinstance(outcome, LogtoError):
        assert outcome.code.startswith("logout_token."), outcome.code
    else:  # only a claim set with everything a logout token needs gets through
        assert claims.get("iss") == ISSUER and "nonce" not in claims


def _outcome(token: str, **kwargs: Any) -> LogoutToken | LogtoError:
    try:
        return verify(token, **kwargs)
    except LogtoError as error:
        return error


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_strings_raise_only_sdk_errors(token: str) -> None:
    with pytest.raises(LogtoError):
        verify(token)
