"""A user's session as an immutable value, and its mapping onto the tutorial's Storage.

The session holds the pending sign-in attempts (one per browser tab that started a sign-in),
the ID token, the refresh token and a cache of access tokens keyed by (resource, organization,
scopes). Flows take a :class:`SessionState` and return a new one; adapters persist it through
a string-valued key/value :class:`~logto_core.storage.Storage` with :meth:`SessionState.load`
and :meth:`SessionState.changes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_PENDING_SIGN_INS = 8
"""Sign-in attempts remembered at once; the oldest is forgotten beyond this."""

PENDING_SIGN_IN_TTL = 3600.0
"""Seconds a sign-in attempt may take before its callback is refused."""

UNKNOWN_LIFETIME = 60.0
"""Lifetime assumed for an access token whose expiry is unknown (no expires_in, not a JWT)."""

DECODED_SESSIONS_CACHED = 1024
"""Sessions whose decoded form is memoised (see :meth:`SessionState.from_values`)."""


class StorageKey:
    """Names of the Storage entries the SDK writes (compatible with the official SDK's)."""

    ID_TOKEN = "idToken"
    REFRESH_TOKEN = "refreshToken"
    ACCESS_TOKENS = "accessTokenMap"
    SIGN_IN_SESSIONS = "signInSession"

    ALL = (ID_TOKEN, REFRESH_TOKEN, ACCESS_TOKENS, SIGN_IN_SESSIONS)


class PendingSignIn(BaseModel):
    """One sign-in attempt between ``signIn`` and its callback."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    state: str = Field(repr=False)
    nonce: str = Field(repr=False)
    code_verifier: str = Field(repr=False)
    redirect_uri: str
    created_at: float


class TokenKey(NamedTuple):
    """What an access token was issued for. ``None`` means "not specified"."""

    resource: str | None = None
    organization_id: str | None = None
    scopes: tuple[str, ...] | None = None

    @classmethod
    def of(
        cls,
        resource: str | None = None,
        organization_id: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> TokenKey:
        """The normalised key: empty values mean "not specified", scopes are a sorted set."""
        if not scopes:  # the common case, on every page view: no set, no sort
            return cls(resource or None, organization_id or None, None)
        normalised = (
            tuple(sorted({str(getattr(s, "value", s)) for s in scopes})) if scopes else None
        )
        return cls(resource or None, organization_id or None, normalised or None)

    def encode(self) -> str:
        return json.dumps(
            [self.resource, self.organization_id, list(self.scopes) if self.scopes else None],
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str) -> TokenKey:
        resource, org, scopes = json.loads(text)
        if not (resource is None or isinstance(resource, str)):
            raise ValueError("bad resource")
        if not (org is None or isinstance(org, str)):
            raise ValueError("bad organization")
        if scopes is not None and not (
            isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)
        ):
            raise ValueError("bad scopes")
        return cls(resource, org, tuple(scopes) if scopes else None)


class CachedAccessToken(BaseModel):
    """An access token with its absolute expiry (seconds since the epoch)."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    token: str = Field(repr=False)
    expires_at: float
    scope: str | None = None

    def is_fresh(self, now: float, margin: float) -> bool:
        return now < self.expires_at - margin


@dataclass(frozen=True, slots=True)
class SessionState:
    """Everything the SDK remembers about one user's session."""

    pending: tuple[PendingSignIn, ...] = ()
    id_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    access_tokens: Mapping[TokenKey, CachedAccessToken] = field(default_factory=dict, repr=False)

    @property
    def is_authenticated(self) -> bool:
        return self.id_token is not None

    # ---- transitions used by the flows -------------------------------------------------

    def with_pending(self, attempt: PendingSignIn, now: float) -> SessionState:
        """Add a sign-in attempt, dropping expired ones and the oldest beyond the limit."""
        alive = [p for p in self.pending if now - p.created_at < PENDING_SIGN_IN_TTL]
        alive.append(attempt)
        return replace(self, pending=tuple(alive[-MAX_PENDING_SIGN_INS:]))

    def without_pending(self, state: str) -> SessionState:
        return replace(self, pending=tuple(p for p in self.pending if p.state != state))

    def signed_in(
        self,
        *,
        id_token: str,
        refresh_token: str | None,
        access_token: tuple[TokenKey, CachedAccessToken] | None,
    ) -> SessionState:
        """The state after a successful code exchange: new tokens, an empty cache."""
        tokens = dict([access_token]) if access_token else {}
        return replace(self, id_token=id_token, refresh_token=refresh_token, access_tokens=tokens)

    def with_refresh_token(self, refresh_token: str) -> SessionState:
        return replace(self, refresh_token=refresh_token)

    def with_id_token(self, id_token: str) -> SessionState:
        return replace(self, id_token=id_token)

    def with_access_token(self, key: TokenKey, token: CachedAccessToken) -> SessionState:
        tokens = dict(self.access_tokens)
        tokens[key] = token
        return replace(self, access_tokens=tokens)

    def cleared(self) -> SessionState:
        """All tokens forgotten; pending sign-ins (other tabs) are kept."""
        return SessionState(pending=self.pending)

    # ---- storage mapping ----------------------------------------------------------------

    @classmethod
    def load(cls, get: Callable[[str], Any]) -> SessionState:
        """Read a session from a string-valued storage. Corrupt entries count as absent."""
        return cls.from_entries(
            get(StorageKey.ID_TOKEN),
            get(StorageKey.REFRESH_TOKEN),
            get(StorageKey.ACCESS_TOKENS),
            get(StorageKey.SIGN_IN_SESSIONS),
        )

    @classmethod
    def from_values(cls, values: Mapping[str, str | None]) -> SessionState:
        """The session the raw storage values describe. Corrupt entries count as absent."""
        return cls.from_entries(*(values.get(key) for key in StorageKey.ALL))

    @staticmethod
    def from_entries(id_token: Any, refresh_token: Any, tokens: Any, pending: Any) -> SessionState:
        """The session from the four entries, in :attr:`StorageKey.ALL` order. A value that is
        not a string (a broken storage) counts as absent, like corrupt JSON. This runs several
        times per page view, hence the inline type tests."""
        return _decode_cached(
            id_token if type(id_token) is str else None,
            refresh_token if type(refresh_token) is str else None,
            tokens if type(tokens) is str else None,
            pending if type(pending) is str else None,
        )

    def dump(self) -> dict[str, str | None]:
        """Every storage entry of this session; ``None`` means "delete the key"."""
        return {
            StorageKey.ID_TOKEN: self.id_token,
            StorageKey.REFRESH_TOKEN: self.refresh_token,
            StorageKey.ACCESS_TOKENS: _encode_tokens(self.access_tokens),
            StorageKey.SIGN_IN_SESSIONS: _encode_pending(self.pending),
        }

    def changes(self, before: SessionState) -> dict[str, str | None]:
        """The storage writes that turn ``before`` into this state (``None`` = delete)."""
        out: dict[str, str | None] = {}
        if self.id_token != before.id_token:
            out[StorageKey.ID_TOKEN] = self.id_token
        if self.refresh_token != before.refresh_token:
            out[StorageKey.REFRESH_TOKEN] = self.refresh_token
        if self.access_tokens != before.access_tokens:
            out[StorageKey.ACCESS_TOKENS] = _encode_tokens(self.access_tokens)
        if self.pending != before.pending:
            out[StorageKey.SIGN_IN_SESSIONS] = _encode_pending(self.pending)
        return out


# Every getter and every operation of a client reads the whole session back from the storage,
# several times per page view. Decoding the access-token map (JSON plus a model per token) is
# by far the most expensive part, and its result depends only on the stored strings, which
# are immutable: the decoded session is memoised by them. The cached value is immutable too
# (a read-only token map), so sharing it between callers is safe.
@lru_cache(maxsize=DECODED_SESSIONS_CACHED)
def _decode_cached(
    id_token: str | None, refresh_token: str | None, tokens: str | None, pending: str | None
) -> SessionState:
    return SessionState(
        pending=_decode_pending(pending),
        id_token=id_token or None,
        refresh_token=refresh_token or None,
        access_tokens=MappingProxyType(_decode_tokens(tokens)),
    )


def _encode_pending(pending: tuple[PendingSignIn, ...]) -> str | None:
    if not pending:
        return None
    return json.dumps([p.model_dump(mode="json") for p in pending], separators=(",", ":"))


def _decode_pending(text: str | None) -> tuple[PendingSignIn, ...]:
    items = _json_or_none(text)
    if isinstance(items, dict):  # a single attempt, as older versions stored it
        items = [items]
    if not isinstance(items, list):
        return ()
    out = []
    for item in items:
        try:
            out.append(PendingSignIn.model_validate(item))
        except ValidationError:
            continue
    return tuple(out)


def _encode_tokens(tokens: Mapping[TokenKey, CachedAccessToken]) -> str | None:
    if not tokens:
        return None
    return json.dumps(
        {key.encode(): value.model_dump(mode="json") for key, value in tokens.items()},
        separators=(",", ":"),
    )


def _decode_tokens(text: str | None) -> dict[TokenKey, CachedAccessToken]:
    items = _json_or_none(text)
    if not isinstance(items, dict):
        return {}
    out: dict[TokenKey, CachedAccessToken] = {}
    for key, value in items.items():
        try:
            out[TokenKey.decode(key)] = CachedAccessToken.model_validate(value)
        except (ValueError, TypeError):
            continue
    return out


def _json_or_none(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
