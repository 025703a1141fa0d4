"""The atomic save, on both clients: a storage with ``compare_and_set``
(:class:`~logto_core.storage.AtomicStorage`) makes each save a read, the change applied, and a
compare-and-set of the result; a save that another process overtook reads again and applies
its change again, a bounded number of times (``storage.contended`` after that).

Here the "other processes" are fakes that write into the storage right before a save's
compare-and-set (so that it loses), and a property test that runs racing saves of separate
``Logto`` objects (separate in-process locks, as separate processes) in every interleaving
hypothesis draws."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logto_adapters import aio
from logto_adapters._common import MAX_SAVE_ROUNDS, SIGNED_OUT_MARK, AtomicWrite
from logto_adapters.session_registry import SessionRegistry, sign_out
from logto_adapters.testing import ServedProvider
from logto_core import changes
from logto_core import operations as ops
from logto_core.errors import StorageError
from logto_core.session import (
    CachedAccessToken,
    PendingSignIn,
    SessionState,
    StorageKey,
    TokenKey,
    decode_session,
    encode_session,
)
from logto_core.storage import MemoryStorage
from logto_core.testing import ACCESS_TOKEN_TTL
from tests.factories import stored
from tests.jwt_factory import make_token

from .conftest import REDIRECT, USER, Clock, Harness, make_client

SPA = {"appId": "spa", "appSecret": None}


@pytest.fixture
def spa(served: ServedProvider) -> ServedProvider:
    """A public client: its refresh tokens rotate at every use, and a rotated one presented
    again revokes the grant (as Logto does)."""
    served.provider.add_client("spa", redirect_uris=[REDIRECT], kind="spa")
    return served


def spa_harness(kind: str, served: ServedProvider, clock: Clock, storage: Any) -> Harness:
    return Harness(kind, make_client(kind, served.url, clock, storage, config=SPA), served)


def refreshes(served: ServedProvider) -> list[str]:
    return [
        e.params["refresh_token"] for e in served.provider.log if e.grant_type == "refresh_token"
    ]


class RacingStorage(MemoryStorage):
    """A storage with ``compare_and_set``, where another writer (``rival``) may write right
    before a compare-and-set, which then loses; ``rival`` answers whether it wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.rival: Callable[[RacingStorage], bool] | None = None
        self.attempts = 0
        self.lost = 0

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        self.attempts += 1
        if self.rival is not None and self.rival(self):
            pass  # it wrote: the comparison below fails if it wrote this key
        if self.get(key) != expected:
            self.lost += 1
            return False
        self.set(key, value)
        return True


class AsyncRacingStorage:
    """:class:`RacingStorage` with coroutine methods (the asyncio client's async storages)."""

    def __init__(self) -> None:
        self.inner = RacingStorage()

    async def get(self, key: str) -> str | None:
        return self.inner.get(key)

    async def set(self, key: str, value: str | None) -> None:
        self.inner.set(key, value)

    async def delete(self, key: str) -> None:
        self.inner.delete(key)

    async def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        return self.inner.compare_and_set(key, expected, value)


def another_tab_signs_in(times: int = 1) -> Callable[[RacingStorage], bool]:
    """A rival that remembers a sign-in attempt of another tab, ``times`` times."""
    count = iter(range(times))

    def rival(storage: RacingStorage) -> bool:
        n = next(count, None)
        if n is None:
            return False
        session = stored(storage)
        attempt = PendingSignIn(
            state=f"tab-{n}", nonce="n", code_verifier="v", redirect_uri=REDIRECT, created_at=0
        )
        storage.set(StorageKey.SESSION, str(encode_session(session.with_pending(attempt, 0))))
        return True

    return rival


