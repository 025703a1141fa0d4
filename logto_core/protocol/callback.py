"""Validation of the authorization response the browser brings back to the redirect URI.

:func:`parse_callback` first finds which pending sign-in attempt the callback belongs to (by
``state``). Until then nothing can be consumed, so failures raise :class:`CallbackError`. Once
an attempt matched, it is consumed whatever happens next: later failures are returned in
:attr:`CallbackResult.error`, so that the caller can drop the attempt from the session (a
callback is one-time) and then report the error.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import SplitResult, parse_qsl

from ..errors import CallbackError, LogtoError, OAuthError, is_oauth_error_code
from ..excerpts import excerpt
from ..session import PENDING_SIGN_IN_TTL, PendingSignIn
from ..urls import origin_and_path, split_url

RESPONSE_PARAMETERS: tuple[str, ...] = (
    "state",
    "code",
    "error",
    "error_description",
    "error_uri",
    "iss",
)
"""Parameters of an authorization response; each may appear at most once (RFC 6749 §3.1).
Other query parameters belong to the application's own redirect URI and are left alone."""

MAX_QUERY_FIELDS = 1000
"""A callback URL with more query fields than this is refused as malformed."""


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """The outcome of a callback whose ``state`` matched a pending sign-in attempt."""

    attempt: PendingSignIn
    """The attempt the callback belongs to; it is consumed and must be removed."""
    code: str | None = field(repr=False)
    """The authorization code; set only when the callback is a valid success response."""
    error: LogtoError | None
    """Why the sign-in failed: an :class:`OAuthError` sent by the provider, or a
    :class:`CallbackError` found after the state matched."""

    @property
    def ok(self) -> bool:
        """True when the code may be exchanged."""
        return self.error is None and self.code is not None


def parse_callback(
    callback_url: str,
    *,
    pending: Sequence[PendingSignIn],
    issuer: str,
    iss_required: bool,
    now: float,
) -> CallbackResult:
    """Check a callback URL against the pending sign-in attempts.

    Raises :class:`CallbackError` when no attempt can be identified: a malformed URL
    (``callback.malformed``), a response in the fragment (``callback.fragment_response``),
    a repeated response parameter (``callback.duplicate_parameter``), no ``state``
    (``callback.state_missing``) or a ``state`` matching no attempt (``callback.state_unknown``:
    replayed, forged, or from another session).

    Otherwise returns a :class:`CallbackResult` for the matched attempt, whose ``error`` is
    set, in this order of checks, for an expired attempt (``callback.expired``), a URL not
    at the attempt's redirect URI (``callback.redirect_mismatch``), a foreign or missing
    ``iss`` (``callback.iss_mismatch``, ``callback.iss_missing``), an OAuth ``error`` answer
    (:class:`OAuthError`) or a missing code (``callback.code_missing``).
    """
    parts = _split_absolute(callback_url)
    params = _response_params(parts)
    state = params.get("state")
    if not state:
        raise CallbackError(
            "the callback has no state parameter; it does not come from a sign-in started "
            "by this SDK",
            code="callback.state_missing",
        )
    attempt = _find_attempt(state, pending)
    error = _check_attempt(callback_url, params, attempt, issuer, iss_required, now)
    # The code is handed out only when every check passed.
    code = params["code"] if error is None else None
    return CallbackResult(attempt=attempt, code=code, error=error)


# ---- before the state matched: raise ------------------------------------------------------


def _split_absolute(callback_url: object) -> SplitResult:
    parts = split_url(callback_url) if isinstance(callback_url, str) else None
    if parts is None or not parts.scheme or not parts.hostname:
        raise CallbackError(
            "the callback URL is malformed; pass the full absolute URL the browser was "
            "redirected to (scheme, host, path and query)",
            code="callback.malformed",
        )
    return parts


