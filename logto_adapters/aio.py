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

What every method does is written once, in :mod:`logto_core.operations`; this module only
performs their effects with awaits. A task cancelled in the middle of a refresh still settles
the refresh for the callers waiting on it (the cancellation is thrown into the operation).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar

import httpx

from logto_core import operations as ops
from logto_core import transport_policy as policy
from logto_core.client import LogtoCore
from logto_core.driver import run_operation_async
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
    LogtoUsageError,
    MemoryStorage,
    Prompt,
    Storage,
    TransportError,
    UserInfoResponse,
)
from .transport_httpx import ClientFactory, HttpxTransport

T = TypeVar("T")

AsyncTransport = Callable[[HttpRequest], Awaitable[HttpResponse]]

_POLL_INTERVAL = 0.05
"""How often a background revocation checks that the loop it sends on is still open."""


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
    :param revocation: when :meth:`signOut` revokes the refresh token. ``"background"`` (the
        default): after the session is cleared and the URL returned, in a daemon thread with
        its own event loop (the caller's loop may close as soon as the view returns, as in
        Flask's async views), so an unreachable provider never delays the sign-out;
        :meth:`aclose` (and leaving an ``async with`` block) waits for them, bounded by two
        total timeouts. With ``http_client`` or ``transport`` (which may belong to one loop),
        the revocation's requests are sent on the loop ``signOut`` ran on. ``"inline"``:
        before :meth:`signOut` returns (for serverless functions, frozen once they answer).
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
        revocation: RevocationMode = "background",
    ) -> None:
        self._inline_revocation = waits_for_revocation(revocation)
        # A caller's httpx client or transport may be bound to the loop it was made on; the
        # transport we build keeps one httpx client per loop and works on any.
        self._loop_bound = http_client is not None or transport is not None
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
        self._refresh_wait = refresh_wait_bound(timeout, refresh_wait)
        self._flights = Flights(self.runtime)
        self._gets = SharedGets()
        self._snapshot: contextvars.ContextVar[SessionState] = contextvars.ContextVar(
            f"logto_session_{id(self)}"
        )
        self._revocations = BackgroundJobs("logto-revocation")
        self._close_wait = revocation_wait_bound(timeout)

    @property
    def config(self) -> LogtoConfig:
        return self.core.config

    async def aclose(self) -> None:
        """Wait for the background revocations (bounded, see ``revocation``; in a worker
        thread, so the loop keeps running), then close the ``httpx.AsyncClient`` this client
        opened on the running loop."""
        if self._revocations.pending:
            await asyncio.to_thread(self._revocations.wait, self._close_wait)
        self._revocations.shutdown()
        if self._httpx is not None:
            await self._httpx.aclose()

    def waitForRevocations(self, timeout: float | None = None) -> bool:
        """Wait for the refresh-token revocations that sign-outs started in the background, at
        most ``timeout`` seconds (``None``: until they end; each is bounded by the transport
        timeouts). True when none is left running. Mainly for tests and graceful shutdown
        (:meth:`aclose` waits too). It blocks: from a coroutine, prefer
        ``await asyncio.to_thread(client.waitForRevocations)`` (needed with ``http_client`` or
        ``transport``, whose revocation requests run on the caller's loop)."""
        return self._revocations.wait(timeout)

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
        return await self._do(
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

    async def handleSignInCallback(self, callbackUri: str) -> None:
        """Check the authorization response in ``callbackUri``, exchange the code and store
        the tokens. Raises a :class:`LogtoError` subclass on any failure."""
        await self._do(ops.callback_op(self.core, callbackUri))

    async def signOut(self, postLogoutRedirectUri: str | None = None) -> str:
        """Forget the session's tokens and return the provider's end-session URL to redirect
        the browser to, without waiting on the provider. The refresh token is revoked (best
        effort, a failure is logged as a warning) in the background, or before returning with
        ``revocation="inline"``."""
        result = await self._do(
            ops.sign_out_op(
                self.core, postLogoutRedirectUri, wait_for_revocation=self._inline_revocation
            )
        )
        if result.to_revoke is not None:
            loop = asyncio.get_running_loop() if self._loop_bound else None
            self._revocations.start_async(partial(self._revoke, result.to_revoke, loop))
        return result.url

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
        return await self._do(ops.user_info_op(self.core))

    async def getAccessToken(self, resource: str = "") -> str | None:
        """An access token for ``resource`` ("" for the userinfo token), refreshed when
        needed; ``None`` when the user must sign in. Other failures raise."""
        # A page view's common case, answered without starting an operation (synchronous
        # storages only: an async one must be awaited).
        session = self._sync_storage_session()
        cached = self.core.cached_access_token(session, resource) if session else None
        return (
            cached
            if cached is not None
            else await self._do(ops.get_access_token_op(self.core, resource))
        )

    async def getAccessTokenClaims(self, resource: str = "") -> AccessTokenClaims:
        """Claims of :meth:`getAccessToken`'s token (decoded, not verified)."""
        return await self._do(ops.access_token_claims_op(self.core, resource))

    async def getOrganizationToken(self, organizationId: str) -> str | None:
        """An organization token; ``None`` when the user must sign in. Needs
        ``UserInfoScope.organizations`` in the configured scopes."""
        session = self._sync_storage_session()
        cached = self.core.cached_access_token(session, None, organizationId) if session else None
        if cached is not None:
            return cached
        return await self._do(ops.organization_token_op(self.core, organizationId))

    async def getOrganizationTokenClaims(self, organizationId: str) -> AccessTokenClaims:
        return await self._do(ops.organization_token_claims_op(self.core, organizationId))

    # PEP 8 spellings.
    sign_in = signIn
    handle_sign_in_callback = handleSignInCallback
    sign_out = signOut
    wait_for_revocations = waitForRevocations
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
        session = self._sync_storage_session()
        return session if session is not None else self._snapshot_or_raise()

    def _sync_storage_session(self) -> SessionState | None:
        """The session read from a synchronous storage; ``None`` for an async storage."""
        get = self.storage.get
        values = [get(key) for key in StorageKey.ALL]
        for value in values:
            # The type test first: inspect.isawaitable is slow next to it, and this runs on
            # every page view.
            if value is not None and type(value) is not str and inspect.isawaitable(value):
                for pending in values:
                    _discard(pending)
                return None
        return SessionState.from_entries(*values)

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
        if value is not None and type(value) is not str and inspect.isawaitable(value):
            value = await value
        return value  # type: ignore[no-any-return]

    async def _load(self) -> SessionState:
        session = SessionState.from_values({key: await self._get(key) for key in StorageKey.ALL})
        self._snapshot.set(session)
        return session

    # ---- the effect interpreter ---------------------------------------------------------

    async def _do(self, operation: ops.Operation[T]) -> T:
        return await run_operation_async(operation, self._perform)

    async def _perform(self, effect: ops.Effect) -> object:
        if isinstance(effect, HttpRequest):
            return await self._gets.send_async(effect, self._send, self._refresh_wait)
        if isinstance(effect, ops.LoadSession):
            return await self._load()
        if isinstance(effect, ops.SaveSession):
            return await self._save(effect)
        if isinstance(effect, ops.AwaitFlight):
            return await self._wait(effect)
        return self._flights.perform(effect)

    async def _revoke(self, refresh_token: str, home: asyncio.AbstractEventLoop | None) -> None:
        """A background revocation, on the background loop: only requests, no storage (the
        caller's request, and its storage, may be gone by now). Requests go through ``home``
        when the transport belongs to that loop."""
        send: AsyncTransport = self._send if home is None else partial(self._send_on, home)

        async def perform(effect: ops.Effect) -> object:
            if isinstance(effect, HttpRequest):
                return await self._gets.send_async(effect, send, self._refresh_wait)
            raise AssertionError(
                f"a revocation performs requests only, not {effect!r}"
            )  # pragma: no cover

        await run_operation_async(ops.revoke_op(self.core, refresh_token), perform)

    async def _send_on(self, home: asyncio.AbstractEventLoop, request: HttpRequest) -> HttpResponse:
        """Send ``request`` with the transport on the loop ``home`` (from this thread's own
        loop); give up when ``home`` closes, or after the refresh wait bound."""
        answer: concurrent.futures.Future[HttpResponse] = concurrent.futures.Future()
        started: list[asyncio.Task[HttpResponse]] = []

        async def exchange() -> HttpResponse:
            return await self._send(request)

        def start() -> None:
            # Runs on ``home``. The coroutine is made here, not before: a loop that closes
            # with this callback still queued then leaves no un-awaited coroutine behind.
            if not answer.cancelled():
                task = home.create_task(exchange())
                started.append(task)
                task.add_done_callback(partial(_pass_on, answer))

        try:
            home.call_soon_threadsafe(start)
        except RuntimeError:  # that loop is closed already
            raise _loop_closed(request) from None
        waiting = asyncio.wrap_future(answer)
        deadline = time.monotonic() + self._refresh_wait
        # Polled: a loop closed while our exchange was still queued never answers.
        while not waiting.done() and not home.is_closed() and time.monotonic() < deadline:
            await asyncio.wait({waiting}, timeout=_POLL_INTERVAL)
        if waiting.done() and not waiting.cancelled():
            return waiting.result()
        answer.cancel()
        for task in started:
            with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing left to stop
                home.call_soon_threadsafe(task.cancel)
        if waiting.done() or home.is_closed():
            raise _loop_closed(request)
        raise policy.timed_out(request)

    async def _save(self, effect: ops.SaveSession) -> bool:
        """Apply the writes and keep this context's snapshot current. With a synchronous
        storage nothing is awaited between a guarded save's check and its writes, so no other
        task of this loop can slip in between."""
        stored = await self._get(StorageKey.REFRESH_TOKEN) if effect.guarded else None
        if not effect.accepts(stored):
            await self._load()
            return False
        for key, value in effect.writes.items():
            done: Any = self.storage.delete(key) if value is None else self.storage.set(key, value)
            if inspect.isawaitable(done):
                await done
        self._snapshot.set(effect.after)
        return True

    async def _wait(self, effect: ops.AwaitFlight) -> Shared:
        # wrap_future hands the result over to this loop thread-safely, whichever loop (or
        # thread) the leader runs on.
        handle: concurrent.futures.Future[Shared] = effect.follow.handle
        try:
            return await asyncio.wait_for(asyncio.wrap_future(handle), self._refresh_wait)
        except asyncio.TimeoutError:
            pass
        raise effect.timeout_error()


def _pass_on(answer: concurrent.futures.Future[HttpResponse], task: asyncio.Task[Any]) -> None:
    """Hand a finished exchange over to the thread waiting for it (unless it gave up)."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if task.cancelled():
            answer.cancel()
        elif task.exception() is not None:
            answer.set_exception(task.exception())
        else:
            answer.set_result(task.result())


def _loop_closed(request: HttpRequest) -> TransportError:
    return TransportError(
        f"{policy.describe(request)}: the loop of the client's transport closed",
        code=policy.FAILED,
    )


def _discard(awaitable: object) -> None:
    """Close an un-awaited coroutine so that Python does not warn about it."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()


__all__ = ["AsyncStorage", "LogtoClient"]
__all__ += public.__all__
