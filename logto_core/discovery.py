"""OpenID Connect Discovery: fetch and validate the provider's metadata."""

from __future__ import annotations

from .config import LogtoConfig
from .errors import DiscoveryError
from .http import HttpRequest, HttpResponse
from .models import OidcProviderMetadata
from .responses import read_object, validate_model
from .urls import is_acceptable_endpoint

_ENDPOINT_FIELDS = (
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "end_session_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "device_authorization_endpoint",
    "pushed_authorization_request_endpoint",
)


def build_discovery_request(config: LogtoConfig) -> HttpRequest:
    """GET ``<endpoint>/oidc/.well-known/openid-configuration``."""
    return HttpRequest.get(config.discovery_url, purpose="discovery")


def parse_discovery_response(response: HttpResponse, config: LogtoConfig) -> OidcProviderMetadata:
    """Validate the discovery document.

    The issuer must equal ``<endpoint>/oidc`` exactly (OIDC Discovery section 4.3), so a
    document served by anyone else is never used; every endpoint must be https (or http on a
    loopback host when the configuration allows it).
    """
    if response.ok and response.status != 200:
        # A 204 or 206 is no document; other statuses are reported by read_object.
        raise DiscoveryError(f"discovery answered HTTP {response.status}, expected 200")
    payload = read_object(response, what="discovery")
    metadata = validate_model(
        OidcProviderMetadata, payload, what="discovery document", error=DiscoveryError
    )
    if metadata.issuer != config.issuer:
        raise DiscoveryError(
            f"discovery issuer {metadata.issuer!r} does not match the expected {config.issuer!r}",
            code="discovery.issuer_mismatch",
        )
    for name in _ENDPOINT_FIELDS:
        url = getattr(metadata, name)
        if url is not None and not is_acceptable_endpoint(
            url, allow_insecure_loopback=config.development_mode
        ):
            raise DiscoveryError(
                f"discovery field {name} is not an acceptable https endpoint",
                code="discovery.insecure_endpoint",
            )
    if metadata.code_challenge_methods_supported and (
        "S256" not in metadata.code_challenge_methods_supported
    ):
        raise DiscoveryError(
            "provider does not support PKCE S256", code="discovery.pkce_unsupported"
        )
    return metadata
