"""OpenID Connect Discovery: fetch and validate the provider's metadata."""

from __future__ import annotations

from ..config import LogtoConfig
from ..errors import DiscoveryError
from ..http import HttpRequest, HttpResponse
from ..jose.chain import allowed_algorithms
from ..models import OidcProviderMetadata
from ..responses import read_object, validate_model
from ..urls import is_acceptable_endpoint

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
    """Validate the discovery document (OpenID Connect Discovery 1.0 sections 3 and 4).

    Section 4.2: status 200 and a JSON object (read by the strict decoder). Section 3: every
    member present that it marks REQUIRED, and every member it defines well typed
    (:class:`OidcProviderMetadata`). Section 4.3: the issuer equals ``<endpoint>/oidc``
    exactly, so a document served by anyone else is never used. Every endpoint must be https
    (or http on a loopback host when the configuration allows it). Then what the SDK itself
    needs the provider to support, each refused with an error that names the fix: see
    :func:`check_provider_support`.
    """
    if response.ok and response.status != 200:
        # A 204 or 206 is no document; other statuses are reported by read_object.
        raise DiscoveryError(f"discovery answered HTTP {response.status}, expected 200")
    payload = read_object(response, what="discovery")
    metadata = validate_model(
        OidcProviderMetadata, payload, what="discovery document", error=DiscoveryError
    )
    check_metadata(metadata, config)
    return metadata


def check_metadata(metadata: OidcProviderMetadata, config: LogtoConfig) -> None:
    """What a discovery document must satisfy besides its shape, wherever it comes from (the
    provider, or a provider cache exported by another process): section 4.3's issuer, https
    endpoints, and :func:`check_provider_support`."""
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
    check_provider_support(metadata, config)


def check_provider_support(metadata: OidcProviderMetadata, config: LogtoConfig) -> None:
    """Refuse metadata that rules out what the SDK will do, before the first sign-in.

    * ``response_types_supported`` must hold ``code`` (the SDK uses the code flow only);
    * ``grant_types_supported``, when present, must hold ``authorization_code`` (section 3:
      when absent it defaults to ``authorization_code`` and ``implicit``);
    * ``scopes_supported``, when present, must hold ``openid`` (section 3: "the server MUST
      support the openid scope value");
    * ``subject_types_supported`` must not be empty (a REQUIRED list of the types offered);
    * ``id_token_signing_alg_values_supported`` must share an algorithm with the client's
      ``idTokenAlgorithms`` that the SDK can verify. Section 3 also says RS256 MUST be
      listed; Logto lists only its tenant's algorithm (ES384 by default), so that one rule
      is deliberately not enforced (``docs/security.md``);
    * ``code_challenge_methods_supported``, when present, must hold ``S256``;
    * ``token_endpoint_auth_methods_supported``, when present, must hold the method the SDK
      will use: ``client_secret_basic`` with an ``appSecret``, ``none`` without one.

    Raises :class:`DiscoveryError` with a ``discovery.*`` code.
    """
    present = metadata.model_fields_set
    if "code" not in metadata.response_types_supported:
        raise DiscoveryError(
            "provider does not support the authorization code flow (response_types_supported "
            "lacks 'code'), the only flow the SDK uses",
            code="discovery.response_type_unsupported",
        )
    if "grant_types_supported" in present and (
        "authorization_code" not in metadata.grant_types_supported
    ):
        raise DiscoveryError(
            "provider does not support the authorization_code grant (grant_types_supported)",
            code="discovery.grant_type_unsupported",
        )
    if "scopes_supported" in present and "openid" not in metadata.scopes_supported:
        raise DiscoveryError(
            "provider does not list the openid scope in scopes_supported: it is no OpenID "
            "Provider, or the endpoint points at something else",
            code="discovery.openid_scope_missing",
        )
    if not metadata.subject_types_supported:
        raise DiscoveryError(
            "discovery document has an empty subject_types_supported",
            code="discovery.subject_types_empty",
        )
    advertised = metadata.id_token_signing_alg_values_supported
    if not allowed_algorithms(config.idTokenAlgorithms, advertised) or not advertised:
        raise DiscoveryError(
            "provider signs ID tokens with no algorithm the client accepts "
            "(id_token_signing_alg_values_supported against idTokenAlgorithms); add the "
            "provider's algorithm to idTokenAlgorithms if the SDK supports it",
            code="discovery.id_token_alg_unsupported",
        )
    if metadata.code_challenge_methods_supported and (
        "S256" not in metadata.code_challenge_methods_supported
    ):
        raise DiscoveryError(
            "provider does not support PKCE S256", code="discovery.pkce_unsupported"
        )
    _check_client_authentication(metadata, config)


def _check_client_authentication(metadata: OidcProviderMetadata, config: LogtoConfig) -> None:
    methods = metadata.token_endpoint_auth_methods_supported
    if "token_endpoint_auth_methods_supported" not in metadata.model_fields_set:
        # Section 3 makes client_secret_basic the default; public clients are not refused on
        # that default alone (docs/security.md), the token endpoint would say so clearly.
        return
    if config.is_confidential and "client_secret_basic" not in methods:
        raise DiscoveryError(
            "provider does not accept client_secret_basic at its token endpoint "
            "(token_endpoint_auth_methods_supported), the authentication the SDK uses for an "
            "app with appSecret: enable client_secret_basic for the application, or remove "
            "appSecret if the app is a public (SPA or native) client",
            code="discovery.auth_method_unsupported",
        )
    if not config.is_confidential and "none" not in methods:
        raise DiscoveryError(
            "provider does not accept public clients at its token endpoint (no 'none' in "
            "token_endpoint_auth_methods_supported): set appSecret for a confidential "
            "(traditional web) app, or allow public PKCE clients on the provider",
            code="discovery.auth_method_unsupported",
        )
