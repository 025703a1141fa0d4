"""The asyncio Logto client, over ``httpx``.

Drop-in for the tutorial with ``from logto_adapters.aio import LogtoClient, LogtoConfig``:
the network methods (``signIn``, ``handleSignInCallback``, ``signOut``, ``fetchUserInfo``,
``getAccessToken``, ``getAccessTokenClaims``, ``getOrganizationToken``,
``getOrganizationTokenClaims``) are coroutines; ``isAuthenticated``, ``getIdToken``,
``getIdTokenClaims`` and ``getRefreshToken`` are plain methods, as the tutorial calls them.

Storage. Both the tutorial's synchronous :class:`Storage` and an *async storage* (whose
``get``/``set``/``delete`` return awaitables, detected on every call) are accepted.

* With a synchronous storage, the plain getters read the storage, always up to date.
* With an async storage, a plain method cannot await it. The plain getters then answer from
  the session *snapshot* of the current context: every awaited call of this client (and the
  awaitable twins below) stores the session it read or wrote in a ``contextvars`` variable,
  so a request handler that awaited anything of the client sees that request's session, and
  never another user's. Without a snapshot (nothing awaited yet in this context) they raise
  :class:`LogtoUsageError`; call the awaitable twins instead, which always read the storage:
  ``await client.isAuthenticatedAsync()``, ``getIdTokenAsync()``, ``getIdTokenClaimsAsync()``,
  ``getRefreshTokenAsync()``.

Event loops. The client works from any number of loops, one after the other or at once in
several threads: ``httpx.AsyncClient`` instances are kept per loop (see
:mod:`logto_adapters.transport_httpx`) and concurrent refreshes of one session coalesce
across loops and threads.

What every method does is written once, in :mod:`logto_core.operations`; this module only
performs their effects with awaits. A refresh or a code exchange runs in a task of its own
on the caller's loop, which the caller only awaits: a caller cancelled after the request
reached the provider (an ASGI server cancels a request whose browser went away) stops
waiting, while the task stores the rotated refresh token and hands the result to the callers
waiting on it.

An API receiving Logto access tokens verifies them with ``LogtoResourceServer`` (one per
app; see docs/protecting-apis.md)::

    api = LogtoResourceServer("https://tenant.logto.app", "https://api.example.com")
    claims = await api.verifyAuthorization(request.headers.get("Authorization"), ["read"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import public
from ._async.client import (
    Logto,
    LogtoClient,
    LogtoM2MClient,
    LogtoResourceServer,
    LogtoSession,
    SessionLookup,
)
from ._async.kit import (
    AnyStorage,
    AsyncAtomicStorage,
    AsyncOptions,
    AsyncStorage,
    AsyncTransport,
)
from .coordination import AsyncMemoryCoordinator
from .public import *  # noqa: F403 - the tutorial's names, re-exported
from .redis_storage import AsyncRedisStorage

if TYPE_CHECKING:
    from .redis_coordination import AsyncRedisCoordinator

    RedisCoordinator = AsyncRedisCoordinator

MemoryCoordinator = AsyncMemoryCoordinator
"""The in-process coordinator (the default), under the name both client modules use."""

RedisStorage = AsyncRedisStorage
"""One session in Redis, for the asyncio client (``redis.asyncio``; the ``redis`` extra):
``RedisStorage(url, sessionId)``; see :mod:`logto_adapters.redis_storage`."""

__all__ = [
    "AnyStorage",
    "AsyncAtomicStorage",
    "AsyncOptions",
    "AsyncStorage",
    "AsyncTransport",
    "Logto",
    "LogtoClient",
    "LogtoM2MClient",
    "LogtoResourceServer",
    "LogtoSession",
    "MemoryCoordinator",
    "RedisStorage",
    "SessionLookup",
]
__all__ += public.__all__


def __getattr__(name: str) -> object:
    """``RedisCoordinator`` (AsyncRedisCoordinator), imported when asked for: redis-py is an extra
    (``pip install 'logto-sansio[redis]'``), so it is not in ``__all__``."""
    if name == "RedisCoordinator":
        try:
            from .redis_coordination import AsyncRedisCoordinator
        except ImportError as error:  # pragma: no cover - the extra is installed in tests
            raise ImportError(
                "RedisCoordinator needs redis-py: pip install 'logto-sansio[redis]'"
            ) from error
        return AsyncRedisCoordinator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
