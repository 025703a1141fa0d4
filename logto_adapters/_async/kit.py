"""What only the asyncio client does, behind the names the shared client source calls: the
httpx transport and the loop a caller's transport belongs to, shielded tasks, background
revocations, and storages whose methods may be coroutines.

The blocking twin is :mod:`logto_adapters._sync.kit`; the client itself
(:mod:`logto_adapters._async.client`) is written once for both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Protocol, TypedDict, TypeVar

import httpx

from logto_core import operations as ops
from logto_core import transport_policy as policy
from logto_core.coordination import AsyncCoordinator
from logto_core.driver import run_operation_async
from logto_core.errors import LogtoError, LogtoUsageError, TransportError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.session import SessionState, StorageKey, decode_session, read_session
from logto_core.storage import Storage
from logto_core.transport_policy import Timeout

from .._background import RevocationJobs
from .._common import (
    AtomicWrite,
    ProviderCacheStore,
    RevocationMode,
    compare_and_set_of,
    ordered,
    save_contended,
    sleep_async,
    storage_failed,
)
from .._common import publish_provider as _publish_provider
from ..coordination import AsyncMemoryCoordinator
from ..transport_httpx import ClientFactory, HttpxTransport

T = TypeVar("T")

AsyncTransport = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""An async callable sending one request, raising :class:`TransportError` on failure."""

Perform = Callable[[ops.Effect], Awaitable[object]]
"""An interpreter of effects."""

MemoryCoordinator = AsyncMemoryCoordinator
run = run_operation_async
sleep = sleep_async

_POLL_INTERVAL = 0.05
"""How often a background revocation checks that the loop it sends on is still open."""


class AsyncStorage(Protocol):
    """A storage whose methods are coroutines (Redis, a database, an async session)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str | None) -> None: ...

    async def delete(self, key: str) -> None: ...


class AsyncAtomicStorage(AsyncStorage, Protocol):
    """An async storage with an atomic ``compare_and_set``
    (:class:`~logto_core.storage.AtomicStorage`, as a coroutine): saves are then atomic
    across processes."""

    async def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool: ...


AnyStorage = Storage | AsyncStorage
"""The storages the asyncio client takes: the tutorial's, or one with coroutine methods."""


class AsyncOptions(TypedDict, total=False):
    """The options of :class:`~logto_adapters.aio.Logto` (and of ``LogtoClient``, which passes
    them on).

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
    :param revocation: how ``signOut`` revokes the refresh token (RFC 7009; the local
        sign-out is done first and never depends on it). It runs on a background event loop
        in a daemon thread (the caller's loop may close as soon as the view returns, as in
        Flask's async views); with ``http_client`` or ``transport`` (which may belong to one
        loop) its requests are sent on the loop ``signOut`` ran on. ``"inline"`` (the
        default): ``signOut`` waits for it at most ``revocation_timeout`` seconds, after which
        it goes on in the background. ``"background"``: ``signOut`` returns at once. In both
        modes revocations still running are waited for by ``aclose()`` (and leaving an
        ``async with`` block) and at interpreter exit, at most ``revocation_timeout`` seconds
        in all.
    :param revocation_timeout: seconds, see ``revocation`` (default 3).
    :param provider_cache: what ``exportProviderCache()`` returned earlier (discovery and key
        sets with their fetch times), so that a short-lived process need not fetch them again;
        stale entries are refetched as usual. Or a store shared by the app's processes (a
        ``ProviderCacheStore`` such as ``RedisProviderCache(url)``): loaded now, published
        to after each fetch.
    :param coordinator: where concurrent callers of one grant agree on one refresh, and
        identical discovery and JWKS fetches on one exchange (an
        :class:`~logto_core.coordination.AsyncCoordinator`); by default a
        ``MemoryCoordinator`` of this process. Processes sharing sessions need one they share.
    """

    http_client: httpx.AsyncClient | None
    client_factory: ClientFactory | None
    timeout: Timeout
    runtime: Runtime | None
    max_retries: int
    transport: AsyncTransport | None
    refresh_wait: float | None
    revocation: RevocationMode
    revocation_timeout: float
    provider_cache: str | ProviderCacheStore | None
    coordinator: AsyncCoordinator | None


