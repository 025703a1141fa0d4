"""Requests to the token endpoint (code exchange, refresh, client credentials) and their
responses."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from urllib.parse import quote_plus

from .config import LogtoConfig
from .errors import LogtoUsageError, ProviderError, ProviderResponseError
from .http import HttpRequest, HttpResponse
from .models import OidcProviderMetadata, TokenResponse
from .responses import read_object, validate_model
from .session import PendingSignIn

Form = list[tuple[str, str]]


def client_authentication(config: LogtoConfig) -> tuple[dict[str, str], Form]:
    """Headers and form fields that authenticate the client.

    Confidential clients use HTTP Basic with form-urlencoded credentials (RFC 6749 section
    2.3.1), which is what Logto registers them with; public clients send only ``client_id``
    and no secret at all (Logto refuses a public client that sends one).
    """
    secret = config.secret
    if secret is None:
        return {}, [("client_id", config.appId)]
    raw = f"{quote_plus(config.appId)}:{quote_plus(secret)}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode("ascii")}, []


def _token_request(config: LogtoConfig, metadata: OidcProviderMetadata, form: Form) -> HttpRequest:
    headers, auth_form = client_authentication(config)
    return HttpRequest.post_form(
        metadata.token_endpoint, [*form, *auth_form], headers=headers, purpose="token"
    )


def _scope_value(scopes: Sequence[str] | None) -> Form:
    if scopes is None:
        return []
    values = [str(getattr(s, "value", s)) for s in scopes]
    if any(not s or any(c.isspace() for c in s) for s in values):
        raise LogtoUsageError("scopes must be non-empty strings without spaces")
    return [("scope", " ".join(dict.fromkeys(values)))]


def _target(
    resource: str | None, organization_id: str | None, scopes: Sequence[str] | None
) -> Form:
    """What a token is asked for: one resource, an organization, a scope subset."""
    form: Form = []
    if resource:
        form.append(("resource", resource))
    if organization_id:
        form.append(("organization_id", organization_id))
    return form + _scope_value(scopes)


def build_code_exchange(
    config: LogtoConfig, metadata: OidcProviderMetadata, *, code: str, attempt: PendingSignIn
) -> HttpRequest:
    """Exchange an authorization code (with its PKCE verifier) for tokens."""
    return _token_request(
        config,
        metadata,
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", attempt.redirect_uri),
            ("code_verifier", attempt.code_verifier),
        ],
    )


def build_refresh(
    config: LogtoConfig,
    metadata: OidcProviderMetadata,
    *,
    refresh_token: str,
    resource: str | None = None,
    organization_id: str | None = None,
    scopes: Sequence[str] | None = None,
) -> HttpRequest:
    """Use the refresh token, optionally for a resource, an organization and a scope subset."""
    form: Form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
    form.extend(_target(resource, organization_id, scopes))
    return _token_request(config, metadata, form)


def build_client_credentials(
    config: LogtoConfig,
    metadata: OidcProviderMetadata,
    *,
    resource: str | None = None,
    organization_id: str | None = None,
    scopes: Sequence[str] | None = None,
) -> HttpRequest:
    """A machine-to-machine token (needs a confidential client and a resource or organization)."""
    if not config.is_confidential:
        raise LogtoUsageError("client_credentials needs appSecret (a machine-to-machine app)")
    if not resource and not organization_id:
        raise LogtoUsageError("client_credentials needs a resource or an organization_id")
    form: Form = [("grant_type", "client_credentials")]
    form.extend(_target(resource, organization_id, scopes))
    return _token_request(config, metadata, form)


def parse_token_response(response: HttpResponse) -> TokenResponse:
    """Validate a token endpoint answer; OAuth errors become :class:`OAuthError`."""
    payload = read_object(response, what="token")
    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ProviderResponseError(
            "token response lacks a string access_token",
            status=response.status,
            code="token.access_token_missing",
        )
    if not _is_token_text(access_token):
        raise ProviderError(
            "token response has an access_token outside the visible ASCII range",
            code="token.access_token",
        )
    token_type = payload.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() not in ("bearer", "dpop"):
        raise ProviderError("token response has an unsupported token_type", code="token.token_type")
    expires_in = payload.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, (int, float))
        or not math.isfinite(expires_in)
        or expires_in < 0
    ):
        raise ProviderError("token response has an invalid expires_in", code="token.expires_in")
    if isinstance(expires_in, float):
        payload = {**payload, "expires_in": int(expires_in)}
    for name in ("refresh_token", "id_token", "scope"):
        value = payload.get(name)
        if value is not None and (
            not isinstance(value, str)
            or (name != "scope" and not value)
            or not _is_token_text(value)
        ):
            raise ProviderError(f"token response has an invalid {name}", code=f"token.{name}")
    return validate_model(TokenResponse, payload, what="token response")


def _is_token_text(value: str) -> bool:
    """Tokens and scopes are visible ASCII (RFC 6749 appendix A: VSCHAR, and spaces between
    scope tokens). Anything else could not be sent back in a form or a header."""
    # For ASCII text, isprintable() is exactly 0x20-0x7E; both run in C (a token can be long).
    return value.isascii() and value.isprintable()
