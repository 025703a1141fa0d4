"""Every error code the SDK raises, declared once: its class, what it means, the likely fix.

Every :class:`~logto_core.errors.LogtoError` carries a stable ``code`` (``area.detail`` in
lower snake case; each class also has a one-word default). Look one up::

    from logto_core.error_codes import describe

    entry = describe(error.code)  # an ErrorCode, or None for a code the SDK never raises
    entry.error       # the class it is raised as (DiscoveryError, ...)
    entry.meaning     # one line
    entry.fix         # the likely fix, when there is one to name

A code in :data:`CODES` is raised as exactly the class the entry names (so ``except
entry.error`` catches it). ``oauth.{error}`` is a *family*: ``error`` is the provider's OAuth
error code, any value RFC 6749 allows; :func:`describe` answers the family's entry for a code
without an entry of its own (``oauth.unknown_thing``), and the entry of the few OAuth errors
listed here for their fix.

The fix of ``oauth.invalid_client`` is narrowed down at run time from what the SDK sent (the
error's ``hint``, :mod:`logto_core.hints`).

``tests/test_error_codes.py`` reads the sources: every code given to an error is declared
here, for its class, and every declared code is raised somewhere. ``docs/errors.md`` is
:func:`markdown` (``python -m logto_core.error_codes > docs/errors.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from . import hints
from .config import ConfigError
from .driver import FlowLimitError
from .errors import (
    CallbackError,
    CoordinationError,
    DiscoveryError,
    JwksError,
    LeaderLostError,
    LogoutRequestError,
    LogtoError,
    LogtoUsageError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
    ScopeNotGrantedError,
    SessionTooLargeError,
    SignInRequiredError,
    StorageError,
    TokenValidationError,
    TransportError,
)
from .grants import DeviceAuthorizationError
from .protocol.bearer import AccessTokenError
from .protocol.id_token import UnknownKeyError
from .testing._wire import Rejection

__all__ = ["CODES", "ErrorCode", "describe", "markdown"]

_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One error code: ``code`` (or a family such as ``oauth.{error}``), the class it is
    raised as, its meaning and, when the SDK can name it, the likely fix."""

    code: str
    error: type[LogtoError]
    meaning: str
    fix: str | None = None

    @property
    def is_family(self) -> bool:
        """Whether ``code`` stands for many codes (``{error}`` is the provider's text)."""
        return _PLACEHOLDER.search(self.code) is not None

    def matches(self, code: str) -> bool:
        """Whether ``code`` is this entry's code, or one of its family."""
        if not self.is_family:
            return code == self.code
        pieces = _PLACEHOLDER.split(self.code)
        return re.fullmatch(".+".join(map(re.escape, pieces)), code, re.DOTALL) is not None


_USAGE_FIX = "correct the call as the message says"
_CONSOLE = "the application's settings in the Logto Console"

