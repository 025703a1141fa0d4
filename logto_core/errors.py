"""One error hierarchy for the whole SDK.

Every failure the SDK reports is a :class:`LogtoError`. The subclasses say whose fault it is,
which is what callers branch on:

* :class:`LogtoUsageError` - the caller misused the SDK (bad configuration, wrong call order).
* :class:`ProviderError` - the provider sent something invalid (bad metadata, a forged or
  malformed token, a non-JSON body). Never retried blindly.
* :class:`CallbackError` - the browser brought back an invalid authorization response
  (state mismatch, replay, foreign issuer).
* :class:`LogoutRequestError` - a back-channel logout request is not one (not a POST, not a
  form, no single ``logout_token``); whoever sent it, the SDK answers it with HTTP 400.
* :class:`OAuthError` - the provider answered with a well-formed OAuth error.
* :class:`SignInRequiredError` - there is no usable grant: the user must sign in again.
* :class:`ScopeNotGrantedError` - a token came without scopes asked for (the roles at Logto).
* :class:`TransportError` - the request could not be completed (adapters raise it), among
  them :class:`CoordinationError`: the coordinator the app's processes share (Redis) failed.

Messages never contain a client secret, authorization code, code verifier or token: they are
built from fixed text plus claim names, URLs of provider endpoints, provider error codes and
bounded excerpts of provider text (:mod:`logto_core.excerpts`). Provider text can echo the
request it answers, secrets included: :meth:`LogtoError.redact` removes them (the flows call
it on every error that leaves them, see :mod:`logto_core.reporting`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeGuard

from . import excerpts
from .excerpts import MESSAGE_CHARS, excerpt

if TYPE_CHECKING:
    from .scrub import Scrubber

OAUTH_ERROR_MAX_CHARS = 64
"""Longest ``error`` value accepted (the registered ones are under 32 characters)."""

_OAUTH_ERROR = re.compile(rf"[\x20\x21\x23-\x5b\x5d-\x7e]{{1,{OAUTH_ERROR_MAX_CHARS}}}")


def is_oauth_error_code(value: object) -> TypeGuard[str]:
    """True for an ``error`` value RFC 6749 allows (sections 4.1.2.1, 5.2: ``1*( %x20-21 /
    %x23-5B / %x5D-7E )``), bounded in length: it becomes part of a stable ``code``."""
    return isinstance(value, str) and _OAUTH_ERROR.fullmatch(value) is not None


class LogtoError(Exception):
    """Base class of every error raised by the SDK.

    ``code`` is a stable, machine-readable identifier (e.g. ``"id_token.nonce_mismatch"``);
    the message is for humans and may change.
    """

    code: str = "logto_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def redact(self, scrubber: Scrubber) -> None:
        """Remove the secrets ``scrubber`` knows from everything this error shows: its
        message and its text attributes (in place; ``code`` is the SDK's own text)."""
        self.args = tuple(scrubber(a) if isinstance(a, str) else a for a in self.args)
        for name, value in vars(self).items():
            if name != "code" and isinstance(value, str):
                setattr(self, name, scrubber(value))


class LogtoUsageError(LogtoError):
    """The SDK was called incorrectly or is misconfigured."""

    code = "usage"


class ProviderError(LogtoError):
    """The provider returned data that fails validation."""

    code = "provider"


class DiscoveryError(ProviderError):
    """The discovery document is unusable (wrong issuer, bad endpoint, missing field)."""

    code = "discovery"


class JwksError(ProviderError):
    """The provider's key set is unusable, or holds no key for a token."""

    code = "jwks"


class TokenValidationError(ProviderError):
    """An ID token (or other JWT) failed validation.

    ``claim`` names the offending claim or header when there is one.
    """

    code = "token_invalid"

    def __init__(self, message: str, *, code: str | None = None, claim: str | None = None) -> None:
        super().__init__(message, code=code)
        self.claim = claim


class ProviderResponseError(ProviderError):
    """A response that is neither a success nor a well-formed OAuth error.

    ``body_excerpt`` is a short, printable prefix of the body for diagnostics (at most
    :data:`~logto_core.excerpts.BODY_CHARS` characters and ``...``). Give ``body`` (the raw
    body) rather than an excerpt, so that :meth:`redact` removes secrets from the body
    *before* cutting it; the raw body is dropped then.
    """

    code = "provider_response"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body_excerpt: str = "",
        code: str | None = None,
        body: bytes | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.body_excerpt = excerpts.body_excerpt(body) if body is not None else body_excerpt
        self._body = body

    def redact(self, scrubber: Scrubber) -> None:
        body, self._body = self._body, None
        cut_before = self.body_excerpt
        super().redact(scrubber)
        if body is not None:
            self.body_excerpt = scrubber.excerpt(excerpts.decode(body), excerpts.BODY_CHARS)
        else:
            self.body_excerpt = scrubber.truncated(cut_before)


class CallbackError(LogtoError):
    """The authorization response brought back by the browser is not acceptable."""

    code = "callback"


class LogoutRequestError(LogtoError):
    """A request at the back-channel logout URI that is not a back-channel logout request
    (OpenID Connect Back-Channel Logout 1.0 section 2.5): not a POST, not
    ``application/x-www-form-urlencoded``, oversized or undecodable, or without exactly one
    ``logout_token``. Anyone can send such a request; it is answered with HTTP 400."""

    code = "logout_request"


class OAuthError(LogtoError):
    """An OAuth 2.0 error answer from the provider (token endpoint or authorization response).

    Carries ``error``, ``error_description``, ``error_uri``, Logto's own ``logto_code``
    (such as ``oidc.invalid_grant``) and ``logto_message``, and the HTTP ``status`` (``None``
    for errors that arrived on the redirect URI). ``hint`` names the likely fix when the SDK
    knows it (e.g. for ``invalid_client``). The message quotes only a bounded excerpt of the
    provider's text; the attributes keep it whole.
    """

    code = "oauth"

    def __init__(
        self,
        error: str,
        *,
        error_description: str | None = None,
        error_uri: str | None = None,
        logto_code: str | None = None,
        logto_message: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__("", code=f"oauth.{error}")
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri
        self.logto_code = logto_code
        self.logto_message = logto_message
        self.status = status
        self.hint = hint
        self._compose()

    def _compose(self) -> None:
        self.code = f"oauth.{self.error}"
        detail = self.error_description or self.logto_message
        text = f"provider answered {excerpt(self.error, 80)}"
        if detail:
            text += f": {excerpt(detail, MESSAGE_CHARS)}"
        if self.status is not None:
            text += f" (HTTP {self.status})"
        if self.hint:
            text += f". {self.hint}"
        self.args = (text,)

    def add_hint(self, hint: str) -> None:
        """Name the likely fix in the message (and in ``hint``)."""
        self.hint = hint
        self._compose()

    def redact(self, scrubber: Scrubber) -> None:
        super().redact(scrubber)
        self._compose()
        # The message quotes excerpts of the scrubbed fields: cutting and replacing control
        # characters must not have joined pieces into a secret.
        self.args = (scrubber.settle(self.args[0]),)


class SignInRequiredError(LogtoError):
    """No usable grant: not signed in, or the provider said the grant is dead.

    When the provider killed the grant (``invalid_grant``), the session's tokens have already
    been cleared and ``__cause__`` is the :class:`OAuthError`.
    """

    code = "sign_in_required"


class ScopeNotGrantedError(LogtoError):
    """A token was issued without some of the scopes asked for: Logto grants only what the
    app's (or the user's) roles allow. ``missing`` names them, space-separated. Nothing was
    cached: asking again asks the provider again."""

    code = "scope_not_granted"

    def __init__(self, message: str, *, missing: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.missing = missing


class TransportError(LogtoError):
    """The request did not complete: connection refused, timeout, reset, oversized body,
    an unexpected redirect, or a retryable server status after the retries ran out.

    Adapters raise it; the core treats it as transient and keeps every token.
    """

    code = "transport"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after


class CoordinationError(TransportError):
    """The coordinator the app's processes share (``RedisCoordinator``) failed or could not
    be reached. The request did not complete; the stored session is as it was (a failed
    claim or wait comes before any save). Transient, like every :class:`TransportError`: the
    next request tries again. Raised codes are ``coordination.*``."""

    code = "coordination"


class LeaderLostError(CoordinationError):
    """What a coordinator's ``wait`` raises when the caller it waited for lost its lead
    without publishing (its process died; its lease ran out): nobody will publish that
    flight's result, so the waiter claims the flight again instead of waiting on. A refresh
    or a shared fetch does so; another kind of flight fails with it."""

    code = "coordination.leader_lost"


class StorageError(LogtoError):
    """The application's :class:`~logto_core.storage.Storage` failed (its exception is the
    ``__cause__``). The session in the storage is left as it was before the failed save (the
    SDK writes a session as one value); a rotated refresh token that could not be stored is
    still remembered by this process and used for the next attempt."""

    code = "storage"


class SessionTooLargeError(StorageError):
    """A session that does not fit where it is kept: the browser's cookies (4 KB each,
    dropped silently when longer), even without its cached access tokens. Raised by the
    cookie storage before anything is written; the SDK reports it as the cause of a
    ``storage.write`` error. Keep sessions on the server, or ask for fewer API resources."""

    code = "storage.cookie_too_large"


class FlowLimitError(LogtoError):
    """A flow or an operation asked for more requests (or effects) than any legitimate run
    needs: a runaway loop, stopped."""

    code = "flow_limit"


def describe_error_body(payload: Any) -> dict[str, str] | None:
    """Return the OAuth error fields of a decoded JSON body, or ``None`` if it is not one
    (no ``error``, or one outside RFC 6749's character set and length bound). Logto's ``code``
    and ``message`` are kept as they are; every value is provider text, to be scrubbed."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if not is_oauth_error_code(error):
        return None
    fields = {"error": error}
    for key in ("error_description", "error_uri", "code", "message"):
        value = payload.get(key)
        if isinstance(value, str):
            fields[key] = value
    return fields


# ---- errors as data ---------------------------------------------------------------------
# A coordinator carries a leader's result to followers that may live in another process: the
# error in it travels as data (its class name, message and plain attributes), and each
# follower raises a fresh error rebuilt from that (never a live exception object shared
# between threads, loops or processes).

_PLAIN = (str, int, float, bool, type(None))
_MAX_ATTRIBUTES = 16
_MAX_TEXT = 4096
"""Bounds on what a rebuilt error holds: the text comes from a store other processes write."""


def error_to_data(error: LogtoError) -> dict[str, Any]:
    """``error`` as JSON-ready data: its class, message and plain attributes (text, numbers;
    a cause or a body kept as bytes stays behind)."""
    attributes = {
        name: value
        for name, value in vars(error).items()
        if isinstance(value, _PLAIN) and not name.startswith("_")
    }
    return {"class": type(error).__name__, "message": error.message, "attributes": attributes}


def error_from_data(data: object) -> LogtoError:
    """The error :func:`error_to_data` described, rebuilt as a new object of the same class
    (a :class:`LogtoError` when the class is unknown here, or the data malformed)."""
    if not isinstance(data, dict):
        return TransportError(
            "a concurrent operation failed; try again", code="coordination.result_invalid"
        )
    cls = _error_classes().get(str(data.get("class")), LogtoError)
    error = cls.__new__(cls)
    message = data.get("message")
    error.args = (_bounded(message) if isinstance(message, str) else "",)
    attributes = data.get("attributes")
    if isinstance(attributes, dict):
        for name, value in list(attributes.items())[:_MAX_ATTRIBUTES]:
            if _attribute_name(name) and isinstance(value, _PLAIN):
                setattr(error, name, _bounded(value) if isinstance(value, str) else value)
    return error


def _error_classes() -> dict[str, type[LogtoError]]:
    found: dict[str, type[LogtoError]] = {}
    pending: list[type[LogtoError]] = [LogtoError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found


def _attribute_name(name: object) -> bool:
    return isinstance(name, str) and name.isidentifier() and not name.startswith("_")


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
