"""Server-side sessions on Redis, shared by every worker of an app:
:class:`RedisSessionRegistry`, the same operations as the in-memory
:class:`~logto_adapters.session_registry.SessionRegistry` (``create``, ``open``, ``get``,
``rotate``, ``discard``, ``matching``, ``end``), for ``ServerSessions(registry=...)`` and for
``Logto.handleBackchannelLogout``: a logout that reaches any worker ends the session for all.

- **layout** (``<prefix>`` is ``logto:`` by default): a session is the hash
  ``<prefix>server-session:<id>``, a field per storage key plus its own bookkeeping; the
  sessions of an ID token's ``(iss, sid)`` and ``(iss, sub)`` are the sets
  ``<prefix>by-sid:<digest>`` and ``<prefix>by-sub:<digest>`` (SHA-256 of the pair: no
  provider value reaches a key name). Each write of the SDK's session value re-indexes the
  session by its ID token, in the same Lua script as the write.
- **ids**: 256 random bits from the runtime, base64url, made when a session is created and
  replaced by :meth:`~RedisSessionRegistry.rotate` (at sign-in). Storages handed out by this
  registry object follow a rotation; those of other processes hold the old id, which names
  nothing any more, so their writes are ignored, as writes to an ended session are.
- **lifetime**: a session untouched (read or written) for ``idle_timeout`` seconds (14 days)
  expires in Redis; the index sets live at least as long as their sessions. There is no
  ``max_sessions``: bound memory with Redis' own ``maxmemory`` (a ``volatile-*`` policy: every
  key here has a TTL).
- **atomic**: every operation is one Lua script, and each session's storage has
  ``compare_and_set``, so the clients' saves are atomic across workers; a session that
  ended (expired, discarded, rotated away) ignores writes and cannot be brought back.
- **outages**: as :class:`~logto_adapters.redis_storage.RedisStorage`,
  :class:`~logto_core.errors.StorageError` ``storage.unavailable`` (or
  ``storage.redis_error``), never a raw redis-py exception, never a value.

Its methods are blocking calls (one round trip each, bounded by ``socket_timeout``), made by
the framework integrations' session middleware, also under asyncio (Starlette, FastAPI).
The scripts touch a session and its index sets together: one Redis (with replicas or
Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import threading
import weakref
from typing import TYPE_CHECKING, Any

from logto_core.errors import LogtoUsageError, TokenValidationError
from logto_core.jose.jwt import decode_id_token_claims
from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.session import StorageKey, decode_session
from logto_core.storage import Storage

from .redis_storage import (
    CLIENTS,
    DEFAULT_PREFIX,
    checked_prefix,
    checked_url,
    decoded,
    encoded,
    redis_errors,
    ttl_ms,
    where,
)
from .session_registry import DEFAULT_IDLE_TIMEOUT, SESSION_ID_BYTES, sign_out

if TYPE_CHECKING:
    import redis

_NEW_ID_ATTEMPTS = 4
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ID_LENGTH = 43  # 32 bytes, base64url without padding
_ALIVE = "~alive"
_INDEX = "~ix"
_VALUE = "v:"

# A write of one value of a live session (compared or not), its re-indexing when asked, and
# its TTL, as one step. KEYS[1]: the session's hash. ARGV: field, compare ('any' | 'absent'
# | 'equal'), expected, has value ('1' | '0': delete), value, TTL (ms), re-index ('1' |
# '0'), the index sets to be in (space-separated; none: ''), the session id. Answers 1
# (written), 0 (compare failed) or 2 (no such session: ignored).
WRITE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 2 end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[2] == 'absent' then
  if current then return 0 end
elseif ARGV[2] == 'equal' then
  if current ~= ARGV[3] then return 0 end
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if ARGV[7] == '1' then
  local old = redis.call('HGET', KEYS[1], '~ix')
  if old then
    for index in string.gmatch(old, '%S+') do redis.call('SREM', index, ARGV[9]) end
  end
  if ARGV[8] ~= '' then
    for index in string.gmatch(ARGV[8], '%S+') do
      redis.call('SADD', index, ARGV[9])
      redis.call('PEXPIRE', index, ARGV[6])
    end
    redis.call('HSET', KEYS[1], '~ix', ARGV[8])
  else
    redis.call('HDEL', KEYS[1], '~ix')
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
"""

