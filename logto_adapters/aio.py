"""The asyncio Logto client, over ``httpx``.

Drop-in for the tutorial with ``from logto_adapters.aio import LogtoClient, LogtoConfig``:
the network methods (``signIn``, ``handleSignInCallback``, ``signOut``, ``fetchUserInfo``,
``getAccessToken``, ``getAccessTokenClaims``, ``getOrganizationToken``,
``getOrganizationTokenClaims``) are coroutines; ``isAuthenticated``, ``getIdToken``,
``getIdTokenClaims`` and ``getRefreshToken`` are plain methods, as the tutorial calls them.

Storage. Both the tutorial's synchronous :class:`Storage` and an *async storage* (whose
``get``/``set``/``delete`` return awaitables, detected on every call) are accepted.

* With a synchronous storage, the plain getters read the storage, always up to date.
* With an async storage, a plain method cannot await it. The plain getters then answer from
  the session *snapshot* of the current context: every awaited call of this client (and the
  awaitable twins below) stores the session it read or wrote in a ``contextvars`` variable,
  so a request handler that awaited anything of the client sees that request's session, and
  never another user's. Without a snapshot (nothing awaited yet in this context) they raise
  :class:`LogtoUsageError`; call the awaitable twins instead, which always read the storage:
  ``await client.isAuthenticatedAsync()``, ``getIdTokenAsync()``, ``getIdTokenClaimsAsync()``,
  ``getRefreshTokenAsync()``.

Event loops. The client works from any number of loops, one after the other or at once in
several threads: ``httpx.AsyncClient`` instances are kept per loop (see
:mod:`logto_adapters.transport_httpx`) and concurrent refreshes of one session coalesce
across loops and threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import httpx

from logto_core.client import LogtoCore, value_or_none
from logto_core.driver import run_async
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
from .transport_httpx import ClientFactory, HttpxTransport

T = TypeVar("T")

AsyncTransport = Callable[[HttpRequest], Awaitable[HttpResponse]]


class AsyncStorage(Protocol):
    """A storage whose methods are coroutines (Redis, a database, an async session)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str | None) -> None: ...

    async def delete(self, key: str) -> None: ...


AnyStorage = Storage | AsyncStorage


