"""logto_core/grants.py: the access-token cache as its own value, and the user's grant."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logto_core.grants import DEFAULT_LIMIT, EMPTY_CACHE, TokenCache, UserGrant
from logto_core.session import (
    MAX_CACHED_TOKENS,
    CachedAccessToken,
    SessionState,
    TokenKey,
    decode_session,
    encode_session,
)

from .test_session import IDT

keys = st.builds(
    TokenKey.of,
    st.none() | st.sampled_from(["https://api.a", "https://api.b", "https://api.c"]),
    st.none() | st.sampled_from(["org1", "org2"]),
    st.none() | st.lists(st.sampled_from(["read", "write", "admin"]), max_size=3),
)
times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
entries = st.builds(
    lambda token, obtained, life: CachedAccessToken(
        token=token, expires_at=obtained + life, obtained_at=obtained
    ),
    st.text("abc", min_size=1, max_size=4),
    times,
    st.floats(min_value=0, max_value=1e5, allow_nan=False),
)
writes = st.lists(st.tuples(keys, entries), max_size=40)
limits = st.integers(min_value=1, max_value=8)


def entry(expires_at: float, token: str = "t") -> CachedAccessToken:
    return CachedAccessToken(token=token, expires_at=expires_at, obtained_at=0.0)


@given(writes, limits)
def test_the_cache_is_bounded_and_keeps_the_entry_just_written(
    items: list[tuple[TokenKey, CachedAccessToken]], limit: int
) -> None:
    cache = TokenCache(limit=limit)
    for key, value in items:
        before = cache
        cache = cache.with_entry(key, value)
        assert len(cache) <= limit
        assert cache[key] is value
        # Whatever was dropped was no further from expiry than anything kept besides the new
        # entry.
        dropped = [v for k, v in before.items() if k not in cache and k != key]
        kept = [v for k, v in cache.items() if k != key]
        if dropped and kept:
            assert max(d.expires_at for d in dropped) <= min(k.expires_at for k in kept)


def test_the_entries_closest_to_expiry_go_first() -> None:
    cache = TokenCache(limit=2)
    cache = cache.with_entry(TokenKey("a"), entry(10)).with_entry(TokenKey("b"), entry(30))
    cache = cache.with_entry(TokenKey("c"), entry(5))  # the newest stays, even if soonest
    assert set(cache) == {TokenKey("b"), TokenKey("c")}
    cache = cache.with_entry(TokenKey("d"), entry(20))
    assert set(cache) == {TokenKey("b"), TokenKey("d")}


def test_a_cache_built_from_too_many_entries_is_bounded() -> None:
    many = {TokenKey(str(i)): entry(float(i)) for i in range(10)}
    cache = TokenCache(many, limit=3)
    assert set(cache) == {TokenKey("7"), TokenKey("8"), TokenKey("9")}
    with pytest.raises(ValueError):
        TokenCache(limit=0)


@given(writes, keys, times, st.floats(min_value=0, max_value=1e5, allow_nan=False))
def test_fresh_is_the_entrys_own_freshness(
    items: list[tuple[TokenKey, CachedAccessToken]], key: TokenKey, now: float, margin: float
) -> None:
    cache = EMPTY_CACHE
    for k, v in items:
        cache = cache.with_entry(k, v)
    found = cache.fresh(key, now, margin)
    stored = cache.get(key)
    if stored is not None and stored.is_fresh(now, margin):
        assert found is stored
    else:
        assert found is None


@given(writes, st.lists(keys, max_size=5) | st.none())
def test_without_removes_exactly_those_keys(
    items: list[tuple[TokenKey, CachedAccessToken]], gone: list[TokenKey] | None
) -> None:
    cache = EMPTY_CACHE
    for k, v in items:
        cache = cache.with_entry(k, v)
    after = cache.without(gone)
    if gone is None:
        assert len(after) == 0
    else:
        assert dict(after) == {k: v for k, v in cache.items() if k not in gone}
    assert after.limit == cache.limit


def test_the_cache_is_an_immutable_mapping_equal_to_a_dict() -> None:
    cache = EMPTY_CACHE.with_entry(TokenKey(), entry(5, "secret-token"))
    assert isinstance(cache, Mapping)
    assert cache == {TokenKey(): entry(5, "secret-token")}
    assert {TokenKey(): entry(5, "secret-token")} == cache
    assert "secret-token" not in repr(cache)
    assert len(EMPTY_CACHE) == 0  # with_entry made a new value
    with pytest.raises(AttributeError):
        cache._entries = {}
    with pytest.raises(TypeError):
        cache[TokenKey("x")] = entry(1)  # type: ignore[index]
    assert TokenCache.of(cache) is cache


# ---- the session holds a TokenCache ------------------------------------------------------


def test_the_session_holds_its_tokens_as_a_bounded_cache() -> None:
    assert DEFAULT_LIMIT == MAX_CACHED_TOKENS
    plain = {TokenKey(): entry(5)}
    session = SessionState(access_tokens=plain)
    assert isinstance(session.access_tokens, TokenCache)
    assert session.access_tokens == plain and session == SessionState(access_tokens=plain)
    plain[TokenKey("later")] = entry(6)  # the caller's dict is not the session's
    assert TokenKey("later") not in session.access_tokens

    for i in range(MAX_CACHED_TOKENS + 5):
        session = session.with_access_token(TokenKey(f"https://r{i}"), entry(1000.0 - i))
    assert len(session.access_tokens) == MAX_CACHED_TOKENS
    assert TokenKey(f"https://r{MAX_CACHED_TOKENS + 4}") in session.access_tokens
    assert isinstance(session.without_access_tokens().access_tokens, TokenCache)
    signed_in = session.signed_in(id_token=IDT, refresh_token="r", access_token=None)
    assert isinstance(signed_in.access_tokens, TokenCache) and not signed_in.access_tokens
    decoded = decode_session(encode_session(session) or "")
    assert isinstance(decoded.access_tokens, TokenCache)
    assert decoded.access_tokens == session.access_tokens


# ---- the user's grant ------------------------------------------------------------------


def test_the_grant_of_a_session() -> None:
    assert SessionState().grant is None
    assert SessionState(refresh_token="r").grant is None  # no ID token: signed out
    session = SessionState(id_token=IDT, refresh_token="rt-secret")
    assert session.grant == UserGrant(IDT, "rt-secret")
    assert session.grant is not None and session.grant.can_refresh
    assert "rt-secret" not in repr(session.grant)
    no_refresh = SessionState(id_token=IDT).grant
    assert no_refresh is not None and not no_refresh.can_refresh
    assert session.cleared().grant is None