# A read of one value (ARGV[1]; '': none) of a live session, which touches it and its index
# sets (ARGV[2]: TTL in ms). Answers {0} (no such session), {1} or {1, value}.
READ_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local indexes = redis.call('HGET', KEYS[1], '~ix')
if indexes then
  for index in string.gmatch(indexes, '%S+') do redis.call('PEXPIRE', index, ARGV[2]) end
end
if ARGV[1] == '' then return {1} end
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value then return {1, value} end
return {1}
"""

CREATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], '~alive', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: the old hash, the new one. ARGV: the old id, the new id, TTL (ms). Answers 1, 0 (no
# such session) or -1 (the new id is taken).
ROTATE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local indexes = redis.call('HGET', KEYS[2], '~ix')
if indexes then
  for index in string.gmatch(indexes, '%S+') do
    redis.call('SREM', index, ARGV[1])
    redis.call('SADD', index, ARGV[2])
    redis.call('PEXPIRE', index, ARGV[3])
  end
end
return 1
"""

DISCARD_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local indexes = redis.call('HGET', KEYS[1], '~ix')
if indexes then
  for index in string.gmatch(indexes, '%S+') do redis.call('SREM', index, ARGV[1]) end
end
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: one or two index sets. ARGV[1]: what a session's hash is named, less its id. The
# live sessions in all of them; members whose session is gone are removed on the way.
MATCHING_SCRIPT = """
local ids
if #KEYS == 1 then ids = redis.call('SMEMBERS', KEYS[1])
else ids = redis.call('SINTER', KEYS[1], KEYS[2]) end
local live = {}
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then
    table.insert(live, id)
  else
    for _, index in ipairs(KEYS) do redis.call('SREM', index, id) end
  end
end
return live
"""


class _Cell:
    """A session's current id, shared by the storages this registry object handed out for
    it (so that they follow a rotation)."""

    __slots__ = ("__weakref__", "id")

    def __init__(self, session_id: str) -> None:
        self.id = session_id


class RedisRegisteredSession(Storage):
    """The storage of one session of a :class:`RedisSessionRegistry` (give it to
    ``logto.session(...)``); ``id`` is its current id (the cookie's value)."""

    __slots__ = ("_cell", "_registry")

    def __init__(self, registry: RedisSessionRegistry, cell: _Cell) -> None:
        self._registry = registry
        self._cell = cell

    @property
    def id(self) -> str:
        return self._cell.id

    def get(self, key: str) -> str | None:
        return self._registry._read(self._cell.id, key)

    def set(self, key: str, value: str | None) -> None:
        self._registry._write(self._cell.id, key, None, value, compare=False)

    def delete(self, key: str) -> None:
        self.set(key, None)

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        """:class:`~logto_core.storage.AtomicStorage`: one Lua script (a session that ended
        ignores it, as it ignores writes)."""
        return self._registry._write(self._cell.id, key, expected, value, compare=True)

    def __repr__(self) -> str:  # the id is a bearer credential: never shown
        return "RedisRegisteredSession()"


