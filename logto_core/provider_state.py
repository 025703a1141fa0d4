"""What the client knows about the provider: discovery metadata and signing keys, as a value.

One :class:`ProviderState` is shared by every user of a client (it holds nothing
user-specific), and it can be exported and imported as JSON so that several processes or
serverless instances can share it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NoReturn

from pydantic import ValidationError

from . import json_strict
from .config import LogtoConfig
from .errors import DiscoveryError, LogtoUsageError, ProviderError
from .http import MAX_BODY_BYTES
from .jose.keys import KeySet, refetch_allowed
from .models import OidcProviderMetadata
from .protocol.discovery import check_metadata


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
        """Whether an unknown ``kid`` may force a refetch now (one per ``jwksRefetchCooldown``,
        see :func:`logto_core.jose.keys.refetch_allowed`)."""
        return refetch_allowed(self.last_forced_jwks_refetch, now, config.jwksRefetchCooldown)

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
        """Import a state exported by :meth:`to_json` (another process's, say).

        The text goes through the strict decoder (:mod:`logto_core.json_strict`), the
        metadata through the same model checks as a fresh discovery document, the keys
        through :meth:`KeySet.from_json`. Raises :class:`ProviderError`
        (``provider_state.cache_invalid``) for anything else than such an export, or the
        :class:`JwksError` of :meth:`KeySet.from_json`; never a raw library exception.
        """
        try:
            data = json_strict.loads(text, max_bytes=MAX_STATE_CHARS)
        except json_strict.StrictJsonError as exc:
            _invalid(f"is not strict JSON ({exc})")
        if not isinstance(data, dict):
            _invalid("is not a JSON object")
        metadata = data.get("metadata")
        keys = data.get("keys")
        fetched_at = data.get("metadata_fetched_at")
        fetched_at = 0.0 if fetched_at is None else fetched_at
        forced = data.get("last_forced_jwks_refetch")
        if metadata is not None and not isinstance(metadata, dict):
            _invalid("has a metadata member that is not an object")
        if keys is not None and not isinstance(keys, str):
            _invalid("has a keys member that is not an exported key set")
        if not _is_time(fetched_at) or (forced is not None and not _is_time(forced)):
            _invalid("has a fetch time that is not a finite number")
        return cls(
            metadata=_metadata(metadata) if metadata else None,
            metadata_fetched_at=float(fetched_at),
            keys=KeySet.from_json(keys) if keys else None,
            last_forced_jwks_refetch=None if forced is None else float(forced),
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


MAX_STATE_CHARS = 4 * MAX_BODY_BYTES
"""Exports longer than this are refused unread (metadata and keys each come from one
response body, and the key set is embedded as an escaped string)."""


def _invalid(detail: str) -> NoReturn:
    raise ProviderError(f"cached provider state {detail}", code="provider_state.cache_invalid")


def _is_time(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metadata(payload: dict[str, Any]) -> OidcProviderMetadata:
    try:
        return OidcProviderMetadata.model_validate(payload)
    except ValidationError as exc:
        # Name the fields, never the values (as for a fresh discovery document).
        fields = sorted({".".join(str(p) for p in e["loc"]) or "<root>" for e in exc.errors()})
        _invalid(f"has invalid metadata: bad or missing {', '.join(fields)}")


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


def imported_state(config: LogtoConfig, text: object) -> ProviderState | None:
    """The provider state in an export (:meth:`ProviderState.to_json`) given to a client of
    ``config``; ``None`` for none. The metadata must pass the checks of a fresh discovery
    for this configuration (an export from another tenant or endpoint is refused), so a
    cache file can never make the client trust another issuer."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise LogtoUsageError(
            "provider_cache must be the string exportProviderCache() returned",
            code="usage.provider_cache",
        )
    state = ProviderState.from_json(text)
    if state.metadata is not None:
        try:
            check_metadata(state.metadata, config)
        except DiscoveryError as error:
            _invalid(f"does not fit this configuration ({error.message})")
    return state
