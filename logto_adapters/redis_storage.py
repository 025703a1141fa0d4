"""Sessions on Redis: :class:`RedisStorage` (blocking, ``redis-py``) and
:class:`AsyncRedisStorage` (``redis.asyncio``; ``logto_adapters.aio.RedisStorage``), each the
:class:`~logto_core.storage.Storage` of one session, shared by every process of the app.

- **layout**: one Redis hash per session, ``<prefix>session:<sessionId>`` (``logto:`` by
  default), a field per storage key (the SDK's one value ``logtoSession``, an integration's
  ``logtoReturnTo``...). ``sessionId`` is checked (1 to 128 characters of ``A-Z a-z 0-9 _
  -``): nothing a browser sends can name another key.
- **atomic saves**: ``compare_and_set`` (:class:`~logto_core.storage.AtomicStorage`) is one
  Lua script, so a client's save is atomic across processes and machines: read, apply the
  change, compare-and-set; a save that another process overtook reads again.
- **lifetime**: every write sets the hash's TTL to ``ttl`` seconds (14 days by default:
  Logto's refresh-token lifetime; a session idle for longer could not refresh anyway).
- **connections**: the URL gives host, port, database, TLS (``rediss://``) and
  authentication (``redis://user:password@host:6379/0``); the other keyword options go to
  ``redis.Redis.from_url`` (``ssl_ca_certs``, ``socket_timeout``, ...). Storages made with the
  same URL and options share one client and its pool (per event loop for the asyncio one),
  so making one per request costs nothing; or pass ``client=`` to use your own.
- **outages**: a Redis that is down, hangs (``socket_timeout``, 2 s by default) or refuses
  raises :class:`~logto_core.errors.StorageError` ``storage.unavailable`` (or
  ``storage.redis_error`` when Redis answered an error), never redis-py's exception and
  never a value; the stored session is as it was (a write is one script: all or nothing),
  and the client keeps a rotated refresh token it could not store for the next attempt.

``redis`` is an optional dependency: ``pip install 'logto-sansio[redis]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import threading
import weakref
from collections.abc import AsyncGenerator, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from logto_core.errors import LogtoUsageError, StorageError
from logto_core.log import logger
from logto_core.storage import Storage

if TYPE_CHECKING:
    import redis
    import redis.asyncio

DEFAULT_PREFIX = "logto:"
DEFAULT_TTL = 14 * 24 * 3600.0
"""Seconds a session lives after its last write: Logto's refresh-token lifetime (14 days)."""

MAX_TTL = 400 * 24 * 3600.0
MAX_SESSION_ID = 128
MAX_PREFIX = 64

