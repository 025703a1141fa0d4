"""Server-side sessions, framework-free: a random id per browser, the SDK's stored session
kept in memory under it, indexed by its ID token's ``sid`` and ``sub``.

A web app keeps one :class:`SessionRegistry` for its whole life and puts only the session
id in the browser's cookie; the tokens never leave the server (no cookie grows past the
browser's 4 KB, and nothing the browser holds is a token). Each session's storage is a
:class:`RegisteredSession`, a :class:`~logto_core.storage.Storage` for ``logto.session()``.
Every write of the SDK's session value re-indexes it by the ``(iss, sid)`` and ``(iss,
sub)`` of its ID token (decoded: the client verified it when it arrived), so that a verified
logout token finds every matching session (:meth:`SessionRegistry.matching`, what
``Logto.handleBackchannelLogout`` asks).

- **ids**: :data:`SESSION_ID_BYTES` (256 bits) from the runtime's entropy, base64url (43
  characters, cookie- and URL-safe); anything else a browser sends is an unknown id, never
  an error. :meth:`~SessionRegistry.rotate` gives a session a new id, keeping its content
  (call it at sign-in, so that an id planted before the sign-in is worth nothing after).
- **bounds**: at most ``max_sessions`` (the least recently used dropped first), and a
  session unused for ``idle_timeout`` seconds of the runtime's clock is gone. A session
  that ended that way (or was discarded) ignores writes: a request still running with its
  storage cannot bring it back. A session signed out by a back-channel logout keeps its id
  and is simply signed out, so the browser's next request sees it so.
- **threads and event loops**: one ``threading.Lock`` around everything, held for a few
  dictionary operations and never across an ``await``; its methods are plain calls that
  never block on I/O, so one registry serves the blocking and the asyncio client alike.

In memory, for one process: a deployment with several workers needs a shared store (the
Redis integration's), with the same operations.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol

from logto_core.errors import LogtoUsageError, StorageError
from logto_core.jose.jwt import decode_id_token_claims
from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.session import SessionState, StorageKey
from logto_core.storage import Storage

from ._common import AtomicWrite

SESSION_ID_BYTES = 32
"""Entropy of a session id: 256 bits (at least 128 are needed against guessing)."""

DEFAULT_MAX_SESSIONS = 10_000
DEFAULT_IDLE_TIMEOUT = 14 * 24 * 3600.0
"""Logto's refresh token lives 14 days: a session idle for longer cannot refresh anyway."""

_NEW_ID_ATTEMPTS = 4

IndexKey = tuple[str, str]
"""``(iss, sid)`` or ``(iss, sub)``."""


class ServerSession(Protocol):
    """What a session store hands out for one session: its :attr:`id` (the cookie's value)
    and a :class:`~logto_core.storage.Storage` with ``compare_and_set``
    (:class:`~logto_core.storage.AtomicStorage`) for ``logto.session(...)``."""

    @property
    def id(self) -> str: ...

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str | None) -> None: ...

    def delete(self, key: str) -> None: ...

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool: ...


class SessionStore(Protocol):
    """Where :class:`~logto_adapters.web.ServerSessions` keeps sessions: a
    :class:`SessionRegistry` (this process's memory) or a
    :class:`~logto_adapters.redis_registry.RedisSessionRegistry` (shared by every worker).
    ``matching`` is what ``Logto.handleBackchannelLogout`` asks of it."""

    def create(self) -> ServerSession: ...

    def open(self, session_id: str | None) -> ServerSession: ...

    def get(self, session_id: str | None) -> ServerSession | None: ...

    def rotate(self, session_id: str) -> str: ...

    def discard(self, session_id: str | None) -> bool: ...

    def matching(
        self, *, iss: str, sid: str | None = None, sub: str | None = None
    ) -> Sequence[Storage]:
        """The storages of the live sessions an ID token's ``(iss, sid)`` and ``(iss, sub)``
        name (those given; with neither, none)."""
        ...

    def end(self, *, iss: str, sid: str | None = None, sub: str | None = None) -> int: ...


