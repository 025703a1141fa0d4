"""The back-channel logout request and its answer (Back-Channel Logout 1.0 sections 2.5, 2.8).

The provider POSTs ``logout_token=<JWT>`` as ``application/x-www-form-urlencoded`` to the
client's back-channel logout URI. :func:`parse_logout_request` takes what any web framework
hands over (method, headers, body bytes) and answers the token, or raises
:class:`~logto_core.errors.LogoutRequestError`: not a POST, not a form, a body over
:data:`MAX_BODY_BYTES`, one that does not decode, or not exactly one ``logout_token``.
Other parameters are ignored (section 2.5: values not understood MUST be ignored).

The answer (section 2.8) is a :class:`BackchannelLogoutResult`: 200 once the matching
sessions are ended, 400 with ``{"error": "invalid_request", "error_description": ...}``
otherwise, both with ``Cache-Control: no-store``. Its description is the error's own
(bounded) message when the request or the token is at fault, a fixed sentence when the
client could not finish (keys unreachable, a storage failing), so an unauthenticated caller
learns nothing of the app's insides.

:func:`answer_logout_request` is the whole exchange as one pure function, for a caller that
keeps the key set and the replay cache itself; the clients run the same steps as an operation
(:func:`logto_core.operations.backchannel_logout_op`), fetching keys as the ID token path does.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol, runtime_checkable
from urllib.parse import parse_qsl

from ..errors import LogoutRequestError, LogtoError, TokenValidationError
from ..excerpts import excerpt
from ..jose.keys import NEED_KEYS, KeySet, NeedKeys
from ..replay_cache import EMPTY_REPLAY_CACHE, ReplayCache
from .logout_token import MAX_AGE, LogoutToken, check_logout_token, replayed_error

FORM = "application/x-www-form-urlencoded"
MAX_BODY_BYTES = 64 * 1024
"""A logout request's body is one token (at most 16 KiB, which percent-encoding leaves as
it is) and perhaps a few other parameters; anything longer is refused unread."""
MAX_PARAMETERS = 32
"""Parameters read at most; a body with more is refused."""
DESCRIPTION_CHARS = 200

NO_STORE = "no-store"

__all__ = [
    "FORM",
    "MAX_BODY_BYTES",
    "Answered",
    "BackchannelLogoutResult",
    "Body",
    "Headers",
    "answer_logout_request",
    "logout_accepted",
    "logout_refused",
    "parse_logout_request",
]


@runtime_checkable
class _HasItems(Protocol):
    def items(self) -> Iterable[tuple[str, str]]: ...


Body = bytes | bytearray | memoryview
"""The raw request body (Flask ``request.get_data()``, Starlette ``await request.body()``,
Django ``request.body``)."""

Headers = _HasItems | Iterable[tuple[str, str]]
"""Request headers as frameworks give them: a mapping (Django's, Starlette's) or anything
with ``items()`` (Werkzeug's), or ``(name, value)`` pairs. Names are case-insensitive."""


def _refuse(code: str, message: str) -> LogoutRequestError:
    return LogoutRequestError(message, code=f"logout_request.{code}")


def _header_values(headers: Headers, name: str) -> list[str]:
    items = headers.items() if isinstance(headers, _HasItems) else headers
    return [str(value) for key, value in items if str(key).lower() == name]


def parse_logout_request(method: str, headers: Headers, body: Body) -> str:
    """The ``logout_token`` of a back-channel logout request; see the module doc.

    Raises :class:`LogoutRequestError` (``logout_request.method``, ``.content_type``,
    ``.too_large``, ``.malformed``, ``.token_missing``, ``.token_repeated``).
    """
    if not isinstance(method, str) or method.upper() != "POST":
        raise _refuse("method", "a back-channel logout request is a POST")
    types = _header_values(headers, "content-type")
    if len(types) != 1 or types[0].partition(";")[0].strip().lower() != FORM:
        raise _refuse("content_type", f"a back-channel logout request body is {FORM}")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise _refuse("malformed", "the request body is not bytes")
    if len(body) > MAX_BODY_BYTES:
        raise _refuse("too_large", "the request body is too large for a logout request")
    try:
        text = bytes(body).decode("ascii")  # a form body is percent-encoded ASCII
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except ValueError:  # non-ASCII bytes, bad UTF-8 after percent-decoding, too many fields
        raise _refuse("malformed", "the request body is not a form this SDK can read") from None
    tokens = [value for name, value in pairs if name == "logout_token"]
    if len(tokens) > 1:
        raise _refuse("token_repeated", "the request carries more than one logout_token")
    if not tokens or not tokens[0]:
        raise _refuse("token_missing", "the request carries no logout_token")
    return tokens[0]


@dataclass(frozen=True, slots=True)
class BackchannelLogoutResult:
    """What to answer the provider (``status``, ``headers``, ``body``) and what happened:
    ``logout`` is the verified token (``sid``, ``sub``: whom to sign out) when accepted,
    ``error`` the reason when refused (log its ``code``; it holds no token), ``ended`` the
    number of sessions the client signed out."""

    status: int
    headers: Mapping[str, str]
    body: bytes = field(repr=False)
    logout: LogoutToken | None = None
    error: LogtoError | None = None
    ended: int = 0

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def sid(self) -> str | None:
        return self.logout.sid if self.logout is not None else None

    @property
    def sub(self) -> str | None:
        return self.logout.sub if self.logout is not None else None


def logout_accepted(logout: LogoutToken, ended: int = 0) -> BackchannelLogoutResult:
    """200, ``Cache-Control: no-store`` and no body (section 2.8)."""
    return BackchannelLogoutResult(200, {"Cache-Control": NO_STORE}, b"", logout, None, ended)


_FAILED = "the logout could not be completed; the provider may send it again later"


def logout_refused(error: LogtoError) -> BackchannelLogoutResult:
    """400 with an OAuth error body (section 2.8, RFC 6749 section 5.2) naming the reason."""
    told = isinstance(error, (LogoutRequestError, TokenValidationError))
    description = excerpt(error.message, DESCRIPTION_CHARS) if told else _FAILED
    payload = {"error": "invalid_request", "error_description": description}
    headers = {"Cache-Control": NO_STORE, "Content-Type": "application/json"}
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return BackchannelLogoutResult(400, headers, body, None, error, 0)


class Answered(NamedTuple):
    """:func:`answer_logout_request`'s answer, and the replay cache to keep after it."""

    result: BackchannelLogoutResult
    replay: ReplayCache


def answer_logout_request(
    method: str,
    headers: Headers,
    body: Body,
    *,
    keys: KeySet | None,
    issuer: str,
    client_id: str,
    algorithms: Collection[str],
    now: float,
    clock_tolerance: float = 60.0,
    replay: ReplayCache = EMPTY_REPLAY_CACHE,
    max_age: float = MAX_AGE,
) -> Answered | Literal[NeedKeys.NEED_KEYS]:
    """The whole back-channel logout exchange, pure: parse the request, verify the token
    against ``keys`` at ``now``, refuse a ``jti`` ``replay`` holds, and answer. Ending the
    sessions of ``result.sid`` / ``result.sub`` is the caller's (on failure, answer
    :func:`logout_refused` instead, and keep the replay cache given, so that the provider
    may retry). :data:`NEED_KEYS` when ``keys`` lacks the token's key: fetch the JWKS (at
    most once per cooldown, see :func:`~logto_core.jose.keys.retry_unknown_key`) and call
    again, or answer ``logout_refused(unknown_key_error())``."""
    try:
        token = parse_logout_request(method, headers, body)
        logout = check_logout_token(
            token,
            keys=keys,
            issuer=issuer,
            client_id=client_id,
            now=now,
            clock_tolerance=clock_tolerance,
            algorithms=algorithms,
            max_age=max_age,
        )
        if logout is NEED_KEYS:
            return NEED_KEYS
        if replay.seen(logout.replay_key, now):
            raise replayed_error()
    except LogtoError as error:
        return Answered(logout_refused(error), replay)
    recorded = replay.with_entry(logout.replay_key, logout.until, now)
    return Answered(logout_accepted(logout), recorded)