class LogtoClient:
    """The tutorial's ``LogtoClient``, for asyncio.

    :param config: the :class:`LogtoConfig`.
    :param storage: a :class:`Storage` or an async storage; a private :class:`MemoryStorage`
        when omitted.
    :param http_client: one ``httpx.AsyncClient`` to use as is (then only use the client on the
        loop that client belongs to).
    :param client_factory: builds the per-loop ``httpx.AsyncClient`` (proxies, TLS); by default
        ``httpx.AsyncClient(follow_redirects=False)``.
    :param timeout: ``(connect, total)`` seconds per provider exchange, retries included.
    :param runtime: clock and entropy (tests pass fakes).
    :param max_retries: extra attempts for discovery and JWKS fetches on connection errors,
        5xx and 429 (nothing else is ever retried).
    :param transport: replaces the httpx transport (an async callable raising
        :class:`TransportError` on failure).
    :param refresh_wait: longest wait, in seconds, for a concurrent refresh of the same session
        (defaults to four total timeouts).
    """

    def __init__(
        self,
        config: LogtoConfig,
        storage: AnyStorage | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        client_factory: ClientFactory | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        runtime: Runtime | None = None,
        max_retries: int = 2,
        transport: AsyncTransport | None = None,
        refresh_wait: float | None = None,
    ) -> None:
        self.runtime = runtime if runtime is not None else DEFAULT_RUNTIME
        self.core = LogtoCore(config, runtime=self.runtime)
        self.storage: AnyStorage = storage if storage is not None else MemoryStorage()
        self._httpx: HttpxTransport | None = None
        if transport is None:
            self._httpx = HttpxTransport(
                http_client,
                client_factory=client_factory,
                timeout=timeout,
                retry=RetryPolicy(max_retries=max_retries),
                runtime=self.runtime,
            )
            transport = self._httpx
        self._send: AsyncTransport = transport
        total = split_timeout(timeout)[1]
        self._refresh_wait = refresh_wait if refresh_wait is not None else 4 * total
        self._flights: SingleFlight[concurrent.futures.Future[Shared]] = SingleFlight()
        self._flights_lock = threading.Lock()
        self._snapshot: contextvars.ContextVar[SessionState] = contextvars.ContextVar(
            f"logto_session_{id(self)}"
        )

    @property
    def config(self) -> LogtoConfig:
        return self.core.config

    async def aclose(self) -> None:
        """Close the ``httpx.AsyncClient`` this client opened on the running loop."""
        if self._httpx is not None:
            await self._httpx.aclose()

    async def __aenter__(self) -> LogtoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- sign-in and sign-out -----------------------------------------------------------

    async def signIn(
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

        return (await self._run(flow))[1].unwrap()

    async def handleSignInCallback(self, callbackUri: str) -> None:
        """Check the authorization response in ``callbackUri``, exchange the code and store
        the tokens. Raises a :class:`LogtoError` subclass on any failure."""
        before, outcome = await self._run(
            lambda s: self.core.handle_sign_in_callback(s, callbackUri)
        )
        self._forget_refresh(before)
        outcome.unwrap()

    async def signOut(self, postLogoutRedirectUri: str | None = None) -> str:
        """Forget the session's tokens, revoke the refresh token (best effort) and return the
        provider's end-session URL to redirect the browser to."""
        before, outcome = await self._run(lambda s: self.core.sign_out(s, postLogoutRedirectUri))
        self._forget_refresh(before)
        return outcome.unwrap().url

    # ---- local getters ------------------------------------------------------------------

    def isAuthenticated(self) -> bool:
        """True when the session holds an ID token (see the module doc for async storages)."""
        return self._local().is_authenticated

    def getIdToken(self) -> str | None:
        return self._local().id_token

    def getIdTokenClaims(self) -> IdTokenClaims:
        """Claims of the stored ID token; :class:`SignInRequiredError` when there is none."""
        return self.core.id_token_claims(self._local())

    def getRefreshToken(self) -> str | None:
        return self._local().refresh_token

    async def isAuthenticatedAsync(self) -> bool:
        """:meth:`isAuthenticated`, read from the storage (any storage)."""
        return (await self._load()).is_authenticated

    async def getIdTokenAsync(self) -> str | None:
        return (await self._load()).id_token

    async def getIdTokenClaimsAsync(self) -> IdTokenClaims:
        return self.core.id_token_claims(await self._load())

    async def getRefreshTokenAsync(self) -> str | None:
        return (await self._load()).refresh_token

    # ---- network ------------------------------------------------------------------------

    async def fetchUserInfo(self) -> UserInfoResponse:
        """The userinfo endpoint's answer for the signed-in user."""
        # Cache a fresh token first through the single flight, so that concurrent userinfo
        # calls do not each refresh inside their own flow.
        warm = await self._access_token(None, None)
        if warm.error is not None and not isinstance(warm.error, SignInRequiredError):
            raise warm.error
        return (await self._run(self.core.fetch_user_info))[1].unwrap()

    async def getAccessToken(self, resource: str = "") -> str | None:
        """An access token for ``resource`` ("" for the userinfo token), refreshed when
        needed; ``None`` when the user must sign in. Other failures raise."""
        return value_or_none(await self._access_token(resource or None, None))

    async def getAccessTokenClaims(self, resource: str = "") -> AccessTokenClaims:
        """Claims of :meth:`getAccessToken`'s token (decoded, not verified)."""
        return self.core.access_token_claims(_required(await self.getAccessToken(resource)))

    async def getOrganizationToken(self, organizationId: str) -> str | None:
        """An organization token; ``None`` when the user must sign in. Needs
        ``UserInfoScope.organizations`` in the configured scopes."""
        return value_or_none(await self._access_token(None, organizationId))

    async def getOrganizationTokenClaims(self, organizationId: str) -> AccessTokenClaims:
        token = await self.getOrganizationToken(organizationId)
        return self.core.access_token_claims(_required(token))

    # PEP 8 spellings.
    sign_in = signIn
    handle_sign_in_callback = handleSignInCallback
    sign_out = signOut
    is_authenticated = isAuthenticated
    get_id_token = getIdToken
    get_id_token_claims = getIdTokenClaims
    get_refresh_token = getRefreshToken
    is_authenticated_async = isAuthenticatedAsync
    get_id_token_async = getIdTokenAsync
    get_id_token_claims_async = getIdTokenClaimsAsync
    get_refresh_token_async = getRefreshTokenAsync
    fetch_user_info = fetchUserInfo
    get_access_token = getAccessToken
    get_access_token_claims = getAccessTokenClaims
    get_organization_token = getOrganizationToken
    get_organization_token_claims = getOrganizationTokenClaims

    # ---- storage ------------------------------------------------------------------------

    def _local(self) -> SessionState:
        """The session for a plain (non-awaited) getter: from a synchronous storage, else
        from this context's snapshot."""
        values: dict[str, str | None] = {}
        for key in StorageKey.ALL:
            value: Any = self.storage.get(key)
            if inspect.isawaitable(value):
                _discard(value)
                return self._snapshot_or_raise()
            values[key] = value
        return SessionState.from_values(values)

    def _snapshot_or_raise(self) -> SessionState:
        try:
            return self._snapshot.get()
        except LookupError:
            pass
        raise LogtoUsageError(
            "with an async storage, await a client method first in this context, or use the "
            "awaitable twins (await client.isAuthenticatedAsync(), getIdTokenClaimsAsync(), ...)",
            code="usage.async_storage",
        )

    async def _get(self, key: str) -> str | None:
        value: Any = self.storage.get(key)
        if inspect.isawaitable(value):
            value = await value
        return value  # type: ignore[no-any-return]

    async def _load(self) -> SessionState:
        session = SessionState.from_values({key: await self._get(key) for key in StorageKey.ALL})
        self._snapshot.set(session)
        return session

    async def _write(self, before: SessionState, writes: Mapping[str, str | None]) -> None:
        for key, value in writes.items():
            done: Any = self.storage.delete(key) if value is None else self.storage.set(key, value)
            if inspect.isawaitable(done):
                await done
        self._snapshot.set(SessionState.from_values({**before.dump(), **writes}))

    # ---- flows --------------------------------------------------------------------------

    async def _run(
        self, build: Callable[[SessionState], Flow[T]]
    ) -> tuple[SessionState, Outcome[T]]:
        """Load the session, run a flow, store its changes; the outcome is not unwrapped."""
        before = await self._load()
        outcome = await run_async(build(before), self._send)
        await self._write(before, self.core.settle(before, outcome))
        return before, outcome

    def _forget_refresh(self, before: SessionState) -> None:
        if before.refresh_token is not None:
            with self._flights_lock:
                self._flights.forget(before.refresh_token)

    async def _access_token(
        self, resource: str | None, organization_id: str | None
    ) -> Outcome[str]:
        session = await self._load()
        cached = self.core.cached_access_token(session, resource, organization_id)
        if cached is not None:
            return Outcome(cached, session, self.core.provider)
        flow = self.core.get_access_token(session, resource, organization_id)
        if session.refresh_token is None:  # nothing to refresh: the flow just says why
            outcome = await run_async(flow, self._send)
            await self._write(session, self.core.settle(session, outcome))
            return outcome
        key = flight_key(session.refresh_token, self.core.token_key(resource, organization_id))
        handle: concurrent.futures.Future[Shared] = concurrent.futures.Future()
        handle.set_running_or_notify_cancel()  # a running future cannot be cancelled
        with self._flights_lock:
            ticket = self._flights.claim(key, handle, self.runtime.now())
        if isinstance(ticket, Lead):
            return await self._lead(ticket.handle, key, session, flow)
        flow.close()
        shared = await self._wait(ticket.handle) if isinstance(ticket, Follow) else ticket.result
        await self._adopt(session, shared)
        return shared.outcome

    async def _lead(
        self,
        handle: concurrent.futures.Future[Shared],
        key: FlightKey,
        before: SessionState,
        flow: Flow[str],
    ) -> Outcome[str]:
        shared: Shared | None = None
        try:
            outcome = await run_async(flow, self._send)
            shared = Shared(self.core.settle(before, outcome), outcome)
            await self._write(before, shared.writes)
            return outcome
        finally:
            # Also on cancellation: followers must never wait for a leader that is gone.
            if shared is None:
                shared = interrupted(before, self.core.provider)
            with self._flights_lock:
                self._flights.settle(key, shared, self.runtime.now())
            handle.set_result(shared)

    async def _wait(self, handle: concurrent.futures.Future[Shared]) -> Shared:
        # wrap_future hands the result over to this loop thread-safely, whichever loop (or
        # thread) the leader runs on.
        try:
            return await asyncio.wait_for(asyncio.wrap_future(handle), self._refresh_wait)
        except asyncio.TimeoutError:
            pass
        raise TransportError(
            "gave up waiting for a concurrent refresh of this session", code="transport.timeout"
        )

    async def _adopt(self, before: SessionState, shared: Shared) -> None:
        """Apply a leader's writes, unless this storage already moved past the refresh token
        this caller started from (the leader's own storage, or a newer refresh). With a
        synchronous storage nothing is awaited between the check and the writes, so no other
        task of this loop can slip in between."""
        if (await self._get(StorageKey.REFRESH_TOKEN) or None) == before.refresh_token:
            await self._write(before, shared.writes)
        else:
            await self._load()


def _discard(awaitable: Awaitable[Any]) -> None:
    """Close an un-awaited coroutine so that Python does not warn about it."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()


def _required(token: str | None) -> str:
    if token is None:
        raise SignInRequiredError(
            "no access token: the user must sign in", code="sign_in_required.no_token"
        )
    return token


__all__ = [
    "AccessTokenClaims",
    "AsyncStorage",
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
