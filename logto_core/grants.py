"""Grants as kinds: each way of obtaining tokens with its own immutable state.

* :class:`TokenCache` (:mod:`logto_core.token_cache`) - access tokens by
  :class:`~logto_core.session.TokenKey`, bounded, apart from whatever grant obtained them (a
  user's session holds one, and so does a machine-to-machine client).
* :class:`UserGrant` - the user's grant (authorization code, then refresh): the ID token
  and the refresh token of a session (:attr:`SessionState.grant
  <logto_core.session.SessionState.grant>`).
* :class:`ClientCredentialsState` - machine-to-machine tokens (RFC 6749 section 4.4): no
  user, no refresh token, only a cache of the tokens obtained.
* :class:`DeviceAuthorization` and :class:`DevicePolling` - the device authorization grant
  (RFC 8628): the response that starts it, and the polling as a pure state machine whose
  steps are :class:`Poll` (an absolute time, for a :class:`~logto_core.sleep.Sleep`),
  :class:`Granted` or :class:`Failed`.

Everything here is pure: the time is always a ``now`` argument (the runtime's clock), and
requests are built and responses read by the protocol-step pairs of the other modules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .config import LogtoConfig
from .errors import ProviderError
from .http import HttpRequest, HttpResponse
from .jose.jwt import decode_unverified
from .models import OidcProviderMetadata, TokenResponse
from .session import UNKNOWN_LIFETIME, CachedAccessToken, SessionState, TokenKey
from .token_cache import DEFAULT_LIMIT, EMPTY_CACHE, TokenCache
from .token_endpoint import build_client_credentials, parse_token_response

# ---- the user's grant -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserGrant:
    """What a signed-in user's session holds of its grant (authorization code, then refresh):
    the ID token and, when offline access was granted, the refresh token."""

    id_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)

    @property
    def can_refresh(self) -> bool:
        return self.refresh_token is not None

    @classmethod
    def of(cls, session: SessionState) -> UserGrant | None:
        """The grant ``session`` holds; ``None`` when it is signed out (no ID token)."""
        if session.id_token is None:
            return None
        return cls(session.id_token, session.refresh_token)


MAX_JWT_LIFETIME = 24 * 3600.0
"""Longest lifetime read from a JWT access token's ``exp`` when it has no ``iat`` and the
response no ``expires_in``."""


def cache_entry(token: TokenResponse, now: float) -> CachedAccessToken:
    """The cache entry of a token received at ``now``, bounded as the session's tokens are:
    it lives ``expires_in`` seconds, never longer than the JWT says of itself (``exp - iat``,
    in the provider's own clock; without ``iat``, never past ``exp`` and at most
    :data:`MAX_JWT_LIFETIME`); without either, :data:`~logto_core.session.UNKNOWN_LIFETIME`.
    ``obtained_at`` lets freshness notice a clock that went back."""
    lifetime = float(token.expires_in) if token.expires_in is not None else None
    claims = _jwt_times(token.access_token)
    if claims is not None:
        iat, exp = claims
        own = exp - iat if iat is not None else exp - now
        lifetime = min(lifetime, own) if lifetime is not None else min(own, MAX_JWT_LIFETIME)
    if lifetime is None:
        lifetime = UNKNOWN_LIFETIME
    return CachedAccessToken(
        token=token.access_token,
        expires_at=now + max(lifetime, 0.0),
        scope=token.scope,
        obtained_at=now,
    )


def _jwt_times(access_token: str) -> tuple[float | None, float] | None:
    """``(iat, exp)`` of a JWT access token, read and not verified (only used to expire the
    cache early), or ``None`` for an opaque token or one without ``exp``."""
    if access_token.count(".") != 2:
        return None
    try:
        claims = decode_unverified(access_token)[1]
    except ProviderError:
        return None
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    return None if exp is None else (iat, exp)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# ---- client credentials (machine to machine) --------------------------------------------


def client_credentials_key(
    resource: str | None = None,
    organization_id: str | None = None,
    scopes: Sequence[str] | None = None,
) -> TokenKey:
    """What a machine-to-machine token is for (the normalised :class:`TokenKey`)."""
    return TokenKey.of(resource, organization_id, scopes)


@dataclass(frozen=True, slots=True)
class NeedToken:
    """No fresh token for ``key``: send :meth:`request` and give the answer to
    :meth:`ClientCredentialsState.on_response`."""

    key: TokenKey

    def request(self, config: LogtoConfig, metadata: OidcProviderMetadata) -> HttpRequest:
        """The client credentials token request for :attr:`key`
        (:func:`~logto_core.token_endpoint.build_client_credentials`)."""
        return build_client_credentials(
            config,
            metadata,
            resource=self.key.resource,
            organization_id=self.key.organization_id,
            scopes=self.key.scopes,
        )


@dataclass(frozen=True, slots=True)
class ClientCredentialsState:
    """A machine-to-machine client's tokens: no user, no refresh token, no ID token; only
    the access tokens obtained, by (resource, organization, scopes)."""

    tokens: TokenCache = field(default_factory=TokenCache)

    def token_for(self, key: TokenKey, now: float, margin: float) -> CachedAccessToken | NeedToken:
        """The cached token for ``key`` if it is still fresh at ``now``, else what to ask."""
        entry = self.tokens.fresh(key, now, margin)
        return entry if entry is not None else NeedToken(key)

    def adopted(self, key: TokenKey, token: TokenResponse, now: float) -> ClientCredentialsState:
        """The state with ``token`` (received at ``now``) cached for ``key``. A refresh token
        or an ID token the provider sent along is not kept: this grant has neither."""
        return ClientCredentialsState(self.tokens.with_entry(key, cache_entry(token, now)))

    def on_response(
        self, key: TokenKey, response: HttpResponse, now: float
    ) -> tuple[ClientCredentialsState, CachedAccessToken]:
        """Read the token endpoint's answer
        (:func:`~logto_core.token_endpoint.parse_token_response`: its typed errors,
        ``OAuthError`` for an error answer, are raised as they are) and cache the token.
        A failure leaves the state as it was (the caller keeps ``self``)."""
        state = self.adopted(key, parse_token_response(response), now)
        return state, state.tokens[key]

    def without(self, keys: Iterable[TokenKey] | None = None) -> ClientCredentialsState:
        """Forget every token (``keys=None``) or those keys' (e.g. a token an API refused)."""
        return ClientCredentialsState(self.tokens.without(keys))


__all__ = [
    "DEFAULT_LIMIT",
    "EMPTY_CACHE",
    "MAX_JWT_LIFETIME",
    "ClientCredentialsState",
    "NeedToken",
    "TokenCache",
    "UserGrant",
    "cache_entry",
    "client_credentials_key",
]