MAX_END_ROUNDS = 10
"""Times :func:`sign_out` reads a session again that a concurrent save changed."""


def sign_out(session: ServerSession) -> None:
    """Forget the tokens of ``session`` (pending sign-ins kept), atomically: what ``end``
    does to each session, without a client (no revocation)."""
    for _ in range(MAX_END_ROUNDS):
        expected, current = _read_stored(session)
        cleared = current.cleared()
        if cleared == current:
            return
        write = AtomicWrite.of(cleared)
        if session.compare_and_set(StorageKey.SESSION, expected, write.value):
            for key in write.legacy:
                session.delete(key)
            if write.unmark:
                session.compare_and_set(StorageKey.SESSION, write.value, None)
            return
    raise StorageError(
        "the session kept changing while it was being signed out; try again",
        code="storage.contended",
    )


def _read_stored(session: ServerSession) -> tuple[str | None, SessionState]:
    """The session's one value as stored (``None`` when absent) and the session read."""
    value = session.get(StorageKey.SESSION)

    def get(key: str) -> str | None:
        return value if key == StorageKey.SESSION else session.get(key)

    return (value if type(value) is str else None), SessionState.load(get)


class _Entry:
    """One session: its id, the stored values, when it was last used, what it is indexed
    under. Compared by identity (its id changes on rotation)."""

    __slots__ = ("alive", "by_sid", "by_sub", "id", "last_used", "values")

    def __init__(self, session_id: str, now: float) -> None:
        self.id = session_id
        self.values: dict[str, str] = {}
        self.last_used = now
        self.by_sid: IndexKey | None = None
        self.by_sub: IndexKey | None = None
        self.alive = True


class RegisteredSession(Storage):
    """The storage of one registered session (give it to ``logto.session(...)``). ``id`` is
    its current id (the cookie's value), which :meth:`SessionRegistry.rotate` changes."""

    __slots__ = ("_entry", "_registry")

    def __init__(self, registry: SessionRegistry, entry: _Entry) -> None:
        self._registry = registry
        self._entry = entry

    @property
    def id(self) -> str:
        return self._entry.id

    @property
    def alive(self) -> bool:
        """False once the session expired, was dropped for room, or was discarded."""
        return self._entry.alive

    def get(self, key: str) -> str | None:
        return self._registry._read(self._entry, key)

    def set(self, key: str, value: str | None) -> None:
        self._registry._write(self._entry, key, value)

    def delete(self, key: str) -> None:
        self._registry._write(self._entry, key, None)

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        """:class:`~logto_core.storage.AtomicStorage`, under the registry's lock (a session
        that ended ignores it, as it ignores writes)."""
        return self._registry._compare_and_set(self._entry, key, expected, value)

    def __repr__(self) -> str:  # the id is a bearer credential: never shown
        return f"RegisteredSession(alive={self._entry.alive})"


