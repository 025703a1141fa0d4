"""The table behind single flight: at most one refresh per grant, one code exchange per
callback, in flight at once, and what they settled, remembered.

A refresh token may be presented once: Logto rotates it, and presenting the consumed one
after its short reuse window revokes the whole grant. So every operation that needs to use a
refresh token first *claims* the flight of that grant (the key is a digest of the refresh
token, whatever the token is for: two API tokens wanted at once by one page are two uses of
one grant). The first claimer *leads* and refreshes; the others *follow* and wait for its
result; when it has published, later claimers get the result itself (*done*) and adopt it
instead of presenting the consumed token.

Results that settled a grant (a success: the successor of the refresh token; or a dead
grant) are kept for a long time (:data:`SUCCESSION_KEEP`, at most :data:`MAX_KEPT` of them):
a request interrupted after the provider rotated the token, or a storage that failed to take
the new one, leaves the consumed token in the user's storage (a cookie session keeps the old
cookie), and the next request must find its successor here. Transient failures are not kept:
the next caller tries again.

A grant can also be *ended* (signed out, or replaced by a new sign-in in the same session):
later claimers are told, and a copy of the session read before the sign-out cannot bring the
grant back. Callbacks use the same table, keyed by their ``state``: a double click waits for
the first exchange and shares it, and the same browser coming back with the same callback
later (a reload) adopts it: the code is never presented twice.

This module only keeps the table and never waits: it is pure, like the rest of the core.
Adapters protect it with a lock and give each flight a *handle* to resolve (a
``concurrent.futures.Future``, which followers on any thread or event loop can wait for).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

H = TypeVar("H")

KEEP_SECONDS = 10.0
"""How long a result that retired nothing is kept for callers that just missed the flight."""

SUCCESSION_KEEP = 14 * 24 * 3600.0
"""How long the successor of a refresh token is remembered: Logto's refresh-token lifetime."""

ENDED_KEEP = 14 * 24 * 3600.0
"""How long an ended grant is remembered."""

LEASE = 60.0
"""Seconds a leader may take before its flight is taken over (adapters pass their own)."""

MAX_KEPT = 1024
"""Finished entries (results and ended keys) kept at most; the oldest go first. Flights in
progress are never dropped."""


def digest(secret: str) -> str:
    """A key for a secret value: its SHA-256, so the table never holds the value itself."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def grant_key(refresh_token: str) -> str:
    """The flight key of every use of ``refresh_token``."""
    return "grant:" + digest(refresh_token)


def callback_key(state: str) -> str:
    """The flight key of the callback of the sign-in attempt ``state``."""
    return "callback:" + digest(state)


def client_credentials_key(endpoint: str, app_id: str, token_key: str) -> str:
    """The flight key of a machine-to-machine token (``token_key`` encoded): the app's own,
    whatever else shares the coordinator."""
    return "m2m:" + digest(f"{endpoint}\n{app_id}\n{token_key}")


@dataclass(frozen=True, slots=True)
class Lead(Generic[H]):
    """Run the work, then publish its result and resolve ``handle`` with it."""

    handle: H


@dataclass(frozen=True, slots=True)
class Follow(Generic[H]):
    """Wait for ``handle`` (the leader's) to be resolved with the result."""

    handle: H


@dataclass(frozen=True, slots=True)
class Done:
    """A leader already published this key's result: adopt ``result``."""

    result: Any


@dataclass(frozen=True, slots=True)
class Ended:
    """The key's story is over (a grant signed out or replaced, a callback used)."""


Ticket = Lead[Any] | Follow[Any] | Done | Ended
"""What a claim answers."""


@dataclass(slots=True)
class _Entry(Generic[H]):
    handle: H | None
    result: Any = None
    since: float = 0.0
    until: float = 0.0
    """A finished entry is kept until then; a running one is leased until then."""
    ended: bool = False

    @property
    def running(self) -> bool:
        return self.handle is not None


class FlightTable(Generic[H]):
    """Flights in progress, results kept, keys ended. Not thread-safe by itself."""

    def __init__(self, *, max_kept: int = MAX_KEPT) -> None:
        self._max_kept = max_kept
        self._entries: dict[str, _Entry[H]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def claim(
        self,
        key: str,
        handle: H,
        now: float,
        *,
        lease: float = LEASE,
        supersede: bool = False,
    ) -> Lead[H] | Follow[H] | Done | Ended:
        """Join the flight for ``key``: lead it with ``handle`` (leased for ``lease``
        seconds) if none is running or kept, follow the running one, or take what a finished
        one left (unless ``supersede``: the caller already took it and it was not enough, so
        a new flight starts). A flight whose lease ran out is taken over: its leader is gone
        (a crash, a caller interrupted before the work started) and will never publish."""
        entry = self._live(key, now)
        if (
            entry is None
            or (entry.running and now >= entry.until)
            or (supersede and not entry.running and not entry.ended)
        ):
            self._entries[key] = _Entry(handle, since=now, until=now + lease)
            return Lead(handle)
        if entry.handle is not None:
            return Follow(entry.handle)
        if entry.ended:
            return Ended()
        return Done(entry.result)

    def publish(self, key: str, handle: H, result: Any, now: float, *, keep: float) -> None:
        """Record the result of the leader holding ``handle``, kept ``keep`` seconds for later
        claimers (0: not kept); a leader whose flight was taken over records nothing. A key
        ended while its flight ran stays ended. The caller resolves the handle."""
        entry = self._entries.get(key)
        if entry is None or entry.handle is not handle:
            return
        entry.handle = None
        if entry.ended:
            entry.since, entry.until = now, now + ENDED_KEEP
            self._trim()
            return
        if keep <= 0:
            del self._entries[key]
            return
        entry.result, entry.since, entry.until = result, now, now + keep
        self._trim()

    def end(self, key: str, now: float, *, keep: float = ENDED_KEEP) -> None:
        """Mark ``key`` ended for ``keep`` seconds: later claimers get :class:`Ended`. A
        flight in progress still resolves its followers, but its result is not kept."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(None)
        entry.result, entry.ended = None, True
        if entry.running:  # its lease still applies; the end lasts from its publication
            return
        entry.since, entry.until = now, now + keep
        self._trim()

    def _live(self, key: str, now: float) -> _Entry[H] | None:
        entry = self._entries.get(key)
        if entry is None or entry.running:
            return entry
        # A finished entry lives until its time is up; one that claims to come from the
        # future (the clock went back) is of unknown age and dropped too.
        if now >= entry.until or now < entry.since:
            del self._entries[key]
            return None
        return entry

    def _trim(self) -> None:
        finished = [(e.until, k) for k, e in self._entries.items() if not e.running]
        if len(finished) <= self._max_kept:
            return
        finished.sort()
        for _, key in finished[: len(finished) - self._max_kept]:
            del self._entries[key]


__all__ = [
    "ENDED_KEEP",
    "KEEP_SECONDS",
    "LEASE",
    "MAX_KEPT",
    "SUCCESSION_KEEP",
    "Done",
    "Ended",
    "FlightTable",
    "Follow",
    "Lead",
    "Ticket",
    "callback_key",
    "digest",
    "grant_key",
]
