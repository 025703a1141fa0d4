"""Requests to the token endpoint (code exchange, refresh, client credentials) and their
responses."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Sequence
from urllib.parse import quote_plus

from ..config import LogtoConfig
from ..errors import LogtoUsageError, ProviderError, ProviderResponseError
from ..http import HttpRequest, HttpResponse
from ..jose.jwt import compact_form
from ..models import OidcProviderMetadata, TokenResponse
from ..responses import read_object, validate_model
from ..session import PendingSignIn

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
    """Validate a token endpoint answer, member by member; OAuth errors become
    :class:`OAuthError`, transient statuses :class:`TransportError`.

    RFC 6749 section 5.1 (and OIDC Core section 3.1.3.3 for the code exchange), each with its
    ``token.*`` code:

    * status 200 (``token.status``) and a JSON object (strict decoder: ``provider_response.*``);
    * ``access_token`` REQUIRED, a non-empty string (``token.access_token_missing``) usable
      as a Bearer credential (RFC 6750 section 2.1 b64token, stricter than the VSCHAR of
      appendix A.12: ``token.access_token``);
    * ``token_type`` REQUIRED, compared case-insensitively (section 5.1, RFC 6750); only
      ``Bearer`` is usable, since the SDK sends no DPoP proofs (``token.token_type``,
      ``token.token_type_dpop``);
    * ``expires_in`` a non-negative JSON number, never a string or a boolean
      (``token.expires_in``);
    * ``refresh_token`` non-empty visible ASCII (appendix A.17: ``token.refresh_token``);
    * ``scope`` a space-delimited list of scope tokens (section 3.3: ``token.scope``); an empty
      string is read as "no scope";
    * ``id_token`` a compact JWS (OIDC Core sections 3.1.3.3 and 3.1.3.7: ``token.id_token``);
      an encrypted (JWE) ID token is not supported (``token.id_token_encrypted``). Its
      signature and claims are checked by :func:`logto_core.protocol.id_token.verify_id_token`.

    Whether an ID token must be present is the caller's business (the code exchange with
    ``openid`` requires one: ``token.id_token_missing``).
    """
    if response.ok and response.status != 200:
        raise ProviderResponseError(
            f"token endpoint answered HTTP {response.status}, expected 200",
            status=response.status,
            code="token.status",
        )
    payload = read_object(response, what="token")
    _check_access_token(payload, response.status)
    _check_token_type(payload.get("token_type"))
    expires_in = payload.get("expires_in")
    if expires_in is not None:
        payload = {**payload, "expires_in": _lifetime(expires_in)}
    refresh_token = payload.get("refresh_token")
    if refresh_token is not None and not _is_token(refresh_token):
        raise ProviderError(
            "token response has a refresh_token that is not non-empty visible ASCII",
            code="token.refresh_token",
        )
    scope = payload.get("scope")
    if scope is not None and not _is_scope(scope):
        raise ProviderError(
            "token response has a scope that is not a space-delimited list of scope tokens",
            code="token.scope",
        )
    id_token = payload.get("id_token")
    if id_token is not None:
        _check_id_token_form(id_token)
    return validate_model(TokenResponse, payload, what="token response")


def _check_access_token(payload: dict[str, object], status: int) -> None:
    access_token = payload.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise ProviderResponseError(
            "token response lacks a string access_token",
            status=status,
            code="token.access_token_missing",
        )
    if _B64TOKEN.fullmatch(access_token) is None:
        raise ProviderError(
            "token response has an access_token that cannot be sent as a Bearer credential "
            "(RFC 6750 section 2.1: letters, digits and -._~+/ then optional =)",
            code="token.access_token",
        )


def _check_token_type(token_type: object) -> None:
    if token_type is None:
        raise ProviderError(
            "token response lacks token_type, which RFC 6749 section 5.1 requires",
            code="token.token_type",
        )
    if not isinstance(token_type, str):
        raise ProviderError("token response has a non-string token_type", code="token.token_type")
    kind = token_type.lower()
    if kind == "dpop":
        raise ProviderError(
            "the provider issued a DPoP-bound access token, which the SDK cannot use (it "
            "sends no DPoP proofs): turn off DPoP binding for this application",
            code="token.token_type_dpop",
        )
    if kind != "bearer":
        raise ProviderError(
            "token response has a token_type other than Bearer, the only one the SDK can use",
            code="token.token_type",
        )


def _lifetime(expires_in: object) -> int:
    # A JSON number (the strict decoder already refused NaN, Infinity and 1e400).
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, (int, float))
        or not math.isfinite(expires_in)
        or expires_in < 0
    ):
        raise ProviderError(
            "token response has an expires_in that is not a non-negative number",
            code="token.expires_in",
        )
    return int(expires_in)


def _check_id_token_form(id_token: object) -> None:
    form = compact_form(id_token)
    if form == "jwe":
        raise ProviderError(
            "the provider returned an encrypted ID token (JWE), which the SDK does not "
            "support: turn off ID token encryption for this application",
            code="token.id_token_encrypted",
        )
    if form != "jws":
        raise ProviderError(
            "token response has an id_token that is not a compact JWS (three base64url segments)",
            code="token.id_token",
        )


# RFC 6750 section 2.1: the b64token of "Authorization: Bearer <token>", where the SDK (and
# the application, towards its APIs) sends every access token it gets.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), joined by single spaces.
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*")


def _is_scope(value: object) -> bool:
    return isinstance(value, str) and (value == "" or _SCOPE.fullmatch(value) is not None)


def _is_token(value: object) -> bool:
    return isinstance(value, str) and bool(value) and _is_token_text(value)


def _is_token_text(value: str) -> bool:
    """Tokens are visible ASCII (RFC 6749 appendix A: VSCHAR). Anything else could not be
    sent back in a form or a header."""
    # For ASCII text, isprintable() is exactly 0x20-0x7E; both run in C (a token can be long).
    return value.isascii() and value.isprintable()