class SessionRegistry:
    """Sessions by random id, in memory; see the module doc.

    :param max_sessions: sessions kept at most (the least recently used are dropped).
    :param idle_timeout: seconds after its last use a session is forgotten.
    :param runtime: the clock (idle expiry) and the entropy (ids).
    """

    def __init__(
        self,
        *,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        runtime: Runtime = DEFAULT_RUNTIME,
    ) -> None:
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise LogtoUsageError(
                "max_sessions must be a whole number of at least 1", code="usage.session_registry"
            )
        if isinstance(idle_timeout, bool) or not (
            isinstance(idle_timeout, (int, float)) and idle_timeout > 0
        ):
            raise LogtoUsageError(
                "idle_timeout must be a positive number of seconds", code="usage.session_registry"
            )
        self.max_sessions = max_sessions
        self.idle_timeout = float(idle_timeout)
        self.runtime = runtime
        self._lock = threading.Lock()
        # Least recently used first: expiry and eviction take from the front.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_sid: dict[IndexKey, set[_Entry]] = {}
        self._by_sub: dict[IndexKey, set[_Entry]] = {}

    # ---- sessions by id ----------------------------------------------------------------

    def create(self) -> RegisteredSession:
        """A new, empty session with a fresh id."""
        with self._lock:
            now = self.runtime.now()
            self._expire(now)
            return RegisteredSession(self, self._new_entry(now))

    def open(self, session_id: str | None) -> RegisteredSession:
        """The live session ``session_id`` names (the browser's cookie), or a new empty one
        with a fresh id when it names none (absent, unknown, expired, malformed): set the
        cookie to the result's ``id``."""
        with self._lock:
            now = self.runtime.now()
            self._expire(now)
            entry = self._live(session_id, now)
            return RegisteredSession(self, entry if entry is not None else self._new_entry(now))

    def get(self, session_id: str | None) -> RegisteredSession | None:
        """The live session ``session_id`` names, or ``None`` (nothing is created)."""
        with self._lock:
            now = self.runtime.now()
            self._expire(now)
            entry = self._live(session_id, now)
            return RegisteredSession(self, entry) if entry is not None else None

    def rotate(self, session_id: str) -> str:
        """Give the session ``session_id`` a new id, keeping its content (and the storage
        objects already handed out, which follow it); the old id names nothing any more.
        Raises :class:`LogtoUsageError` (``usage.session_unknown``) for an id that names no
        live session."""
        with self._lock:
            now = self.runtime.now()
            self._expire(now)
            entry = self._live(session_id, now)
            if entry is None:
                raise LogtoUsageError(
                    "no live session has this id (expired, discarded, or never issued)",
                    code="usage.session_unknown",
                )
            del self._entries[entry.id]
            entry.id = self._fresh_id()
            self._entries[entry.id] = entry
            return entry.id

    def discard(self, session_id: str | None) -> bool:
        """Forget the session ``session_id`` names (its later writes are ignored); True when
        there was one."""
        with self._lock:
            entry = self._entries.get(session_id) if isinstance(session_id, str) else None
            if entry is None:
                return False
            self._drop(entry)
            return True

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.runtime.now())
            return len(self._entries)

    # ---- sessions by who is signed in ----------------------------------------------------

    def matching(
        self, *, iss: str, sid: str | None = None, sub: str | None = None
    ) -> list[RegisteredSession]:
        """The live sessions whose ID token was issued by ``iss`` with session ``sid`` and
        for user ``sub`` (given ones only; with neither, none): what a logout token names."""
        with self._lock:
            self._expire(self.runtime.now())
            found: set[_Entry] | None = None
            for index, value in ((self._by_sid, sid), (self._by_sub, sub)):
                if value is None:
                    continue
                hits = index.get((iss, value), set())
                found = set(hits) if found is None else found & hits
            return [RegisteredSession(self, entry) for entry in self._ordered(found or ())]

    def end(self, *, iss: str, sid: str | None = None, sub: str | None = None) -> int:
        """Sign out the sessions :meth:`matching` finds, without a client: their tokens are
        forgotten (not revoked; ``Logto.handleBackchannelLogout`` revokes them too), their
        ids stay (the browser is simply signed out). Answers how many."""
        sessions = self.matching(iss=iss, sid=sid, sub=sub)
        for session in sessions:
            sign_out(session)
        return len(sessions)

    # ---- inside ---------------------------------------------------------------------------

    def _read(self, entry: _Entry, key: str) -> str | None:
        with self._lock:
            if not self._usable(entry):
                return None
            return entry.values.get(key)

    def _write(self, entry: _Entry, key: str, value: str | None) -> None:
        with self._lock:
            self._write_locked(entry, key, value)

    def _compare_and_set(
        self, entry: _Entry, key: str, expected: str | None, value: str | None
    ) -> bool:
        with self._lock:
            if entry.alive and entry.values.get(key) != expected:
                return False
            self._write_locked(entry, key, value)
            return True

    def _write_locked(self, entry: _Entry, key: str, value: str | None) -> None:
        if not self._usable(entry):
            return  # expired, dropped or discarded: a late write cannot revive it
        if value is None:
            entry.values.pop(key, None)
        else:
            entry.values[key] = value
        if key in StorageKey.ALL:
            self._index(entry)

    def _index(self, entry: _Entry) -> None:
        """Index ``entry`` by the ID token its values hold now (none: not indexed)."""
        self._unindex(entry)
        # Reading the session drops an ID token that does not decode (a damaged value counts
        # as signed out), so what is left decodes: the SDK verified it when it arrived.
        session = SessionState.from_values(entry.values)
        if session.id_token is None:
            return
        claims = decode_id_token_claims(session.id_token)
        if claims.sid:
            entry.by_sid = (claims.iss, claims.sid)
            self._by_sid.setdefault(entry.by_sid, set()).add(entry)
        entry.by_sub = (claims.iss, claims.sub)
        self._by_sub.setdefault(entry.by_sub, set()).add(entry)

    def _unindex(self, entry: _Entry) -> None:
        for index, key in ((self._by_sid, entry.by_sid), (self._by_sub, entry.by_sub)):
            if key is None:
                continue
            hits = index.get(key)
            if hits is not None:
                hits.discard(entry)
                if not hits:
                    del index[key]
        entry.by_sid = entry.by_sub = None

    def _usable(self, entry: _Entry) -> bool:
        """Whether a storage handed out earlier may still read and write its session (it
        may have been idle past the timeout since: then it is dropped now); touches it."""
        if not entry.alive:
            return False
        now = self.runtime.now()
        if now - entry.last_used >= self.idle_timeout:
            self._drop(entry)
            return False
        entry.last_used = max(entry.last_used, now)
        self._entries.move_to_end(entry.id)
        return True

    def _live(self, session_id: str | None, now: float) -> _Entry | None:
        if not isinstance(session_id, str):
            return None
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        entry.last_used = max(entry.last_used, now)
        self._entries.move_to_end(entry.id)
        return entry

    def _expire(self, now: float) -> None:
        # Least recently used first: stop at the first one still in use.
        while self._entries:
            entry = next(iter(self._entries.values()))
            if now - entry.last_used < self.idle_timeout:
                return
            self._drop(entry)

    def _new_entry(self, now: float) -> _Entry:
        while len(self._entries) >= self.max_sessions:
            self._drop(next(iter(self._entries.values())))
        entry = _Entry(self._fresh_id(), now)
        self._entries[entry.id] = entry
        return entry

    def _fresh_id(self) -> str:
        for _ in range(_NEW_ID_ATTEMPTS):
            raw = self.runtime.random_bytes(SESSION_ID_BYTES)
            session_id = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
            if session_id not in self._entries:
                return session_id
        # 256 random bits colliding four times: the entropy source is broken.
        raise LogtoUsageError("the entropy source repeats itself", code="runtime.entropy")

    def _drop(self, entry: _Entry) -> None:
        self._unindex(entry)
        self._entries.pop(entry.id, None)
        entry.alive = False
        entry.values.clear()

    def _ordered(self, entries: Iterable[_Entry]) -> list[_Entry]:
        chosen = set(entries)
        return [entry for entry in self._entries.values() if entry in chosen]

    def __repr__(self) -> str:
        return f"SessionRegistry(sessions={len(self._entries)}, max={self.max_sessions})"


__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_SESSIONS",
    "SESSION_ID_BYTES",
    "RegisteredSession",
    "ServerSession",
    "SessionRegistry",
    "SessionStore",
    "sign_out",
]
