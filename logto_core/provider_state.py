"""What the client knows about the provider: discovery metadata and signing keys, as a value.

One :class:`ProviderState` is shared by every user of a client (it holds nothing
user-specific), and it can be exported and imported as JSON so that several processes or
serverless instances can share it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .config import LogtoConfig
from .jwks import KeySet
from .models import OidcProviderMetadata


@dataclass(frozen=True, slots=True)
class ProviderState:
    metadata: OidcProviderMetadata | None = None
    metadata_fetched_at: float = 0.0
    keys: KeySet | None = None
    last_forced_jwks_refetch: float | None = None
    """When an unknown ``kid`` last forced a refetch; bounds refetches to one per cooldown."""

    def fresh_metadata(self, config: LogtoConfig, now: float) -> OidcProviderMetadata | None:
        if self.metadata is None or now - self.metadata_fetched_at >= config.discoveryMaxAge:
            return None
        if now < self.metadata_fetched_at:  # the clock went backwards: don't trust the age
            return None
        return self.metadata

    def fresh_keys(self, config: LogtoConfig, now: float) -> KeySet | None:
        if self.keys is None or not (0 <= now - self.keys.fetched_at < config.jwksMaxAge):
            return None
        return self.keys

    def may_force_jwks_refetch(self, config: LogtoConfig, now: float) -> bool:
        last = self.last_forced_jwks_refetch
        return last is None or now - last >= config.jwksRefetchCooldown or now < last

    def with_metadata(self, metadata: OidcProviderMetadata, now: float) -> ProviderState:
        return replace(self, metadata=metadata, metadata_fetched_at=now)

    def with_keys(self, keys: KeySet, *, forced_at: float | None = None) -> ProviderState:
        state = replace(self, keys=keys)
        if forced_at is not None:
            state = replace(state, last_forced_jwks_refetch=forced_at)
        return state

    def to_json(self) -> str:
        return json.dumps(
            {
                "metadata": self.metadata.model_dump(mode="json") if self.metadata else None,
                "metadata_fetched_at": self.metadata_fetched_at,
                "keys": self.keys.to_json() if self.keys else None,
                "last_forced_jwks_refetch": self.last_forced_jwks_refetch,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ProviderState:
        data = json.loads(text)
        return cls(
            metadata=OidcProviderMetadata.model_validate(data["metadata"])
            if data.get("metadata")
            else None,
            metadata_fetched_at=float(data.get("metadata_fetched_at") or 0.0),
            keys=KeySet.from_json(data["keys"]) if data.get("keys") else None,
            last_forced_jwks_refetch=data.get("last_forced_jwks_refetch"),
        )


class ProviderCache:
    """The one :class:`ProviderState` a client shares between all its flows, as they run.

    A flow starts from a snapshot of it, but publishes what it fetches (metadata, keys) as
    soon as it has it, and looks at the cache again before fetching: concurrent flows that
    all found the keys stale then make one fetch between them, not one each (the adapters
    also share identical requests in flight). Merging keeps the newest part by part
    (:func:`newest`), so publishing in any order never loses a newer fetch. No lock: a merge
    lost to a race only costs a later refetch, never a wrong answer.
    """

    __slots__ = ("_state",)

    def __init__(self, state: ProviderState | None = None) -> None:
        self._state = state if state is not None else ProviderState()

    @property
    def state(self) -> ProviderState:
        return self._state

    def merge(self, candidate: ProviderState) -> ProviderState:
        """Adopt what ``candidate`` knows that is newer; answer the merged state."""
        if candidate is not self._state:
            self._state = newest(self._state, candidate)
        return self._state


def newest(current: ProviderState, candidate: ProviderState) -> ProviderState:
    """Merge two views of the provider, keeping the most recently fetched metadata and keys.

    Several flows run concurrently against one shared state; each returns the state as it saw
    it, so the client keeps, part by part, whichever is newest.
    """
    metadata, metadata_at = current.metadata, current.metadata_fetched_at
    if candidate.metadata is not None and (
        metadata is None or candidate.metadata_fetched_at > metadata_at
    ):
        metadata, metadata_at = candidate.metadata, candidate.metadata_fetched_at
    keys = _newest_keys(current.keys, candidate.keys)
    forced = [
        t
        for t in (current.last_forced_jwks_refetch, candidate.last_forced_jwks_refetch)
        if t is not None
    ]
    return ProviderState(metadata, metadata_at, keys, max(forced) if forced else None)


def _newest_keys(current: KeySet | None, candidate: KeySet | None) -> KeySet | None:
    """The newer key set; two sets fetched at the same instant (a forced refetch racing a
    plain fetch, or a coarse clock) are united by key id, so a freshly published key is never
    dropped by the order in which concurrent flows finish."""
    if candidate is None or candidate is current:
        return current
    if current is None or candidate.fetched_at > current.fetched_at:
        return candidate
    if candidate.fetched_at < current.fetched_at:
        return current
    seen = {_identity(key) for key in candidate.keys}
    extra = tuple(key for key in current.keys if _identity(key) not in seen)
    return KeySet(candidate.keys + extra, candidate.fetched_at) if extra else candidate


def _identity(key: Mapping[str, Any]) -> str:
    kid = key.get("kid")
    return f"kid:{kid}" if isinstance(kid, str) else json.dumps(dict(key), sort_keys=True)
