"""What an operation changes in a session, as functions applied at save time.

An operation reads the session, talks to the provider, and saves. Meanwhile the session may
have moved on: another request of the same user refreshed it, signed out, or signed in as
someone else. So a save is not "write what I computed" but "apply this change to what the
storage holds now", done by the adapter atomically for the session (see
:class:`logto_core.operations.SaveSession`). Each change here is a pure function from the
current session to the new one, or ``None`` to refuse: a refresh result is stored only if the
session still holds the grant the refresh started from (compare on the grant, not on
timing), so a late result can never sign a user back in after a sign-out, nor overwrite
another user's session.

The values that followers of a flight adopt (:class:`Refreshed`, :class:`SignedIn`) are plain
data, not live objects, so that a coordinator shared between processes can carry them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from . import json_strict
from .errors import (
    LogtoError,
    SignInRequiredError,
    TransportError,
    error_from_data,
    error_to_data,
)
from .session import CachedAccessToken, PendingSignIn, SessionState, TokenKey

Change = Callable[[SessionState], SessionState | None]
"""The new session given the stored one, or ``None`` to leave the storage as it is."""


@dataclass(frozen=True, slots=True)
class Refreshed:
    """What one refresh of a grant settled: the rotated refresh token (``None``: unchanged),
    a refreshed ID token, the access token obtained, and the failure if any."""

    refresh_token: str | None = field(repr=False)
    id_token: str | None = field(repr=False)
    token_key: TokenKey
    entry: CachedAccessToken | None = field(repr=False)
    error: LogtoError | None = None

    @property
    def dead(self) -> bool:
        """The provider said the grant is dead: every copy of the session is signed out."""
        return isinstance(self.error, SignInRequiredError)

    @property
    def retires_token(self) -> bool:
        """Whether the refresh token the result was obtained with is now unusable (rotated
        away, or its grant dead), so that every holder of it must adopt this result instead
        of presenting it. A refresh that did not rotate (or failed transiently) leaves the
        token usable: later callers refresh with it themselves."""
        return self.dead or self.refresh_token is not None

    @classmethod
    def between(
        cls, before: SessionState, after: SessionState, key: TokenKey, error: LogtoError | None
    ) -> Refreshed:
        """The result of a refresh flow that started from ``before`` and ended at ``after``."""
        return cls(
            refresh_token=(
                after.refresh_token if after.refresh_token != before.refresh_token else None
            ),
            id_token=after.id_token if after.id_token != before.id_token else None,
            token_key=key,
            entry=after.access_tokens.get(key),
            error=error,
        )


def refreshed(from_refresh_token: str, result: Refreshed) -> Change:
    """Adopt ``result`` if the session still holds the refresh token it was obtained with."""

    def apply(current: SessionState) -> SessionState | None:
        if current.refresh_token != from_refresh_token:
            return None  # signed out, signed in again, or already moved on
        if result.dead:
            return current.cleared()
        session = current
        if result.refresh_token is not None:
            session = session.with_refresh_token(result.refresh_token)
        if result.id_token is not None:
            session = session.with_id_token(result.id_token)
        if result.entry is not None:
            session = session.with_access_token(result.token_key, result.entry)
        return session

    return apply


@dataclass(frozen=True, slots=True)
class SignedIn:
    """What the code exchange of one callback settled: the attempt it consumed, and the new
    grant (or the failure)."""

    state: str = field(repr=False)
    id_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)
    entry: CachedAccessToken | None = field(repr=False)
    error: LogtoError | None = None

    @classmethod
    def of(cls, state: str, after: SessionState, error: LogtoError | None) -> SignedIn:
        if error is not None or after.id_token is None:
            return cls(state, None, None, None, error)
        return cls(
            state, after.id_token, after.refresh_token, after.access_tokens.get(TokenKey()), None
        )


def signed_in(result: SignedIn) -> Change:
    """Consume the attempt and, on success, replace whatever grant the session held. A
    session without the attempt (it was consumed meanwhile) is left alone."""

    def apply(current: SessionState) -> SessionState | None:
        if not any(p.state == result.state for p in current.pending):
            return None
        session = current.without_pending(result.state)
        if result.id_token is None:
            return session
        return session.signed_in(
            id_token=result.id_token,
            refresh_token=result.refresh_token,
            access_token=(TokenKey(), result.entry) if result.entry is not None else None,
        )

    return apply


def added_pending(attempts: Sequence[PendingSignIn], now: float) -> Change:
    """Remember new sign-in attempts."""

    def apply(current: SessionState) -> SessionState:
        session = current
        for attempt in attempts:
            session = session.with_pending(attempt, now)
        return session

    return apply


def consumed(state: str) -> Change:
    """Forget the sign-in attempt ``state`` (a callback is single-use)."""

    def apply(current: SessionState) -> SessionState | None:
        if not any(p.state == state for p in current.pending):
            return None
        return current.without_pending(state)

    return apply


def signed_out(current: SessionState) -> SessionState:
    """Every token forgotten, whatever grant the session holds now; other tabs' pending
    sign-ins are kept."""
    return current.cleared()


def cleared_if(refresh_token: str) -> Change:
    """Forget the tokens if the session still holds ``refresh_token`` (its grant ended)."""

    def apply(current: SessionState) -> SessionState | None:
        return current.cleared() if current.refresh_token == refresh_token else None

    return apply


def dropped_token(key: TokenKey, token: str) -> Change:
    """Forget the cached access token for ``key`` if it is still ``token`` (the provider
    refused it), so that the next call refreshes."""

    def apply(current: SessionState) -> SessionState | None:
        entry = current.access_tokens.get(key)
        if entry is None or entry.token != token:
            return None
        return current.without_access_tokens([key])

    return apply


def cached_token(key: TokenKey, entry: CachedAccessToken) -> Change:
    """Cache ``entry`` for ``key`` (a machine-to-machine token: there is no grant to
    compare on, and a newer token is as good as any)."""

    def apply(current: SessionState) -> SessionState:
        return current.with_access_token(key, entry)

    return apply


def dropped_tokens(keys: Sequence[TokenKey] | None) -> Change:
    """Forget the cached access tokens of ``keys`` (every one when ``None``), keeping the
    grant: the next call for one of them asks the provider."""

    def apply(current: SessionState) -> SessionState | None:
        if not current.access_tokens:
            return None
        return current.without_access_tokens(keys)

    return apply


def device_signed_in(after: SessionState) -> Change:
    """Replace whatever grant the session held with the one a device sign-in obtained
    (``after``'s tokens); pending browser sign-ins are kept."""

    def apply(current: SessionState) -> SessionState | None:
        if after.id_token is None:
            return None
        entry = after.access_tokens.get(TokenKey())
        return current.signed_in(
            id_token=after.id_token,
            refresh_token=after.refresh_token,
            access_token=(TokenKey(), entry) if entry is not None else None,
        )

    return apply


__all__ = [
    "Change",
    "Refreshed",
    "SignedIn",
    "added_pending",
    "cached_token",
    "cleared_if",
    "consumed",
    "device_signed_in",
    "dropped_token",
    "dropped_tokens",
    "refreshed",
    "signed_in",
    "signed_out",
]


# ---- results on the wire ----------------------------------------------------------------
# What a leader publishes through the coordinator, as JSON text: a coordinator shared between
# processes (Redis) stores and forwards it as it is, and every follower decodes its own copy.

MAX_RESULT_CHARS = 256 * 1024
"""A result holds at most three tokens; anything longer is not one."""


def encode_result(result: Refreshed | SignedIn) -> str:
    """``result`` as the text a coordinator carries."""
    data: dict[str, Any] = {
        "refreshToken": result.refresh_token,
        "idToken": result.id_token,
        "entry": result.entry.model_dump(mode="json") if result.entry is not None else None,
        "error": error_to_data(result.error) if result.error is not None else None,
    }
    if isinstance(result, Refreshed):
        data["kind"], data["tokenKey"] = "refreshed", result.token_key.encode()
    else:
        data["kind"], data["state"] = "signed_in", result.state
    return json.dumps(data, separators=(",", ":"))


def decode_refreshed(text: object) -> Refreshed:
    """The :class:`Refreshed` in ``text``; a transient failure (the next caller refreshes
    again) when ``text`` is not one, so a damaged entry never signs anyone out."""
    data = _result_data(text, "refreshed")
    try:
        key = TokenKey.decode(data["tokenKey"]) if data is not None else None
    except (ValueError, TypeError, json_strict.StrictJsonError):
        key = None
    if data is None or key is None:
        return Refreshed(None, None, TokenKey(), None, _invalid_result())
    return Refreshed(
        _text(data.get("refreshToken")),
        _text(data.get("idToken")),
        key,
        _entry(data.get("entry")),
        _error(data.get("error")),
    )


def decode_signed_in(text: object, state: str) -> SignedIn:
    """The :class:`SignedIn` of the attempt ``state`` in ``text``; a transient failure when
    ``text`` is not one (or is another attempt's)."""
    data = _result_data(text, "signed_in")
    if data is None or data.get("state") != state:
        return SignedIn(state, None, None, None, _invalid_result())
    return SignedIn(
        state,
        _text(data.get("idToken")),
        _text(data.get("refreshToken")),
        _entry(data.get("entry")),
        _error(data.get("error")),
    )


def _result_data(text: object, kind: str) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        data = json_strict.loads(text, max_depth=8, max_bytes=MAX_RESULT_CHARS)
    except json_strict.StrictJsonError:
        return None
    return data if isinstance(data, dict) and data.get("kind") == kind else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _entry(value: object) -> CachedAccessToken | None:
    if value is None:
        return None
    try:
        return CachedAccessToken.model_validate(value)
    except ValidationError:
        return None


def _error(value: object) -> LogtoError | None:
    return None if value is None else error_from_data(value)


def _invalid_result() -> TransportError:
    return TransportError(
        "the result of a concurrent operation could not be read; try again",
        code="coordination.result_invalid",
    )
