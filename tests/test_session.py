"""The session value and how it is stored: one value, read back defensively."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.session import (
    MAX_PENDING_SIGN_INS,
    MAX_STORED_BYTES,
    PENDING_SIGN_IN_TTL,
    CachedAccessToken,
    PendingSignIn,
    SessionState,
    StorageKey,
    TokenKey,
    encode_session,
    read_session,
)
from tests.jwt_factory import b64_json


def attempt(state: str, created_at: float = 0.0) -> PendingSignIn:
    return PendingSignIn(
        state=state,
        nonce="n-" + state,
        code_verifier="v" * 43,
        redirect_uri="https://a/cb",
        created_at=created_at,
    )


def id_token(sub: str = "alice") -> str:
    """An ID token's shape (the storage holds tokens verified when they arrived)."""
    claims = {"iss": "https://t/oidc", "sub": sub, "aud": "app", "exp": 2, "iat": 1}
    return f"{b64_json({'alg': 'ES384'})}.{b64_json(claims)}.c2ln"


IDT = id_token()


def test_pending_attempts_are_bounded_and_expire() -> None:
    session = SessionState()
    for i in range(MAX_PENDING_SIGN_INS + 3):
        session = session.with_pending(attempt(str(i), created_at=i), now=i)
    assert session.pending[0].state == "3"
    assert len(session.pending) == MAX_PENDING_SIGN_INS
    later = session.with_pending(
        attempt("late", PENDING_SIGN_IN_TTL + 20), PENDING_SIGN_IN_TTL + 20
    )
    assert [p.state for p in later.pending] == ["late"]
    assert [p.state for p in later.without_pending("late").pending] == []


def test_signed_in_and_cleared() -> None:
    session = SessionState().with_pending(attempt("tab2"), 0)
    token = CachedAccessToken(token="at", expires_at=100)
    session = session.signed_in(id_token=IDT, refresh_token="r", access_token=(TokenKey(), token))
    assert session.is_authenticated and session.access_tokens == {TokenKey(): token}
    cleared = session.cleared()
    assert not cleared.is_authenticated
    assert cleared.refresh_token is None and not cleared.access_tokens
    assert cleared.pending == session.pending  # other tabs' attempts survive a sign-out
    assert session.without_access_tokens().access_tokens == {}
    assert session.without_access_tokens([TokenKey("x")]).access_tokens == {TokenKey(): token}


def test_repr_hides_secrets() -> None:
    session = SessionState(pending=(attempt("STATEVALUE"),), id_token=IDT, refresh_token="RT")
    session = session.with_access_token(
        TokenKey("https://api"), CachedAccessToken(token="ATOKEN", expires_at=1)
    )
    text = repr(session)
    for secret in ("STATEVALUE", IDT, "RT", "ATOKEN", "v" * 43, "n-STATE"):
        assert secret not in text


# ---- freshness -------------------------------------------------------------------------------


def test_freshness_uses_margin() -> None:
    token = CachedAccessToken(token="t", expires_at=100)  # an entry of an older version
    assert token.is_fresh(69, 30) and not token.is_fresh(70, 30)


def test_the_margin_scales_with_a_short_lifetime() -> None:
    """A token issued for less than the margin is used for half its life, not refreshed on
    every call (a refresh storm)."""
    short = CachedAccessToken(token="t", expires_at=1020, obtained_at=1000)  # 20 s
    assert short.is_fresh(1009.9, 30) and not short.is_fresh(1010, 30)
    one_second = CachedAccessToken(token="t", expires_at=1001, obtained_at=1000)
    assert one_second.is_fresh(1000.4, 30) and not one_second.is_fresh(1000.5, 30)
    hour = CachedAccessToken(token="t", expires_at=4600, obtained_at=1000)
    assert hour.is_fresh(4569, 30) and not hour.is_fresh(4570, 30)  # the margin as set


def test_a_clock_that_went_back_never_extends_a_lifetime() -> None:
    token = CachedAccessToken(token="t", expires_at=4600, obtained_at=1000)
    assert not token.is_fresh(999, 30)  # before it was obtained: age unknown, not fresh


