"""Bearer tokens at a resource server (RFC 6750): the token out of an ``Authorization``
header, the error an API answers with, and that error's ``WWW-Authenticate`` challenge.

:func:`bearer_token` reads one ``Authorization`` header value (section 2.1:
``Bearer 1*SP b64token``, the scheme case-insensitive) and answers the token, or raises an
:class:`AccessTokenError` that says how to answer: no credentials at all (or another scheme)
is 401 *without* an ``error`` (section 3.1: the client may not know it must authenticate); a
malformed header is 400 ``invalid_request``. :func:`www_authenticate` builds the challenge
(section 3) from values that may come from anywhere: each is reduced to the characters the
grammar allows inside a quoted value, so a header built here can never be broken open by a
quote, a backslash or a line break.

Nothing here ever puts the token itself into a message, an attribute or a header.
"""

from __future__ import annotations

import re
from typing import Literal

from ..errors import LogtoError, LogtoUsageError
from ..jose.jwt import MAX_TOKEN_BYTES

BearerErrorCode = Literal["invalid_request", "invalid_token", "insufficient_scope"]
"""The error codes of RFC 6750 section 3.1."""

STATUS: dict[BearerErrorCode | None, int] = {
    None: 401,
    "invalid_request": 400,
    "invalid_token": 401,
    "insufficient_scope": 403,
}
"""The HTTP status RFC 6750 section 3.1 gives each error (``None``: no credentials)."""

MAX_DESCRIPTION_CHARS = 200
"""Longest ``error_description`` a challenge carries (the error's message is cut there)."""

MAX_ATTRIBUTE_CHARS = 1000
"""Longest ``realm`` or ``scope`` a challenge carries."""

MAX_HEADER_CHARS = 2 * MAX_TOKEN_BYTES
"""An ``Authorization`` value longer than this is refused unread (no JWT is that long)."""

# RFC 7235 section 2.1: auth-scheme = token; then 1*SP and the credentials. Tabs are
# accepted as separators too, being optional whitespace everywhere else in HTTP.
_CREDENTIALS = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:[ \t]+(.*))?", re.DOTALL)
# RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
# What may stand inside a quoted value of the challenge: RFC 6750 section 3 allows
# %x20-21 / %x23-5B / %x5D-7E in error_description, and no more in a value built here (no
# quote, no backslash, no control character, nothing outside printable ASCII).
_NOT_QUOTABLE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]+")
# scope-token (section 3): %x21 / %x23-5B / %x5D-7E, space-delimited in the attribute.
_NOT_SCOPE_CHAR = re.compile(r"[^\x21\x23-\x5b\x5d-\x7e]+")
_OWS = " \t"


class AccessTokenError(LogtoError):
    """A request to an API whose credentials do not allow it: no token, a malformed header,
    an invalid token (expired, forged, for another API...), or a valid token that lacks a
    scope, an organization or an organization role.

    It says how to answer: :attr:`status` (400, 401 or 403), :attr:`error` (RFC 6750's
    ``invalid_request``, ``invalid_token``, ``insufficient_scope``, or ``None`` when the
    request carried no bearer credentials at all), :attr:`error_description` (the message,
    bounded; it never contains the token), :attr:`scope` (the scopes the request needs, for
    ``insufficient_scope``) and :meth:`www_authenticate`, the value of the
    ``WWW-Authenticate`` header to send with it. :attr:`claim` names the claim or header
    parameter at fault, when one is; :attr:`realm` is the protection space named in the
    challenge (the resource server's, when it has one).

    The resource server's own troubles (Logto unreachable, an unusable key set) are not
    this error but :class:`~logto_core.errors.TransportError`, ``DiscoveryError`` or
    ``JwksError``: the caller is not at fault, answer 503.
    """

    code = "access_token"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        error: BearerErrorCode | None = "invalid_token",
        scope: str | None = None,
        claim: str | None = None,
        realm: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.error = error
        self.scope = scope
        self.claim = claim
        self.realm = realm

    @property
    def status(self) -> int:
        """The HTTP status to answer with: 400, 401 or 403 (RFC 6750 section 3.1)."""
        return STATUS.get(self.error, 401)

    @property
    def error_description(self) -> str:
        """The message, cut to :data:`MAX_DESCRIPTION_CHARS`: for a human, never parsed."""
        return self.message[:MAX_DESCRIPTION_CHARS]

    def www_authenticate(self, realm: str | None = None) -> str:
        """The ``WWW-Authenticate`` header value for this error (RFC 6750 section 3):
        ``Bearer`` with ``realm`` (this argument, else :attr:`realm`), and unless the request
        carried no credentials, ``error``, ``error_description`` and, for
        ``insufficient_scope``, ``scope``."""
        if self.error is None:
            return www_authenticate(realm=realm if realm is not None else self.realm)
        return www_authenticate(
            realm=realm if realm is not None else self.realm,
            error=self.error,
            error_description=self.error_description,
            scope=self.scope if self.error == "insufficient_scope" else None,
        )


