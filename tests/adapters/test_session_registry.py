"""The server-side session registry: random ids, the index by the ID token's sid and sub,
rotation, bounds (max sessions, idle expiry on the injected clock), threads; and a model-based
property."""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_adapters.session_registry import (
    DEFAULT_IDLE_TIMEOUT,
    SESSION_ID_BYTES,
    RegisteredSession,
    SessionRegistry,
)
from logto_core.errors import LogtoUsageError
from logto_core.runtime import Runtime
from logto_core.session import PendingSignIn, SessionState, StorageKey
from tests.jwt_factory import ISSUER, REMOVE, make_token

NOW = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def registry(clock: Clock | None = None, **options: Any) -> SessionRegistry:
    return SessionRegistry(runtime=Runtime(clock=clock or Clock()), **options)


def id_token(sub: str = "alice", sid: str | None = "sid-a", iss: str = ISSUER) -> str:
    return make_token(claims={"sub": sub, "sid": sid if sid is not None else REMOVE, "iss": iss})


def sign_in(storage: RegisteredSession, **claims: Any) -> None:
    """Write what the SDK writes after a sign-in: one session value with the tokens."""
    session = SessionState(id_token=id_token(**claims), refresh_token="rt-" + storage.id[:8])
    for key, value in session.writes().items():
        storage.set(key, value)


def signed_in(storage: RegisteredSession) -> bool:
    return SessionState.load(storage.get).is_authenticated


# ---- ids ------------------------------------------------------------------------------------


def test_ids_are_random_url_safe_and_from_the_runtime_s_entropy() -> None:
    asked: list[int] = []

    def entropy(n: int) -> bytes:
        asked.append(n)
        return bytes([len(asked)]) * n

    sessions = SessionRegistry(runtime=Runtime(clock=Clock(), entropy=entropy))
    one, two = sessions.create(), sessions.create()
    assert asked == [SESSION_ID_BYTES, SESSION_ID_BYTES] and SESSION_ID_BYTES * 8 >= 128
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", one.id) and one.id != two.id


def test_an_entropy_source_that_repeats_itself_is_refused() -> None:
    sessions = SessionRegistry(runtime=Runtime(clock=Clock(), entropy=lambda n: b"\0" * n))
    sessions.create()
    with pytest.raises(LogtoUsageError) as info:
        sessions.create()
    assert info.value.code == "runtime.entropy"


@pytest.mark.parametrize("cookie", [None, "", "nope", "x" * 43 + "!", 42, "A" * 43])
def test_an_unknown_or_malformed_id_opens_a_new_session(cookie: Any) -> None:
    sessions = registry()
    opened = sessions.open(cookie)
    assert opened.id != cookie and len(sessions) == 1
    assert sessions.get(cookie) is None


def test_open_finds_the_session_and_its_content() -> None:
    sessions = registry()
    first = sessions.open(None)
    first.set("k", "v")
    again = sessions.open(first.id)
    assert again.id == first.id and again.get("k") == "v"
    found = sessions.get(first.id)
    assert found is not None and found.get("k") == "v"
    again.delete("k")
    assert first.get("k") is None


def test_the_id_never_shows_in_repr() -> None:
    sessions = registry()
    storage = sessions.create()
    assert storage.id not in repr(storage) and storage.id not in repr(sessions)


# ---- the index --------------------------------------------------------------------------------


def test_sessions_are_found_by_sid_by_sub_and_by_both() -> None:
    sessions = registry()
    a1, a2, b = sessions.create(), sessions.create(), sessions.create()
    sign_in(a1, sub="alice", sid="s1")
    sign_in(a2, sub="alice", sid="s2")
    sign_in(b, sub="bob", sid="s3")

    def ids(**who: Any) -> list[str]:
        return [s.id for s in sessions.matching(iss=ISSUER, **who)]

    assert ids(sid="s1") == [a1.id]
    assert ids(sub="alice") == [a1.id, a2.id]
    assert ids(sid="s2", sub="alice") == [a2.id]
    assert ids(sid="s3", sub="alice") == []  # both given: both must match
    assert ids() == []
    assert sessions.matching(iss="https://other.example/oidc", sub="alice") == []


def test_the_index_follows_what_the_session_holds() -> None:
    sessions = registry()
    storage = sessions.create()
    sign_in(storage, sub="alice", sid="s1")
    sign_in(storage, sub="carol", sid="s9")  # another sign-in in the same browser
    assert sessions.matching(iss=ISSUER, sub="alice") == []
    assert [s.id for s in sessions.matching(iss=ISSUER, sid="s9")] == [storage.id]
    for key, value in SessionState.load(storage.get).cleared().writes().items():
        storage.set(key, value)  # signed out
    assert sessions.matching(iss=ISSUER, sub="carol") == []


def test_an_id_token_without_sid_is_found_by_sub_only() -> None:
    sessions = registry()
    storage = sessions.create()
    sign_in(storage, sub="alice", sid=None)
    assert sessions.matching(iss=ISSUER, sid="s1") == []
    assert len(sessions.matching(iss=ISSUER, sub="alice")) == 1