_ENTRIES: tuple[ErrorCode, ...] = (
    # -- class defaults ----------------------------------------------------------------
    ErrorCode(
        "logto_error",
        LogtoError,
        "the base class's default; the SDK always raises a subclass with its own code",
    ),
    ErrorCode("usage", LogtoUsageError, "the SDK was called incorrectly", _USAGE_FIX),
    ErrorCode(
        "provider",
        ProviderError,
        "a provider answer failed validation (e.g. a token response with bad fields)",
        "check the endpoint points at a Logto tenant; the message names the fields",
    ),
    ErrorCode(
        "discovery",
        DiscoveryError,
        "the discovery document is unusable (not HTTP 200, bad or missing fields)",
        "check LogtoConfig.endpoint: its /oidc/.well-known/openid-configuration must answer "
        "Logto's metadata",
    ),
    ErrorCode("jwks", JwksError, "the provider's key set is unusable (class default)"),
    ErrorCode(
        "token_invalid",
        TokenValidationError,
        "a JWT failed validation (class default; raised codes are id_token.*, logout_token.*, "
        "jwt.*)",
    ),
    ErrorCode(
        "provider_response",
        ProviderResponseError,
        "a response that is neither a success nor a well-formed OAuth error (class default)",
    ),
    ErrorCode(
        "callback",
        CallbackError,
        "the authorization response is not acceptable (class default)",
    ),
    ErrorCode(
        "logout_request",
        LogoutRequestError,
        "a request at the back-channel logout URI is not a logout request (class default)",
    ),
    ErrorCode(
        "oauth",
        OAuthError,
        "an OAuth error answer (class default; raised codes are oauth.{error})",
    ),
    ErrorCode(
        "sign_in_required",
        SignInRequiredError,
        "no usable grant (class default; raised codes are sign_in_required.*)",
        "sign the user in again",
    ),
    ErrorCode(
        "transport",
        TransportError,
        "the request did not complete (class default; raised codes are transport.*)",
    ),
    ErrorCode(
        "coordination",
        CoordinationError,
        "the coordinator the app's processes share failed (class default; raised codes are "
        "coordination.*)",
    ),
    ErrorCode(
        "storage",
        StorageError,
        "the application's storage failed (class default; raised codes are storage.*)",
    ),
    ErrorCode(
        "flow_limit",
        FlowLimitError,
        "a flow or operation asked for more requests or effects than any legitimate run "
        "needs (a provider answering in a loop)",
        "report it: the SDK stopped instead of looping",
    ),
    ErrorCode(
        "access_token",
        AccessTokenError,
        "a request to an API is not allowed (class default; raised codes are bearer.* and "
        "access_token.*)",
    ),
    # -- configuration and usage -------------------------------------------------------
    ErrorCode(
        "config.invalid",
        ConfigError,
        "LogtoConfig was given an invalid value",
        "the message names the field and the fix",
    ),
    ErrorCode(
        "config.immutable",
        ConfigError,
        "a LogtoConfig field was assigned to",
        "make a validated copy with config.replace(field=...)",
    ),
    ErrorCode(
        "usage.async_storage",
        LogtoUsageError,
        "a synchronous getter of the async client met an async storage it has not read yet",
        "await a client method first in this context, or use the awaitable twins "
        "(await client.isAuthenticatedAsync(), getIdTokenClaimsAsync(), ...)",
    ),
    ErrorCode(
        "usage.coordinator",
        LogtoUsageError,
        "RedisCoordinator was given an unusable URL or setting (or another coordinator's ticket)",
        "the message names the form: redis://[[user]:password@]host[:port][/db], rediss:// "
        "for TLS, unix:///path",
    ),
    ErrorCode(
        "usage.replay",
        LogtoUsageError,
        "a replay cache was made with a limit that is not a positive whole number",
        "give ReplayCache a limit of at least 1",
    ),
    ErrorCode(
        "usage.session_registry",
        LogtoUsageError,
        "a SessionRegistry was made with a max_sessions or idle_timeout out of range",
        "give max_sessions a whole number of at least 1 and idle_timeout a positive number",
    ),
    ErrorCode(
        "usage.session_unknown",
        LogtoUsageError,
        "SessionRegistry.rotate was given an id that names no live session",
        "rotate the id of the session the request opened (its storage's id), right away",
    ),
    ErrorCode(
        "usage.redis_session_id",
        LogtoUsageError,
        "a Redis session id is not 1 to 128 characters of A-Z, a-z, 0-9, _ and - (it could "
        "name another key)",
        "use the random id the app gave the session (a SessionRegistry's ids qualify)",
    ),
    ErrorCode(
        "usage.redis_url",
        LogtoUsageError,
        "the Redis URL does not start with redis://, rediss:// or unix://",
        "pass a URL such as redis://user:password@host:6379/0 (rediss:// for TLS)",
    ),
    ErrorCode(
        "usage.redis_options",
        LogtoUsageError,
        "a Redis storage option is out of range (ttl from 1 s to 400 days, a short key "
        "prefix of A-Z, a-z, 0-9 and _.:/-, a positive idle timeout)",
        _USAGE_FIX,
    ),
    ErrorCode(
        "usage.redis_missing",
        LogtoUsageError,
        "Redis storage was asked for but redis-py is not installed",
        "pip install 'logto-sansio[redis]'",
    ),
    ErrorCode(
        "usage.organization_resource",
        LogtoUsageError,
        "getAccessToken was asked for the organizations resource",
        "use getOrganizationToken(organization_id)",
    ),
    ErrorCode(
        "usage.organizations_scope",
        LogtoUsageError,
        "an organization token was asked for without the organizations scope",
        "add UserInfoScope.organizations to LogtoConfig.scopes and sign in again",
    ),
    ErrorCode(
        "usage.resource_not_configured",
        LogtoUsageError,
        "a token was asked for a resource that was not requested at sign-in",
        "add it to LogtoConfig.resources and sign in again",
    ),
    ErrorCode(
        "usage.cookie_key",
        LogtoUsageError,
        "CookieCipher was given no key, or one that is not a Fernet key",
        "pass keys made by cryptography.fernet.Fernet.generate_key(), newest first",
    ),
    ErrorCode("usage.cookie_name", LogtoUsageError, "an invalid session cookie name", _USAGE_FIX),
    ErrorCode("usage.cookie_count", LogtoUsageError, "max_cookies is not from 1 to 16", _USAGE_FIX),
    ErrorCode(
        "usage.cookie_same_site",
        LogtoUsageError,
        'same_site is not "Lax", "Strict" or "None", or "None" without secure',
        _USAGE_FIX,
    ),
    ErrorCode(
        "storage.cookie_too_large",
        SessionTooLargeError,
        "the session does not fit in the cookies allowed (4 KB each), even without its "
        "cached access tokens; nothing was written",
        "keep sessions on the server (a storage keyed by a session id), or raise "
        "max_cookies, or ask for fewer API resources",
    ),
    ErrorCode(
        "usage.base_url",
        LogtoUsageError,
        "the web integration's base URL is not an http(s) origin",
        "set it to the app's public origin, such as https://app.example.com",
    ),
    ErrorCode(
        "usage.forwarded",
        LogtoUsageError,
        "the request's scheme or host (or the trusted X-Forwarded-* headers) is not a valid "
        "origin for the callback URL",
        "configure the app's base URL, or check what the proxy sends",
    ),
    ErrorCode(
        "usage.flask_setup",
        LogtoUsageError,
        "the Flask integration was given both a LogtoConfig and a Logto (or neither), or a "
        "second integration for the same app; or access_token_claims() was called in a view "
        "that access_token_required does not guard",
        "pass config= or logto=, make one LogtoFlask (or AsyncLogtoFlask) per app, and "
        "decorate API views with access_token_required",
    ),
    ErrorCode(
        "usage.web_path",
        LogtoUsageError,
        "a route path given to a web integration is not an absolute path of the app",
        "give paths such as /sign-in (one leading slash, no scheme or host)",
    ),
    ErrorCode(
        "usage.web_middleware",
        LogtoUsageError,
        "the Starlette or FastAPI request did not go through LogtoMiddleware",
        "add auth.middleware() to the app's middleware (FastAPI: "
        "app.add_middleware(LogtoMiddleware, auth=auth))",
    ),
    ErrorCode(
        "usage.m2m_target",
        LogtoUsageError,
        "a machine-to-machine token was asked for without a resource or an organization",
        "pass resource= (an API identifier) or organizationId=",
    ),
    ErrorCode(
        "usage.m2m_secret",
        LogtoUsageError,
        "LogtoM2MClient was given a configuration without appSecret",
        "set appSecret (a machine-to-machine app's, from the Logto Console)",
    ),
    ErrorCode(
        "usage.device_sign_in",
        LogtoUsageError,
        "waitForDeviceSignIn was given something startDeviceSignIn did not return",
        _USAGE_FIX,
    ),
    ErrorCode(
        "usage.token_exchange_token",
        LogtoUsageError,
        "exchangeToken was given an empty or malformed subject or actor token",
        _USAGE_FIX,
    ),
    ErrorCode(
        "usage.token_exchange_type",
        LogtoUsageError,
        "exchangeToken was given a subject token type Logto does not exchange",
        "use TokenType.access_token or TokenType.personal_access_token",
    ),
    ErrorCode(
        "usage.sign_in_option",
        LogtoUsageError,
        "signIn was given a keyword option it does not have (a typo such as loginhint)",
        "use one of the options the message lists (they are camelCase, as in the tutorial)",
    ),
    ErrorCode(
        "usage.provider_cache",
        LogtoUsageError,
        "provider_cache is not the text exportProviderCache() returned",
        "pass the string exportProviderCache() returned, or None",
    ),
    ErrorCode(
        "usage.revocation_mode",
        LogtoUsageError,
        "the clients' revocation option is neither 'inline' nor 'background'",
        'pass revocation="inline" or revocation="background"',
    ),
    ErrorCode(
        "usage.revocation_timeout",
        LogtoUsageError,
        "revocation_timeout is not a finite number of seconds, 0 or more",
        "pass a finite number of seconds",
    ),
    ErrorCode(
        "usage.resource_server",
        LogtoUsageError,
        "LogtoResourceServer was given an audience that is not an absolute URI of printable "
        "ASCII, or algorithms that are empty, none, HMAC or not verifiable by the SDK",
        "pass the API identifier from the Logto Console as the audience",
    ),
    ErrorCode(
        "usage.access_requirements",
        LogtoUsageError,
        "requiredScopes, organizationId or organizationRoles of a verification is invalid "
        "(not text, empty, or a scope that is no scope-token)",
        "pass lists of non-empty strings (or one space-delimited string)",
    ),
    ErrorCode(
        "usage.authorization_header",
        LogtoUsageError,
        "an Authorization header value is neither a str nor None",
        "decode the header's bytes as latin-1 first",
    ),
    ErrorCode(
        "runtime.entropy",
        LogtoUsageError,
        "a custom Runtime's entropy source returned the wrong number of bytes",
        "return exactly the number of bytes asked for",
    ),
    ErrorCode(
        "pkce.invalid_verifier",
        LogtoUsageError,
        "a PKCE code verifier is not 43 to 128 unreserved characters",
    ),
    ErrorCode(
        "sign_in.invalid_endpoint",
        LogtoUsageError,
        "the authorization endpoint is not https (or loopback http), or its query sets a "
        "parameter the SDK sets itself",
        "check the provider's metadata (authorization_endpoint)",
    ),
    ErrorCode(
        "sign_in.invalid_redirect_uri",
        LogtoUsageError,
        "redirectUri is not an absolute http(s) URL without fragment and credentials",
        "pass the redirect URI registered in " + _CONSOLE,
    ),
    ErrorCode(
        "sign_in.invalid_option",
        LogtoUsageError,
        "a sign-in option (first screen, identifiers, direct sign-in, prompt, login hint, "
        "extra parameters...) has an invalid value",
        _USAGE_FIX,
    ),
    ErrorCode(
        "sign_in.reserved_parameter",
        LogtoUsageError,
        "extraParams sets a parameter the SDK sets (or refuses) itself",
        "use the SignInOptions field or LogtoConfig instead",
    ),
    # -- discovery ---------------------------------------------------------------------
    ErrorCode(
        "discovery.issuer_mismatch",
        DiscoveryError,
        "the discovery document's issuer is not exactly the endpoint followed by /oidc",
        "set LogtoConfig.endpoint to the tenant's URL without /oidc (as the Logto Console "
        "shows it)",
    ),
    ErrorCode(
        "discovery.insecure_endpoint",
        DiscoveryError,
        "an endpoint of the discovery document is not https (or loopback http)",
    ),
    ErrorCode(
        "discovery.response_type_unsupported",
        DiscoveryError,
        "the provider does not support the authorization code flow",
    ),
    ErrorCode(
        "discovery.grant_type_unsupported",
        DiscoveryError,
        "the provider does not support the authorization_code grant",
    ),
    ErrorCode(
        "discovery.openid_scope_missing",
        DiscoveryError,
        "the provider does not list the openid scope: it is no OpenID Provider",
        "check LogtoConfig.endpoint",
    ),
    ErrorCode(
        "discovery.subject_types_empty",
        DiscoveryError,
        "the discovery document has an empty subject_types_supported",
    ),
    ErrorCode(
        "discovery.id_token_alg_unsupported",
        DiscoveryError,
        "the provider signs ID tokens with no algorithm LogtoConfig.idTokenAlgorithms accepts",
        "add the provider's algorithm to LogtoConfig.idTokenAlgorithms",
    ),
    ErrorCode(
        "discovery.pkce_unsupported",
        DiscoveryError,
        "the provider does not support PKCE with S256",
    ),
    ErrorCode(
        "discovery.auth_method_unsupported",
        DiscoveryError,
        "the token endpoint accepts neither client_secret_basic (with appSecret) nor public "
        "clients (without)",
        "set appSecret for a confidential app, or leave it out for a public one",
    ),
    # -- keys and tokens ---------------------------------------------------------------
    ErrorCode(
        "jwks.bad_status",
        ProviderResponseError,
        "the JWKS endpoint answered a status other than 200",
    ),
    ErrorCode("jwks.too_large", JwksError, "the JWKS response body is too large"),
    ErrorCode(
        "jwks.malformed",
        JwksError,
        "the JWKS response is not strict JSON with a 'keys' list",
    ),
    ErrorCode("jwks.no_usable_keys", JwksError, "the key set holds no usable signature key"),
    ErrorCode("jwks.bad_key", JwksError, "a key of the key set could not be imported"),
    ErrorCode(
        "jwks.cache_invalid",
        JwksError,
        "a cached key set (an export) is unreadable",
        "drop the cached value; the key set is fetched again",
    ),
    ErrorCode(
        "provider_state.cache_invalid",
        ProviderError,
        "a cached provider state (an export) is unreadable, or fits another configuration "
        "(its issuer or endpoints)",
        "drop the cached value (or export it again from a client of this configuration); "
        "discovery and keys are fetched again",
    ),
    ErrorCode(
        "jwt.malformed",
        TokenValidationError,
        "a token is oversized, not a compact JWS, or its header or payload is not a strict "
        "JSON object",
    ),
    ErrorCode(
        "jwt.claims_invalid",
        TokenValidationError,
        "a decoded token's claim is missing or has the wrong type",
    ),
    ErrorCode(
        "id_token.alg_not_allowed",
        TokenValidationError,
        "the ID token's algorithm is missing, none, HMAC, or not allowed",
        "allow the algorithm in LogtoConfig.idTokenAlgorithms if the provider uses it",
    ),
    ErrorCode(
        "id_token.crit_unsupported",
        TokenValidationError,
        "the ID token header lists critical extensions",
    ),
    ErrorCode(
        "id_token.typ_not_allowed",
        TokenValidationError,
        "the token's typ says it is not an ID token",
    ),
    ErrorCode(
        "id_token.header_invalid", TokenValidationError, "the ID token's kid is not a string"
    ),
    ErrorCode(
        "id_token.kid_ambiguous",
        TokenValidationError,
        "several keys fit the ID token and its kid does not decide",
    ),
    ErrorCode(
        "id_token.kid_unknown",
        UnknownKeyError,
        "no key of the provider's key set matches the ID token (the key set is refetched at "
        "most once per cooldown)",
        "if keys were just rotated, retry after the cooldown",
    ),
    ErrorCode(
        "id_token.key_mismatch",
        TokenValidationError,
        "the key the ID token names does not fit its algorithm",
    ),
    ErrorCode(
        "id_token.bad_signature",
        TokenValidationError,
        "the ID token's signature is not valid",
    ),
    ErrorCode(
        "id_token.missing_claim",
        TokenValidationError,
        "the ID token lacks a required claim (sub, iat, nonce, azp...; see claim)",
    ),
    ErrorCode(
        "id_token.invalid_claim",
        TokenValidationError,
        "an ID token claim has the wrong type (see claim)",
    ),
    ErrorCode(
        "id_token.iss_mismatch",
        TokenValidationError,
        "the ID token's issuer is not the expected issuer",
    ),
    ErrorCode(
        "id_token.aud_mismatch",
        TokenValidationError,
        "the ID token is not issued to this client",
        "check LogtoConfig.appId",
    ),
    ErrorCode(
        "id_token.azp_mismatch",
        TokenValidationError,
        "the ID token's authorized party is not this client",
    ),
    ErrorCode(
        "id_token.aud_untrusted",
        TokenValidationError,
        "the ID token names audiences this client does not trust",
    ),
    ErrorCode(
        "id_token.expired",
        TokenValidationError,
        "the ID token has expired",
        "check the server's clock",
    ),
    ErrorCode(
        "id_token.not_yet_valid",
        TokenValidationError,
        "the ID token is not valid yet (nbf)",
        "check the server's clock",
    ),
    ErrorCode(
        "id_token.iat_future",
        TokenValidationError,
        "the ID token is issued in the future",
        "check the server's clock",
    ),
    ErrorCode(
        "id_token.auth_time_future",
        TokenValidationError,
        "the ID token's authentication time is in the future",
        "check the server's clock",
    ),
    ErrorCode(
        "id_token.auth_time_too_old",
        TokenValidationError,
        "the end-user authenticated longer ago than max_age",
        "sign in again (with prompt=login)",
    ),
    ErrorCode(
        "id_token.unexpected_nonce",
        TokenValidationError,
        "the ID token carries a nonce that was not sent",
    ),
    ErrorCode(
        "id_token.nonce_mismatch",
        TokenValidationError,
        "the ID token's nonce is not the one sent",
    ),
    ErrorCode(
        "id_token.at_hash_mismatch",
        TokenValidationError,
        "the ID token's at_hash does not match the access token",
    ),
    ErrorCode(
        "id_token.iss_changed",
        TokenValidationError,
        "a refreshed ID token has another issuer (the stored ID token is kept)",
    ),
    ErrorCode(
        "id_token.sub_changed",
        TokenValidationError,
        "a refreshed ID token is about another user (the stored ID token is kept)",
    ),
    ErrorCode(
        "id_token.aud_changed",
        TokenValidationError,
        "a refreshed ID token has other audiences (the stored ID token is kept)",
    ),
    ErrorCode(
        "id_token.auth_time_changed",
        TokenValidationError,
        "a refreshed ID token has another authentication time (the stored ID token is kept)",
    ),
    # -- back-channel logout ------------------------------------------------------------
    ErrorCode(
        "logout_token.alg_not_allowed",
        TokenValidationError,
        "the logout token's algorithm is missing, none, HMAC, or not allowed (the ID token's "
        "allow-list applies)",
        "allow the algorithm in LogtoConfig.idTokenAlgorithms if the provider uses it",
    ),
    ErrorCode(
        "logout_token.crit_unsupported",
        TokenValidationError,
        "the logout token header lists critical extensions",
    ),
    ErrorCode(
        "logout_token.typ_not_allowed",
        TokenValidationError,
        "the token's typ is not logout+jwt (an ID token, an access token, or an untyped JWT "
        "was sent as a logout token)",
    ),
    ErrorCode(
        "logout_token.header_invalid",
        TokenValidationError,
        "the logout token's kid is not a string",
    ),
    ErrorCode(
        "logout_token.kid_ambiguous",
        TokenValidationError,
        "several keys fit the logout token and its kid does not decide",
    ),
    ErrorCode(
        "logout_token.kid_unknown",
        UnknownKeyError,
        "no key of the provider's key set matches the logout token (the key set is refetched "
        "at most once per cooldown)",
        "if keys were just rotated, the provider's retry after the cooldown succeeds",
    ),
    ErrorCode(
        "logout_token.key_mismatch",
        TokenValidationError,
        "the key the logout token names does not fit its algorithm",
    ),
    ErrorCode(
        "logout_token.bad_signature",
        TokenValidationError,
        "the logout token's signature is not valid",
    ),
    ErrorCode(
        "logout_token.missing_claim",
        TokenValidationError,
        "the logout token lacks a required claim (iat, jti, events, azp; see claim)",
    ),
    ErrorCode(
        "logout_token.invalid_claim",
        TokenValidationError,
        "a logout token claim has the wrong type (see claim)",
    ),
    ErrorCode(
        "logout_token.iss_mismatch",
        TokenValidationError,
        "the logout token's issuer is not the expected issuer",
    ),
    ErrorCode(
        "logout_token.aud_mismatch",
        TokenValidationError,
        "the logout token is not issued to this client",
        "check LogtoConfig.appId: the back-channel logout URI belongs to that application",
    ),
    ErrorCode(
        "logout_token.azp_mismatch",
        TokenValidationError,
        "the logout token's authorized party is not this client",
    ),
    ErrorCode(
        "logout_token.aud_untrusted",
        TokenValidationError,
        "the logout token names audiences this client does not trust",
    ),
    ErrorCode(
        "logout_token.expired",
        TokenValidationError,
        "the logout token has expired (exp)",
        "check the server's clock",
    ),
    ErrorCode(
        "logout_token.not_yet_valid",
        TokenValidationError,
        "the logout token is not valid yet (nbf)",
        "check the server's clock",
    ),
    ErrorCode(
        "logout_token.iat_future",
        TokenValidationError,
        "the logout token is issued in the future",
        "check the server's clock",
    ),
    ErrorCode(
        "logout_token.too_old",
        TokenValidationError,
        "the logout token was issued longer ago than the SDK accepts (two minutes plus the "
        "clock tolerance): a replay, or a delivery retried too late",
        "check the server's clock",
    ),
    ErrorCode(
        "logout_token.nonce_present",
        TokenValidationError,
        "the logout token carries a nonce (an ID token, or a forged logout token)",
    ),
    ErrorCode(
        "logout_token.events_invalid",
        TokenValidationError,
        "the logout token's events claim is not an object holding the back-channel logout "
        "event as an object",
    ),
    ErrorCode(
        "logout_token.subject_missing",
        TokenValidationError,
        "the logout token has neither sid nor sub: it names no one to sign out",
    ),
    ErrorCode(
        "logout_token.replayed",
        TokenValidationError,
        "the logout token (its jti) was received before",
    ),
    ErrorCode(
        "logout_request.method",
        LogoutRequestError,
        "the request at the back-channel logout URI is not a POST",
        "route only the provider's POST to the receiver",
    ),
    ErrorCode(
        "logout_request.content_type",
        LogoutRequestError,
        "the back-channel logout request is not application/x-www-form-urlencoded",
        "pass the request's headers as the framework gives them",
    ),
    ErrorCode(
        "logout_request.too_large",
        LogoutRequestError,
        "the back-channel logout request body exceeds 64 KiB",
    ),
    ErrorCode(
        "logout_request.malformed",
        LogoutRequestError,
        "the back-channel logout request body is not bytes, not ASCII, or not a readable form",
        "pass the raw body bytes (Flask request.get_data(), Starlette await request.body())",
    ),
    ErrorCode(
        "logout_request.token_missing",
        LogoutRequestError,
        "the back-channel logout request carries no logout_token",
    ),
    ErrorCode(
        "logout_request.token_repeated",
        LogoutRequestError,
        "the back-channel logout request carries more than one logout_token",
    ),
    # -- protecting an API (a resource server receiving access tokens) -------------------
    ErrorCode(
        "bearer.missing",
        AccessTokenError,
        "the request has no Authorization header, or an empty one: answer 401 with a bare "
        "Bearer challenge (RFC 6750 section 3.1)",
        "send Authorization: Bearer <access token>",
    ),
    ErrorCode(
        "bearer.other_scheme",
        AccessTokenError,
        "the Authorization header uses another scheme than Bearer (401, no error code)",
        "send Authorization: Bearer <access token>",
    ),
    ErrorCode(
        "bearer.malformed",
        AccessTokenError,
        "the Authorization header has the Bearer scheme but not exactly one b64token "
        "(400 invalid_request)",
        "send Authorization: Bearer <access token>",
    ),
    ErrorCode(
        "access_token.{check}",
        AccessTokenError,
        "the access token failed a check of the JWT chain (401 invalid_token); the checks "
        "are listed below",
    ),
    ErrorCode(
        "access_token.malformed",
        AccessTokenError,
        "the access token is oversized, not a compact JWS, or its header or payload is not "
        "a strict JSON object (an opaque or encrypted token, garbage)",
        "send the JWT access token Logto issues for this API's resource indicator, not the "
        "opaque one",
    ),
    ErrorCode(
        "access_token.claims_invalid",
        AccessTokenError,
        "an access token claim has the wrong type (scope, organization_id, "
        "organization_roles...; see claim)",
    ),
    ErrorCode(
        "access_token.alg_not_allowed",
        AccessTokenError,
        "the access token's algorithm is missing, none, HMAC, or not allowed",
    ),
    ErrorCode(
        "access_token.crit_unsupported",
        AccessTokenError,
        "the access token header lists critical extensions",
    ),
    ErrorCode(
        "access_token.typ_not_allowed",
        AccessTokenError,
        "the token's typ is not at+jwt (or application/at+jwt): an ID token, or another "
        "kind of JWT",
        "send an access token, not an ID token",
    ),
    ErrorCode(
        "access_token.header_invalid",
        AccessTokenError,
        "the access token's kid is not a string",
    ),
    ErrorCode(
        "access_token.kid_ambiguous",
        AccessTokenError,
        "several keys fit the access token and its kid does not decide",
    ),
    ErrorCode(
        "access_token.key_mismatch",
        AccessTokenError,
        "the key the access token names does not fit its algorithm",
    ),
    ErrorCode(
        "access_token.bad_signature",
        AccessTokenError,
        "the access token's signature is not valid",
    ),
    ErrorCode(
        "access_token.missing_claim",
        AccessTokenError,
        "the access token lacks a claim RFC 9068 requires (iss, exp, aud, sub, client_id, "
        "iat, jti; see claim)",
    ),
    ErrorCode(
        "access_token.invalid_claim",
        AccessTokenError,
        "an access token claim has the wrong type (see claim)",
    ),
    ErrorCode(
        "access_token.iss_mismatch",
        AccessTokenError,
        "the access token is not issued by the configured Logto endpoint",
        "check LogtoResourceServer's endpoint",
    ),
    ErrorCode(
        "access_token.aud_mismatch",
        AccessTokenError,
        "the access token is not for this API (its aud lacks the audience)",
        "request the token for this API's resource indicator (resource=...); check "
        "LogtoResourceServer's audience",
    ),
    ErrorCode(
        "access_token.expired",
        AccessTokenError,
        "the access token has expired",
        "get a fresh token (the client's getAccessToken does); check the server's clock",
    ),
    ErrorCode(
        "access_token.not_yet_valid",
        AccessTokenError,
        "the access token is not valid yet (nbf)",
        "check the server's clock",
    ),
    ErrorCode(
        "access_token.iat_future",
        AccessTokenError,
        "the access token is issued in the future",
        "check the server's clock",
    ),
    ErrorCode(
        "access_token.auth_time_future",
        AccessTokenError,
        "the access token's authentication time is in the future",
        "check the server's clock",
    ),
    ErrorCode(
        "access_token.kid_unknown",
        AccessTokenError,
        "no key of the provider's key set matches the access token, after one refetch per "
        "cooldown (forged, or signed by a retired key; 401 invalid_token)",
        "get a fresh token",
    ),
    ErrorCode(
        "access_token.insufficient_scope",
        AccessTokenError,
        "the access token lacks a required scope (403 insufficient_scope; scope lists every "
        "scope needed)",
        "request the token with the scopes, after granting them to the user's or app's roles",
    ),
    ErrorCode(
        "access_token.organization_mismatch",
        AccessTokenError,
        "the access token is for another organization, or for none (403 insufficient_scope)",
        "request the token for the organization (organizationId=...)",
    ),
    ErrorCode(
        "access_token.organization_role_missing",
        AccessTokenError,
        "the access token's organization_roles lack a required role, or it has none (403 "
        "insufficient_scope)",
        "assign the role in the organization; Logto adds organization_roles to access tokens "
        "only through a custom token claims script",
    ),
    # -- provider responses ------------------------------------------------------------
    ErrorCode(
        "provider_response.too_large",
        ProviderResponseError,
        "a response body exceeds the SDK's limit",
    ),
    ErrorCode(
        "provider_response.not_json",
        ProviderResponseError,
        "a response is not strict JSON",
        "check LogtoConfig.endpoint (a proxy or web page may answer instead of Logto)",
    ),
    ErrorCode(
        "provider_response.not_object",
        ProviderResponseError,
        "a JSON response is not an object",
    ),
    ErrorCode(
        "provider_response.invalid_error",
        ProviderResponseError,
        "an error answer's 'error' is not an RFC 6749 error code",
    ),
    ErrorCode(
        "provider_response.status",
        ProviderResponseError,
        "a non-transient error status without an OAuth error body",
        "check LogtoConfig.endpoint; body_excerpt shows what answered",
    ),
    ErrorCode(
        "token.status",
        ProviderResponseError,
        "the token endpoint answered a 2xx status other than 200",
    ),
    ErrorCode(
        "token.access_token_missing",
        ProviderResponseError,
        "the token response lacks a string access_token",
    ),
    ErrorCode(
        "token.access_token",
        ProviderError,
        "the token response's access_token cannot be sent as a Bearer credential",
    ),
    ErrorCode(
        "token.token_type",
        ProviderError,
        "the token response's token_type is missing, not a string, or not Bearer",
    ),
    ErrorCode(
        "token.token_type_dpop",
        ProviderError,
        "the provider issued a DPoP-bound access token, which the SDK cannot use",
        "turn off DPoP binding for this application",
    ),
    ErrorCode(
        "token.expires_in",
        ProviderError,
        "the token response's expires_in is not a non-negative number",
    ),
    ErrorCode(
        "token.refresh_token",
        ProviderError,
        "the token response's refresh_token is not non-empty visible ASCII",
    ),
    ErrorCode(
        "token.scope",
        ProviderError,
        "the token response's scope is not a space-delimited list of scope tokens",
    ),
    ErrorCode(
        "token.id_token",
        ProviderError,
        "the token response's id_token is not a compact JWS",
    ),
    ErrorCode(
        "token.id_token_encrypted",
        ProviderError,
        "the provider returned an encrypted ID token (JWE), which the SDK does not support",
        "turn off ID token encryption for this application",
    ),
    ErrorCode(
        "token.id_token_missing",
        ProviderError,
        "the code exchange returned no id_token although openid was requested",
    ),
    ErrorCode(
        "device.unsupported",
        DiscoveryError,
        "the provider advertises no device_authorization_endpoint",
        "enable the device flow for this (native) application in " + _CONSOLE,
    ),
    ErrorCode(
        "device.status",
        ProviderResponseError,
        "the device authorization endpoint answered a 2xx status other than 200",
    ),
    ErrorCode(
        "device.response_invalid",
        ProviderError,
        "a device authorization response member (named in the message) is missing, of the "
        "wrong type or out of bounds (RFC 8628 section 3.2)",
        "check LogtoConfig.endpoint points at a Logto tenant",
    ),
    ErrorCode(
        "device.verification_uri_insecure",
        ProviderError,
        "the device authorization response's verification_uri(_complete) is not https",
        "check LogtoConfig.endpoint points at a Logto tenant served over https",
    ),
    ErrorCode(
        "userinfo.signed_unsupported",
        ProviderError,
        "the provider answered userinfo with a signed JWT, which the SDK does not support",
        "turn off userinfo signing for this application",
    ),
    ErrorCode("userinfo.sub_missing", ProviderError, "the userinfo response lacks sub"),
    ErrorCode(
        "userinfo.sub_mismatch",
        TokenValidationError,
        "the userinfo sub is not the ID token's sub (the session is unchanged)",
    ),
    ErrorCode(
        "userinfo.claims_invalid",
        ProviderError,
        "a userinfo claim has the wrong type",
    ),
    ErrorCode(
        "revocation.status",
        ProviderResponseError,
        "the revocation endpoint answered a 2xx status other than 200",
    ),
    # -- OAuth errors ------------------------------------------------------------------
    ErrorCode(
        "oauth.{error}",
        OAuthError,
        "the provider answered with the OAuth error the code names (token endpoint, "
        "userinfo, revocation, or the callback); logto_code and error_description say more",
    ),
    ErrorCode(
        "oauth.invalid_client",
        OAuthError,
        "the provider refused the client's credentials",
        "read the error's hint, which names the fix from what the SDK sent; check appId and "
        f"appSecret; {hints.PUBLIC_APP}",
    ),
    ErrorCode(
        "oauth.invalid_grant",
        OAuthError,
        "the authorization code (or refresh token) is invalid, expired or already used",
        "start a new sign-in; a dead refresh token becomes SignInRequiredError",
    ),
    ErrorCode(
        "oauth.invalid_target",
        OAuthError,
        "the resource (API identifier) is unknown to Logto or not granted to the app",
        "check the resource in LogtoConfig.resources against the API resources in the Logto "
        "Console",
    ),
    ErrorCode(
        "oauth.access_denied",
        OAuthError,
        "the user or the provider denied the request",
    ),
    ErrorCode(
        "oauth.invalid_token",
        OAuthError,
        "the access token was refused (userinfo), also after one refresh",
        "sign the user in again",
    ),
    # -- sessions, callback ------------------------------------------------------------
    ErrorCode(
        "sign_in_required.not_signed_in",
        SignInRequiredError,
        "the session has no ID token: the user is not signed in",
        "sign the user in",
    ),
    ErrorCode(
        "sign_in_required.no_token",
        SignInRequiredError,
        "there is no access token and none can be obtained",
        "sign the user in",
    ),
    ErrorCode(
        "sign_in_required.no_refresh_token",
        SignInRequiredError,
        "a refresh is needed and there is no refresh token",
        "sign in again; request offline_access (with prompt=consent) for refresh tokens",
    ),
    ErrorCode(
        "sign_in_required.invalid_grant",
        SignInRequiredError,
        "the provider says the grant is no longer valid; the session's tokens were cleared",
        "sign the user in again",
    ),
    ErrorCode(
        "sign_in_required.signed_out",
        SignInRequiredError,
        "the session was signed out, or replaced by another sign-in, while the call ran",
        "sign the user in again",
    ),
    ErrorCode(
        "device",
        DeviceAuthorizationError,
        "a device authorization ended without a grant (class default; raised codes are "
        "device.access_denied, device.expired)",
        "start a new device authorization",
    ),
    ErrorCode(
        "device.access_denied",
        DeviceAuthorizationError,
        "the user refused the device sign-in on the verification page",
        "start a new device authorization if the user wants to try again",
    ),
    ErrorCode(
        "device.expired",
        DeviceAuthorizationError,
        "the device code expired (the provider said expired_token, or its expires_in passed) "
        "before the user approved",
        "start a new device authorization and show the user its new code",
    ),
    ErrorCode(
        "device.cancelled",
        DeviceAuthorizationError,
        "the wait for a device sign-in was cancelled (its cancel flag was set)",
        "wait again with the same authorization while it lives, or start a new one",
    ),
    ErrorCode(
        "device.wait_timeout",
        TransportError,
        "waitForDeviceSignIn gave up after its timeout, before the user approved",
        "wait again with the same authorization while it lives, or start a new one",
    ),
    ErrorCode(
        "scope_not_granted",
        ScopeNotGrantedError,
        "a token was issued without scopes that were asked for (named in missing)",
        "assign the app (or user) a role with those permissions in the Logto Console",
    ),
    ErrorCode(
        "token_exchange.issued_token_type",
        ProviderError,
        "a token exchange answered an issued_token_type that is not an access token",
        "check LogtoConfig.endpoint points at a Logto tenant",
    ),
    ErrorCode(
        "callback.malformed",
        CallbackError,
        "the callback URL is malformed, has too many parameters, or an invalid error value",
        "pass the full absolute URL the browser was redirected to",
    ),
    ErrorCode(
        "callback.duplicate_parameter",
        CallbackError,
        "the callback repeats a parameter",
    ),
    ErrorCode(
        "callback.fragment_response",
        CallbackError,
        "the authorization response arrived in the URL fragment",
        "pass the URL the server received (response_mode=query)",
    ),
    ErrorCode(
        "callback.state_missing",
        CallbackError,
        "the callback has no state: it does not come from a sign-in this SDK started",
    ),
    ErrorCode(
        "callback.state_unknown",
        CallbackError,
        "the callback's state matches no pending sign-in of this session (used, expired, "
        "started elsewhere, or forged)",
        "start a new sign-in; check the session storage keeps values between requests",
    ),
    ErrorCode(
        "callback.expired",
        CallbackError,
        "the sign-in attempt is too old",
        "start a new sign-in",
    ),
    ErrorCode(
        "callback.redirect_mismatch",
        CallbackError,
        "the callback URL's scheme, host, port or path differs from the sign-in's redirect URI",
        "pass the URL the browser was redirected to, as the app received it",
    ),
    ErrorCode(
        "callback.iss_mismatch",
        CallbackError,
        "the callback's iss is not the expected issuer",
    ),
    ErrorCode(
        "callback.iss_missing",
        CallbackError,
        "the callback has no iss although the provider promises one",
    ),
    ErrorCode(
        "callback.code_missing",
        CallbackError,
        "the callback carries no authorization code",
    ),
    # -- storage, transport ------------------------------------------------------------
    ErrorCode(
        "coordination.result_invalid",
        TransportError,
        "the result a concurrent caller published could not be read (a damaged entry in a "
        "shared coordinator); nothing was stored",
        "try again; check the coordinator's store if it keeps happening",
    ),
    ErrorCode(
        "coordination.result_too_large",
        TransportError,
        "a discovery or JWKS response fetched by a concurrent caller was too large to share "
        "through the coordinator (the caller that fetched it got it)",
        "try again; check what the provider's endpoint answers (a key set is a few KiB)",
    ),
    ErrorCode(
        "coordination.unavailable",
        CoordinationError,
        "the coordinator could not reach its Redis (refused, timed out, connection lost); the "
        "request did not complete and the stored session is unchanged",
        "check that Redis is running and the coordinator's URL; the next request tries again",
    ),
    ErrorCode(
        "coordination.auth",
        CoordinationError,
        "Redis refused the coordinator's credentials (no password, a wrong one, a user "
        "without the permissions); nothing was saved",
        "put the user and password in the coordinator's URL (redis://user:password@host); "
        "an ACL user needs the commands docs/deployment.md lists, on the coordinator's prefix",
    ),
    ErrorCode(
        "coordination.tls",
        CoordinationError,
        "the TLS connection to the coordinator's Redis failed (an untrusted certificate, a "
        "host name mismatch); nothing was saved",
        "pass ssl_ca_certs= (or ?ssl_ca_certs= in the rediss:// URL) with the CA that signed "
        "the server's certificate",
    ),
    ErrorCode(
        "coordination.failed",
        CoordinationError,
        "the coordinator's Redis answered a command with an error (a read-only replica, "
        "memory full, scripting disabled); nothing was saved",
        "point the coordinator at a writable primary running Redis 6 or later, with "
        "maxmemory-policy noeviction",
    ),
    ErrorCode(
        "coordination.leader_lost",
        LeaderLostError,
        "the concurrent caller a request waited for lost its lead without publishing (its "
        "process died); a refresh or a shared fetch claims the flight again, other kinds of "
        "flight (a sign-in callback) fail with it",
        "try again (a callback: sign in again)",
    ),
    ErrorCode(
        "storage.read",
        StorageError,
        "the application's storage raised reading the session (its exception is __cause__)",
        "check the storage (a database, Redis, the framework's session)",
    ),
    ErrorCode(
        "storage.end_sessions",
        StorageError,
        "a back-channel logout could not end the sessions: the session lookup given to "
        "handleBackchannelLogout raised (its exception is __cause__); answered 400",
        "check the session store; the provider may deliver the logout again",
    ),
    ErrorCode(
        "storage.contended",
        StorageError,
        "a save of the session lost the race to other writers (other processes saving the "
        "same session at once) too many times in a row; nothing was written",
        "try again; if it keeps happening, look for a loop of requests of one session",
    ),
    ErrorCode(
        "storage.unavailable",
        StorageError,
        "Redis could not be reached (down, frozen past socket_timeout, TLS or authentication "
        "refused); the request failed and the stored session is as it was",
        "check that Redis runs and that the URL's host, port, password and TLS settings are "
        "right; the session goes on once it is back",
    ),
    ErrorCode(
        "storage.redis_error",
        StorageError,
        "Redis answered an error to a session command (out of memory, a key of another type "
        "under the prefix, a read-only replica); the stored session is as it was",
        "check Redis' log and maxmemory, and that nothing else writes under the key prefix",
    ),
    ErrorCode(
        "storage.write",
        StorageError,
        "the application's storage raised writing the session; the stored session is unchanged",
        "check the storage (a database, Redis, the framework's session)",
    ),
    ErrorCode(
        "transport.connection",
        TransportError,
        "the connection failed before any answer (retried for discovery and keys)",
        "check the network and LogtoConfig.endpoint",
    ),
    ErrorCode(
        "transport.timeout",
        TransportError,
        "the request (or a wait for a concurrent one) exceeded its time limit",
        "check the network; raise the client's timeout if the provider is slow",
    ),
    ErrorCode(
        "transport.body_too_large",
        TransportError,
        "the response body exceeded the transport's limit",
    ),
    ErrorCode(
        "transport.redirect",
        TransportError,
        "the provider answered with a redirect, which the SDK never follows",
        "check LogtoConfig.endpoint (the exact https URL, without a trailing path)",
    ),
    ErrorCode(
        "transport.status",
        TransportError,
        "a transient status (5xx, 429) after the retries ran out; retry_after when given",
        "retry later",
    ),
    ErrorCode(
        "transport.tls",
        TransportError,
        "the TLS handshake failed (untrusted certificate, host name mismatch...)",
        "the message names the fix: the server's chain, or a transport with verify=",
    ),
    ErrorCode(
        "transport.failed",
        TransportError,
        "the request failed for another reason (a shared request interrupted, the transport "
        "closed)",
    ),
    ErrorCode(
        "transport.refresh_unsettled",
        TransportError,
        "the session's refresh token kept changing while this call waited",
        "try again",
    ),
    ErrorCode(
        "transport.refresh_interrupted",
        TransportError,
        "the concurrent refresh this call waited for did not complete",
        "try again",
    ),
    # -- the test provider (logto_core.testing) ----------------------------------------
    ErrorCode(
        "testing.setup",
        LogtoUsageError,
        "the test provider's directory was set up inconsistently",
        _USAGE_FIX,
    ),
    ErrorCode("testing.fault", LogtoUsageError, "a test provider fault is invalid", _USAGE_FIX),
    ErrorCode(
        "testing.device",
        LogtoUsageError,
        "a device-flow hook of the test provider named an unknown, expired or already decided "
        "user code, or a user who cannot sign in",
        _USAGE_FIX,
    ),
    ErrorCode(
        "testing.unsupported_alg",
        LogtoUsageError,
        "the test provider cannot sign with that algorithm",
        _USAGE_FIX,
    ),
    ErrorCode(
        "testing.rejection",
        Rejection,
        "internal to the test provider: an endpoint refuses a request (it never leaves "
        "TestProvider.handle)",
    ),
)