def bearer_token(authorization: str | None) -> str:
    """The bearer token of an ``Authorization`` header value (``None``: no header).

    Raises :class:`AccessTokenError`: ``bearer.missing`` (no header, or an empty one) and
    ``bearer.other_scheme`` (``Basic ...``, say) are 401 with no ``error`` (RFC 6750
    section 3.1: a request without bearer credentials gets a bare challenge);
    ``bearer.malformed`` is 400 ``invalid_request``: a ``Bearer`` scheme without exactly one
    token of the b64token alphabet (a second token, a comma, a quote...).
    """
    if authorization is None:
        raise AccessTokenError(
            "the request has no Authorization header", code="bearer.missing", error=None
        )
    if not isinstance(authorization, str):
        raise LogtoUsageError(
            "the Authorization header value must be a str (decode the bytes a server gives "
            "as latin-1, as HTTP does)",
            code="usage.authorization_header",
        )
    if len(authorization) > MAX_HEADER_CHARS:
        raise _malformed("the Authorization header is too long")
    value = authorization.strip(_OWS)
    if not value:
        raise AccessTokenError(
            "the request has an empty Authorization header", code="bearer.missing", error=None
        )
    parsed = _CREDENTIALS.fullmatch(value)
    if parsed is None:
        raise _malformed("the Authorization header is not an authentication scheme and its value")
    scheme, credentials = parsed.group(1), parsed.group(2)
    if scheme.lower() != "bearer":
        raise AccessTokenError(
            "the Authorization header does not use the Bearer scheme",
            code="bearer.other_scheme",
            error=None,
        )
    if not credentials:
        raise _malformed("the Authorization header has the Bearer scheme but no token")
    if _B64TOKEN.fullmatch(credentials) is None:
        raise _malformed("the Authorization header does not carry exactly one bearer token")
    return credentials


def _malformed(message: str) -> AccessTokenError:
    return AccessTokenError(message, code="bearer.malformed", error="invalid_request")


def www_authenticate(
    *,
    realm: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
    scope: str | None = None,
) -> str:
    """A ``WWW-Authenticate`` value for the Bearer scheme (RFC 6750 section 3).

    Every value is quoted after being reduced to what a quoted value may hold here
    (:func:`quotable`: printable ASCII without ``"`` and ``\\``; ``error_description``
    cut to :data:`MAX_DESCRIPTION_CHARS`, ``realm`` to :data:`MAX_ATTRIBUTE_CHARS`);
    ``scope`` is reduced to space-delimited scope-tokens (:func:`scope_tokens`). A
    parameter left with nothing is left out, except ``realm``. Without any parameter the
    value is ``Bearer``.
    """
    params: list[tuple[str, str]] = []
    if realm is not None:
        params.append(("realm", quotable(realm, MAX_ATTRIBUTE_CHARS)))
    if error is not None and (code := _NOT_SCOPE_CHAR.sub("", error)[:64]):
        params.append(("error", code))
    if error_description is not None and (text := quotable(error_description)):
        params.append(("error_description", text))
    if scope is not None and (scopes := scope_tokens(scope)):
        params.append(("scope", scopes))
    if not params:
        return "Bearer"
    return "Bearer " + ", ".join(f'{name}="{value}"' for name, value in params)


def quotable(text: str, limit: int = MAX_DESCRIPTION_CHARS) -> str:
    """``text`` with the characters a quoted challenge value may not hold (quotes,
    backslashes, control characters, anything beyond printable ASCII) made spaces, every run
    of spaces made one, trimmed, and cut to ``limit`` characters."""
    # After the substitution the only whitespace left is the space: split() finds its runs.
    return " ".join(_NOT_QUOTABLE.sub(" ", text).split())[:limit].rstrip(" ")


def scope_tokens(scope: str) -> str:
    """The scope-tokens of ``scope`` (split on whitespace, each stripped of the characters
    a scope-token may not hold, empty ones dropped), joined by single spaces and cut to
    whole tokens within :data:`MAX_ATTRIBUTE_CHARS`."""
    kept: list[str] = []
    size = 0
    for part in scope.split():
        token = _NOT_SCOPE_CHAR.sub("", part)
        if not token:
            continue
        size += len(token) + bool(kept)
        if size > MAX_ATTRIBUTE_CHARS:
            break
        kept.append(token)
    return " ".join(kept)


__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "STATUS",
    "AccessTokenError",
    "BearerErrorCode",
    "bearer_token",
    "quotable",
    "scope_tokens",
    "www_authenticate",
]
