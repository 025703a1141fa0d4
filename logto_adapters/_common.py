"""What both clients share besides their public names (those are in :mod:`.public`):
the exchange policy and its waits, the revocation settings, storage errors, fork safety.
The flight table and per-session locks are in :mod:`._flights`, background jobs in
:mod:`._background`.

The clients share their protocol logic through :mod:`logto_core` (the operations in
:mod:`logto_core.operations`); each only adds an interpreter for the effects.
"""

from __future__ import annotations

import asyncio
import os
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from logto_core.config import LogtoConfig
from logto_core.context import Context
from logto_core.errors import LogtoError, LogtoUsageError, StorageError
from logto_core.log import logger
from logto_core.runtime import Runtime
from logto_core.session import SessionState, StorageKey
from logto_core.sleep import Sleep
from logto_core.transport_policy import ExchangePolicy, RetryPolicy, Timeout, split_timeout

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 15.0)
"""``(connect, total)`` seconds of one provider exchange, retries included."""


def exchange_policy(timeout: Timeout, max_retries: int) -> ExchangePolicy:
    """The clients' exchanges: ``max_retries`` retries of discovery and JWKS fetches, all
    attempts within the ``(connect, total)`` timeout."""
    return ExchangePolicy(RetryPolicy(max_retries=max_retries), timeout)


def sleep(effect: Sleep, runtime: Runtime) -> object:
    """Do a :class:`Sleep`: wait until ``effect.until`` on the runtime's clock (never more
    than :data:`logto_core.sleep.MAX_SLEEP`); its result is ``None``."""
    time.sleep(effect.seconds(runtime.now()))
    return None


async def sleep_async(effect: Sleep, runtime: Runtime) -> object:
    """:func:`sleep` on the running event loop."""
    await asyncio.sleep(effect.seconds(runtime.now()))
    return None


RevocationMode = Literal["inline", "background"]
"""When a sign-out revokes the refresh token: ``"inline"`` (the default: before ``signOut``
returns, waiting at most ``revocation_timeout`` seconds, after which it goes on in the
background) or ``"background"`` (``signOut`` returns at once). Either way the local sign-out
never waits on the provider's answer longer than that, and revocations still running are
finished at ``close()`` and at interpreter exit, within ``revocation_timeout``."""

DEFAULT_REVOCATION_TIMEOUT = 3.0
"""Seconds ``signOut`` waits for the revocation (inline mode), and that interpreter exit
waits for unfinished revocations in total."""


def waits_for_revocation(mode: object) -> bool:
    """Whether ``mode`` (the clients' ``revocation`` option) waits for the revocation."""
    if mode not in ("background", "inline"):
        raise LogtoUsageError(
            'revocation must be "inline" or "background"', code="usage.revocation_mode"
        )
    return mode == "inline"


def checked_revocation_timeout(seconds: object) -> float:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 <= seconds < float("inf")
    ):
        raise LogtoUsageError(
            "revocation_timeout must be a finite number of seconds, 0 or more",
            code="usage.revocation_timeout",
        )
    return float(seconds)


def refresh_wait_bound(timeout: Timeout, refresh_wait: float | None) -> float:
    """How long a follower waits for a concurrent refresh: as asked, else four total
    timeouts (the leader's refresh may need discovery, the token exchange and the keys)."""
    return refresh_wait if refresh_wait is not None else 4 * split_timeout(timeout)[1]


def storage_failed(action: str, key: str, error: BaseException) -> StorageError:
    """The typed error for a storage that raised; its exception is chained by the caller
    (``raise ... from error``). The message names the key and the exception's type only: a
    storage's own message may quote the value, which holds tokens."""
    return StorageError(
        f"the session storage failed to {action} {key!r} ({type(error).__name__}); the stored "
        "session is unchanged; check the storage (a database, Redis, the framework's session)",
        code=f"storage.{action}",
    )


SESSION_WRITE_ORDER = (StorageKey.SESSION, *StorageKey.LEGACY)
"""The session value is written first, then official-SDK entries deleted: a failure half way
leaves either the old session or the new one, never a mix."""


def ordered(writes: Mapping[str, str | None]) -> list[tuple[str, str | None]]:
    return sorted(writes.items(), key=lambda item: SESSION_WRITE_ORDER.index(item[0]))


# ---- a provider cache shared between processes ----------------------------------------------


