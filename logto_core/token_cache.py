"""The access-token cache as its own immutable value: tokens by what they were issued for,
bounded, apart from whatever grant obtained them (a user's session holds one,
:attr:`SessionState.access_tokens <logto_core.session.SessionState.access_tokens>`, and so
does a machine-to-machine client, :class:`logto_core.grants.ClientCredentialsState`).

It needs nothing from the rest of the SDK at run time, so that ``session.py`` can build on it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .session import CachedAccessToken, TokenKey

DEFAULT_LIMIT = 64
"""Entries a cache keeps by default (a session's, :data:`logto_core.session.MAX_CACHED_TOKENS`)."""


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


__all__ = ["DEFAULT_LIMIT", "EMPTY_CACHE", "TokenCache"]