@given(
    obtained=st.floats(0, 1e9),
    lifetime=st.floats(0, 1e6),
    margin=st.floats(0, 3600),
    now=st.floats(-1e9, 2e9),
)
def test_fresh_only_inside_its_own_lifetime(
    obtained: float, lifetime: float, margin: float, now: float
) -> None:
    token = CachedAccessToken(token="t", expires_at=obtained + lifetime, obtained_at=obtained)
    if token.is_fresh(now, margin):
        assert obtained <= now < obtained + lifetime


# ---- storage ---------------------------------------------------------------------------------


def test_a_session_is_one_stored_value() -> None:
    session = SessionState(id_token=IDT, refresh_token="rt").with_access_token(
        TokenKey("https://api"), CachedAccessToken(token="at", expires_at=5, obtained_at=1)
    )
    writes = session.writes()
    assert list(writes) == [StorageKey.SESSION]
    assert SessionState.from_values(writes) == session
    assert SessionState().writes() == {StorageKey.SESSION: None}  # nothing left: deleted


def test_token_key_round_trip_and_rejects_garbage() -> None:
    key = TokenKey("https://api", "org", ("a", "b"))
    assert TokenKey.decode(key.encode()) == key
    assert TokenKey.decode(TokenKey().encode()) == TokenKey()
    for bad in ("[1,null,null]", "[null,2,null]", '[null,null,"x"]', "[null,null,[1]]"):
        with pytest.raises(ValueError):
            TokenKey.decode(bad)


def stored_value(**fields: object) -> dict[str, str]:
    return {StorageKey.SESSION: json.dumps({"v": 1, **fields})}


def test_corrupt_entries_count_as_absent() -> None:
    values = stored_value(
        idToken=IDT,
        refreshToken="rt",
        accessTokens={"not json key": {}, "[null,null,null]": {"token": "t", "expires_at": 5}},
        pending=[{"state": 1}, "x"],
    )
    session = SessionState.from_values(values)
    assert session.id_token == IDT and session.refresh_token == "rt"
    assert session.access_tokens == {TokenKey(): CachedAccessToken(token="t", expires_at=5)}
    assert session.pending == ()
    for broken in ("{{", "[]", "null", '"text"', "1e999999"):
        assert SessionState.from_values({StorageKey.SESSION: broken}) == SessionState()


def test_an_id_token_that_does_not_decode_counts_as_absent() -> None:
    """``isAuthenticated()`` and ``getIdTokenClaims()`` must agree: a stored ID token that
    does not decode is no ID token (the refresh token stays: it recovers the session)."""
    no_sub = f"{b64_json({'alg': 'ES384'})}.{b64_json({'iss': 'x', 'aud': 'a'})}.c2ln"
    for bad in ("not-a-jwt", "a.b.c", IDT[:-10] + "!!!!", no_sub, "é.x.y"):
        session = SessionState.from_values(stored_value(idToken=bad, refreshToken="rt"))
        assert session.id_token is None and session.refresh_token == "rt"
    assert SessionState.from_values(stored_value(refreshToken="bad\ntoken")).refresh_token is None


@pytest.mark.parametrize(
    "hostile",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"idToken":' * 50_000 + "1" + "}" * 50_000,
        json.dumps({"v": 1, "accessTokens": {"x": {"token": "t", "expires_at": "NaN"}}}),
        '{"v": 1, "refreshToken": NaN}',
        '{"v": 1, "refreshToken": Infinity}',
        "x" * (MAX_STORED_BYTES + 1),
        json.dumps({"v": 1, "refreshToken": "r" * MAX_STORED_BYTES}),
        json.dumps({"v": 1, "accessTokens": {"[" * 50_000 + "]" * 50_000: {"token": "t"}}}),
        '{"v": 1, "refreshToken": "a", "refreshToken": "b"}',
    ],
)
def test_hostile_stored_values_are_bounded_and_absent(hostile: str) -> None:
    """Deep nesting, non-standard numbers, oversized values: read as no session, quickly,
    never as a RecursionError on every call."""
    session = SessionState.from_values({StorageKey.SESSION: hostile})
    assert session.refresh_token is None or len(session.refresh_token) < MAX_STORED_BYTES
    assert not session.is_authenticated


