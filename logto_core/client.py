"""Everything a Logto client does except sending requests and touching storage.

:class:`LogtoCore` turns the tutorial's method calls into flows, keeps the provider state
(discovery and keys) shared by every user of one client, and answers the pure getters. The
sync and async clients in :mod:`logto_adapters` wrap one ``LogtoCore`` and only add a
transport, a storage and locking.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from typing_extensions import Unpack

from .config import LogtoConfig
from .enums import InteractionMode
from .errors import LogtoError, LogtoUsageError, SignInRequiredError
from .flows import (
    Flow,
    LocalSignOut,
    Outcome,
    SignOutResult,
    T,
    cached_access_token,
    check_target,
    fetch_user_info,
    get_access_token,
    handle_sign_in_callback,
    revoke_refresh_token,
    sign_in,
    sign_out,
    sign_out_local,
    user_info_with_token,
)
from .jose.jwt import decode_access_token_claims, decode_id_token_claims
from .models import AccessTokenClaims, IdTokenClaims, UserInfoResponse
from .provider_state import ProviderCache, ProviderState, imported_state
from .runtime import DEFAULT_RUNTIME, Runtime
from .session import SessionState, TokenKey
from .signin_url import SignInOptions, SignInParams
from .transport_policy import DIRECT, ExchangePolicy


class LogtoCore:
    """The protocol side of one client configuration.

    Thread-safety: the only mutable member is the shared provider cache
    (:class:`~logto_core.provider_state.ProviderCache`), whose state is replaced atomically as
    flows publish what they fetch; everything else is computed from values.
    """

    def __init__(
        self,
        config: LogtoConfig,
        *,
        runtime: Runtime = DEFAULT_RUNTIME,
        provider: ProviderState | None = None,
        provider_cache: object = None,
        exchange: ExchangePolicy = DIRECT,
    ) -> None:
        """``provider_cache``: an export of :attr:`provider` (``to_json()``), checked against
        ``config`` (:func:`~logto_core.provider_state.imported_state`); ``provider`` wins."""
        if not isinstance(config, LogtoConfig):
            raise LogtoUsageError("config must be a LogtoConfig")
        self.config = config
        self.runtime = runtime
        if provider is None:
            provider = imported_state(config, provider_cache)
        self.exchange = exchange
        """Retries and deadline of every exchange of this client's flows (the adapters give
        theirs; a bare core sends each request once, without a deadline)."""
        self._cache = ProviderCache(provider)

    @property
    def provider(self) -> ProviderState:
        """What the client knows about the provider; export it with ``to_json()``."""
        return self._cache.state

    # ---- flows ---------------------------------------------------------------------------

    def sign_in(
        self,
        session: SessionState,
        redirectUri: str,
        interactionMode: InteractionMode | str | None = None,
        **params: Unpack[SignInParams],
    ) -> Flow[str]:
        return self.sign_in_with(session, SignInOptions.of(redirectUri, interactionMode, params))

    def sign_in_with(self, session: SessionState, options: SignInOptions) -> Flow[str]:
        return sign_in(
            self.config, self.runtime, session, self._cache, options, policy=self.exchange
        )

    def handle_sign_in_callback(
        self, session: SessionState, callbackUri: str
    ) -> Flow[IdTokenClaims]:
        return handle_sign_in_callback(
            self.config, self.runtime, session, self._cache, callbackUri, policy=self.exchange
        )

    def get_access_token(
        self,
        session: SessionState,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> Flow[str]:
        return get_access_token(
            self.config,
            self.runtime,
            session,
            self._cache,
            resource=resource or None,
            organization_id=organizationId,
            scopes=scopes,
            policy=self.exchange,
        )

    def fetch_user_info(self, session: SessionState) -> Flow[UserInfoResponse]:
        return fetch_user_info(
            self.config, self.runtime, session, self._cache, policy=self.exchange
        )

    def user_info_with_token(
        self, session: SessionState, access_token: str
    ) -> Flow[UserInfoResponse]:
        """Userinfo with ``access_token``, without refreshing on a 401."""
        return user_info_with_token(
            self.config, self.runtime, session, self._cache, access_token, policy=self.exchange
        )

    def check_target(self, key: TokenKey) -> None:
        """Raise :class:`LogtoUsageError` for a token this configuration cannot get."""
        check_target(self.config, key)

    def sign_out(
        self, session: SessionState, postLogoutRedirectUri: str | None = None
    ) -> Flow[SignOutResult]:
        return sign_out(
            self.config,
            self.runtime,
            session,
            self._cache,
            post_logout_redirect_uri=postLogoutRedirectUri,
            policy=self.exchange,
        )

    def sign_out_local(
        self, session: SessionState, postLogoutRedirectUri: str | None = None
    ) -> Outcome[LocalSignOut]:
        """The sign-out without any request (see :func:`logto_core.flows.sign_out_local`)."""
        return sign_out_local(
            self.config,
            self.runtime,
            session,
            self._cache,
            post_logout_redirect_uri=postLogoutRedirectUri,
        )

    def revoke(self, refresh_token: str) -> Flow[LogtoError | None]:
        """Revoke a refresh token, best effort; the flow's value is the failure or ``None``."""
        return revoke_refresh_token(
            self.config, self.runtime, self._cache, refresh_token, policy=self.exchange
        )

    def adopt(self, outcome: Outcome[T]) -> None:
        """Adopt what a flow learnt about the provider (discovery, keys). Flows publish their
        fetches as they make them; this merges the final view too."""
        self._cache.merge(outcome.provider)

    # ---- pure getters --------------------------------------------------------------------

    def cached_access_token(
        self,
        session: SessionState,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str | None:
        """A fresh cached token, or ``None`` when a flow is needed."""
        return cached_access_token(
            self.config,
            session,
            self.runtime.now(),
            resource=resource or None,
            organization_id=organizationId,
            scopes=scopes,
        )

    @staticmethod
    def token_key(
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> TokenKey:
        """The cache key a token request maps to (adapters key their single-flight on it)."""
        return TokenKey.of(resource, organizationId, scopes)

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


def value_or_none(outcome: Outcome[T]) -> T | None:
    """The tutorial's ``getAccessToken`` contract: ``None`` when the user must sign in (not
    signed in, no refresh token, the grant is dead); any other failure raises."""
    if isinstance(outcome.error, SignInRequiredError):
        return None
    return outcome.unwrap()


# Decoding is pure and tokens are immutable strings, so decoded claims can be shared; this
# makes a signed-in page view (isAuthenticated + getIdTokenClaims) cost a dictionary lookup.
@lru_cache(maxsize=4096)
def _id_claims(token: str) -> IdTokenClaims:
    return decode_id_token_claims(token)


@lru_cache(maxsize=4096)
def _access_claims(token: str) -> AccessTokenClaims:
    return decode_access_token_claims(token)


__all__ = ["LogtoCore", "LogtoError", "value_or_none"]