def test_a_damaged_value_is_not_indexed() -> None:
    sessions = registry()
    storage = sessions.create()
    storage.set(StorageKey.SESSION, '{"idToken": "not.a.jwt"}')
    assert sessions.matching(iss=ISSUER, sub="alice") == []


def test_end_signs_out_what_it_matches_and_keeps_the_ids() -> None:
    sessions = registry()
    a, b = sessions.create(), sessions.create()
    sign_in(a, sub="alice", sid="s1")
    sign_in(b, sub="bob", sid="s2")
    pending = PendingSignIn(
        state="s", nonce="n", code_verifier="v" * 43, redirect_uri="http://x/cb", created_at=NOW
    )
    with_tab = SessionState.load(a.get).with_pending(pending, NOW)
    for key, value in with_tab.writes().items():
        a.set(key, value)
    assert sessions.end(iss=ISSUER, sub="alice") == 1
    assert not signed_in(a) and signed_in(b)
    assert SessionState.load(a.get).pending == (pending,)  # another tab's sign-in is kept
    assert sessions.get(a.id) is not None  # the browser keeps its id, signed out
    assert sessions.end(iss=ISSUER, sub="alice") == 0


# ---- rotation ---------------------------------------------------------------------------------


def test_rotate_keeps_the_content_under_a_new_id() -> None:
    sessions = registry()
    storage = sessions.create()
    sign_in(storage, sub="alice", sid="s1")
    old = storage.id
    new = sessions.rotate(old)
    assert new != old and storage.id == new  # the storage handed out follows
    assert sessions.get(old) is None
    assert signed_in(sessions.open(new))
    assert [s.id for s in sessions.matching(iss=ISSUER, sid="s1")] == [new]
    storage.set("after", "rotation")
    assert sessions.open(new).get("after") == "rotation"
    assert len(sessions) == 1


@pytest.mark.parametrize("cookie", ["A" * 43, "bad", None])
def test_rotate_needs_a_live_session(cookie: Any) -> None:
    with pytest.raises(LogtoUsageError) as info:
        registry().rotate(cookie)
    assert info.value.code == "usage.session_unknown"


# ---- bounds -----------------------------------------------------------------------------------


def test_beyond_max_sessions_the_least_recently_used_goes() -> None:
    sessions = registry(max_sessions=2)
    a, b = sessions.create(), sessions.create()
    sign_in(a, sub="alice", sid="s1")
    sign_in(b, sub="bob", sid="s2")
    a.get(StorageKey.SESSION)  # a is used again: b is now the least recent
    c = sessions.create()
    assert len(sessions) == 2 and not b.alive and a.alive and c.alive
    assert sessions.get(b.id) is None and sessions.matching(iss=ISSUER, sub="bob") == []
    sign_in(b, sub="bob", sid="s2")  # a late write to a dropped session is ignored
    assert b.get(StorageKey.SESSION) is None and len(sessions) == 2


def test_a_dropped_session_leaves_nothing_behind() -> None:
    # Dropped for room, expired or discarded, and written to afterwards: no index entry and
    # no value stays (the registry's memory is bounded by max_sessions).
    clock = Clock()
    sessions = registry(clock, max_sessions=1, idle_timeout=10)
    first = sessions.create()
    sign_in(first, sub="alice", sid="s1")
    second = sessions.create()  # drops the first
    sign_in(first, sub="alice", sid="s1")
    sign_in(second, sub="bob", sid="s2")
    clock.now += 10
    sign_in(second, sub="bob", sid="s2")  # expired meanwhile
    assert len(sessions) == 0
    assert sessions._by_sid == {} and sessions._by_sub == {}
    assert first._entry.values == {} and second._entry.values == {}


def test_an_idle_session_expires_on_the_injected_clock() -> None:
    clock = Clock()
    sessions = registry(clock, idle_timeout=100)
    storage = sessions.create()
    sign_in(storage, sub="alice", sid="s1")
    clock.now += 99
    assert sessions.get(storage.id) is not None  # used: the idle time starts again
    clock.now += 99
    assert signed_in(storage)
    clock.now += 100
    assert storage.get(StorageKey.SESSION) is None and not storage.alive
    assert sessions.open(storage.id).id != storage.id
    assert sessions.matching(iss=ISSUER, sub="alice") == []
    sign_in(storage, sub="alice", sid="s1")
    assert sessions.matching(iss=ISSUER, sub="alice") == []  # not revived


def test_expired_sessions_leave_without_being_asked_for() -> None:
    clock = Clock()
    sessions = registry(clock, idle_timeout=10)
    for _ in range(5):
        sessions.create()
    clock.now += 10
    assert len(sessions) == 0
    assert DEFAULT_IDLE_TIMEOUT == 14 * 24 * 3600


def test_discard() -> None:
    sessions = registry()
    storage = sessions.create()
    sign_in(storage)
    assert sessions.discard(storage.id) is True and sessions.discard(storage.id) is False
    assert sessions.discard(None) is False and not storage.alive and len(sessions) == 0


