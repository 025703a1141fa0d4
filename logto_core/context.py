"""The one value every operation and flow takes: :class:`Context`.

It holds what a client configuration needs besides a user's session: the configuration, the
runtime (clock and entropy), the provider cache (discovery and keys, shared by every session
of one app, replaced atomically as flows publish what they fetch) and the exchange policy
(retries and deadlines). Flows (:mod:`logto_core.flows`) and operations
(:mod:`logto_core.operations`) read it; nothing else is passed around. It also answers the
pure getters an adapter needs without running anything (a fresh cached token, decoded
claims).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TypeVar

from .config import LogtoConfig
from .errors import LogtoUsageError, SignInRequiredError
from .jose.jwt import decode_access_token_claims, decode_id_token_claims
from .models import AccessTokenClaims, IdTokenClaims
from .provider_state import ProviderCache, ProviderState, imported_state
from .runtime import DEFAULT_RUNTIME, Runtime
from .session import SessionState, TokenKey
from .transport_policy import DIRECT, ExchangePolicy

T = TypeVar("T")


class Context:
    """What one client configuration brings to every flow: see the module doc.

    :param provider_cache: an export of :attr:`provider` (``to_json()``), checked against
        ``config`` (:func:`~logto_core.provider_state.imported_state`); ``provider`` (a state
        value) wins over it.
    :param exchange: retries and deadline of every exchange (the clients give theirs; a bare
        context sends each request once, without a deadline).
    """

    __slots__ = ("cache", "config", "exchange", "runtime")

    def __init__(
        self,
        config: LogtoConfig,
        *,
        runtime: Runtime = DEFAULT_RUNTIME,
        provider: ProviderState | None = None,
        provider_cache: object = None,
        exchange: ExchangePolicy = DIRECT,
    ) -> None:
        if not isinstance(config, LogtoConfig):
            raise LogtoUsageError("config must be a LogtoConfig")
        self.config = config
        self.runtime = runtime
        self.exchange = exchange
        if provider is None:
            provider = imported_state(config, provider_cache)
        self.cache = ProviderCache(provider)

    @property
    def provider(self) -> ProviderState:
        """What is known about the provider; export it with ``to_json()``."""
        return self.cache.state

    def adopt(self, provider: ProviderState) -> None:
        """Adopt what a flow learnt about the provider (discovery, keys). Flows publish their
        fetches as they make them; this merges a flow's final view too."""
        self.cache.merge(provider)

    # ---- pure getters --------------------------------------------------------------------

    def cached_access_token(
        self,
        session: SessionState,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
        *,
        not_before: float | None = None,
    ) -> str | None:
        """The cached token for that key if it is still fresh (refreshed ``tokenExpiryMargin``
        before it expires) and, with ``not_before``, obtained after then; else ``None``: a
        flow is needed. The one place that decides."""
        cached = session.access_tokens.get(TokenKey.of(resource or None, organizationId, scopes))
        if cached is None or not cached.is_fresh(self.runtime.now(), self.config.tokenExpiryMargin):
            return None
        # Strictly after: a token obtained at the very instant of a forced call (a frozen test
        # clock) may predate what the caller wants it to reflect.
        if not_before is not None and not (cached.obtained_at or 0.0) > not_before:
            return None
        return cached.token

    @staticmethod
    def token_key(
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> TokenKey:
        """The cache key a token request maps to."""
        return TokenKey.of(resource or None, organizationId, scopes)

    @staticmethod
    def id_token_claims(session: SessionState) -> IdTokenClaims:
        """Claims of the stored ID token (verified when it was received)."""
        if session.id_token is None:
            raise SignInRequiredError(
                "not signed in: there is no ID token", code="sign_in_required.not_signed_in"
            )
        return _id_claims(session.id_token)

    @staticmethod
    def access_token_claims(token: str) -> AccessTokenClaims:
        """Claims of a JWT access token, decoded without verification (the API verifies)."""
        return _access_claims(token)


# Decoding is pure and tokens are immutable strings, so decoded claims can be shared; this
# makes a signed-in page view (isAuthenticated + getIdTokenClaims) cost a dictionary lookup.
@lru_cache(maxsize=4096)
def _id_claims(token: str) -> IdTokenClaims:
    return decode_id_token_claims(token)


@lru_cache(maxsize=4096)
def _access_claims(token: str) -> AccessTokenClaims:
    return decode_access_token_claims(token)


__all__ = ["Context"]
