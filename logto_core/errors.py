"""One error hierarchy for the whole SDK.

Every failure the SDK reports is a :class:`LogtoError`. The subclasses say whose fault it is,
which is what callers branch on:

* :class:`LogtoUsageError` - the caller misused the SDK (bad configuration, wrong call order).
* :class:`ProviderError` - the provider sent something invalid (bad metadata, a forged or
  malformed token, a non-JSON body). Never retried blindly.
* :class:`CallbackError` - the browser brought back an invalid authorization response
  (state mismatch, replay, foreign issuer).
* :class:`OAuthError` - the provider answered with a well-formed OAuth error.
* :class:`SignInRequiredError` - there is no usable grant: the user must sign in again.
* :class:`TransportError` - the request could not be completed (adapters raise it).

Messages never contain a client secret, authorization code, code verifier or token: they are
built from fixed text plus claim names, URLs of provider endpoints and provider error codes.
"""

from __future__ import annotations

from typing import Any


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

    ``body_excerpt`` is a short, truncated prefix of the body for diagnostics.
    """

    code = "provider_response"

    def __init__(
        self, message: str, *, status: int, body_excerpt: str = "", code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.body_excerpt = body_excerpt


class CallbackError(LogtoError):
    """The authorization response brought back by the browser is not acceptable."""

    code = "callback"


class OAuthError(LogtoError):
    """An OAuth 2.0 error answer from the provider (token endpoint or authorization response).

    Carries ``error``, ``error_description``, ``error_uri``, Logto's own ``logto_code``
    (such as ``oidc.invalid_grant``) and the HTTP ``status`` (``None`` for errors that arrived
    on the redirect URI).
    """

    code = "oauth"

    def __init__(
        self,
        error: str,
        *,
        error_description: str | None = None,
        error_uri: str | None = None,
        logto_code: str | None = None,
        status: int | None = None,
    ) -> None:
        detail = f": {error_description}" if error_description else ""
        where = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"provider answered {error}{detail}{where}", code=f"oauth.{error}")
        self.error = error
        self.error_description = error_description
        self.error_uri = error_uri
        self.logto_code = logto_code
        self.status = status


class SignInRequiredError(LogtoError):
    """No usable grant: not signed in, or the provider said the grant is dead.

    When the provider killed the grant (``invalid_grant``), the session's tokens have already
    been cleared and ``__cause__`` is the :class:`OAuthError`.
    """

    code = "sign_in_required"


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


class StorageError(LogtoError):
    """The application's :class:`~logto_core.storage.Storage` failed (its exception is the
    ``__cause__``). The session in the storage is left as it was before the failed save (the
    SDK writes a session as one value); a rotated refresh token that could not be stored is
    still remembered by this process and used for the next attempt."""

    code = "storage"


def describe_error_body(payload: Any) -> dict[str, str] | None:
    """Return the OAuth error fields of a decoded JSON body, or ``None`` if it is not one."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if not isinstance(error, str) or not error:
        return None
    fields = {"error": error}
    for key in ("error_description", "error_uri", "code", "message"):
        value = payload.get(key)
        if isinstance(value, str):
            fields[key] = value
    return fields
