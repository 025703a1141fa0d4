"""What was received before, as a bounded value: the replay cache of logout tokens.

Back-Channel Logout 1.0 section 2.6 step 8: a logout token whose ``jti`` was received
recently is refused. Each entry is kept until the token it came from stops being acceptable
anyway (:attr:`~logto_core.protocol.logout_token.LogoutToken.until`), so the cache never
needs to remember for longer, and at most ``limit`` entries are kept, the oldest dropped
first. Only tokens that passed every other check (the provider's signature among them) are
recorded, so no one but the provider can fill it.

A :class:`ReplayCache` is immutable and pure (the time is passed in); the adapters keep one
per app under a lock (``logto_adapters._replay``), and may keep it elsewhere (a shared
store) as long as the check and the record are one step.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import LogtoUsageError

DEFAULT_LIMIT = 10_000
"""Entries kept at most: far more logout tokens than a provider sends in their lifetime
(two minutes), and a few hundred kilobytes of digests."""


@dataclass(frozen=True, slots=True)
class ReplayCache(Mapping[str, float]):
    """Keys received, each with the time until which it must be remembered, oldest first.

    A read-only :class:`~collections.abc.Mapping` (key to ``until``).
    """

    _entries: Mapping[str, float] = field(default_factory=dict)
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise LogtoUsageError("a replay cache keeps at least one entry", code="usage.replay")
        # Frozen, whatever mapping was given; the order is the order of recording.
        object.__setattr__(self, "_entries", MappingProxyType(dict(self._entries)))

    def __getitem__(self, key: str) -> float:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def seen(self, key: str, now: float) -> bool:
        """Whether ``key`` was recorded and is still remembered at ``now``."""
        until = self._entries.get(key)
        return until is not None and now < until

    def with_entry(self, key: str, until: float, now: float) -> ReplayCache:
        """The cache with ``key`` remembered until ``until``: entries past their time are
        dropped, and the oldest ones beyond the limit (never the one just recorded). An
        entry whose time is already over is not recorded at all."""
        kept = {k: t for k, t in self._entries.items() if now < t and k != key}
        if now < until:
            kept[key] = until
        excess = len(kept) - self.limit
        if excess > 0:
            for old in list(kept)[:excess]:
                del kept[old]
        return ReplayCache(kept, self.limit)

    def without(self, key: str) -> ReplayCache:
        """The cache forgetting ``key`` (a logout that failed after it was recorded, so that
        the provider may send the same token again)."""
        if key not in self._entries:
            return self
        return ReplayCache({k: t for k, t in self._entries.items() if k != key}, self.limit)

    def __repr__(self) -> str:
        return f"ReplayCache(entries={len(self._entries)}, limit={self.limit})"


EMPTY_REPLAY_CACHE = ReplayCache()

__all__ = ["DEFAULT_LIMIT", "EMPTY_REPLAY_CACHE", "ReplayCache"]
