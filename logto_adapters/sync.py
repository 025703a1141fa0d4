"""The blocking Logto client, over ``requests``.

Drop-in for the tutorial with ``from logto_adapters.sync import LogtoClient, LogtoConfig``;
every method is a plain call (no ``await``)::

    client = LogtoClient(LogtoConfig(endpoint=..., appId=..., appSecret=...), storage=...)
    url = client.signIn(redirectUri="https://your-app.com/callback")
    client.handleSignInCallback(request.url)
    client.getIdTokenClaims()

What every method does is written once, in :mod:`logto_core.operations`; this module only
performs their effects: the ``requests`` transport, the storage reads and writes (saves of
one session one at a time, saves of different sessions never waiting for each other), waits
on the single flight that makes concurrent callers of one grant share one refresh, and
shielded work (a refresh or a code exchange runs on a worker thread, with the caller's
context, so that an exception raised in the caller by a signal handler stops its waiting, not
the work: the rotated refresh token is stored and shared all the same).

Thread-safety: one client may serve many threads (and users, with a per-request storage such
as a Flask session). Discovery and keys are shared by all its users. A process forked after
the client was used starts clean in the child (no shared connections or in-flight state).

An API receiving Logto access tokens verifies them with ``LogtoResourceServer`` (one per
app; see docs/protecting-apis.md)::

    api = LogtoResourceServer("https://tenant.logto.app", "https://api.example.com")
    claims = api.verifyAuthorization(request.headers.get("Authorization"), ["read"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import public
from ._sync.client import (
    Logto,
    LogtoClient,
    LogtoM2MClient,
    LogtoResourceServer,
    LogtoSession,
    SessionLookup,
)
from ._sync.kit import SyncOptions, Transport
from .coordination import MemoryCoordinator
from .public import *  # noqa: F403 - the tutorial's names, re-exported
from .redis_storage import RedisStorage

if TYPE_CHECKING:
    from .redis_coordination import RedisCoordinator as RedisCoordinator

__all__ = [
    "Logto",
    "LogtoClient",
    "LogtoM2MClient",
    "LogtoResourceServer",
    "LogtoSession",
    "MemoryCoordinator",
    "RedisStorage",
    "SessionLookup",
    "SyncOptions",
    "Transport",
]
__all__ += public.__all__


def __getattr__(name: str) -> object:
    """``RedisCoordinator`` (RedisCoordinator), imported when asked for: redis-py is an extra
    (``pip install 'logto-sansio[redis]'``), so it is not in ``__all__``."""
    if name == "RedisCoordinator":
        try:
            from .redis_coordination import RedisCoordinator
        except ImportError as error:  # pragma: no cover - the extra is installed in tests
            raise ImportError(
                "RedisCoordinator needs redis-py: pip install 'logto-sansio[redis]'"
            ) from error
        return RedisCoordinator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