def _parse_pairs(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise CallbackError(
            "the callback URL has too many parameters", code="callback.malformed"
        ) from None


def _response_params(parts: SplitResult) -> dict[str, str]:
    """The authorization response parameters of the query, each present at most once."""
    pairs = _parse_pairs(parts.query)
    found = [name for name, _ in pairs if name in RESPONSE_PARAMETERS]
    if not found and parts.fragment:
        fragment_names = {name for name, _ in _parse_pairs(parts.fragment)}
        if fragment_names & set(RESPONSE_PARAMETERS):
            raise CallbackError(
                "the authorization response arrived in the URL fragment; the SDK expects it in "
                "the query (response_mode=query), so pass the URL the server received",
                code="callback.fragment_response",
            )
    for name in RESPONSE_PARAMETERS:
        if found.count(name) > 1:
            raise CallbackError(
                f"the callback repeats the {name!r} parameter", code="callback.duplicate_parameter"
            )
    return {name: value for name, value in pairs if name in RESPONSE_PARAMETERS}


def _as_bytes(text: str) -> bytes:
    # surrogatepass: a URL string may carry lone surrogates; they must compare, not crash.
    return text.encode("utf-8", "surrogatepass")


def _find_attempt(state: str, pending: Sequence[PendingSignIn]) -> PendingSignIn:
    attempts = (pending,) if isinstance(pending, PendingSignIn) else tuple(pending)
    received = _as_bytes(state)
    match: PendingSignIn | None = None
    # Compare with every attempt in constant time, without stopping at the first match.
    for attempt in attempts:
        if hmac.compare_digest(_as_bytes(attempt.state), received) and match is None:
            match = attempt
    if match is None:
        raise CallbackError(
            "the callback's state matches no pending sign-in of this session "
            "(already used, expired and forgotten, started elsewhere, or forged)",
            code="callback.state_unknown",
        )
    return match


# ---- after the state matched: report in the result ----------------------------------------


def _check_attempt(
    callback_url: str,
    params: dict[str, str],
    attempt: PendingSignIn,
    issuer: str,
    iss_required: bool,
    now: float,
) -> LogtoError | None:
    age = now - attempt.created_at
    # "not <" also catches NaN from a corrupted store.
    if not age < PENDING_SIGN_IN_TTL:
        return CallbackError(
            f"the sign-in attempt is older than {PENDING_SIGN_IN_TTL:.0f} seconds; "
            "start a new sign-in",
            code="callback.expired",
        )
    expected = origin_and_path(attempt.redirect_uri)
    if expected is None or origin_and_path(callback_url) != expected:
        return CallbackError(
            "the callback URL's scheme, host, port or path differs from the redirect URI "
            f"of its sign-in ({attempt.redirect_uri!r})",
            code="callback.redirect_mismatch",
        )
    iss = params.get("iss")
    if iss is not None and iss != issuer:
        return CallbackError(
            f"the callback's iss parameter {excerpt(iss, 120)!r} is not the expected issuer "
            f"{issuer!r} "
            "(a response from another provider)",
            code="callback.iss_mismatch",
        )
    if iss is None and iss_required:
        return CallbackError(
            "the callback has no iss parameter although the provider promises one",
            code="callback.iss_missing",
        )
    if "error" in params:
        return _oauth_error(params)
    if not params.get("code"):
        return CallbackError(
            "the callback carries no authorization code", code="callback.code_missing"
        )
    return None


def _oauth_error(params: dict[str, str]) -> LogtoError:
    """The provider's error answer. Its text came through the browser: ``error`` becomes part
    of a stable code, so it must be an RFC 6749 error code (section 4.1.2.1); the message
    quotes only a bounded excerpt of the description (the attribute keeps it)."""
    error = params["error"]
    if not is_oauth_error_code(error):
        return CallbackError(
            "the callback's error parameter is empty or not an OAuth error code "
            f"(RFC 6749 section 4.1.2.1): {excerpt(error, 80)!r}",
            code="callback.malformed",
        )
    return OAuthError(
        error,
        error_description=params.get("error_description") or None,
        error_uri=params.get("error_uri") or None,
    )


def matching_attempt(callback_url: str, pending: Sequence[PendingSignIn]) -> PendingSignIn | None:
    """The pending attempt a callback URL names by its ``state``, or ``None`` when it names
    none (or is malformed: :func:`parse_callback` then says why). Never raises."""
    try:
        params = _response_params(_split_absolute(callback_url))
        state = params.get("state")
        return _find_attempt(state, pending) if state else None
    except CallbackError:
        return None