# ---- sending --------------------------------------------------------------------------------


class Sending:
    """The transport: the caller's, or an :class:`HttpxTransport` (one ``httpx.AsyncClient``
    per event loop) made from the options."""

    def __init__(self, options: AsyncOptions, timeout: Timeout, runtime: Runtime) -> None:
        http_client = options.get("http_client")
        transport = options.get("transport")
        # A caller's httpx client or transport may be bound to the loop it was made on; the
        # transport we build keeps one httpx client per loop and works on any.
        self._loop_bound = http_client is not None or transport is not None
        self._httpx: HttpxTransport | None = None
        if transport is None:
            self._httpx = HttpxTransport(
                http_client,
                client_factory=options.get("client_factory"),
                timeout=timeout,
            )
            transport = self._httpx
        self.send: AsyncTransport = transport
        self.wait_bound = 0.0
        """Longest wait for an exchange handed over to another loop (set by the client)."""

    def background_sender(self) -> AsyncTransport:
        """How background work started now (a revocation) sends: directly, or, when the
        transport may belong to the caller's loop, through that loop."""
        if not self._loop_bound:
            return self.send
        return partial(self.send_on, asyncio.get_running_loop())

    async def send_on(self, home: asyncio.AbstractEventLoop, request: HttpRequest) -> HttpResponse:
        """Send ``request`` with the transport on the loop ``home`` (from this thread's own
        loop); give up when ``home`` closes, or after the wait bound."""
        answer: concurrent.futures.Future[HttpResponse] = concurrent.futures.Future()
        started: list[asyncio.Task[HttpResponse]] = []

        async def exchange() -> HttpResponse:
            return await self.send(request)

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
        deadline = time.monotonic() + self.wait_bound
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

    async def close(self) -> None:
        """Close the ``httpx.AsyncClient`` opened on the running loop (not one passed in)."""
        if self._httpx is not None:
            await self._httpx.aclose()

    def after_fork_in_child(self) -> None:
        reset = getattr(self.send, "after_fork_in_child", None)
        if callable(reset):
            reset()


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


# ---- shielded work and background revocations -----------------------------------------------


