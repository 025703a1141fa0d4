from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.session import (
    MAX_PENDING_SIGN_INS,
    PENDING_SIGN_IN_TTL,
    CachedAccessToken,
    PendingSignIn,
    SessionState,
    StorageKey,
    TokenKey,
)


def attempt(state: str, created_at: float = 0.0) -> PendingSignIn:
    return PendingSignIn(
        state=state,
        nonce="n-" + state,
        code_verifier="v" * 43,
        redirect_uri="https://a/cb",
        created_at=created_at,
    )


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
    session = session.signed_in(id_token="i", refresh_token="r", access_token=(TokenKey(), token))
    assert session.is_authenticated and session.access_tokens == {TokenKey(): token}
    cleared = session.cleared()
    assert not cleared.is_authenticated
    assert cleared.refresh_token is None and not cleared.access_tokens
    assert cleared.pending == session.pending  # other tabs' attempts survive a sign-out


def test_repr_hides_secrets() -> None:
    session = SessionState(pending=(attempt("STATEVALUE"),), id_token="IDTOKEN", refresh_token="RT")
    session = session.with_access_token(
        TokenKey("https://api"), CachedAccessToken(token="ATOKEN", expires_at=1)
    )
    text = repr(session)
    for secret in ("STATEVALUE", "IDTOKEN", "RT", "ATOKEN", "v" * 43, "n-STATE"):
        assert secret not in text


def test_freshness_uses_margin() -> None:
    token = CachedAccessToken(token="t", expires_at=100)
    assert token.is_fresh(69, 30) and not token.is_fresh(70, 30)


def test_token_key_round_trip_and_rejects_garbage() -> None:
    key = TokenKey("https://api", "org", ("a", "b"))
    assert TokenKey.decode(key.encode()) == key
    assert TokenKey.decode(TokenKey().encode()) == TokenKey()
    for bad in ("[1,null,null]", "[null,2,null]", '[null,null,"x"]', "[null,null,[1]]"):
        try:
            TokenKey.decode(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_corrupt_storage_entries_count_as_absent() -> None:
    values = {
        StorageKey.ID_TOKEN: "idt",
        StorageKey.REFRESH_TOKEN: "rt",
        StorageKey.ACCESS_TOKENS: '{"not json key": {}, "[null,null,null]": {"token": "t", "expires_at": 5}}',
        StorageKey.SIGN_IN_SESSIONS: '[{"state": 1}, "x"]',
    }
    session = SessionState.from_values(values)
    assert session.id_token == "idt" and session.refresh_token == "rt"
    assert session.access_tokens == {TokenKey(): CachedAccessToken(token="t", expires_at=5)}
    assert session.pending == ()
    assert (
        SessionState.from_values(
            {StorageKey.SIGN_IN_SESSIONS: "{{", StorageKey.ACCESS_TOKENS: "[]"}
        )
        == SessionState()
    )


def test_single_legacy_attempt_object_is_read() -> None:
    legacy = attempt("s").model_dump_json()
    assert SessionState.from_values({StorageKey.SIGN_IN_SESSIONS: legacy}).pending == (
        attempt("s"),
    )


def test_changes_write_only_what_changed() -> None:
    before = SessionState(id_token="i", refresh_token="r")
    after = before.with_refresh_token("r2")
    assert after.changes(before) == {StorageKey.REFRESH_TOKEN: "r2"}
    assert before.changes(before) == {}
    cleared = after.cleared().changes(after)
    assert cleared == {StorageKey.ID_TOKEN: None, StorageKey.REFRESH_TOKEN: None}
    with_token = after.with_access_token(TokenKey("r"), CachedAccessToken(token="t", expires_at=1))
    assert set(with_token.changes(after)) == {StorageKey.ACCESS_TOKENS}
    with_pending = after.with_pending(attempt("p"), 0)
    assert set(with_pending.changes(after)) == {StorageKey.SIGN_IN_SESSIONS}
    assert after.with_id_token("i2").changes(after) == {StorageKey.ID_TOKEN: "i2"}


text = st.text(min_size=1, max_size=30)
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
    id_token=st.none() | text,
    refresh_token=st.none() | text,
    access_tokens=st.dictionaries(
        st.builds(
            TokenKey,
            st.none() | text,
            st.none() | text,
            st.none() | st.lists(text, min_size=1, max_size=3).map(tuple),
        ),
        st.builds(
            CachedAccessToken, token=text, expires_at=st.floats(0, 2e9), scope=st.none() | text
        ),
        max_size=3,
    ),
)


@settings(max_examples=200)
@given(sessions)
def test_storage_round_trip(session: SessionState) -> None:
    store = {k: v for k, v in session.dump().items() if v is not None}
    assert SessionState.load(store.get) == session


@settings(max_examples=200)
@given(sessions, sessions)
def test_changes_applied_to_before_give_after(before: SessionState, after: SessionState) -> None:
    store = {k: v for k, v in before.dump().items() if v is not None}
    for key, value in after.changes(before).items():
        if value is None:
            store.pop(key, None)
        else:
            store[key] = value
    assert SessionState.load(store.get) == after


def test_non_string_storage_values_count_as_absent() -> None:
    broken = {StorageKey.ID_TOKEN: ["not", "a", "string"], StorageKey.REFRESH_TOKEN: "rt"}
    session = SessionState.from_values(broken)  # type: ignore[arg-type]
    assert session.id_token is None and session.refresh_token == "rt"


def test_decoded_sessions_are_shared_and_read_only() -> None:
    values = (
        SessionState()
        .with_access_token(TokenKey("r"), CachedAccessToken(token="t", expires_at=1))
        .dump()
    )
    first, second = SessionState.from_values(values), SessionState.from_values(values)
    assert first is second  # memoised by the stored strings
    with pytest.raises(TypeError):  # the shared token map is read-only
        first.access_tokens[TokenKey("x")] = CachedAccessToken(token="u", expires_at=2)  # type: ignore[index]