@pytest.mark.parametrize(
    "options",
    [{"max_sessions": 0}, {"max_sessions": True}, {"idle_timeout": 0}, {"idle_timeout": "1"}],
)
def test_bounds_must_make_sense(options: dict[str, Any]) -> None:
    with pytest.raises(LogtoUsageError) as info:
        registry(**options)
    assert info.value.code == "usage.session_registry"


# ---- threads and loops ------------------------------------------------------------------------


def test_many_threads_at_once_keep_every_session_whole() -> None:
    sessions = registry(max_sessions=10_000)
    errors: list[BaseException] = []
    made: list[RegisteredSession] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(20):
                storage = sessions.open(None)
                sign_in(storage, sub=f"user-{n}", sid=f"s-{n}-{i}")
                if i % 3 == 0:
                    sessions.rotate(storage.id)
                assert len(sessions.matching(iss=ISSUER, sid=f"s-{n}-{i}")) == 1
                with lock:
                    made.append(storage)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and len(made) == 160 and len(sessions) == 160
    assert all(len(sessions.matching(iss=ISSUER, sub=f"user-{n}")) == 20 for n in range(8))


def test_coroutines_share_one_registry() -> None:
    sessions = registry()

    async def one(n: int) -> str:
        storage = sessions.open(None)
        await asyncio.sleep(0)
        sign_in(storage, sub="alice", sid=f"s-{n}")
        await asyncio.sleep(0)
        return sessions.rotate(storage.id)

    async def main() -> list[str]:
        return await asyncio.gather(*(one(n) for n in range(50)))

    ids = asyncio.run(main())
    assert len(set(ids)) == 50
    assert len(sessions.matching(iss=ISSUER, sub="alice")) == 50


# ---- a model ----------------------------------------------------------------------------------

_STEP = st.one_of(
    st.tuples(st.just("create"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("sign_in"), st.integers(0, 9), st.integers(0, 3)),
    st.tuples(st.just("rotate"), st.integers(0, 9), st.just(0)),
    st.tuples(st.just("discard"), st.integers(0, 9), st.just(0)),
    st.tuples(st.just("touch"), st.integers(0, 9), st.just(0)),
    st.tuples(st.just("advance"), st.integers(1, 60), st.just(0)),
    st.tuples(st.just("end"), st.integers(0, 3), st.just(0)),
)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 4), st.lists(_STEP, max_size=25))
def test_the_registry_behaves_as_its_model(limit: int, steps: list[tuple[str, int, int]]) -> None:
    clock = Clock()
    idle = 100.0
    sessions = registry(clock, max_sessions=limit, idle_timeout=idle)
    handles: list[RegisteredSession] = []
    alive: dict[int, bool] = {}
    last_used: dict[int, float] = {}
    user: dict[int, str | None] = {}
    order: list[int] = []  # least recently used first

    def use(h: int) -> None:
        order.remove(h)
        order.append(h)
        last_used[h] = clock.now

    def drop(h: int) -> None:
        if h in order:
            order.remove(h)
        alive[h] = False

    def expire() -> None:
        for h in list(order):
            if clock.now - last_used[h] >= idle:
                drop(h)

    def storage_used(h: int) -> bool:
        """A storage handed out earlier reads or writes: dropped if idle, else touched."""
        if alive[h] and clock.now - last_used[h] >= idle:
            drop(h)
        if alive[h]:
            use(h)
        return alive[h]

    for action, a, b in steps:
        if action == "create":
            expire()
            while len(order) >= limit:
                drop(order[0])
            handles.append(sessions.create())
            h = len(handles) - 1
            alive[h], last_used[h], user[h] = True, clock.now, None
            order.append(h)
        elif action == "advance":
            clock.now += a
        elif not handles:
            continue
        else:
            h = a % len(handles)
            storage = handles[h]
            if action == "sign_in":
                sign_in(storage, sub=f"u{b}", sid=f"s{h}")
                if storage_used(h):
                    user[h] = f"u{b}"
            elif action == "touch":
                storage.get("x")
                storage_used(h)
            elif action == "rotate":
                expire()
                if alive[h]:
                    sessions.rotate(storage.id)
                    use(h)
                else:
                    with pytest.raises(LogtoUsageError):
                        sessions.rotate(storage.id)
            elif action == "discard":
                assert sessions.discard(storage.id) == alive[h]
                drop(h)
            elif action == "end":
                expire()
                expected = [h2 for h2 in order if user[h2] == f"u{a}"]
                assert sessions.end(iss=ISSUER, sub=f"u{a}") == len(expected)
                for h2 in expected:
                    user[h2] = None
                    use(h2)
        expire()
        # Looked at without touching anything: liveness, the count, the index.
        assert len(sessions) == len(order) <= limit
        assert [storage.alive for storage in handles] == [alive[h] for h in range(len(handles))]
        for who in range(4):
            found = {s.id for s in sessions.matching(iss=ISSUER, sub=f"u{who}")}
            assert found == {handles[h].id for h in order if user[h] == f"u{who}"}
