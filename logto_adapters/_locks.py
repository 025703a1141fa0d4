"""Per-session locks for saves, shared by both clients. Threads and event loops alike wait
on ``concurrent.futures.Future`` objects, so a caller on any thread or loop can wait for a
lock holder running on another.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterator, Hashable, Iterator

from logto_core.singleflight import digest


class KeyedLocks:
    """Mutual exclusion per key (per session: the key is its grant), never across keys.

    Ownership passes from a holder to the next waiter in order. Waiters wait on a
    ``concurrent.futures.Future`` that resolves when the lock is theirs, so threads (``held``)
    and coroutines of any loop (``held_async``) share one set of locks. A ``None`` key (a
    session without a grant: nothing to lose) takes no lock at all.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[Hashable, deque[concurrent.futures.Future[None]]] = {}

    @staticmethod
    def key_of(refresh_token: str | None) -> str | None:
        """The lock key of a session holding ``refresh_token`` (a digest, not the token)."""
        return None if refresh_token is None else digest(refresh_token)

    def _acquire(self, key: Hashable) -> concurrent.futures.Future[None] | None:
        with self._lock:
            queue = self._queues.get(key)
            if queue is None:
                self._queues[key] = deque()
                return None
            waiter: concurrent.futures.Future[None] = concurrent.futures.Future()
            # Running: a cancelled asyncio wrapper cannot cancel it, so passing the lock on
            # (set_result) never races a cancellation; _abandon handles a waiter that left.
            waiter.set_running_or_notify_cancel()
            queue.append(waiter)
            return waiter

    def _release(self, key: Hashable) -> None:
        with self._lock:
            queue = self._queues[key]
            if queue:
                queue.popleft().set_result(None)  # the next waiter owns it now
            else:
                del self._queues[key]

    def _abandon(self, key: Hashable, waiter: concurrent.futures.Future[None]) -> None:
        """A waiter gave up (cancelled): leave the queue, or pass on a lock already passed."""
        with self._lock:
            queue = self._queues.get(key)
            if queue is not None and waiter in queue:
                queue.remove(waiter)
                return
        self._release(key)

    @contextlib.contextmanager
    def _owned(self, key: Hashable | None) -> Iterator[None]:
        """The lock of ``key``, acquired already: released on the way out."""
        try:
            yield
        finally:
            if key is not None:
                self._release(key)

    @contextlib.contextmanager
    def held(self, key: Hashable | None) -> Iterator[None]:
        waiter = None if key is None else self._acquire(key)
        if waiter is not None:
            try:
                waiter.result()
            except BaseException:  # interrupted while waiting
                self._abandon(key, waiter)
                raise
        with self._owned(key):
            yield

    @contextlib.asynccontextmanager
    async def held_async(self, key: Hashable | None) -> AsyncIterator[None]:
        waiter = None if key is None else self._acquire(key)
        if waiter is not None:
            try:
                await asyncio.wrap_future(waiter)
            except BaseException:  # cancelled while waiting
                self._abandon(key, waiter)
                raise
        with self._owned(key):
            yield


__all__ = ["KeyedLocks"]
