"""Bookkeeping for coalescing token refreshes: at most one refresh in flight per session.

A refresh token may be presented once: Logto rotates it, and presenting the consumed one
after its short reuse window revokes the whole grant. When several requests of one user need
a new access token at the same moment, the first one (the *leader*) runs the refresh and the
others (*followers*) wait and adopt its result: the same storage writes applied to their own
storage, and the same value or error.

Flights are keyed on (refresh token, token key), so coalescing works whatever the storage is
(a shared in-memory dict, or per-request copies of a cookie session): two callers holding the
same refresh token belong to the same grant. The key keeps only a digest of the token.

A finished result is kept for :data:`KEEP_SECONDS` when it settled the refresh token's fate
(a success, or a dead grant), so a caller that read the old refresh token just before the
leader stored the new one adopts the result instead of presenting the consumed token.
Transient failures are not kept: the next caller tries again.

This module only keeps the table; it never waits. Adapters protect it with a lock, and give
each flight a *handle* (a ``concurrent.futures.Future`` in practice) to resolve.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, TypeVar

from .errors import SignInRequiredError, TransportError
from .flows import Outcome
from .provider_state import ProviderState
from .session import SessionState, TokenKey

H = TypeVar("H")

KEEP_SECONDS = 10.0
"""How long a settled result is handed to latecomers holding the same refresh token."""

MAX_KEPT = 1024
"""Finished results kept at most (oldest dropped first); flights in progress are never dropped."""


class FlightKey(NamedTuple):
    """Digest of the refresh token, and what the token is for."""

    refresh_digest: str
    token_key: TokenKey


def refresh_digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


def flight_key(refresh_token: str, token_key: TokenKey) -> FlightKey:
    """The coalescing key of a refresh of ``refresh_token`` for ``token_key``."""
    return FlightKey(refresh_digest(refresh_token), token_key)


@dataclass(frozen=True, slots=True)
class Shared:
    """A leader's result as followers adopt it: the storage writes (``None`` = delete) and the
    outcome (its value or error; its session is the leader's)."""

    writes: Mapping[str, str | None]
    outcome: Outcome[Any]

    @property
    def settles_grant(self) -> bool:
        """True when the refresh token's fate is known: it worked, or the grant is dead."""
        error = self.outcome.error
        return error is None or isinstance(error, SignInRequiredError)


def interrupted(before: SessionState, provider: ProviderState) -> Shared:
    """What followers adopt when the leader stopped without an outcome (cancelled, or its
    storage failed): a transient error and no writes."""
    error = TransportError(
        "the concurrent refresh of this session did not complete",
        code="transport.refresh_interrupted",
    )
    return Shared({}, Outcome(None, before, provider, error))


@dataclass(frozen=True, slots=True)
class Lead(Generic[H]):
    """Run the refresh, then :meth:`SingleFlight.settle` and resolve ``handle``."""

    handle: H


@dataclass(frozen=True, slots=True)
class Follow(Generic[H]):
    """Wait for ``handle`` (the leader's) to be resolved with a :class:`Shared`."""

    handle: H


@dataclass(frozen=True, slots=True)
class Reuse:
    """A recent leader already settled this refresh: adopt ``result``."""

    result: Shared


@dataclass(slots=True)
class _Entry(Generic[H]):
    handle: H
    result: Shared | None = None
    expires_at: float = field(default=0.0)


class SingleFlight(Generic[H]):
    """The table of refreshes in flight and recently settled. Not thread-safe by itself."""

    def __init__(self, *, keep_seconds: float = KEEP_SECONDS, max_kept: int = MAX_KEPT) -> None:
        self._keep = keep_seconds
        self._max_kept = max_kept
        self._entries: dict[FlightKey, _Entry[H]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def claim(self, key: FlightKey, handle: H, now: float) -> Lead[H] | Follow[H] | Reuse:
        """Join the flight for ``key``: lead it with ``handle`` if none is running or kept,
        follow the running one, or reuse a kept result."""
        self.purge(now)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(handle)
            return Lead(handle)
        if entry.result is None:
            return Follow(entry.handle)
        return Reuse(entry.result)

    def settle(self, key: FlightKey, result: Shared, now: float) -> None:
        """Record the leader's result: kept for latecomers when it settled the grant, dropped
        otherwise. The caller resolves the handle with ``result``."""
        entry = self._entries.get(key)
        if entry is None or entry.result is not None:
            return
        if not result.settles_grant or self._keep <= 0:
            del self._entries[key]
            return
        entry.result = result
        entry.expires_at = now + self._keep
        self._trim()

    def forget(self, refresh_token: str) -> None:
        """Drop the kept results of a refresh token (after sign-out or a new sign-in).
        Flights in progress stay: their leader settles them."""
        digest = refresh_digest(refresh_token)
        for key in [k for k, e in self._entries.items() if k.refresh_digest == digest]:
            if self._entries[key].result is not None:
                del self._entries[key]

    def purge(self, now: float) -> None:
        """Drop kept results whose time is up (or that claim to come from the future: the
        clock went backwards, so their age is unknown)."""
        for key in [k for k, e in self._entries.items() if _stale(e, now, self._keep)]:
            del self._entries[key]

    def _trim(self) -> None:
        kept = [(e.expires_at, k) for k, e in self._entries.items() if e.result is not None]
        if len(kept) <= self._max_kept:
            return
        kept.sort()
        for _, key in kept[: len(kept) - self._max_kept]:
            del self._entries[key]


def _stale(entry: _Entry[Any], now: float, keep: float) -> bool:
    if entry.result is None:
        return False
    return now >= entry.expires_at or now < entry.expires_at - keep


__all__ = [
    "KEEP_SECONDS",
    "MAX_KEPT",
    "FlightKey",
    "Follow",
    "Lead",
    "Reuse",
    "Shared",
    "SingleFlight",
    "flight_key",
    "interrupted",
    "refresh_digest",
]
