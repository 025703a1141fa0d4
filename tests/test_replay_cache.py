"""The replay cache of logout tokens: remembered until its time, bounded, oldest dropped; and a
model-based property against a plain reference implementation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import LogtoUsageError
from logto_core.replay_cache import DEFAULT_LIMIT, EMPTY_REPLAY_CACHE, ReplayCache

NOW = 1_700_000_000.0


def test_a_recorded_key_is_seen_until_its_time() -> None:
    cache = EMPTY_REPLAY_CACHE.with_entry("a", NOW + 10, NOW)
    assert cache.seen("a", NOW) and cache.seen("a", NOW + 9.9)
    assert not cache.seen("a", NOW + 10)  # its time is over: a replay is refused elsewhere
    assert not cache.seen("b", NOW)
    assert EMPTY_REPLAY_CACHE.seen("a", NOW) is False  # the value never changes
    assert dict(cache) == {"a": NOW + 10} and len(cache) == 1 and "a" in cache


def test_a_key_whose_time_is_over_is_not_recorded() -> None:
    assert len(EMPTY_REPLAY_CACHE.with_entry("a", NOW, NOW)) == 0
    assert len(EMPTY_REPLAY_CACHE.with_entry("a", NOW - 1, NOW)) == 0


def test_entries_past_their_time_are_dropped_at_the_next_record() -> None:
    cache = EMPTY_REPLAY_CACHE.with_entry("old", NOW + 1, NOW).with_entry("new", NOW + 60, NOW)
    later = cache.with_entry("newer", NOW + 70, NOW + 5)
    assert list(later) == ["new", "newer"]


def test_the_oldest_are_dropped_beyond_the_limit() -> None:
    cache = ReplayCache(limit=3)
    for key in "abcde":
        cache = cache.with_entry(key, NOW + 100, NOW)
    assert list(cache) == ["c", "d", "e"]
    assert not cache.seen("a", NOW) and cache.seen("e", NOW)


def test_recording_again_makes_a_key_the_newest() -> None:
    cache = ReplayCache(limit=2).with_entry("a", NOW + 5, NOW).with_entry("b", NOW + 5, NOW)
    cache = cache.with_entry("a", NOW + 50, NOW).with_entry("c", NOW + 5, NOW)
    assert list(cache) == ["a", "c"] and cache["a"] == NOW + 50


def test_without_forgets_one_key() -> None:
    cache = EMPTY_REPLAY_CACHE.with_entry("a", NOW + 5, NOW).with_entry("b", NOW + 5, NOW)
    assert list(cache.without("a")) == ["b"]
    assert cache.without("zz") is cache


def test_the_default_limit_and_repr() -> None:
    assert EMPTY_REPLAY_CACHE.limit == DEFAULT_LIMIT
    cache = EMPTY_REPLAY_CACHE.with_entry("secret-digest", NOW + 5, NOW)
    assert "secret-digest" not in repr(cache) and "entries=1" in repr(cache)


@pytest.mark.parametrize("limit", [0, -1, True, 1.5, "3"])
def test_a_limit_must_be_a_positive_whole_number(limit: Any) -> None:
    with pytest.raises(LogtoUsageError) as info:
        ReplayCache(limit=limit)
    assert info.value.code == "usage.replay"


def test_a_given_mapping_is_copied() -> None:
    source = {"a": NOW + 5}
    cache = ReplayCache(source)
    source["b"] = NOW + 5
    assert list(cache) == ["a"]


# ---- a model: the same rules, written plainly ----------------------------------------------


class Model:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.entries: list[tuple[str, float]] = []

    def record(self, key: str, until: float, now: float) -> None:
        self.entries = [(k, t) for k, t in self.entries if now < t and k != key]
        if now < until:
            self.entries.append((key, until))
        self.entries = self.entries[max(0, len(self.entries) - self.limit) :]

    def forget(self, key: str) -> None:
        self.entries = [(k, t) for k, t in self.entries if k != key]

    def seen(self, key: str, now: float) -> bool:
        return any(k == key and now < t for k, t in self.entries)


_STEP = st.one_of(
    st.tuples(st.just("record"), st.sampled_from("abcdefg"), st.floats(-5, 200)),
    st.tuples(st.just("forget"), st.sampled_from("abcdefg"), st.just(0.0)),
    st.tuples(st.just("advance"), st.just(""), st.floats(0, 100)),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5), st.lists(_STEP, max_size=30))
def test_the_cache_behaves_as_its_model(limit: int, steps: list[tuple[str, str, float]]) -> None:
    cache, model, now = ReplayCache(limit=limit), Model(limit), NOW
    for action, key, number in steps:
        before, snapshot = cache, dict(cache)
        if action == "record":
            cache = cache.with_entry(key, now + number, now)
            model.record(key, now + number, now)
        elif action == "forget":
            cache = cache.without(key)
            model.forget(key)
        else:
            now += number
        assert dict(before) == snapshot  # a value: recording makes a new one
        assert len(cache) <= limit
        assert list(cache) == [k for k, _ in model.entries]
        for probe in "abcdefg":
            assert cache.seen(probe, now) == model.seen(probe, now)
