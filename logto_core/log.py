"""The SDK's log records, all under the ``logto`` logger.

Records describe protocol steps (which endpoint, which grant, which status, which error
code) and never carry a secret: no token, code, verifier, state, nonce, client secret or
request body appears in a message or its arguments. URLs are logged without their query.
Enable them with ``logging.getLogger("logto").setLevel(logging.DEBUG)``.

Errors appear only by class name and ``code``, and only once their flow has ended, when
:mod:`logto_core.reporting` has scrubbed them: the one code built from provider text,
``oauth.<error>``, holds an ``error`` checked against RFC 6749's character set and length
and scrubbed of the request's secrets. No provider text (descriptions, bodies, headers) is
ever logged.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from .errors import LogtoError
from .http import HttpRequest, HttpResponse

LOGGER_NAME = "logto"
logger = logging.getLogger(LOGGER_NAME)

# Form fields whose values are safe (and useful) to log: they name what was asked for.
_SAFE_FIELDS = ("grant_type", "resource", "organization_id", "token_type_hint")


def _where(request: HttpRequest) -> str:
    return request.url.partition("?")[0]


def _what(request: HttpRequest) -> str:
    if request.method != "POST" or not request.body:
        return request.purpose
    try:
        form = dict(parse_qsl(request.body.decode("ascii", errors="replace")))
    except ValueError:  # pragma: no cover - parse_qsl only raises in strict mode
        form = {}
    details = [f"{name}={form[name]}" for name in _SAFE_FIELDS if name in form]
    return request.purpose + (" " + " ".join(details) if details else "")


def sending(effect: object) -> None:
    """Before the driver performs an effect: log the requests."""
    if isinstance(effect, HttpRequest) and logger.isEnabledFor(logging.DEBUG):
        logger.debug("-> %s %s (%s)", effect.method, _where(effect), _what(effect))


def received(effect: object, result: object) -> None:
    if (
        isinstance(effect, HttpRequest)
        and isinstance(result, HttpResponse)
        and logger.isEnabledFor(logging.DEBUG)
    ):
        logger.debug("<- %s %s: HTTP %d", effect.method, _where(effect), result.status)


def failed(effect: object, error: BaseException) -> None:
    if isinstance(effect, HttpRequest):
        code = error.code if isinstance(error, LogtoError) else type(error).__name__
        logger.info("-x %s %s failed: %s", effect.method, _where(effect), code)


def operation_failed(error: BaseException) -> None:
    if isinstance(error, LogtoError):
        logger.debug("operation ended with %s (%s)", type(error).__name__, error.code)


def grant_dead() -> None:
    logger.info("the provider says the grant is dead (invalid_grant); session tokens cleared")


def keys_refetched(what: str = "ID token") -> None:
    """``what`` is the kind of token, the SDK's own text ("ID token", "access token")."""
    logger.info("%s signed with an unknown key id; refetching the key set once", what)


def revocation_failed(error: LogtoError) -> None:
    logger.warning(
        "refresh token revocation failed (%s); the local sign-out happened anyway", error.code
    )


def end_failed(error: LogtoError) -> None:
    """A signed-out (or replaced) grant could not be marked ended with the coordinator."""
    logger.warning(
        "the coordinator could not mark a signed-out grant ended (%s, %s); the sign-out stands",
        type(error).__name__,
        error.code,
    )


def storage_unreadable() -> None:
    logger.warning(
        "a session cookie could not be read (tampered, expired, or encrypted with a key "
        "no longer configured): treated as no session"
    )


def cookie_tokens_dropped() -> None:
    logger.info(
        "the session did not fit in its cookies: its cached access tokens were dropped "
        "(they are refreshed when needed; the grant is kept)"
    )


def logout_received(ended: int) -> None:
    logger.info("back-channel logout accepted; %d session(s) signed out", ended)


def logout_refused(error: LogtoError) -> None:
    # A refused logout is the provider's (or a stranger's) request, not the app's failure:
    # INFO, by class and code only (the token never appears).
    logger.info("back-channel logout refused: %s (%s)", type(error).__name__, error.code)