CODES: Mapping[str, ErrorCode] = MappingProxyType({entry.code: entry for entry in _ENTRIES})
"""Every declared code (families included, such as ``oauth.{error}``), in a stable order."""

_FAMILIES = tuple(entry for entry in _ENTRIES if entry.is_family)


def describe(code: str) -> ErrorCode | None:
    """The entry of ``code``: its own, else its family's (``oauth.x`` is ``oauth.{error}``);
    ``None`` for a code the SDK does not raise."""
    entry = CODES.get(code)
    if entry is not None:
        return entry
    return next((family for family in _FAMILIES if family.matches(code)), None)


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("<", "&lt;")


def markdown() -> str:
    """``docs/errors.md``: the registry as a table."""
    lines = [
        "# Error codes",
        "",
        "<!-- Generated from logto_core/error_codes.py: "
        "python -m logto_core.error_codes > docs/errors.md -->",
        "",
        "Every `LogtoError` has a stable `code`; match on it (and on the class), not on the "
        "message. `logto_core.error_codes.describe(code)` answers the row below as an "
        "`ErrorCode` (`error`, `meaning`, `fix`). `oauth.{error}` stands for every OAuth error "
        "the provider can answer (`error` is its code); the rows after it are the ones with a "
        "known fix. The one-word codes are each class's default.",
        "",
        "| code | class | meaning | likely fix |",
        "|---|---|---|---|",
    ]
    for entry in _ENTRIES:
        lines.append(
            f"| `{entry.code}` | `{entry.error.__name__}` | {_cell(entry.meaning)} "
            f"| {_cell(entry.fix)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