class RedisSessionRegistry:
    """Server-side sessions by random id in the Redis at ``url``; see the module doc.

    :param url: as for :class:`~logto_adapters.redis_storage.RedisStorage` (``redis://``,
        ``rediss://`` for TLS, password in the URL).
    :param prefix: what every key starts with (``logto:``).
    :param idle_timeout: seconds after its last use a session expires (14 days: Logto's
        refresh-token lifetime).
    :param runtime: the entropy of new ids.
    :param client: a ``redis.Redis`` to use instead of one made from ``url`` and ``options``.
    :param options: more of ``redis.Redis.from_url``'s settings (``socket_timeout``: 2 s by
        default).
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        runtime: Runtime = DEFAULT_RUNTIME,
        client: redis.Redis | None = None,
        **options: Any,
    ) -> None:
        checked_url(url)
        self.prefix = checked_prefix(prefix)
        if (
            isinstance(idle_timeout, bool)
            or not isinstance(idle_timeout, (int, float))
            or not math.isfinite(idle_timeout)
            or idle_timeout < 1
        ):
            raise LogtoUsageError(
                "idle_timeout must be a number of seconds, at least 1", code="usage.redis_options"
            )
        self.idle_timeout = float(idle_timeout)
        self.runtime = runtime
        self._place = where(url)
        self._ttl = ttl_ms(self.idle_timeout)
        self._client = client if client is not None else CLIENTS.get(url, options)
        register = self._client.register_script
        self._write_script = register(WRITE_SCRIPT)
        self._read_script = register(READ_SCRIPT)
        self._create_script = register(CREATE_SCRIPT)
        self._rotate_script = register(ROTATE_SCRIPT)
        self._discard_script = register(DISCARD_SCRIPT)
        self._matching_script = register(MATCHING_SCRIPT)
        self._lock = threading.Lock()
        self._cells: weakref.WeakValueDictionary[str, _Cell] = weakref.WeakValueDictionary()

    # ---- sessions by id ----------------------------------------------------------------

    def create(self) -> RedisRegisteredSession:
        """A new, empty session with a fresh id."""
        for _ in range(_NEW_ID_ATTEMPTS):
            session_id = self._fresh_id()
            with redis_errors("create", self._place):
                made = self._create_script(keys=[self._key(session_id)], args=[self._ttl])
            if made == 1:
                return self._handle(session_id)
        raise LogtoUsageError("the entropy source repeats itself", code="runtime.entropy")

    def open(self, session_id: str | None) -> RedisRegisteredSession:
        """The live session ``session_id`` names, or a new empty one (set the cookie to the
        result's ``id``)."""
        found = self.get(session_id)
        return found if found is not None else self.create()

    def get(self, session_id: str | None) -> RedisRegisteredSession | None:
        """The live session ``session_id`` names (touched), or ``None``; an id that is not one
        of ours is ``None`` without asking Redis."""
        if not _is_id(session_id):
            return None
        assert isinstance(session_id, str)
        with redis_errors("read", self._place):
            found = self._read_script(keys=[self._key(session_id)], args=["", self._ttl])
        return self._handle(session_id) if found and found[0] == 1 else None

    def rotate(self, session_id: str) -> str:
        """Give the session a new id, keeping its content (and the storages this object
        handed out, which follow it); the old id names nothing any more. Raises
        :class:`LogtoUsageError` (``usage.session_unknown``) for an id that names no live
        session."""
        done = 0
        if _is_id(session_id):
            for _ in range(_NEW_ID_ATTEMPTS):
                new_id = self._fresh_id()
                keys = [self._key(session_id), self._key(new_id)]
                with redis_errors("rotate", self._place):
                    done = self._rotate_script(keys=keys, args=[session_id, new_id, self._ttl])
                if done != -1:
                    break
        if done != 1:
            raise LogtoUsageError(
                "no live session has this id (expired, discarded, or never issued)",
                code="usage.session_unknown",
            )
        with self._lock:
            cell = self._cells.pop(session_id, None)
            if cell is not None:
                cell.id = new_id
                self._cells[new_id] = cell
        return new_id

    def discard(self, session_id: str | None) -> bool:
        """Forget the session ``session_id`` names (later writes to it are ignored); True
        when there was one."""
        if not _is_id(session_id):
            return False
        assert isinstance(session_id, str)
        with redis_errors("discard", self._place):
            done = self._discard_script(keys=[self._key(session_id)], args=[session_id])
        return bool(done == 1)

    # ---- sessions by who is signed in ----------------------------------------------------

    def matching(
        self, *, iss: str, sid: str | None = None, sub: str | None = None
    ) -> list[RedisRegisteredSession]:
        """The live sessions whose ID token was issued by ``iss`` with session ``sid`` and
        for user ``sub`` (given ones only; with neither, none): what a logout token names."""
        keys = [
            self._index_key(kind, iss, value)
            for kind, value in (("sid", sid), ("sub", sub))
            if value is not None
        ]
        if not keys:
            return []
        with redis_errors("look up", self._place):
            ids = self._matching_script(keys=keys, args=[self._key("")])
        found = sorted(str(decoded(raw)) for raw in ids)
        return [self._handle(session_id) for session_id in found]

    def end(self, *, iss: str, sid: str | None = None, sub: str | None = None) -> int:
        """Sign out the sessions :meth:`matching` finds, without a client: their tokens are
        forgotten (not revoked; ``Logto.handleBackchannelLogout`` revokes them too), their
        ids stay. Answers how many."""
        sessions = self.matching(iss=iss, sid=sid, sub=sub)
        for session in sessions:
            sign_out(session)
        return len(sessions)

    # ---- inside ---------------------------------------------------------------------------

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}server-session:{session_id}"

    def _index_key(self, kind: str, iss: str, value: str) -> str:
        pair = json.dumps([iss, value], separators=(",", ":")).encode()
        return f"{self.prefix}by-{kind}:{hashlib.sha256(pair).hexdigest()}"

    def _indexes(self, value: str | None) -> str:
        """The index sets of a session whose value is ``value`` (space-separated)."""
        session = decode_session(value) if value is not None else None
        if session is None or session.id_token is None:
            return ""
        try:  # decoding the session kept only an ID token that decodes; be safe anyway
            claims = decode_id_token_claims(session.id_token)
        except TokenValidationError:  # pragma: no cover - decode_session checked it
            return ""
        keys = [self._index_key("sub", claims.iss, claims.sub)]
        if claims.sid:
            keys.insert(0, self._index_key("sid", claims.iss, claims.sid))
        return " ".join(keys)

    def _read(self, session_id: str, key: str) -> str | None:
        with redis_errors("read", self._place):
            found = self._read_script(keys=[self._key(session_id)], args=[_VALUE + key, self._ttl])
        return decoded(found[1]) if found and len(found) > 1 else None

    def _write(
        self, session_id: str, key: str, expected: str | None, value: str | None, *, compare: bool
    ) -> bool:
        mode = "any" if not compare else ("absent" if expected is None else "equal")
        reindex = key == StorageKey.SESSION
        args: list[bytes | str | int] = [
            _VALUE + key,
            mode,
            encoded(expected) if expected is not None else b"",
            "1" if value is not None else "0",
            encoded(value) if value is not None else b"",
            self._ttl,
            "1" if reindex else "0",
            self._indexes(value) if reindex else "",
            session_id,
        ]
        with redis_errors("write", self._place):
            done = self._write_script(keys=[self._key(session_id)], args=args)
        return bool(done != 0)  # 2: an ended session ignores writes, as the in-memory one does

    def _handle(self, session_id: str) -> RedisRegisteredSession:
        with self._lock:
            cell = self._cells.get(session_id)
            if cell is None:
                cell = _Cell(session_id)
                self._cells[session_id] = cell
        return RedisRegisteredSession(self, cell)

    def _fresh_id(self) -> str:
        raw = self.runtime.random_bytes(SESSION_ID_BYTES)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def __repr__(self) -> str:
        return f"RedisSessionRegistry(redis={self._place}, idle_timeout={self.idle_timeout:g})"


def _is_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == _ID_LENGTH and set(value) <= _ID_CHARS


__all__ = ["RedisRegisteredSession", "RedisSessionRegistry"]