class ProviderCacheStore(Protocol):
    """Where processes share what they know of the provider (discovery, keys):
    ``Logto(config, provider_cache=store)`` loads it when it starts and publishes to it
    after each fetch (``RedisProviderCache``). Blocking calls that never raise."""

    def load(self) -> str | None:
        """The last publication (``exportProviderCache()``'s text), or ``None``."""
        ...

    def publish(self, text: str) -> None:
        """Keep ``text`` for the processes that start next."""
        ...


def provider_cache_option(option: object) -> tuple[object, ProviderCacheStore | None]:
    """The ``provider_cache`` option as (the text to start from, the store to publish to):
    an export as it is, or a store's last publication and the store."""
    load, publish = getattr(option, "load", None), getattr(option, "publish", None)
    if isinstance(option, str) or not (callable(load) and callable(publish)):
        return option, None
    store: Any = option
    try:
        text = store.load()
    except Exception as error:  # a store of the app's: it should not raise; start empty
        logger.warning("provider cache not loaded (%s)", type(error).__name__)
        text = None
    return text, store


def shared_context(
    config: LogtoConfig, option: object, **settings: Any
) -> tuple[Context, ProviderCacheStore | None]:
    """The client's :class:`Context`, and the store to publish to when ``option`` is one.
    A store's publication that does not fit (another tenant's, damaged) is ignored with a
    warning rather than failing the start."""
    text, store = provider_cache_option(option)
    if store is None:
        return Context(config, provider_cache=text, **settings), None
    try:
        return Context(config, provider_cache=text, **settings), store
    except LogtoError as error:
        logger.warning("provider cache ignored: %s", error.code)
        return Context(config, **settings), store


def publish_provider(store: ProviderCacheStore, text: str) -> None:
    try:
        store.publish(text)
    except Exception as error:  # a store of the app's: it should not raise
        logger.warning("provider cache not published (%s)", type(error).__name__)


# ---- the atomic save (storages with compare_and_set) ----------------------------------------

MAX_SAVE_ROUNDS = 10
"""Times a save reads the session again after another process wrote it in between, before
giving up with ``storage.contended``."""

SIGNED_OUT_MARK = '{"v":1}'
"""An empty session as a stored value (it reads as signed out). Stored, briefly, in place of a
session read from the official SDK's entries and left empty: while those entries are deleted,
a concurrent save must not read them again as a live session."""


@dataclass(frozen=True, slots=True)
class AtomicWrite:
    """How a storage with ``compare_and_set`` stores a session: the one value, compared and
    set (``value``, ``None`` to delete), then the official-SDK entries it was read from
    deleted (``legacy``), then, when ``value`` is :data:`SIGNED_OUT_MARK`, the mark removed
    (``unmark``)."""

    value: str | None
    legacy: tuple[str, ...]

    @property
    def unmark(self) -> bool:
        return self.value == SIGNED_OUT_MARK

    @classmethod
    def of(cls, session: SessionState) -> AtomicWrite:
        writes = session.writes()
        value = writes.pop(StorageKey.SESSION)
        legacy = tuple(key for key, _ in ordered(writes))
        if value is None and legacy:
            value = SIGNED_OUT_MARK
        return cls(value, legacy)


def compare_and_set_of(storage: object) -> Callable[..., Any] | None:
    """The storage's ``compare_and_set`` (:class:`~logto_core.storage.AtomicStorage`), or
    ``None`` for a plain storage."""
    method = getattr(storage, "compare_and_set", None)
    return method if callable(method) else None


def save_contended() -> StorageError:
    """A save that lost :data:`MAX_SAVE_ROUNDS` races in a row."""
    return StorageError(
        f"the session changed {MAX_SAVE_ROUNDS} times while this request was saving it "
        "(other processes saving the same session at once); nothing was written; try again",
        code="storage.contended",
    )


class ForkSafe:
    """Objects that hold per-process state (connection pools, locks, in-flight tables):
    :meth:`after_fork_in_child` runs in every child forked after they were made (a gunicorn
    ``--preload`` master that used the client before forking its workers)."""

    def after_fork_in_child(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


_FORK_SAFE: weakref.WeakSet[ForkSafe] = weakref.WeakSet()


def track_forks(obj: ForkSafe) -> None:
    _FORK_SAFE.add(obj)


def _reset_in_child() -> None:
    for obj in list(_FORK_SAFE):
        obj.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)