def test_a_save_that_lost_a_race_applies_its_change_to_what_won(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    storage = RacingStorage()
    harness = spa_harness(kind, spa, clock, storage)
    harness.sign_in_user()
    clock.advance(ACCESS_TOKEN_TTL + 1)
    storage.rival, storage.attempts, storage.lost = another_tab_signs_in(2), 0, 0
    assert harness.getAccessToken() is not None  # a refresh: the refresh token rotates
    assert (storage.attempts, storage.lost) == (3, 2)
    session = stored(storage)
    # Both: the rotated refresh token and the other tabs' attempts.
    assert {p.state for p in session.pending} == {"tab-0", "tab-1"}
    assert spa.provider.is_refresh_token_active(str(session.refresh_token))
    assert len(refreshes(spa)) == 1


def test_the_asyncio_client_takes_a_coroutine_compare_and_set(
    spa: ServedProvider, clock: Clock
) -> None:
    storage = AsyncRacingStorage()
    harness = spa_harness("aio", spa, clock, storage)
    harness.sign_in_user()
    clock.advance(ACCESS_TOKEN_TTL + 1)
    storage.inner.rival, storage.inner.lost = another_tab_signs_in(1), 0
    assert harness.getAccessToken() is not None
    assert storage.inner.lost == 1
    session = stored(storage.inner)
    assert [p.state for p in session.pending] == ["tab-0"]
    assert spa.provider.is_refresh_token_active(str(session.refresh_token))
    assert harness.isAuthenticatedAsync() is True


def test_a_save_losing_every_round_fails_typed_and_loses_no_token(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    storage = RacingStorage()
    harness = spa_harness(kind, spa, clock, storage)
    harness.sign_in_user()
    signed_in = stored(storage)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    storage.rival, storage.attempts = another_tab_signs_in(MAX_SAVE_ROUNDS), 0
    with pytest.raises(StorageError) as caught:
        harness.getAccessToken()
    assert caught.value.code == "storage.contended"
    assert storage.attempts == MAX_SAVE_ROUNDS
    # Nothing of the losing save was written: the rival's attempts only.
    left = stored(storage)
    assert left.refresh_token == signed_in.refresh_token
    assert len(left.pending) == MAX_SAVE_ROUNDS - 2  # at most 8 are kept
    # The rival stops: the next request adopts the refresh result kept in memory instead of
    # presenting the consumed token (which would revoke the grant).
    assert harness.getAccessToken() is not None
    assert len(refreshes(spa)) == 1
    assert spa.provider.is_refresh_token_active(str(stored(storage).refresh_token))


def test_a_sign_out_that_won_the_race_is_not_undone(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    storage = RacingStorage()
    harness = spa_harness(kind, spa, clock, storage)
    harness.sign_in_user()
    clock.advance(ACCESS_TOKEN_TTL + 1)

    def signs_out(storage: RacingStorage) -> bool:
        storage.rival = None  # once
        storage.delete(StorageKey.SESSION)  # another request's signOut
        return True

    storage.rival = signs_out
    harness.getAccessToken()  # answers the token it obtained, as a refresh racing a sign-out does
    assert stored(storage) == SessionState()  # the late refresh result was refused
    assert harness.isAuthenticated() is False


def test_an_official_sdk_session_moves_to_one_value_atomically(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    seed = MemoryStorage()
    spa_harness(kind, spa, clock, seed).sign_in_user()
    session = stored(seed)
    legacy = RacingStorage()
    legacy.set(StorageKey.ID_TOKEN, str(session.id_token))
    legacy.set(StorageKey.REFRESH_TOKEN, str(session.refresh_token))
    harness = spa_harness(kind, spa, clock, legacy)
    clock.advance(ACCESS_TOKEN_TTL + 1)
    assert harness.getAccessToken() is not None
    assert legacy.get(StorageKey.SESSION) is not None
    assert legacy.get(StorageKey.ID_TOKEN) is None and legacy.get(StorageKey.REFRESH_TOKEN) is None
    assert harness.getIdTokenClaims().sub == USER


def test_an_official_sdk_session_signed_out_leaves_nothing(
    kind: str, spa: ServedProvider, clock: Clock
) -> None:
    seed = MemoryStorage()
    spa_harness(kind, spa, clock, seed).sign_in_user()
    session = stored(seed)
    legacy = RacingStorage()
    legacy.set(StorageKey.ID_TOKEN, str(session.id_token))
    legacy.set(StorageKey.REFRESH_TOKEN, str(session.refresh_token))
    seen: list[str | None] = []
    original = legacy.compare_and_set

    def recording(key: str, expected: str | None, value: str | None) -> bool:
        seen.append(value)
        return original(key, expected, value)

    legacy.compare_and_set = recording  # type: ignore[method-assign]
    harness = spa_harness(kind, spa, clock, legacy)
    harness.signOut()
    # The mark first (the legacy entries are not read again while they are deleted), then
    # nothing at all.
    assert seen == [SIGNED_OUT_MARK, None]
    assert legacy._data == {}


def test_a_mark_overtaken_by_a_new_sign_in_stays_overtaken() -> None:
    write = AtomicWrite.of(SessionState(legacy_keys=frozenset({StorageKey.ID_TOKEN})))
    assert (write.value, write.legacy, write.unmark) == (
        SIGNED_OUT_MARK,
        (StorageKey.ID_TOKEN,),
        True,
    )
    assert decode_session(SIGNED_OUT_MARK) == SessionState()
    assert AtomicWrite.of(SessionState()).value is None


def test_an_in_memory_registry_session_compares_and_sets_under_its_lock() -> None:
    registry = SessionRegistry()
    session = registry.create()
    assert session.compare_and_set("k", None, "1") is True
    assert session.compare_and_set("k", None, "2") is False
    assert session.compare_and_set("k", "0", "2") is False
    assert session.compare_and_set("k", "1", None) is True and session.get("k") is None
    registry.discard(session.id)
    assert session.compare_and_set("k", None, "3") is True  # ignored, as writes are
    assert session.get("k") is None


def test_ending_a_legacy_session_in_memory_leaves_no_tokens() -> None:
    registry = SessionRegistry()
    session = registry.create()
    session.set(StorageKey.ID_TOKEN, ID_TOKEN)
    session.set(StorageKey.REFRESH_TOKEN, "rt-legacy")
    session.set(StorageKey.SIGN_IN_SESSIONS, "[]")
    sign_out(session)
    assert stored(session) == SessionState()
    assert session.get(StorageKey.SESSION) is None and session.get(StorageKey.ID_TOKEN) is None


# ---- the property: racing saves of separate processes ----------------------------------------

ATOMIC = True
ID_TOKEN = make_token()
CHAIN = [f"rt-{i}" for i in range(6)]
"""The grant's refresh tokens, each rotated into the next."""


@dataclass
class Shared:
    """The one store every process saves to (Redis, in production), with its history of
    successful writes: (the value before, the value after, who wrote)."""

    values: dict[str, str] = field(default_factory=dict)
    history: list[tuple[str | None, str | None, int]] = field(default_factory=list)


class Scheduler:
    """Lets one storage call proceed at a time, the one ``choose`` picks among those
    waiting: every interleaving of the processes' reads and compare-and-sets."""

    def __init__(self, choose: Callable[[int], int]) -> None:
        self.choose = choose
        self.waiting: list[asyncio.Future[None]] = []

    async def turn(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        await future

    async def drive(self, tasks: list[asyncio.Task[Any]]) -> None:
        while True:
            alive = [task for task in tasks if not task.done()]
            for _ in range(200):  # let every live task reach its next storage call
                if len(self.waiting) == len(alive):
                    break
                await asyncio.sleep(0)
                alive = [task for task in tasks if not task.done()]
            if not alive:
                return
            assert len(self.waiting) == len(alive), "a save waits on something else"
            self.waiting.pop(self.choose(len(self.waiting))).set_result(None)


class View:
    """One process's async storage over the shared store; ``compare_and_set`` only when
    ``atomic`` (else the client reads, changes and writes under its own process's lock)."""

    def __init__(self, shared: Shared, scheduler: Scheduler, who: int) -> None:
        self.shared, self.scheduler, self.who = shared, scheduler, who

    async def get(self, key: str) -> str | None:
        await self.scheduler.turn()
        return self.shared.values.get(key)

    async def set(self, key: str, value: str | None) -> None:
        await self.scheduler.turn()
        self._store(key, value)

    async def delete(self, key: str) -> None:
        await self.set(key, None)

    def _store(self, key: str, value: str | None) -> None:
        before = self.shared.values.get(key)
        if value is None:
            self.shared.values.pop(key, None)
        else:
            self.shared.values[key] = value
        if key == StorageKey.SESSION:
            self.shared.history.append((before, value, self.who))


class AtomicView(View):
    async def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        await self.scheduler.turn()
        if self.shared.values.get(key) != expected:
            return False
        self._store(key, value)
        return True


def refresh(step: int) -> changes.Change:
    """The result of refreshing with ``CHAIN[step]``: rotated into the next, with a token."""
    entry = CachedAccessToken(token=f"at-{step}", expires_at=10_000.0 + step)
    result = changes.Refreshed(CHAIN[step + 1], None, TokenKey(), entry)
    return changes.refreshed(CHAIN[step], result)


def attempt(name: str) -> changes.Change:
    pending = PendingSignIn(
        state=name, nonce="n", code_verifier="v", redirect_uri=REDIRECT, created_at=0
    )
    return changes.added_pending([pending], 0)


SAVES = st.one_of(
    st.integers(0, len(CHAIN) - 2).map(lambda step: ("refresh", step)),
    st.just(("pending", 0)),
    st.just(("cache", 0)),
    st.just(("drop", 0)),
    st.just(("sign_out", 0)),
)


def change_of(label: tuple[str, int], who: int, index: int) -> changes.Change:
    kind, step = label
    if kind == "refresh":
        return refresh(step)
    if kind == "pending":
        return attempt(f"p{who}-{index}")
    if kind == "cache":
        entry = CachedAccessToken(token=f"m-{who}-{index}", expires_at=9_999.0)
        return changes.cached_token(TokenKey(f"https://r{who}.example.com"), entry)
    if kind == "drop":
        return changes.dropped_tokens(None)
    return changes.signed_out


def chain_position(value: str | None) -> int:
    """How far along the grant's chain a stored value is (signed out: past its end)."""
    session = decode_session(value) if value is not None else SessionState()
    if session.refresh_token is None:
        return len(CHAIN)
    return CHAIN.index(session.refresh_token)


async def race(
    plans: list[list[tuple[str, int]]], choose: Callable[[int], int], *, atomic: bool
) -> tuple[Shared, list[list[ops.Saved]]]:
    start = SessionState(id_token=ID_TOKEN, refresh_token=CHAIN[0])
    shared = Shared(values={StorageKey.SESSION: str(encode_session(start))})
    scheduler = Scheduler(choose)
    config = aio.LogtoConfig(endpoint="https://tenant.example.com", appId="app")
    done: list[list[ops.Saved]] = [[] for _ in plans]

    async def process(who: int, plan: list[tuple[str, int]]) -> None:
        # A Logto of its own: its own per-session locks, as in another process.
        logto = aio.Logto(config)
        view = (AtomicView if atomic else View)(shared, scheduler, who)
        session = logto.session(view)
        for index, label in enumerate(plan):
            change = change_of(label, who, index)
            grant = (await session._load()).refresh_token
            done[who].append(await session._save(ops.SaveSession(change, grant)))

    tasks = [asyncio.ensure_future(process(who, plan)) for who, plan in enumerate(plans)]
    await scheduler.drive(tasks)
    for task in tasks:
        task.result()
    return shared, done


PLANS = st.lists(st.lists(SAVES, min_size=1, max_size=3), min_size=2, max_size=3)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(plans=PLANS, data=st.data())
def test_racing_saves_lose_no_rotated_token_and_never_write_older_than_read(
    plans: list[list[tuple[str, int]]], data: st.DataObject
) -> None:
    def choose(n: int) -> int:
        return data.draw(st.integers(0, n - 1), label="next")

    shared, done = asyncio.run(race(plans, choose, atomic=ATOMIC))
    # Never older than read: every write replaced exactly the value its save read last, so
    # the history is one chain of values, each the change of a save applied to the last.
    for (before, _, _), (_, previous_after, _) in zip(
        shared.history[1:], shared.history, strict=False
    ):
        assert before == previous_after
    writes = [saved for saves in done for saved in saves if saved.written]
    assert len(writes) == len(shared.history)
    for saved in writes:  # what each save says it read and wrote is what the store went through
        assert (encode_session(saved.before), encode_session(saved.after)) in {
            (b, a) for b, a, _ in shared.history
        }
    # No rotated refresh token lost: along the history the grant only moves forward (a
    # rotated-away token never comes back; a sign-out is final for this grant).
    positions = [chain_position(shared.history[0][0] if shared.history else None)]
    positions += [chain_position(after) for _, after, _ in shared.history]
    assert positions == sorted(positions)
    # And every attempt remembered by a save that wrote is still there (at most 9 here).
    final = decode_session(shared.values[StorageKey.SESSION]) if shared.values else SessionState()
    added = {
        f"p{who}-{index}"
        for who, plan in enumerate(plans)
        for index, label in enumerate(plan)
        if label[0] == "pending" and done[who][index].written
    }
    if len(added) <= 8:
        assert added <= {p.state for p in final.pending}


def test_the_same_race_on_a_plain_storage_loses_the_rotated_token() -> None:
    """What the property guards against: without compare-and-set, two processes each read,
    change and write under their own lock; taking turns (both read, then both write), the
    second write brings the consumed refresh token back. With it, the second save reads
    again and keeps the rotation."""
    plans = [[("refresh", 0)], [("pending", 0)]]
    plain, _ = asyncio.run(race(plans, lambda n: 0, atomic=False))
    assert decode_session(plain.values[StorageKey.SESSION]).refresh_token == CHAIN[0]
    atomic, done = asyncio.run(race(plans, lambda n: 0, atomic=True))
    final = decode_session(atomic.values[StorageKey.SESSION])
    assert final.refresh_token == CHAIN[1]
    assert [p.state for p in final.pending] == ["p1-0"]
    assert all(saved.written for saves in done for saved in saves)
