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
performs their effects with awaits. A refresh or a code exchange runs in a task of its own
on the caller's loop, which the caller only awaits: a caller cancelled after the request
reached the provider (an ASGI server cancels a request whose browser went away) stops
waiting, while the task stores the rotated refresh token and hands the result to the callers
waiting on it.
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
from logto_core.errors import LogtoError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.session import SessionState, StorageKey, decode_session, read_session
from logto_core.sleep import Sleep
from logto_core.transport_policy import Timeout

from . import public
from ._background import BackgroundJobs
from ._common import (
    DEFAULT_REVOCATION_TIMEOUT,
    DEFAULT_TIMEOUT,
    ForkSafe,
    RevocationMode,
    SharedGets,
    checked_revocation_timeout,
    exchange_policy,
    ordered,
    refresh_wait_bound,
    sleep_async,
    storage_failed,
    track_forks,
    waits_for_revocation,
)
from ._flights import Flights, KeyedLocks
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


MAX_REKEYS = 4
"""Times a save follows the session to another grant before it writes under the last one."""


class LogtoClient(ForkSafe):
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
    :param revocation: how :meth:`signOut` revokes the refresh token (RFC 7009; the local
        sign-out is done first and never depends on it). It runs on a background event loop
        in a daemon thread (the caller's loop may close as soon as the view returns, as in
        Flask's async views); with ``http_client`` or ``transport`` (which may belong to one
        loop) its requests are sent on the loop ``signOut`` ran on. ``"inline"`` (the
        default): ``signOut`` waits for it at most ``revocation_timeout`` seconds, after which
        it goes on in the background. ``"background"``: ``signOut`` returns at once. In both
        modes revocations still running are waited for by :meth:`aclose` (and leaving an
        ``async with`` block) and at interpreter exit, at most ``revocation_timeout`` seconds
        in all.
    :param revocation_timeout: seconds, see ``revocation`` (default 3).
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
        revocation: RevocationMode = "inline",
        revocation_timeout: float = DEFAULT_REVOCATION_TIMEOUT,
    ) -> None:
        self._inline_revocation = waits_for_revocation(revocation)
        self._revocation_timeout = checked_revocation_timeout(revocation_timeout)
        # A caller's httpx client or transport may be bound to the loop it was made on; the
        # transport we build keeps one httpx client per loop and works on any.
        self._loop_bound = http_client is not None or transport is not None
        self.runtime = runtime if runtime is not None else DEFAULT_RUNTIME
        self.core = LogtoCore(
            config, runtime=self.runtime, exchange=exchange_policy(timeout, max_retries)
        )
        self.storage: AnyStorage = storage if storage is not None else MemoryStorage()
        self._httpx: HttpxTransport | None = None
        if transport is None:
            self._httpx = HttpxTransport(
                http_client,
                client_factory=client_factory,
                timeout=timeout,
            )
            transport = self._httpx
        self._send: AsyncTransport = transport
        self._refresh_wait = refresh_wait_bound(timeout, refresh_wait)
        self._snapshot: contextvars.ContextVar[SessionState] = contextvars.ContextVar(
            f"logto_session_{id(self)}"
        )
        self._revocations = BackgroundJobs("logto-revocation", exit_wait=self._revocation_timeout)
        self._start_process_state()
        track_forks(self)

    def _start_process_state(self) -> None:
        """What only makes sense inside one process: in-flight tables, locks, shielded tasks."""
        self._flights = Flights(self.runtime, lease=self._refresh_wait)
        self._gets = SharedGets()
        self._locks = KeyedLocks()
        self._shielded: set[asyncio.Future[Any]] = set()

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's connections and in-flight state (they belong
        to the parent's loops and sockets), keep the provider knowledge."""
        self._start_process_state()
        self._revocations.after_fork_in_child()
        reset = getattr(self._send, "after_fork_in_child", None)
        if callable(reset):
            reset()

    @property
    def config(self) -> LogtoConfig:
        return self.core.config

    async def aclose(self) -> None:
        """Wait for the background revocations (bounded, see ``revocation``; in a worker
        thread, so the loop keeps running), then close the ``httpx.AsyncClient`` this client
        opened on the running loop."""
        if self._revocations.pending:
            await asyncio.to_thread(self._revocations.wait, self._revocation_timeout)
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

    async def handleSignInCallback(self, callbackUri: object) -> None:
        """Check the authorization response in ``callbackUri`` (the URL the browser came back
        to: a string, or any object whose ``str()`` is it, such as Starlette's ``URL``),
        exchange the code and store the tokens. Raises a :class:`LogtoError` subclass on any
        failure."""
        await self._do(ops.callback_op(self.core, callbackUri))

    async def signOut(self, postLogoutRedirectUri: str | None = None) -> str:
        """Forget the session's tokens and return the provider's end-session URL to redirect
        the browser to. The refresh token is then revoked (best effort: a failure is logged as
        a warning, never raised), waiting at most ``revocation_timeout`` seconds (see
        ``revocation``)."""
        result = await self._do(ops.sign_out_op(self.core, postLogoutRedirectUri))
        if result.to_revoke is not None:
            loop = asyncio.get_running_loop() if self._loop_bound else None
            job = self._revocations.start_async(partial(self._revoke, result.to_revoke, loop))
            if job is not None and self._inline_revocation:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(
                        asyncio.shield(asyncio.wrap_future(job)), self._revocation_timeout
                    )
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
        value = self._get_now(StorageKey.SESSION)
        if type(value) is str:  # a signed-in page view: one read, the decoding memoised
            return decode_session(value)
        reader = read_session()
        try:
            key = next(reader)
            while True:
                # The type test first: inspect.isawaitable is slow next to it.
                if value is not None and type(value) is not str and inspect.isawaitable(value):
                    _discard(value)
                    reader.close()
                    return None
                key = reader.send(value)
                value = self._get_now(key)
        except StopIteration as stop:
            session: SessionState = stop.value
            return session

    def _get_now(self, key: str) -> Any:
        try:
            return self.storage.get(key)
        except Exception as error:
            raise storage_failed("read", key, error) from error

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

    async def _get(self, key: str) -> Any:
        value: Any = self._get_now(key)
        if value is not None and type(value) is not str and inspect.isawaitable(value):
            try:
                value = await value
            except Exception as error:
                raise storage_failed("read", key, error) from error
        return value

    async def _load(self) -> SessionState:
        reader = read_session()
        try:
            key = next(reader)
            while True:
                key = reader.send(await self._get(key))
        except StopIteration as stop:
            session: SessionState = stop.value
        self._snapshot.set(session)
        return session

    # ---- the effect interpreter ---------------------------------------------------------

    async def _do(self, operation: ops.Operation[T]) -> T:
        return await run_operation_async(operation, self._perform)

    async def _perform(self, effect: ops.Effect) -> object:
        if isinstance(effect, HttpRequest):
            return await self._gets.send_async(effect, self._send, self._refresh_wait)
        if isinstance(effect, Sleep):
            return await sleep_async(effect, self.runtime)
        if isinstance(effect, ops.LoadSession):
            return await self._load()
        if isinstance(effect, ops.SaveSession):
            return await self._save(effect)
        if isinstance(effect, ops.Claim):
            return self._flights.claim(effect)
        if isinstance(effect, ops.AwaitFlight):
            return await self._wait(effect)
        if isinstance(effect, ops.Publish):
            self._flights.publish(effect)
            return None
        if isinstance(effect, ops.EndFlight):
            self._flights.end(effect)
            return None
        return await self._shield(effect)

    async def _shield(self, effect: ops.Shielded) -> object:
        """Run the work in a task of its own on this loop and await it: a cancellation of the
        caller stops the waiting, not the work (which stores and shares its result)."""
        task = asyncio.ensure_future(run_operation_async(effect.operation, self._perform))
        self._shielded.add(task)  # a strong reference until it is done
        task.add_done_callback(_shielded_done)
        task.add_done_callback(self._shielded.discard)
        return await asyncio.shield(task)

    async def _revoke(
        self, refresh_token: str, home: asyncio.AbstractEventLoop | None
    ) -> LogtoError | None:
        """A background revocation, on the background loop: only requests, no storage (the
        caller's request, and its storage, may be gone by now). Requests go through ``home``
        when the transport belongs to that loop."""
        send: AsyncTransport = self._send if home is None else partial(self._send_on, home)

        async def perform(effect: ops.Effect) -> object:
            if isinstance(effect, HttpRequest):
                return await self._gets.send_async(effect, send, self._refresh_wait)
            if isinstance(effect, Sleep):
                return await sleep_async(effect, self.runtime)
            raise AssertionError(
                f"a revocation performs requests only, not {effect!r}"
            )  # pragma: no cover

        return await run_operation_async(ops.revoke_op(self.core, refresh_token), perform)

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

    async def _save(self, effect: ops.SaveSession) -> ops.Saved:
        """Apply the change to the stored session under that session's lock (its grant):
        saves of one session never interleave, saves of others never wait. When the stored
        grant is not the one the operation read, the save follows it to its lock. Keeps this
        context's snapshot current."""
        key = KeyedLocks.key_of(effect.grant)
        for attempt in range(MAX_REKEYS + 1):
            async with self._locks.held_async(key):
                before = await self._load()
                stored = KeyedLocks.key_of(before.refresh_token)
                if stored != key and attempt < MAX_REKEYS:
                    key = stored
                    continue
                after = effect.change(before)
                if after is None or after == before:
                    return ops.Saved(before, before)
                await self._write(after)
                self._snapshot.set(after)
                return ops.Saved(before, after)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write(self, session: SessionState) -> None:
        for key, value in ordered(session.writes()):
            try:
                done: Any = (
                    self.storage.delete(key) if value is None else self.storage.set(key, value)
                )
                if inspect.isawaitable(done):
                    await done
            except Exception as error:
                raise storage_failed("write", key, error) from error

    async def _wait(self, effect: ops.AwaitFlight) -> object:
        # wrap_future hands the result over to this loop thread-safely, whichever loop (or
        # thread) the leader runs on.
        handle: concurrent.futures.Future[Any] = effect.follow.handle
        try:
            return await asyncio.wait_for(asyncio.wrap_future(handle), self._refresh_wait)
        except asyncio.TimeoutError:
            pass
        raise effect.timeout_error()


def _shielded_done(task: asyncio.Future[Any]) -> None:
    """Retrieve a shielded task's failure, so that asyncio does not report it as never
    retrieved when its caller went away (the failure was published to the waiters)."""
    if not task.cancelled():
        task.exception()


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
