"""The blocking Logto client, over ``requests``.

Drop-in for the tutorial with ``from logto_adapters.sync import LogtoClient, LogtoConfig``;
every method is a plain call (no ``await``)::

    client = LogtoClient(LogtoConfig(endpoint=..., appId=..., appSecret=...), storage=...)
    url = client.signIn(redirectUri="https://your-app.com/callback")
    client.handleSignInCallback(request.url)
    client.getIdTokenClaims()

What every method does is written once, in :mod:`logto_core.operations`; this module only
performs their effects: the ``requests`` transport, the storage reads and writes (one at a
time), and waits on the single flight that makes concurrent callers of one session share one
refresh.

Thread-safety: one client may serve many threads (and users, with a per-request storage such
as a Flask session). Discovery and keys are shared by all its users.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TypeVar

import requests

from logto_core import operations as ops
from logto_core.client import LogtoCore
from logto_core.driver import run_operation
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.session import SessionState, StorageKey
from logto_core.singleflight import Shared
from logto_core.transport_policy import RetryPolicy, Timeout

from . import public
from ._common import (
    DEFAULT_TIMEOUT,
    BackgroundJobs,
    Flights,
    RevocationMode,
    SharedGets,
    refresh_wait_bound,
    revocation_wait_bound,
    waits_for_revocation,
    write_all,
)
from .public import *  # noqa: F403 - the tutorial's names, re-exported
from .public import (
    AccessTokenClaims,
    DirectSignIn,
    FirstScreen,
    Identifier,
    IdTokenClaims,
    InteractionMode,
    LogtoConfig,
    MemoryStorage,
    Prompt,
    Storage,
    UserInfoResponse,
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
    :param revocation: when :meth:`signOut` revokes the refresh token. ``"background"`` (the
        default): in a daemon thread, after the session is cleared and the URL returned, so an
        unreachable provider never delays the sign-out; :meth:`close` (and leaving a ``with``
        block) waits for them, bounded by two total timeouts. ``"inline"``: before
        :meth:`signOut` returns (for serverless functions, frozen once they answer).
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
        revocation: RevocationMode = "background",
    ) -> None:
        self._inline_revocation = waits_for_revocation(revocation)
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
        self._refresh_wait = refresh_wait_bound(timeout, refresh_wait)
        self._flights = Flights(self.runtime)
        self._gets = SharedGets()
        # Serialises this client's storage writes, so that a late follower can check that
        # the storage still holds the refresh token it started from.
        self._write_lock = threading.Lock()
        self._revocations = BackgroundJobs("logto-revocation")
        self._close_wait = revocation_wait_bound(timeout)

    @property
    def config(self) -> LogtoConfig:
        return self.core.config

    def close(self) -> None:
        """Wait for the background revocations (bounded, see ``revocation``), then close the
        ``requests.Session`` the client created (not one passed in)."""
        self._revocations.wait(self._close_wait)
        self._revocations.shutdown()
        if self._requests is not None:
            self._requests.close()

    def waitForRevocations(self, timeout: float | None = None) -> bool:
        """Wait for the refresh-token revocations that sign-outs started in the background, at
        most ``timeout`` seconds (``None``: until they end; each is bounded by the transport
        timeouts). True when none is left running. Mainly for tests and graceful shutdown
        (:meth:`close` calls it with a bound)."""
        return self._revocations.wait(timeout)

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
        return self._do(
            ops.sign_in_op(
                self.core,
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
        )

    def handleSignInCallback(self, callbackUri: str) -> None:
        """Check the authorization response in ``callbackUri``, exchange the code and store
        the tokens. Raises a :class:`LogtoError` subclass on any failure."""
        self._do(ops.callback_op(self.core, callbackUri))

    def signOut(self, postLogoutRedirectUri: str | None = None) -> str:
        """Forget the session's tokens and return the provider's end-session URL to redirect
        the browser to, without waiting on the provider. The refresh token is revoked (best
        effort, a failure is logged as a warning) in the background, or before returning with
        ``revocation="inline"``."""
        result = self._do(
            ops.sign_out_op(
                self.core, postLogoutRedirectUri, wait_for_revocation=self._inline_revocation
            )
        )
        if result.to_revoke is not None:
            self._revocations.start(partial(self._revoke, result.to_revoke))
        return result.url

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
        return self._do(ops.user_info_op(self.core))

    def getAccessToken(self, resource: str = "") -> str | None:
        """An access token for ``resource`` ("" for the userinfo token), refreshed when
        needed; ``None`` when the user must sign in. Other failures raise."""
        # A page view's common case, answered without starting an operation.
        cached = self.core.cached_access_token(self._load(), resource)
        return (
            cached if cached is not None else self._do(ops.get_access_token_op(self.core, resource))
        )

    def getAccessTokenClaims(self, resource: str = "") -> AccessTokenClaims:
        """Claims of :meth:`getAccessToken`'s token (decoded, not verified)."""
        return self._do(ops.access_token_claims_op(self.core, resource))

    def getOrganizationToken(self, organizationId: str) -> str | None:
        """An organization token; ``None`` when the user must sign in. Needs
        ``UserInfoScope.organizations`` in the configured scopes."""
        cached = self.core.cached_access_token(self._load(), None, organizationId)
        if cached is not None:
            return cached
        return self._do(ops.organization_token_op(self.core, organizationId))

    def getOrganizationTokenClaims(self, organizationId: str) -> AccessTokenClaims:
        return self._do(ops.organization_token_claims_op(self.core, organizationId))

    # PEP 8 spellings.
    sign_in = signIn
    handle_sign_in_callback = handleSignInCallback
    sign_out = signOut
    wait_for_revocations = waitForRevocations
    is_authenticated = isAuthenticated
    get_id_token = getIdToken
    get_id_token_claims = getIdTokenClaims
    get_refresh_token = getRefreshToken
    fetch_user_info = fetchUserInfo
    get_access_token = getAccessToken
    get_access_token_claims = getAccessTokenClaims
    get_organization_token = getOrganizationToken
    get_organization_token_claims = getOrganizationTokenClaims

    # ---- the effect interpreter ---------------------------------------------------------

    def _do(self, operation: ops.Operation[T]) -> T:
        return run_operation(operation, self._perform)

    def _revoke(self, refresh_token: str) -> None:
        """A background revocation: only requests, no storage (the caller's request, and
        its storage, may be gone by now)."""
        run_operation(ops.revoke_op(self.core, refresh_token), self._perform)

    def _perform(self, effect: ops.Effect) -> object:
        if isinstance(effect, HttpRequest):
            return self._gets.send(effect, self._send, self._refresh_wait)
        if isinstance(effect, ops.LoadSession):
            return self._load()
        if isinstance(effect, ops.SaveSession):
            return self._save(effect)
        if isinstance(effect, ops.AwaitFlight):
            return self._wait(effect)
        return self._flights.perform(effect)

    def _load(self) -> SessionState:
        return SessionState.load(self.storage.get)

    def _save(self, effect: ops.SaveSession) -> bool:
        # One save at a time, so that a guarded save checks and writes as one step.
        with self._write_lock:
            stored = self.storage.get(StorageKey.REFRESH_TOKEN) if effect.guarded else None
            if not effect.accepts(stored):
                return False
            write_all(self.storage, effect.writes)
            return True

    def _wait(self, effect: ops.AwaitFlight) -> Shared:
        handle: concurrent.futures.Future[Shared] = effect.follow.handle
        try:
            return handle.result(timeout=self._refresh_wait)
        except concurrent.futures.TimeoutError:
            pass
        raise effect.timeout_error()


__all__ = ["LogtoClient"]
__all__ += public.__all__
