"""Grants as kinds: each way of obtaining tokens with its own immutable state.

* :class:`TokenCache` - access tokens by :class:`~logto_core.session.TokenKey`, bounded,
  apart from whatever grant obtained them (a user's session holds one, and so does a
  machine-to-machine client).
* :class:`UserGrant` - the user's grant (authorization code, then refresh): the ID token
  and the refresh token of a session (:attr:`SessionState.grant
  <logto_core.session.SessionState.grant>`).
* :class:`ClientCredentialsState` - machine-to-machine tokens (RFC 6749 section 4.4): no
  user, no refresh token, only a cache of the tokens obtained.
* :class:`DeviceAuthorization` and :class:`DevicePolling` - the device authorization grant
  (RFC 8628): the response that starts it, and the polling as a pure state machine whose
  steps are :class:`Poll` (an absolute time, for a :class:`~logto_core.sleep.Sleep`),
  :class:`Granted` or :class:`Failed`.

Everything here is pure: the time is always a ``now`` argument (the runtime's clock), and
requests are built and responses read by the protocol-step pairs of the other modules.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import CachedAccessToken, SessionState, TokenKey

# ---- the access-token cache -------------------------------------------------------------
# session.py holds its tokens in a TokenCache and builds a SessionState when it is imported:
# this part of the module needs nothing from session.py at run time, so that either module
# can be imported first.

DEFAULT_LIMIT = 64
"""Entries a cache keeps by default: :data:`logto_core.session.MAX_CACHED_TOKENS`."""


class TokenCache(Mapping["TokenKey", "CachedAccessToken"]):
    """An immutable map of access tokens by what they were issued for, at most ``limit``
    entries (beyond it the entries closest to expiry are dropped, never the one just
    written). It is a read-only ``Mapping``, so it compares equal to a ``dict`` with the same
    entries."""

    __slots__ = ("_entries", "_limit")

    _entries: Mapping[TokenKey, CachedAccessToken]
    _limit: int

    def __init__(
        self,
        entries: Mapping[TokenKey, CachedAccessToken] | None = None,
        *,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        if limit < 1:
            raise ValueError("a token cache holds at least one entry")
        kept = _bounded(dict(entries or {}), limit, keep=None)
        object.__setattr__(self, "_entries", MappingProxyType(kept))
        object.__setattr__(self, "_limit", limit)

    @classmethod
    def of(cls, entries: Mapping[TokenKey, CachedAccessToken] | None) -> TokenCache:
        """``entries`` as a cache (itself when it is one already)."""
        if isinstance(entries, TokenCache):
            return entries
        return cls(entries)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # Mapping
    def __getitem__(self, key: TokenKey) -> CachedAccessToken:
        return self._entries[key]

    def __iter__(self) -> Iterator[TokenKey]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # keys only: the entries hold tokens
        return f"TokenCache(keys={list(self._entries)!r}, limit={self._limit})"

    @property
    def limit(self) -> int:
        return self._limit

    def fresh(self, key: TokenKey, now: float, margin: float) -> CachedAccessToken | None:
        """The entry for ``key`` if it can still be handed out at ``now``
        (:meth:`CachedAccessToken.is_fresh`), else ``None``."""
        entry = self._entries.get(key)
        if entry is None or not entry.is_fresh(now, margin):
            return None
        return entry

    def with_entry(self, key: TokenKey, entry: CachedAccessToken) -> TokenCache:
        """The cache with ``entry`` for ``key`` (replacing any), within the limit."""
        entries = dict(self._entries)
        entries.pop(key, None)  # a replaced entry moves to the end, as the newest
        entries[key] = entry
        return self._new(_bounded(entries, self._limit, keep=key))

    def without(self, keys: Iterable[TokenKey] | None = None) -> TokenCache:
        """The cache emptied (``keys=None``) or without those keys."""
        if keys is None:
            return self._new({})
        gone = set(keys)
        if not gone & self._entries.keys():
            return self
        return self._new({k: v for k, v in self._entries.items() if k not in gone})

    def _new(self, entries: dict[TokenKey, CachedAccessToken]) -> TokenCache:
        cache = object.__new__(type(self))
        object.__setattr__(cache, "_entries", MappingProxyType(entries))
        object.__setattr__(cache, "_limit", self._limit)
        return cache


def _bounded(
    entries: dict[TokenKey, CachedAccessToken], limit: int, *, keep: TokenKey | None
) -> dict[TokenKey, CachedAccessToken]:
    """``entries`` without those closest to expiry beyond ``limit`` (``keep`` is never
    dropped; among equal expiries the older entry goes first). Insertion order is kept."""
    excess = len(entries) - limit
    if excess <= 0:
        return entries
    candidates = [
        (entry.expires_at, position, key)
        for position, (key, entry) in enumerate(entries.items())
        if key != keep
    ]
    dropped = {key for _, _, key in heapq.nsmallest(excess, candidates)}
    return {k: v for k, v in entries.items() if k not in dropped}


EMPTY_CACHE = TokenCache()


# ---- the user's grant -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserGrant:
    """What a signed-in user's session holds of its grant (authorization code, then refresh):
    the ID token and, when offline access was granted, the refresh token."""

    id_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)

    @property
    def can_refresh(self) -> bool:
        return self.refresh_token is not None

    @classmethod
    def of(cls, session: SessionState) -> UserGrant | None:
        """The grant ``session`` holds; ``None`` when it is signed out (no ID token)."""
        if session.id_token is None:
            return None
        return cls(session.id_token, session.refresh_token)


__all__ = ["DEFAULT_LIMIT", "EMPTY_CACHE", "TokenCache", "UserGrant"]