class Shield:
    """Runs work in a task of its own on the caller's loop, which the caller only awaits: a
    cancellation of the caller stops the waiting, not the work (which stores and shares its
    result)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    async def run(self, operation: ops.Operation[T], perform: Perform) -> T:
        task = asyncio.ensure_future(run_operation_async(operation, perform))
        self._tasks.add(task)  # a strong reference until it is done
        task.add_done_callback(_shielded_done)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    def close(self) -> None:
        """Nothing to stop: shielded tasks end with their loop."""


def _shielded_done(task: asyncio.Future[Any]) -> None:
    """Retrieve a shielded task's failure, so that asyncio does not report it as never
    retrieved when its caller went away (the failure was published to the waiters)."""
    if not task.cancelled():
        task.exception()


class Revocations(RevocationJobs):
    """Sign-outs' revocations, on a background event loop in a daemon thread (the caller's
    loop may close as soon as the view returns, as in Flask's async views), finished at
    ``aclose()`` and at interpreter exit within the revocation timeout."""

    async def run(
        self,
        job: Callable[[], Coroutine[Any, Any, LogtoError | None]],
        *,
        inline: bool,
        timeout: float,
    ) -> None:
        """Start ``job``; with ``inline``, wait for it at most ``timeout`` seconds."""
        started = self._jobs.start_async(job)
        if started is not None and inline:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(started)), timeout)

    async def drain(self) -> None:
        """Wait for those still running (bounded; in a worker thread, so the loop keeps
        running), then stop the background loop."""
        if self._jobs.pending:
            await asyncio.to_thread(self._jobs.wait, self._exit_wait)
        self._jobs.shutdown()


# ---- storage ----------------------------------------------------------------------------------


def read_now(storage: AnyStorage) -> SessionState | None:
    """The session read from a synchronous storage; ``None`` for an async storage (whose
    reads must be awaited)."""
    value = _get_now(storage, StorageKey.SESSION)
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
            value = _get_now(storage, key)
    except StopIteration as stop:
        session: SessionState = stop.value
        return session


async def read(storage: AnyStorage) -> SessionState:
    """The stored session (any storage)."""
    reader = read_session()
    try:
        key = next(reader)
        while True:
            key = reader.send(await _get(storage, key))
    except StopIteration as stop:
        session: SessionState = stop.value
        return session


async def write(storage: AnyStorage, session: SessionState) -> None:
    """Store ``session`` (its value first, then the official SDK's entries deleted)."""
    for key, value in ordered(session.writes()):
        try:
            done: Any = storage.delete(key) if value is None else storage.set(key, value)
            if inspect.isawaitable(done):
                await done
        except Exception as error:
            raise storage_failed("write", key, error) from error


def is_atomic(storage: AnyStorage) -> bool:
    """Whether ``storage`` has a ``compare_and_set`` (plain or a coroutine): the client then
    saves with it, atomically across processes."""
    return compare_and_set_of(storage) is not None


async def read_stored(storage: AnyStorage) -> tuple[str | None, SessionState]:
    """The session's one value as stored (what a compare-and-set compares with: ``None``
    when absent, or not a string) and the session read (from the official SDK's entries
    when that value is absent)."""
    value = await _get(storage, StorageKey.SESSION)
    reader = read_session(value)
    try:
        key = next(reader)
        while True:
            key = reader.send(await _get(storage, key))
    except StopIteration as stop:
        session: SessionState = stop.value
    return (value if type(value) is str else None), session


async def compare_and_set(storage: AnyStorage, expected: str | None, session: SessionState) -> bool:
    """Store ``session`` if the storage still holds ``expected``: the one value compared and
    set, then the official SDK's entries deleted. False, having written nothing, when another
    writer came first."""
    write = AtomicWrite.of(session)
    if not await _compare_and_set(storage, expected, write.value):
        return False
    for key in write.legacy:
        await _delete(storage, key)
    if write.unmark:  # best effort: a writer who came since keeps its value
        await _compare_and_set(storage, write.value, None)
    return True


contended = save_contended


async def publish_provider(store: ProviderCacheStore, text: str) -> None:
    """Publish to a shared provider cache (blocking calls: in a worker thread)."""
    await asyncio.to_thread(_publish_provider, store, text)


async def _compare_and_set(storage: AnyStorage, expected: str | None, value: str | None) -> bool:
    method = compare_and_set_of(storage)
    assert method is not None
    try:
        done: Any = method(StorageKey.SESSION, expected, value)
        if inspect.isawaitable(done):
            done = await done
    except Exception as error:
        raise storage_failed("write", StorageKey.SESSION, error) from error
    return bool(done)


async def _delete(storage: AnyStorage, key: str) -> None:
    try:
        done: Any = storage.delete(key)
        if inspect.isawaitable(done):
            await done
    except Exception as error:
        raise storage_failed("write", key, error) from error


def _get_now(storage: AnyStorage, key: str) -> Any:
    try:
        return storage.get(key)
    except Exception as error:
        raise storage_failed("read", key, error) from error


async def _get(storage: AnyStorage, key: str) -> Any:
    value: Any = _get_now(storage, key)
    if value is not None and type(value) is not str and inspect.isawaitable(value):
        try:
            value = await value
        except Exception as error:
            raise storage_failed("read", key, error) from error
    return value


def _discard(awaitable: object) -> None:
    """Close an un-awaited coroutine so that Python does not warn about it."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()


def no_snapshot() -> LogtoUsageError:
    """A plain getter with an async storage and nothing read in this context yet."""
    return LogtoUsageError(
        "with an async storage, await a client method first in this context, or use the "
        "awaitable twins (await client.isAuthenticatedAsync(), getIdTokenClaimsAsync(), ...)",
        code="usage.async_storage",
    )
