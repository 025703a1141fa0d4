"""A user's session as an immutable value, and its mapping onto the tutorial's Storage.

The session holds the pending sign-in attempts (one per browser tab that started a sign-in),
the ID token, the refresh token and a cache of access tokens keyed by (resource, organization,
scopes). Flows take a :class:`SessionState` and return a new one.

In the storage, the whole session is **one value** under :attr:`StorageKey.SESSION`, so that
every save is a single ``Storage.set``: a storage that fails half way can never leave an ID
token without its refresh token, one user's tokens beside another's, or an access token of a
grant that is gone. Sessions written by the official SDK (and by earlier versions of this
one) under four separate keys are read too, and replaced by the one value at the next save.

Everything read back from a storage is untrusted: values that are not strings, oversized or
malformed JSON, entries of the wrong shape and ID tokens that do not decode count as absent,
never as an error, so a corrupt session is a signed-out one rather than a broken page.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import json_strict
from .errors import TokenValidationError
from .jose.jwt import decode_id_token_claims
from .token_cache import DEFAULT_LIMIT, EMPTY_CACHE, TokenCache

if TYPE_CHECKING:
    from .grants import UserGrant

MAX_PENDING_SIGN_INS = 8
"""Sign-in attempts remembered at once; the oldest is forgotten beyond this."""

PENDING_SIGN_IN_TTL = 3600.0
"""Seconds a sign-in attempt may take before its callback is refused."""

UNKNOWN_LIFETIME = 60.0
"""Lifetime assumed for an access token whose expiry is unknown (no expires_in, not a JWT)."""

DECODED_SESSIONS_CACHED = 1024
"""Sessions whose decoded form is memoised (see :func:`decode_session`)."""

MAX_STORED_BYTES = 256 * 1024
"""A stored session value longer than this is ignored (it holds a few tokens; a cookie session
cannot even carry 4 KiB), so a hostile value cannot cost the SDK time or memory."""

MAX_CACHED_TOKENS = DEFAULT_LIMIT  # 64
"""Access tokens kept in one session at most; entries beyond it are dropped when read."""

VERSION = 1
"""Version of the stored session format."""


class StorageKey:
    """Names of the Storage entries the SDK reads and writes."""

    SESSION = "logtoSession"
    """The whole session, one JSON value (what this SDK writes)."""

    # The official SDK's entries (and this SDK's before it stored one value): read when
    # SESSION is absent, deleted at the next save.
    ID_TOKEN = "idToken"
    REFRESH_TOKEN = "refreshToken"
    ACCESS_TOKENS = "accessTokenMap"
    SIGN_IN_SESSIONS = "signInSession"

    LEGACY = (ID_TOKEN, REFRESH_TOKEN, ACCESS_TOKENS, SIGN_IN_SESSIONS)
    ALL = (SESSION, *LEGACY)


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
        normalised = tuple(sorted({str(getattr(s, "value", s)) for s in scopes}))
        return cls(resource or None, organization_id or None, normalised or None)

    def encode(self) -> str:
        return json.dumps(
            [self.resource, self.organization_id, list(self.scopes) if self.scopes else None],
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, text: str) -> TokenKey:
        resource, org, scopes = json_strict.loads(text, max_depth=2, max_bytes=16 * 1024)
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
    """An access token with its absolute expiry and when it was obtained (seconds since the
    epoch, by the client's clock)."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    token: str = Field(repr=False)
    expires_at: float
    scope: str | None = None
    obtained_at: float | None = None
    """When the token was received; ``None`` for entries written by older versions."""

    def is_fresh(self, now: float, margin: float) -> bool:
        """Whether the token can still be handed out at ``now``.

        The refresh margin scales with the token's own lifetime (at most half of it), so a
        token issued for less than the margin is still used for half its life instead of
        being refreshed on every call. A clock that went back behind ``obtained_at`` makes the
        token's age unknown, so it is not fresh: a backwards step never extends a lifetime.
        """
        if self.obtained_at is not None:
            if now < self.obtained_at:
                return False
            margin = min(margin, (self.expires_at - self.obtained_at) / 2)
        return now < self.expires_at - margin


@dataclass(frozen=True, slots=True)
class SessionState:
    """Everything the SDK remembers about one user's session."""

    pending: tuple[PendingSignIn, ...] = ()
    id_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    access_tokens: Mapping[TokenKey, CachedAccessToken] = field(default_factory=dict, repr=False)
    legacy_keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """Official-SDK entries this session was read from, to delete at the next save."""

    def __post_init__(self) -> None:
        # The access tokens are held as a TokenCache (a read-only, bounded Mapping), whatever
        # mapping the session was built with.
        tokens = self.access_tokens
        if type(tokens) is not TokenCache:
            cache = TokenCache.of(tokens) if tokens else EMPTY_CACHE  # most sessions: none
            object.__setattr__(self, "access_tokens", cache)

    @property
    def grant(self) -> UserGrant | None:
        """The user's grant (ID token and refresh token); ``None`` when signed out."""
        from .grants import UserGrant  # grants.py builds on this module

        return UserGrant.of(self)

    @property
    def is_authenticated(self) -> bool:
        return self.id_token is not None

    @property
    def is_empty(self) -> bool:
        return not (self.pending or self.id_token or self.refresh_token or self.access_tokens)

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
        tokens = TokenCache.of(None)
        if access_token:
            tokens = tokens.with_entry(*access_token)
        return replace(self, id_token=id_token, refresh_token=refresh_token, access_tokens=tokens)

    def with_refresh_token(self, refresh_token: str) -> SessionState:
        return replace(self, refresh_token=refresh_token)

    def with_id_token(self, id_token: str) -> SessionState:
        return replace(self, id_token=id_token)

    def with_access_token(self, key: TokenKey, token: CachedAccessToken) -> SessionState:
        cache = TokenCache.of(self.access_tokens)
        return replace(self, access_tokens=cache.with_entry(key, token))

    def without_access_tokens(self, keys: Sequence[TokenKey] | None = None) -> SessionState:
        """The cache emptied (``keys=None``) or without those keys; the grant is kept."""
        cache = TokenCache.of(self.access_tokens)
        return replace(self, access_tokens=cache.without(keys))

    def cleared(self) -> SessionState:
        """All tokens forgotten; pending sign-ins (other tabs) are kept."""
        return SessionState(pending=self.pending, legacy_keys=self.legacy_keys)

    # ---- storage mapping ----------------------------------------------------------------

    def writes(self) -> dict[str, str | None]:
        """The storage writes that store this session (``None`` = delete the key): the one
        value, and the deletion of any official-SDK entry it was read from."""
        out: dict[str, str | None] = dict.fromkeys(sorted(self.legacy_keys))
        out[StorageKey.SESSION] = encode_session(self)
        return out

    @classmethod
    def load(cls, get: Callable[[str], Any]) -> SessionState:
        """Read a session from a synchronous string-valued storage."""
        value = get(StorageKey.SESSION)
        if type(value) is str:  # every page view of a signed-in user: one read, memoised
            return decode_session(value)
        reader = read_session(value)
        try:
            key = next(reader)
            while True:
                key = reader.send(get(key))
        except StopIteration as stop:
            session: SessionState = stop.value
            return session

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> SessionState:
        """The session that raw storage values describe (missing keys are absent)."""
        return cls.load(values.get)


_UNREAD = object()


def read_session(value: Any = _UNREAD) -> Generator[str, Any, SessionState]:
    """Read a session, as a generator that yields the storage keys it needs and receives
    their raw values (anything; only strings count), so that sync and async adapters share it.
    ``value``: the one value, when the caller read it already.

    One read when the session is stored as one value (or there is none: one read plus the
    two official-SDK keys that tell a signed-in legacy session); four reads for a legacy
    session.
    """
    if value is _UNREAD:
        value = yield StorageKey.SESSION
    if type(value) is str:
        return decode_session(value)
    id_token = yield StorageKey.ID_TOKEN
    refresh_token = yield StorageKey.REFRESH_TOKEN
    if type(id_token) is not str and type(refresh_token) is not str:
        return EMPTY
    tokens = yield StorageKey.ACCESS_TOKENS
    pending = yield StorageKey.SIGN_IN_SESSIONS
    return _decode_legacy(
        *(v if type(v) is str else None for v in (id_token, refresh_token, tokens, pending))
    )


EMPTY = SessionState()


# Every getter and every operation of a client reads the session back from the storage, several
# times per page view. Decoding (JSON, a model per token, the ID token's shape) is by far the
# most expensive part, and its result depends only on the stored string, which is immutable:
# the decoded session is memoised by it. The cached value is immutable too (a read-only token
# map), so sharing it between callers is safe.
@lru_cache(maxsize=DECODED_SESSIONS_CACHED)
def decode_session(text: str) -> SessionState:
    """The session a stored value describes; anything unreadable counts as absent."""
    data = _json_or_none(text)
    if not isinstance(data, dict):
        return EMPTY
    return SessionState(
        pending=_decode_pending(data.get("pending")),
        id_token=_valid_id_token(data.get("idToken")),
        refresh_token=_token_text(data.get("refreshToken")),
        access_tokens=_decode_tokens(data.get("accessTokens")),
    )


def encode_session(session: SessionState) -> str | None:
    """The stored value of ``session``; ``None`` (delete) when there is nothing to keep."""
    if session.is_empty:
        return None
    data: dict[str, Any] = {"v": VERSION}
    if session.id_token is not None:
        data["idToken"] = session.id_token
    if session.refresh_token is not None:
        data["refreshToken"] = session.refresh_token
    if session.access_tokens:
        data["accessTokens"] = {
            key.encode(): value.model_dump(mode="json", exclude_none=True)
            for key, value in session.access_tokens.items()
        }
    if session.pending:
        data["pending"] = [p.model_dump(mode="json") for p in session.pending]
    return json.dumps(data, separators=(",", ":"))


@lru_cache(maxsize=DECODED_SESSIONS_CACHED)
def _decode_legacy(
    id_token: str | None, refresh_token: str | None, tokens: str | None, pending: str | None
) -> SessionState:
    present = {
        key
        for key, value in zip(
            StorageKey.LEGACY, (id_token, refresh_token, tokens, pending), strict=True
        )
        if value is not None
    }
    return SessionState(
        pending=_decode_pending(_json_or_none(pending)),
        id_token=_valid_id_token(id_token),
        refresh_token=_token_text(refresh_token),
        access_tokens=_decode_tokens(_json_or_none(tokens)),
        legacy_keys=frozenset(present),
    )


def _token_text(value: Any) -> str | None:
    """A stored token: a non-empty string of visible ASCII (what the provider issued)."""
    if type(value) is not str or not value or not (value.isascii() and value.isprintable()):
        return None
    return value


def _valid_id_token(value: Any) -> str | None:
    """A stored ID token that still decodes; a corrupt one counts as absent, so that
    ``isAuthenticated()`` and ``getIdTokenClaims()`` always agree."""
    token = _token_text(value)
    if token is None:
        return None
    try:
        decode_id_token_claims(token)
    except TokenValidationError:
        return None
    return token


def _decode_pending(items: Any) -> tuple[PendingSignIn, ...]:
    if isinstance(items, dict):  # a single attempt, as older versions stored it
        items = [items]
    if not isinstance(items, list):
        return ()
    out = []
    for item in items[-MAX_PENDING_SIGN_INS:]:
        try:
            out.append(PendingSignIn.model_validate(item))
        except ValidationError:
            continue
    return tuple(out)


def _decode_tokens(items: Any) -> dict[TokenKey, CachedAccessToken]:
    if not isinstance(items, dict):
        return {}
    out: dict[TokenKey, CachedAccessToken] = {}
    for key, value in list(items.items())[:MAX_CACHED_TOKENS]:
        try:
            entry = CachedAccessToken.model_validate(value)
            if _token_text(entry.token) is None:
                continue
            out[TokenKey.decode(key)] = entry
        except (ValueError, TypeError):
            continue
    return out


MAX_STORED_DEPTH = 8
"""The stored value nests four levels deep; anything deeper is not one of ours."""


def _json_or_none(text: str | None) -> Any:
    """Stored JSON, or ``None`` when it is absent, oversized, too deep or not strict JSON
    (bounds checked before decoding: no input can cost time or a RecursionError)."""
    if not text:
        return None
    try:
        return json_strict.loads(text, max_depth=MAX_STORED_DEPTH, max_bytes=MAX_STORED_BYTES)
    except json_strict.StrictJsonError:
        return None
