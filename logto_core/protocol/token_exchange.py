"""Token exchange (RFC 8693) as Logto implements it: the request and its response.

Logto exchanges three kinds of subject token for an access token (its RFC 0005):

* an *impersonation* (subject) token, made by the Management API (``POST
  /api/subject-tokens``) for one user, single-use, short-lived, of type
  :attr:`TokenType.access_token`;
* a user's *personal access token*, reusable until it expires, of type
  :attr:`TokenType.personal_access_token`;
* optionally with an *actor token*: the opaque access token (with ``openid``) of the user
  who acts, so that the issued token says ``act: {sub: <actor>}``.

The issued token is for a resource (a JWT), an organization, or the OIDC scopes (opaque);
never a refresh or ID token. Logto's answer has no ``issued_token_type``, which RFC 8693
section 2.2.1 requires: it is accepted missing, and checked when present.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from ..config import LogtoConfig
from ..errors import LogtoUsageError, ProviderError
from ..grants import cache_entry
from ..http import HttpRequest, HttpResponse
from ..models import OidcProviderMetadata
from .token_endpoint import Form, _target, _token_request, parse_token_response

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"

MAX_SUBJECT_TOKEN_CHARS = 8192
"""Longest subject or actor token sent (Logto's are far shorter; its body limit is ~56 kB)."""


class TokenType(str, Enum):
    """The token types Logto exchanges (``subject_token_type``, ``actor_token_type``)."""

    access_token = "urn:ietf:params:oauth:token-type:access_token"
    """An impersonation (subject) token from the Management API, or an actor's access token."""
    personal_access_token = "urn:logto:token-type:personal_access_token"
    """A user's personal access token."""


ISSUED_ACCESS_TOKEN_TYPES = frozenset(
    {TokenType.access_token.value, "urn:ietf:params:oauth:token-type:jwt"}
)
"""``issued_token_type`` values that are access tokens (RFC 8693 section 3)."""


@dataclass(frozen=True, slots=True)
class ExchangedToken:
    """An access token obtained by token exchange, received at ``obtained_at``: for the
    subject of the subject token (and acted by the actor, if one was given). It lives until
    ``expires_at`` (runtime clock seconds). It is not stored anywhere by the SDK: it is
    another user's token, not the session's."""

    access_token: str = field(repr=False)
    token_type: str
    expires_at: float
    scope: str | None
    issued_token_type: str
    obtained_at: float

    @property
    def scopes(self) -> list[str]:
        return self.scope.split() if self.scope else []


def _token_text(value: object, what: str) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_SUBJECT_TOKEN_CHARS
        or not (value.isascii() and value.isprintable())
        or " " in value
    ):
        raise LogtoUsageError(
            f"{what} must be a non-empty token (visible ASCII, at most "
            f"{MAX_SUBJECT_TOKEN_CHARS} characters)",
            code="usage.token_exchange_token",
        )
    return value


def _token_type(value: object) -> str:
    text = str(getattr(value, "value", value))
    if text not in {t.value for t in TokenType}:
        raise LogtoUsageError(
            "subjectTokenType must be TokenType.access_token (an impersonation token from the "
            "Management API) or TokenType.personal_access_token",
            code="usage.token_exchange_type",
        )
    return text


def build_token_exchange(
    config: LogtoConfig,
    metadata: OidcProviderMetadata,
    *,
    subject_token: str,
    subject_token_type: TokenType | str,
    resource: str | None = None,
    organization_id: str | None = None,
    scopes: Sequence[str] | None = None,
    actor_token: str | None = None,
) -> HttpRequest:
    """The token exchange request (RFC 8693 section 2.1), authenticated as every token
    request is. Subject and actor tokens are secrets (``scrub.SENSITIVE_FIELDS``); usage
    mistakes are refused before anything is sent."""
    form: Form = [
        ("grant_type", TOKEN_EXCHANGE_GRANT),
        ("subject_token", _token_text(subject_token, "subjectToken")),
        ("subject_token_type", _token_type(subject_token_type)),
    ]
    if actor_token is not None:
        form.append(("actor_token", _token_text(actor_token, "actorToken")))
        form.append(("actor_token_type", TokenType.access_token.value))
    form.extend(_target(resource, organization_id, scopes))
    return _token_request(config, metadata, form)


def parse_token_exchange_response(response: HttpResponse, now: float) -> ExchangedToken:
    """The token endpoint's answer to a token exchange, received at ``now``: every check of
    :func:`~logto_core.protocol.token_endpoint.parse_token_response` (RFC 6749 section 5.1,
    errors as :class:`~logto_core.errors.OAuthError`), then section 2.2.1:
    ``issued_token_type``, when present (Logto omits it), names an access token
    (``token_exchange.issued_token_type``). A refresh or ID token sent along is dropped:
    the SDK asked for an access token only."""
    token = parse_token_response(response)
    issued = (token.model_extra or {}).get("issued_token_type")
    if issued is None:
        issued = TokenType.access_token.value
    elif issued not in ISSUED_ACCESS_TOKEN_TYPES:
        raise ProviderError(
            "the token exchange answered an issued_token_type that is not an access token "
            "(RFC 8693 section 3)",
            code="token_exchange.issued_token_type",
        )
    entry = cache_entry(token, now)
    return ExchangedToken(
        access_token=token.access_token,
        token_type=token.token_type,
        expires_at=entry.expires_at,
        scope=token.scope,
        issued_token_type=str(issued),
        obtained_at=now,
    )


__all__ = [
    "ISSUED_ACCESS_TOKEN_TYPES",
    "TOKEN_EXCHANGE_GRANT",
    "ExchangedToken",
    "TokenType",
    "build_token_exchange",
    "parse_token_exchange_response",
]
