"""The coordinator: how the callers of one grant (or one callback, or one discovery or JWKS
fetch: :mod:`logto_core.shared_fetch`) agree that exactly one of them does the work and the
others take its result.

An operation claims a key (:class:`~logto_core.operations.Claim`); the coordinator answers a
ticket (:mod:`logto_core.singleflight`): *lead* (do the work, then publish), *follow* (wait
for the leader's result), *done* (a result kept from an earlier flight) or *ended* (the grant
was signed out). A lead is leased: a leader that dies (its process killed mid-refresh) loses
the flight when the lease runs out, and the next claimer leads.

Results cross the coordinator as text (:func:`~logto_core.changes.encode_result`), never as
live objects, so that a coordinator shared by many processes (Redis) can store and forward
them as they are. Each client takes one through ``Logto(config, coordinator=...)``; the
default, ``MemoryCoordinator`` in :mod:`logto_adapters`, serves one process;
``RedisCoordinator`` (:mod:`logto_adapters.redis_coordination`) serves many.

A coordinator shared by processes fails in its own way: its methods raise
:class:`~logto_core.errors.CoordinationError` (except ``publish``, which never raises), and
``wait`` raises :class:`~logto_core.errors.LeaderLostError` when the leader's process died
before publishing (the operations then claim again). What each failure does to a request is
in :mod:`logto_core.operations`.

These are protocols only: the core never calls them. Adapters perform the operations'
``Claim``, ``Publish``, ``AwaitFlight`` and ``EndFlight`` effects with them.
"""

from __future__ import annotations

from typing import Any, Protocol

from .singleflight import Follow, Lead, Ticket


class Coordinator(Protocol):
    """A coordinator for blocking clients (all its methods may block on the network)."""

    def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket:
        """Join the flight of ``key``. ``lease``: seconds the caller may lead before the
        flight is taken over. ``supersede``: a kept result was adopted and was not enough;
        lead a new flight instead of answering it again."""
        ...

    def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None:
        """The leader's result: hand it to the followers, and keep it ``keep`` seconds for
        later claimers (0: not kept). A leader whose flight was taken over publishes
        nothing. Never raises."""
        ...

    def wait(self, follow: Follow[Any], timeout: float) -> str | None:
        """The result the leader of ``follow`` publishes; ``None`` after ``timeout``
        seconds without one; :class:`~logto_core.errors.LeaderLostError` when that leader
        lost its lead without publishing (its process died)."""
        ...

    def end(self, key: str) -> None:
        """Mark ``key`` ended (a grant signed out or replaced): later claimers get
        ``Ended``, so a stale copy of a session cannot bring the grant back."""
        ...


class AsyncCoordinator(Protocol):
    """:class:`Coordinator` for asyncio clients: the same methods, as coroutines."""

    async def claim(self, key: str, *, lease: float, supersede: bool = False) -> Ticket: ...

    async def publish(self, key: str, lead: Lead[Any], result: str, *, keep: float) -> None: ...

    async def wait(self, follow: Follow[Any], timeout: float) -> str | None: ...

    async def end(self, key: str) -> None: ...


__all__ = ["AsyncCoordinator", "Coordinator"]
