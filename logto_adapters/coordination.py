"""The in-process coordinator both clients use by default.

:class:`MemoryCoordinator` (blocking) and :class:`AsyncMemoryCoordinator` (asyncio) keep the
flight table (:class:`~logto_core.singleflight.FlightTable`) of one process behind a lock.
Each flight's handle is a ``concurrent.futures.Future``, which followers on any thread or
event loop can wait for, so one coordinator serves every thread and loop of the process. For
many processes, pass a coordinator they share (they implement the protocols in
:mod:`logto_core.coordination`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.singleflight import FlightTable, Follow, Lead, Ticket

from ._common import ForkSafe, track_forks

Handle = concurrent.futures.Future[str]
"""A flight's handle: resolved with the leader's published result."""


class _MemoryFlights(ForkSafe):
    """The table, its lock and the handles; shared by the two coordinators' methods."""

    def __init__(self, runtime: Runtime | None) -> None:
        self._runtime = runtime if runtime is not None else DEFAULT_RUNTIME
        self._lock = threading.Lock()
        self._table: FlightTable[Handle] = FlightTable()
        track_forks(self)

    def after_fork_in_child(self) -> None:
        """A forked child starts with no flights: the parent's leaders are not its own. (The
        kept successors of rotated tokens go too; the child's first callers refresh anew
        only with tokens the parent had not rotated.)"""
        self._lock = threading.Lock()
        self._table = FlightTable()

    def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
        handle: Handle = concurrent.futures.Future()
        handle.set_running_or_notify_cancel()  # a running future cannot be cancelled
        with self._lock:
            return self._table.claim(
                key, handle, self._runtime.now(), lease=lease, supersede=supersede
            )

    def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None:
        handle: Handle = lead.handle
        with self._lock:
            self._table.publish(key, handle, result, self._runtime.now(), keep=keep)
        if not handle.done():
            handle.set_result(result)

    def end(self, key: str) -> None:
        with self._lock:
            self._table.end(key, self._runtime.now())


class MemoryCoordinator:
    """Single flight within this process, for the blocking client (the default)."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._flights = _MemoryFlights(runtime)

    def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
        return self._flights.claim(key, lease=lease, supersede=supersede)

    def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None:
        self._flights.publish(key, lead, result, keep=keep)

    def wait(self, follow: Follow[Any], timeout: float) -> str | None:
        handle: Handle = follow.handle
        try:
            return handle.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            return None

    def end(self, key: str) -> None:
        self._flights.end(key)


class AsyncMemoryCoordinator:
    """Single flight within this process, for the asyncio client (the default): callers on
    any event loop (and thread) of the process share it."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._flights = _MemoryFlights(runtime)

    async def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
        return self._flights.claim(key, lease=lease, supersede=supersede)

    async def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None:
        self._flights.publish(key, lead, result, keep=keep)

    async def wait(self, follow: Follow[Any], timeout: float) -> str | None:
        # wrap_future hands the result over to this loop thread-safely, whichever loop (or
        # thread) the leader runs on.
        handle: Handle = follow.handle
        try:
            return await asyncio.wait_for(asyncio.wrap_future(handle), timeout)
        except asyncio.TimeoutError:
            return None

    async def end(self, key: str) -> None:
        self._flights.end(key)


__all__ = ["AsyncMemoryCoordinator", "MemoryCoordinator"]