DEFAULT_OPTIONS: Mapping[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
"""Connection settings unless given: a Redis that hangs fails the request within seconds."""

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PREFIX = re.compile(r"[A-Za-z0-9_.:/-]{0,64}")
_SCHEMES = ("redis", "rediss", "unix")

# A compare-and-set (or a plain set) of one field of a session's hash, and its TTL, as one
# step. KEYS[1]: the hash. ARGV: field, compare ('any' | 'absent' | 'equal'), expected,
# has value ('1' | '0': delete), value, TTL in milliseconds. Answers 1 (written) or 0.
CAS_SCRIPT = """
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
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return 1
"""


# ---- checks --------------------------------------------------------------------------------


def checked_session_id(value: object) -> str:
    """``value`` if it may name a session: 1 to 128 characters of ``A-Z a-z 0-9 _ -``."""
    if not isinstance(value, str) or _SESSION_ID.fullmatch(value) is None:
        raise LogtoUsageError(
            f"a Redis session id is 1 to {MAX_SESSION_ID} characters of A-Z, a-z, 0-9, _ "
            "and - (no separator that could reach another key)",
            code="usage.redis_session_id",
        )
    return value


def checked_ttl(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 1 <= value <= MAX_TTL
    ):
        raise LogtoUsageError(
            "ttl must be a number of seconds from 1 to 400 days", code="usage.redis_options"
        )
    return float(value)


def checked_prefix(value: object) -> str:
    if not isinstance(value, str) or _PREFIX.fullmatch(value) is None:
        raise LogtoUsageError(
            f"prefix must be at most {MAX_PREFIX} characters of A-Z, a-z, 0-9 and _.:/-",
            code="usage.redis_options",
        )
    return value


def checked_url(url: object) -> str:
    """A Redis URL (``redis://``, ``rediss://`` for TLS, ``unix://``); never quoted back,
    since it may hold a password."""
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in _SCHEMES:
        raise LogtoUsageError(
            "the Redis URL must start with redis://, rediss:// (TLS) or unix://",
            code="usage.redis_url",
        )
    return url


def where(url: str) -> str:
    """The host and port (or socket path) of ``url``, for messages: never its password."""
    parts = urlsplit(url)
    try:
        place = parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"
    except ValueError:  # a malformed port
        place = str(parts.hostname)
    return place[:100]


def ttl_ms(ttl: float) -> int:
    return max(1, round(ttl * 1000))


# ---- errors --------------------------------------------------------------------------------


def redis_failed(error: BaseException, action: str, place: str) -> StorageError:
    """The typed error for redis-py's ``error``: its type and where Redis is, never its
    message (which may quote a command) nor a value."""
    import redis

    if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
        return StorageError(
            f"Redis at {place} is unavailable ({type(error).__name__}) to {action} the "
            "session; the stored session is as it was; check that Redis runs and is "
            "reachable with the URL's settings",
            code="storage.unavailable",
        )
    return StorageError(
        f"Redis at {place} refused to {action} the session ({type(error).__name__}); the "
        "stored session is as it was",
        code="storage.redis_error",
    )


@contextlib.contextmanager
def redis_errors(action: str, place: str) -> Iterator[None]:
    """redis-py's exceptions (and a socket's) raised inside, as :func:`redis_failed`."""
    import redis

    try:
        yield
    except (redis.RedisError, OSError) as error:
        raise redis_failed(error, action, place) from error


def _redis_module() -> Any:
    try:
        import redis
        import redis.asyncio
        import redis.asyncio.retry
        import redis.backoff
        import redis.retry
    except ImportError as error:  # pragma: no cover - redis is in the dev extra
        raise LogtoUsageError(
            "Redis storage needs redis-py: pip install 'logto-sansio[redis]'",
            code="usage.redis_missing",
        ) from error
    return redis


def connection_options(options: Mapping[str, Any], *, asyncio: bool = False) -> dict[str, Any]:
    """The options of ``from_url``: the defaults, those given, and one retry (no backoff)
    of a command whose connection was lost (a Redis restarted since the last request)."""
    redis = _redis_module()
    merged = {**DEFAULT_OPTIONS, **options}
    retry = redis.asyncio.retry.Retry if asyncio else redis.retry.Retry
    merged.setdefault(
        "retry", retry(redis.backoff.NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
    )
    return merged


def _options_key(url: str, options: Mapping[str, Any]) -> tuple[str, ...]:
    return (url, *(f"{name}={value!r}" for name, value in sorted(options.items())))


class _Clients:
    """Blocking clients by URL and options, one per process (redis-py's pool starts anew in
    a forked child)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, ...], redis.Redis] = {}

    def get(self, url: str, options: Mapping[str, Any]) -> redis.Redis:
        key = _options_key(url, options)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                redis = _redis_module()
                client = redis.Redis.from_url(url, **connection_options(options))
                self._clients[key] = client
            return client


class _AsyncClients:
    """asyncio clients by event loop, URL and options: a connection belongs to its loop, and
    some frameworks (Flask's async views) run each request in a loop of its own. A loop's
    clients are closed when it shuts its async generators down (``asyncio.run`` does), and
    forgotten once it is closed, so no connection outlives its loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop,
            dict[tuple[str, ...], tuple[redis.asyncio.Redis, AsyncGenerator[None, None]]],
        ] = weakref.WeakKeyDictionary()

    async def get(self, url: str, options: Mapping[str, Any]) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        key = _options_key(url, options)
        with self._lock:
            for other in [other for other in list(self._by_loop) if other.is_closed()]:
                self._by_loop.pop(other, None)
            clients = self._by_loop.setdefault(loop, {})
            entry = clients.get(key)
            if entry is not None:
                return entry[0]
            module = _redis_module()
            client: redis.asyncio.Redis = module.asyncio.Redis.from_url(
                url, **connection_options(options, asyncio=True)
            )
            # Kept with the client: the loop holds its async generators weakly.
            closer = _close_with_loop(client)
            clients[key] = (client, closer)
        # Started here so that the loop registers it: parked until the loop shuts its async
        # generators down, then it closes the client.
        await closer.__anext__()
        return client


async def _close_with_loop(client: redis.asyncio.Redis) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


CLIENTS = _Clients()
ASYNC_CLIENTS = _AsyncClients()


def _commands(client: object) -> Any:
    """``client`` to send raw commands with (redis-py's ``execute_command`` is untyped)."""
    return client


# ---- values --------------------------------------------------------------------------------


def encoded(value: str) -> bytes:
    """A value as stored (``surrogateescape``: whatever bytes were read are written back)."""
    return value.encode("utf-8", "surrogateescape")


def decoded(raw: object) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "surrogateescape")
    return str(raw)


def cas_args(
    field: str, expected: str | None, value: str | None, ttl: float, *, compare: bool = True
) -> list[bytes | str | int]:
    """The ARGV of :data:`CAS_SCRIPT`."""
    mode = "any" if not compare else ("absent" if expected is None else "equal")
    return [
        field,
        mode,
        encoded(expected) if expected is not None else b"",
        "1" if value is not None else "0",
        encoded(value) if value is not None else b"",
        ttl_ms(ttl),
    ]


# ---- the storages --------------------------------------------------------------------------


class _Settings:
    """What both storages check and keep."""

    __slots__ = ("_key", "_place", "ttl")

    def __init__(self, url: str, session_id: str, prefix: str, ttl: float) -> None:
        checked_url(url)
        self._key = f"{checked_prefix(prefix)}session:{checked_session_id(session_id)}"
        self._place = where(url)
        self.ttl = checked_ttl(ttl)

    @property
    def key(self) -> str:
        """The Redis key of the session's hash (it contains the session id: keep it out of
        logs)."""
        return self._key

    def __repr__(self) -> str:  # the session id is a bearer credential: never shown
        return f"{type(self).__name__}(redis={self._place}, ttl={self.ttl:g})"


class RedisStorage(_Settings, Storage):
    """The session ``sessionId`` in the Redis at ``url`` (blocking; see the module doc).

    :param url: ``redis://[user:password@]host[:port][/db]``, ``rediss://`` for TLS, or
        ``unix:///path/to/socket``.
    :param sessionId: the session's id (1 to 128 of ``A-Z a-z 0-9 _ -``), e.g. a random id
        kept in the browser's cookie.
    :param prefix: what every key starts with (``logto:``).
    :param ttl: seconds the session lives after its last write (14 days).
    :param client: a ``redis.Redis`` to use instead of one made from ``url`` and ``options``.
    :param options: more of ``redis.Redis.from_url``'s settings (``socket_timeout``: 2 s by
        default, ``ssl_ca_certs``, ``max_connections``...).
    """

    __slots__ = ("_client", "_script")

    def __init__(
        self,
        url: str,
        sessionId: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float = DEFAULT_TTL,
        client: redis.Redis | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, sessionId, prefix, ttl)
        self._client = client if client is not None else CLIENTS.get(url, options)
        self._script = self._client.register_script(CAS_SCRIPT)

    def get(self, key: str) -> str | None:
        with redis_errors("read", self._place):
            return decoded(_commands(self._client).execute_command("HGET", self._key, key))

    def set(self, key: str, value: str | None) -> None:
        with redis_errors("write", self._place):
            self._script(keys=[self._key], args=cas_args(key, None, value, self.ttl, compare=False))

    def delete(self, key: str) -> None:
        self.set(key, None)

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        """:class:`~logto_core.storage.AtomicStorage`: one Lua script."""
        with redis_errors("write", self._place):
            done = self._script(keys=[self._key], args=cas_args(key, expected, value, self.ttl))
        return bool(done)

    def clear(self) -> None:
        """Delete the whole session (every key of it)."""
        with redis_errors("write", self._place):
            _commands(self._client).execute_command("DEL", self._key)


class AsyncRedisStorage(_Settings):
    """:class:`RedisStorage` for the asyncio client (``redis.asyncio``), exported as
    ``logto_adapters.aio.RedisStorage``: the same arguments, its methods coroutines (an
    async storage). Without ``client`` it uses one client per event loop for ``url`` and
    ``options``."""

    __slots__ = ("_given", "_options", "_url")

    def __init__(
        self,
        url: str,
        sessionId: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float = DEFAULT_TTL,
        client: redis.asyncio.Redis | None = None,
        **options: Any,
    ) -> None:
        super().__init__(url, sessionId, prefix, ttl)
        _redis_module()
        self._url, self._options, self._given = url, options, client

    async def _redis(self) -> redis.asyncio.Redis:
        if self._given is not None:
            return self._given
        return await ASYNC_CLIENTS.get(self._url, self._options)

    async def get(self, key: str) -> str | None:
        client = await self._redis()
        with redis_errors("read", self._place):
            return decoded(await _commands(client).execute_command("HGET", self._key, key))

    async def set(self, key: str, value: str | None) -> None:
        await self._write(cas_args(key, None, value, self.ttl, compare=False))

    async def delete(self, key: str) -> None:
        await self.set(key, None)

    async def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        """:class:`~logto_core.storage.AtomicStorage`, as a coroutine: one Lua script."""
        return await self._write(cas_args(key, expected, value, self.ttl))

    async def clear(self) -> None:
        """Delete the whole session (every key of it)."""
        client = await self._redis()
        with redis_errors("write", self._place):
            await _commands(client).execute_command("DEL", self._key)

    async def _write(self, args: list[bytes | str | int]) -> bool:
        client = await self._redis()
        with redis_errors("write", self._place):
            done = await client.register_script(CAS_SCRIPT)(keys=[self._key], args=args)
        return bool(done)


# ---- the provider cache ----------------------------------------------------------------------

DEFAULT_PROVIDER_KEY = "logto:provider"
DEFAULT_PROVIDER_TTL = 7 * 24 * 3600.0
"""Seconds a published provider cache stays in Redis (stale parts are refetched anyway)."""


class RedisProviderCache:
    """Discovery metadata and key sets shared through Redis:
    ``Logto(config, provider_cache=RedisProviderCache(url))`` loads them when it starts (so a
    new worker fetches nothing still fresh) and publishes to them after each fetch (so the
    next worker starts with the newest). Blocking calls (the asyncio client makes its
    publications in a worker thread); a Redis away is logged, never raised: the client
    fetches from the provider instead.

    Everything read is checked as an export is (the issuer against the configuration, the
    key set's shape), but **Redis is trusted with the signing keys**: whoever can write
    under ``key`` can make the app accept tokens they signed. Use it only with a Redis that
    only the app can write to (the same trust as its sessions).

    :param key: the Redis key (one per Logto tenant and app configuration).
    :param ttl: seconds a publication stays (7 days).
    """

    def __init__(
        self,
        url: str,
        *,
        key: str = DEFAULT_PROVIDER_KEY,
        ttl: float = DEFAULT_PROVIDER_TTL,
        client: redis.Redis | None = None,
        **options: Any,
    ) -> None:
        checked_url(url)
        if not isinstance(key, str) or _PREFIX.fullmatch(key) is None or not key:
            raise LogtoUsageError(
                "key must be 1 to 64 characters of A-Z, a-z, 0-9 and _.:/-",
                code="usage.redis_options",
            )
        self.key = key
        self.ttl = checked_ttl(ttl)
        self._place = where(url)
        self._client = client if client is not None else CLIENTS.get(url, options)

    def load(self) -> str | None:
        """The last publication, or ``None`` (none, or Redis away: logged)."""
        try:
            with redis_errors("read", self._place):
                return decoded(_commands(self._client).execute_command("GET", self.key))
        except StorageError as error:
            logger.warning("provider cache not loaded from Redis: %s", error.code)
            return None

    def publish(self, text: str) -> None:
        """Store ``text`` (``exportProviderCache()``'s) for the workers that start next."""
        try:
            with redis_errors("write", self._place):
                _commands(self._client).execute_command(
                    "SET", self.key, encoded(text), "PX", ttl_ms(self.ttl)
                )
        except StorageError as error:
            logger.warning("provider cache not published to Redis: %s", error.code)

    def __repr__(self) -> str:
        return f"RedisProviderCache(redis={self._place}, key={self.key!r})"


__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_TTL",
    "AsyncRedisStorage",
    "RedisProviderCache",
    "RedisStorage",
]