def test_too_many_entries_are_cut() -> None:
    tokens = {
        TokenKey(f"https://api/{n}").encode(): {"token": "t", "expires_at": 5} for n in range(500)
    }
    pending = [attempt(str(n)).model_dump(mode="json") for n in range(50)]
    session = SessionState.from_values(stored_value(accessTokens=tokens, pending=pending))
    assert len(session.access_tokens) == 64 and len(session.pending) == MAX_PENDING_SIGN_INS


def test_non_string_storage_values_count_as_absent() -> None:
    broken = {StorageKey.SESSION: ["not", "a", "string"], StorageKey.REFRESH_TOKEN: "rt"}
    session = SessionState.from_values(broken)
    assert session.refresh_token == "rt"  # the legacy entry is read instead


def test_decoded_sessions_are_shared_and_read_only() -> None:
    values = (
        SessionState()
        .with_access_token(TokenKey("r"), CachedAccessToken(token="t", expires_at=1))
        .writes()
    )
    first, second = SessionState.from_values(values), SessionState.from_values(values)
    assert first is second  # memoised by the stored string
    with pytest.raises(TypeError):  # the shared token map is read-only
        first.access_tokens[TokenKey("x")] = CachedAccessToken(token="u", expires_at=2)  # type: ignore[index]


# ---- sessions of the official SDK ---------------------------------------------------------------


def test_an_official_sdk_session_is_read_and_replaced_by_one_value() -> None:
    legacy = {
        StorageKey.ID_TOKEN: IDT,
        StorageKey.REFRESH_TOKEN: "rt",
        StorageKey.ACCESS_TOKENS: json.dumps(
            {TokenKey("https://api").encode(): {"token": "at", "expires_at": 9}}
        ),
        StorageKey.SIGN_IN_SESSIONS: attempt("s").model_dump_json(),  # one object, as it was
    }
    session = SessionState.from_values(legacy)
    assert session.id_token == IDT and session.refresh_token == "rt"
    assert session.access_tokens[TokenKey("https://api")].token == "at"
    assert session.pending == (attempt("s"),)
    writes = session.with_refresh_token("rt2").writes()
    assert set(writes) == set(StorageKey.ALL)
    assert all(writes[key] is None for key in StorageKey.LEGACY)  # the old entries go
    assert SessionState.from_values(writes).refresh_token == "rt2"


def test_reads_are_few() -> None:
    def keys_read(values: Mapping[str, str | None]) -> list[str]:
        reader = read_session()
        asked = [next(reader)]
        try:
            while True:
                asked.append(reader.send(values.get(asked[-1])))
        except StopIteration:
            return asked[:-1] if asked[-1] is None else asked

    assert keys_read(SessionState(refresh_token="r").writes()) == [StorageKey.SESSION]
    assert len(keys_read({})) == 3  # one value, then the two keys that tell a legacy session
    assert len(keys_read({StorageKey.REFRESH_TOKEN: "r"})) == 5


# ---- round trips -------------------------------------------------------------------------------

text = st.text(min_size=1, max_size=30)
token_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
sessions = st.builds(
    SessionState,
    pending=st.lists(
        st.builds(
            PendingSignIn,
            state=text,
            nonce=text,
            code_verifier=text,
            redirect_uri=text,
            created_at=st.floats(0, 2e9),
        ),
        max_size=3,
    ).map(tuple),
    id_token=st.none() | st.sampled_from([IDT, id_token("bob")]),
    refresh_token=st.none() | token_text,
    access_tokens=st.dictionaries(
        st.builds(
            TokenKey,
            st.none() | text,
            st.none() | text,
            st.none() | st.lists(text, min_size=1, max_size=3).map(tuple),
        ),
        st.builds(
            CachedAccessToken,
            token=token_text,
            expires_at=st.floats(0, 2e9),
            scope=st.none() | text,
            obtained_at=st.none() | st.floats(0, 2e9),
        ),
        max_size=3,
    ),
)


@settings(max_examples=200)
@given(sessions)
def test_storage_round_trip(session: SessionState) -> None:
    store = {k: v for k, v in session.writes().items() if v is not None}
    assert SessionState.load(store.get) == session
    assert (encode_session(session) is None) == session.is_empty


@given(st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_stored_text_reads_as_a_session(raw: str) -> None:
    assert isinstance(SessionState.from_values({StorageKey.SESSION: raw}), SessionState)
