"""The app's replay cache of logout tokens, kept in memory under a lock (both clients).

The cache itself is a pure value (:class:`logto_core.replay_cache.ReplayCache`); this holds
the current one for a :class:`~logto_adapters.sync.Logto` and makes "not seen before, so
record it" one step, so that two deliveries of one token at once (a provider's retry racing
the first attempt) cannot both pass. The lock is held for a dictionary copy and never across
an ``await``, so coroutines of any loop may use it as threads do.

One process's memory: workers of a multi-process server each have their own. A cache shared
through the coordinator is future work (the Redis coordinator); until then the ``iat``
window (two minutes) bounds what a replay to another worker could do.
"""

from __future__ import annotations

import threading

from logto_core.replay_cache import DEFAULT_LIMIT, ReplayCache


class ReplayGuard:
    """Check-and-record over one :class:`ReplayCache`, thread-safe."""

    __slots__ = ("_cache", "_lock")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._cache = ReplayCache(limit=limit)
        self._lock = threading.Lock()

    def record(self, key: str, until: float, now: float) -> bool:
        """True (and ``key`` remembered until ``until``) when it was not remembered at
        ``now``; False for a replay."""
        with self._lock:
            if self._cache.seen(key, now):
                return False
            self._cache = self._cache.with_entry(key, until, now)
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._cache = self._cache.without(key)

    @property
    def cache(self) -> ReplayCache:
        """The current value (for tests and exports)."""
        return self._cache

    def after_fork_in_child(self) -> ReplayGuard:
        """A guard for a forked child: the same entries, a lock no parent thread can hold."""
        child = ReplayGuard(self._cache.limit)
        child._cache = self._cache
        return child


__all__ = ["ReplayGuard"]
