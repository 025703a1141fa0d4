"""Token revocation (RFC 7009)."""

from __future__ import annotations

from ..config import LogtoConfig
from ..errors import LogtoUsageError, ProviderResponseError
from ..http import HttpRequest, HttpResponse
from ..models import OidcProviderMetadata
from ..responses import raise_for_status
from .token_endpoint import client_authentication


def build_revocation_request(
    config: LogtoConfig,
    metadata: OidcProviderMetadata,
    token: str,
    *,
    token_type_hint: str | None = "refresh_token",
) -> HttpRequest:
    if metadata.revocation_endpoint is None:
        raise LogtoUsageError("the provider advertises no revocation_endpoint")
    headers, auth_form = client_authentication(config)
    form = [("token", token)]
    if token_type_hint:
        form.append(("token_type_hint", token_type_hint))
    return HttpRequest.post_form(
        metadata.revocation_endpoint, [*form, *auth_form], headers=headers, purpose="revocation"
    )


def parse_revocation_response(response: HttpResponse) -> None:
    """Check a revocation answer (RFC 7009 section 2.2).

    200 means revoked, or already invalid, whatever the body (the client ignores it: it is
    not even decoded). An error is an :class:`OAuthError` (section 2.2.1, including
    ``unsupported_token_type``); 503 and other transient statuses are a
    :class:`TransportError` carrying ``Retry-After`` (the token must be assumed still valid);
    any other status, another 2xx included, a :class:`ProviderResponseError`.
    """
    raise_for_status(response, what="revocation")
    if response.status != 200:
        raise ProviderResponseError(
            f"revocation answered HTTP {response.status}, expected 200",
            status=response.status,
            code="revocation.status",
        )
