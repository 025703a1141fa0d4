"""The blocking Logto client, over ``requests``.

Drop-in for the tutorial with ``from logto_adapters.sync import LogtoClient, LogtoConfig``;
every method is a plain call (no ``await``)::

    client = LogtoClient(LogtoConfig(endpoint=..., appId=..., appSecret=...), storage=...)
    url = client.signIn(redirectUri="https://your-app.com/callback")
    client.handleSignInCallback(request.url)
    client.getIdTokenClaims()

All protocol work is done by :class:`logto_core.client.LogtoCore`; this module adds the
``requests`` transport, the storage reads and writes, and the single flight that makes
concurrent callers of one session share one refresh.

Thread-safety: one client may serve many threads (and users, with a per-request storage such
as a Flask session). Discovery and keys are shared by all its users.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import requests

from logto_core.client import LogtoCore, value_or_none
from logto_core.driver import run_sync
from logto_core.flows import Flow, Outcome
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.session import SessionState, StorageKey
from logto_core.singleflight import (
    FlightKey,
    Follow,
    Lead,
    Shared,
    SingleFlight,
    flight_key,
    interrupted,
)
from logto_core.transport_policy import RetryPolicy, Timeout, split_timeout

from ._common import (
    DEFAULT_TIMEOUT,
    AccessTokenClaims,
    CallbackError,
    DirectSignIn,
    DiscoveryError,
    FirstScreen,
    FlowLimitError,
    Identifier,
    IdTokenClaims,
    InteractionMode,
    JwksError,
    LogtoConfig,
    LogtoError,
    LogtoException,
    LogtoUsageError,
    MemoryStorage,
    OAuthError,
    OAuthScope,
    OidcProviderMetadata,
    Prompt,
    ProviderError,
    ProviderResponseError,
    ReservedResource,
    SignInRequiredError,
    Storage,
    TokenResponse,
    TokenValidationError,
    TransportError,
    UnknownKeyError,
    UserInfoResponse,
    UserInfoScope,
)
from .transport_requests import RequestsTransport

T = TypeVar("T")

Transport = Callable[[HttpRequest], HttpResponse]


class LogtoClient:
    """The tutorial's ``LogtoClient``, blocking.

    :param config: the :class:`LogtoConfig`.
    :param storage: where the user's session lives; a private :class:`MemoryStorage` when
        omitted (fine for scripts, not for a web app serving several users).
    :param session: a ``requests.Session`` to send with (connection pools, proxies, TLS);
        by default the client creates its own and reuses it for every request.
    :param timeout: ``(connect, total)`` seconds per provider exchange, retries included.
    :param runtime: clock and entropy (tests pass fakes).
    :param max_retries: extra attempts for discovery and JWKS fetches on connection errors,
        5xx and 429 (nothing else is ever retried).
    :param transport: replaces the ``requests`` transport altogether (any callable sending an
        :class:`~logto_core.http.HttpRequest` and raising
        :class:`~logto_core.errors.TransportError` on failure).
    :param refresh_wait: longest wait, in seconds, for a concurrent refresh of the same session
        (defaults to four total timeouts).
    """

    def __init__(
        self,
        config: LogtoConfig,
        storage: Storage | None = None,
        *,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        runtime: Runtime | None = None,
        max_retries: int = 2,
        transport: Transport | None = None,
        refresh_wait: float | None = None,
    ) -> None:
        self.runtime = runtime if runtime is not None else DEFAULT_RUNTIME
        self.core = LogtoCore(config, runtime=self.runtime)
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self._requests: RequestsTransport | None = None
        if transport is None:
            self._requests = RequestsTransport(
                session,
                timeout=timeout,
                retry=RetryPolicy(max_retries=max_retries),
                runtime=self.runtime,
            )
            transport = self._requests
        self._send: Transport = transport
        total = split_timeout(timeout)[1]
        self._refresh_wait = refresh_wait if refresh_wait is not None else 4 * total
        self._flights: SingleFlight[concurrent.futures.Future[Shared]] = SingleFlight()
        self._flights_lock = threading.Lock()
        # Serialises this client's storage writes after refreshes, so that a late follower
        # can check that the storage still holds the refresh token it started from.
        self._write_lock = threading.Lock()

    @property
    def config(self) -> LogtoConfig:
        return self.core.config

    def close(self) -> None:
        """Close the ``requests.Session`` the client created (not one passed in)."""
        if self._requests is not None:
            self._requests.close()

    def __enter__(self) -> LogtoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- sign-in and sign-out -----------------------------------------------------------

    def signIn(
        self,
        redirectUri: str,
        interactionMode: InteractionMode | str | None = None,
        *,
        firstScreen: FirstScreen | str | None = None,
        identifiers: Sequence[Identifier | str] | None = None,
        directSignIn: DirectSignIn | str | None = None,
        loginHint: str | None = None,
        prompt: str | Sequence[Prompt | str] | None = None,
        organizationId: str | None = None,
        uiLocales: str | None = None,
        maxAge: int | None = None,
        extraParams: Mapping[str, str] | None = None,
    ) -> str:
        """Start a sign-in: remember the attempt in the storage and return the URL to redirect
        the browser to."""

        def flow(session: SessionState) -> Flow[str]:
            return self.core.sign_in(
                session,
                redirectUri,
                interactionMode,
                firstScreen=firstScreen,
                identifiers=identifiers,
                directSignIn=directSignIn,
                loginHint=loginHint,
                prompt=prompt,
                organizationId=organizationId,
                uiLocales=uiLocales,
                maxAge=maxAge,
                extraParams=extraParams,
            )

        return self._run(flow)[1].unwrap()

    def handleSignInCallback(self, callbackUri: str) -> None:
        """Check the authorization response in ``callbackUri``, exchange the code and store
        the tokens. Raises a :class:`LogtoError` subclass on any failure."""
        before, outcome = self._run(lambda s: self.core.handle_sign_in_callback(s, callbackUri))
        self._forget_refresh(before)
        outcome.unwrap()

    def signOut(self, postLogoutRedirectUri: str | None = None) -> str:
        """Forget the session's tokens, revoke the refresh token (best effort) and return the
        provider's end-session URL to redirect the browser to."""
        before, outcome = self._run(lambda s: self.core.sign_out(s, postLogoutRedirectUri))
        self._forget_refresh(before)
        return outcome.unwrap().url

    # ---- local getters (storage only, no network) ---------------------------------------

    def isAuthenticated(self) -> bool:
        """True when the storage holds an ID token."""
        return self._load().is_authenticated

    def getIdToken(self) -> str | None:
        return self._load().id_token

    def getIdTokenClaims(self) -> IdTokenClaims:
        """Claims of the stored ID token; :class:`SignInRequiredError` when there is none."""
        return self.core.id_token_claims(self._load())

    def getRefreshToken(self) -> str | None:
        return self._load().refresh_token

    # ---- network ------------------------------------------------------------------------

    def fetchUserInfo(self) -> UserInfoResponse:
        """The userinfo endpoint's answer for the signed-in user."""
        # Make sure a fresh token is cached first, through the single flight, so that the
        # userinfo flow does not refresh on its own when many requests arrive at once.
        warm = self._access_token(None, None)
        if warm.error is not None and not isinstance(warm.error, SignInRequiredError):
            raise warm.error
        return self._run(self.core.fetch_user_info)[1].unwrap()

    def getAccessToken(self, resource: str = "") -> str | None:
        """An access token for ``resource`` ("" for the userinfo token), refreshed when
        needed; ``None`` when the user must sign in. Other failures raise."""
        return value_or_none(self._access_token(resource or None, None))

    def getAccessTokenClaims(self, resource: str = "") -> AccessTokenClaims:
        """Claims of :meth:`getAccessToken`'s token (decoded, not verified)."""
        return self.core.access_token_claims(_required(self.getAccessToken(resource)))

    def getOrganizationToken(self, organizationId: str) -> str | None:
        """An organization token; ``None`` when the user must sign in. Needs
        ``UserInfoScope.organizations`` in the configured scopes."""
        return value_or_none(self._access_token(None, organizationId))

    def getOrganizationTokenClaims(self, organizationId: str) -> AccessTokenClaims:
        return self.core.access_token_claims(_required(self.getOrganizationToken(organizationId)))

    # PEP 8 spellings.
    sign_in = signIn
    handle_sign_in_callback = handleSignInCallback
    sign_out = signOut
    is_authenticated = isAuthenticated
    get_id_token = getIdToken
    get_id_token_claims = getIdTokenClaims
    get_refresh_token = getRefreshToken
    fetch_user_info = fetchUserInfo
    get_access_token = getAccessToken
    get_access_token_claims = getAccessTokenClaims
    get_organization_token = getOrganizationToken
    get_organization_token_claims = getOrganizationTokenClaims

    # ---- plumbing -----------------------------------------------------------------------

    def _load(self) -> SessionState:
        return SessionState.load(self.storage.get)

    def _write(self, writes: Mapping[str, str | None]) -> None:
        for key, value in writes.items():
            if value is None:
                self.storage.delete(key)
            else:
                self.storage.set(key, value)

    def _run(self, build: Callable[[SessionState], Flow[T]]) -> tuple[SessionState, Outcome[T]]:
        """Load the session, run a flow, store its changes; the outcome is not unwrapped."""
        before = self._load()
        outcome = run_sync(build(before), self._send)
        self._write(self.core.settle(before, outcome))
        return before, outcome

    def _forget_refresh(self, before: SessionState) -> None:
        if before.refresh_token is not None:
            with self._flights_lock:
                self._flights.forget(before.refresh_token)

    def _access_token(self, resource: str | None, organization_id: str | None) -> Outcome[str]:
        session = self._load()
        cached = self.core.cached_access_token(session, resource, organization_id)
        if cached is not None:
            return Outcome(cached, session, self.core.provider)
        flow = self.core.get_access_token(session, resource, organization_id)
        if session.refresh_token is None:  # nothing to refresh: the flow just says why
            outcome = run_sync(flow, self._send)
            self._write(self.core.settle(session, outcome))
            return outcome
        key = flight_key(session.refresh_token, self.core.token_key(resource, organization_id))
        handle: concurrent.futures.Future[Shared] = concurrent.futures.Future()
        handle.set_running_or_notify_cancel()  # a running future cannot be cancelled
        with self._flights_lock:
            ticket = self._flights.claim(key, handle, self.runtime.now())
        if isinstance(ticket, Lead):
            return self._lead(ticket.handle, key, session, flow)
        flow.close()
        shared = self._wait(ticket.handle) if isinstance(ticket, Follow) else ticket.result
        self._adopt(session, shared)
        return shared.outcome

    def _lead(
        self,
        handle: concurrent.futures.Future[Shared],
        key: FlightKey,
        before: SessionState,
        flow: Flow[str],
    ) -> Outcome[str]:
        shared: Shared | None = None
        try:
            outcome = run_sync(flow, self._send)
            shared = Shared(self.core.settle(before, outcome), outcome)
            with self._write_lock:
                self._write(shared.writes)
            return outcome
        finally:
            if shared is None:
                shared = interrupted(before, self.core.provider)
            with self._flights_lock:
                self._flights.settle(key, shared, self.runtime.now())
            handle.set_result(shared)

    def _wait(self, handle: concurrent.futures.Future[Shared]) -> Shared:
        try:
            return handle.result(timeout=self._refresh_wait)
        except concurrent.futures.TimeoutError:
            pass
        raise TransportError(
            "gave up waiting for a concurrent refresh of this session", code="transport.timeout"
        )

    def _adopt(self, before: SessionState, shared: Shared) -> None:
        """Apply a leader's writes, unless this storage already moved past the refresh token
        this caller started from (the leader's own storage, or a newer refresh)."""
        with self._write_lock:
            if (self.storage.get(StorageKey.REFRESH_TOKEN) or None) == before.refresh_token:
                self._write(shared.writes)


def _required(token: str | None) -> str:
    if token is None:
        raise SignInRequiredError(
            "no access token: the user must sign in", code="sign_in_required.no_token"
        )
    return token


__all__ = [
    "AccessTokenClaims",
    "CallbackError",
    "DirectSignIn",
    "DiscoveryError",
    "FirstScreen",
    "FlowLimitError",
    "IdTokenClaims",
    "Identifier",
    "InteractionMode",
    "JwksError",
    "LogtoClient",
    "LogtoConfig",
    "LogtoError",
    "LogtoException",
    "LogtoUsageError",
    "MemoryStorage",
    "OAuthError",
    "OAuthScope",
    "OidcProviderMetadata",
    "Prompt",
    "ProviderError",
    "ProviderResponseError",
    "ReservedResource",
    "SignInRequiredError",
    "Storage",
    "TokenResponse",
    "TokenValidationError",
    "TransportError",
    "UnknownKeyError",
    "UserInfoResponse",
    "UserInfoScope",
]
