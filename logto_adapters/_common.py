"""What both clients share besides their public names (those are in :mod:`.public`): the
thread-safe single-flight table, shared fetches of provider metadata, background jobs.

The clients share their protocol logic through :mod:`logto_core` (the operations in
:mod:`logto_core.operations`); each only adds an interpreter for the effects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Literal

from logto_core.errors import (
    LogtoUsageError,
    TransportError,
)
from logto_core.http import HttpRequest, HttpResponse
from logto_core.log import logger
from logto_core.operations import ForgetFlights, JoinFlight, SettleFlight, Ticket
from logto_core.runtime import Runtime
from logto_core.singleflight import Shared, SingleFlight
from logto_core.storage import Storage
from logto_core.transport_policy import Timeout, split_timeout

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 15.0)
"""``(connect, total)`` seconds of one provider exchange, retries included."""

SYNC_GETTERS_DOC = """\
``isAuthenticated``, ``getIdToken``, ``getIdTokenClaims`` and ``getRefreshToken`` only read the
storage; they never touch the network."""

Handle = concurrent.futures.Future[Shared]
"""A flight's handle: a ``concurrent.futures.Future``, so that a follower on any thread or
event loop can wait for a leader running on another."""


class Flights:
    """One client's single-flight table (:class:`~logto_core.singleflight.SingleFlight`),
    shared by all its threads and event loops: performs the single-flight effects."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._table: SingleFlight[Handle] = SingleFlight()
        self._lock = threading.Lock()

    def perform(self, effect: JoinFlight | SettleFlight | ForgetFlights) -> Ticket | None:
        """Do a single-flight effect (the same way for threads and event loops)."""
        if isinstance(effect, JoinFlight):
            return self.join(effect)
        if isinstance(effect, SettleFlight):
            self.settle(effect)
        else:
            self.forget(effect)
        return None

    def join(self, effect: JoinFlight) -> Ticket:
        handle: Handle = concurrent.futures.Future()
        handle.set_running_or_notify_cancel()  # a running future cannot be cancelled
        with self._lock:
            return self._table.claim(effect.key, handle, self._runtime.now())

    def settle(self, effect: SettleFlight) -> None:
        with self._lock:
            self._table.settle(effect.key, effect.shared, self._runtime.now())
        handle: Handle = effect.lead.handle
        handle.set_result(effect.shared)

    def forget(self, effect: ForgetFlights) -> None:
        with self._lock:
            self._table.forget(effect.refresh_token)


class SharedGets:
    """Identical idempotent requests (discovery, JWKS) in flight at the same moment share one
    answer, across the client's threads and event loops: when the cached keys of a busy client
    go stale, its concurrent users make one JWKS request, not one each. Other requests (token,
    userinfo, revocation) are always sent as they are."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, concurrent.futures.Future[HttpResponse]] = {}

    def send(
        self, request: HttpRequest, send: Callable[[HttpRequest], HttpResponse], wait: float
    ) -> HttpResponse:
        lead, future = self._claim(request)
        if not lead:
            try:
                return future.result(timeout=wait)
            except concurrent.futures.TimeoutError:
                raise _gave_up(request) from None
            except TransportError as error:
                raise _copy(error) from None
        try:
            response = send(request)
        except BaseException as error:
            self._settle(request, future, None, error)
            raise
        self._settle(request, future, response, None)
        return response

    async def send_async(
        self,
        request: HttpRequest,
        send: Callable[[HttpRequest], Awaitable[HttpResponse]],
        wait: float,
    ) -> HttpResponse:
        lead, future = self._claim(request)
        if not lead:
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), wait)
            except asyncio.TimeoutError:
                raise _gave_up(request) from None
            except TransportError as error:
                raise _copy(error) from None
        try:
            response = await send(request)
        except BaseException as error:
            self._settle(request, future, None, error)
            raise
        self._settle(request, future, response, None)
        return response

    def _claim(self, request: HttpRequest) -> tuple[bool, concurrent.futures.Future[HttpResponse]]:
        key = request.url
        with self._lock:
            existing = None if not request.idempotent else self._inflight.get(key)
            if existing is not None:
                return False, existing
            future: concurrent.futures.Future[HttpResponse] = concurrent.futures.Future()
            future.set_running_or_notify_cancel()
            if request.idempotent:
                self._inflight[key] = future
            return True, future

    def _settle(
        self,
        request: HttpRequest,
        future: concurrent.futures.Future[HttpResponse],
        response: HttpResponse | None,
        error: BaseException | None,
    ) -> None:
        with self._lock:
            if self._inflight.get(request.url) is future:
                del self._inflight[request.url]
        if response is not None:
            future.set_result(response)
        elif isinstance(error, TransportError):
            future.set_exception(_copy(error))
        else:
            future.set_exception(
                TransportError(
                    f"{request.method} {request.url.partition('?')[0]}: the shared request "
                    "was interrupted",
                    code="transport.failed",
                )
            )


def _copy(error: TransportError) -> TransportError:
    """A fresh error for each waiter: an exception object raised in several threads at once
    would share (and overwrite) one traceback."""
    return TransportError(
        error.message, code=error.code, status=error.status, retry_after=error.retry_after
    )


def _gave_up(request: HttpRequest) -> TransportError:
    return TransportError(
        f"{request.method} {request.url.partition('?')[0]}: gave up waiting for the same "
        "request made by another caller",
        code="transport.timeout",
    )


RevocationMode = Literal["background", "inline"]
"""When a sign-out revokes the refresh token: ``"background"`` (in a daemon thread, after
``signOut`` returned) or ``"inline"`` (before ``signOut`` returns, as serverless code needs)."""


def waits_for_revocation(mode: object) -> bool:
    """Whether ``mode`` (the clients' ``revocation`` option) revokes inline."""
    if mode not in ("background", "inline"):
        raise LogtoUsageError(
            'revocation must be "background" or "inline"', code="usage.revocation_mode"
        )
    return mode == "inline"


def revocation_wait_bound(timeout: Timeout) -> float:
    """How long ``close()`` waits for background revocations: a revocation is at most a
    discovery and the revocation request, each bounded by the total timeout."""
    return 2 * split_timeout(timeout)[1]


class BackgroundJobs:
    """Jobs run off the caller's thread (the background revocations), tracked so that they
    can be waited for. Plain jobs run on a few reused threads, coroutine jobs on one event loop
    kept in a background thread: reused threads and loops keep their connections alive, where
    a thread and a loop per job would open a new connection (and load TLS settings) each time.
    It knows nothing of what the jobs do; a job's own failures are its business (the
    revocation logs them), anything it lets escape is logged here, never printed. Jobs still
    running when the interpreter exits are waited for (each is bounded by its timeouts)."""

    MAX_THREADS = 4

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[None]] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._local = threading.local()

    @property
    def pending(self) -> int:
        """How many jobs are still queued or running."""
        with self._lock:
            return len(self._pending)

    def start(self, job: Callable[[], object]) -> bool:
        """Run ``job`` on a background thread. When no thread can be started (the process is
        out of them), the job is dropped with a warning: the caller's own work is done and
        must not fail for it. Answers whether it started."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            with self._lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        self.MAX_THREADS, thread_name_prefix=self._name
                    )
                self._pending.add(future)
                self._executor.submit(self._run, job, future)
        except RuntimeError as error:
            return self._not_started(future, error)
        return True

    def start_async(self, job: Callable[[], Coroutine[Any, Any, object]]) -> bool:
        """Run the coroutine ``job()`` on the background event loop (made on first use)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            with self._lock:
                loop = self._background_loop()
                self._pending.add(future)
            asyncio.run_coroutine_threadsafe(self._run_async(job, future), loop)
        except RuntimeError as error:
            return self._not_started(future, error)
        return True

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_serve_forever, args=(loop,), name=f"{self._name}-loop", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:
                loop.close()
                raise
            self._loop = loop
        return self._loop

    def _not_started(self, future: concurrent.futures.Future[None], error: Exception) -> bool:
        self._finish(future)
        logger.warning("%s could not start (%s)", self._name, type(error).__name__)
        return False

    def _run(self, job: Callable[[], object], future: concurrent.futures.Future[None]) -> None:
        self._local.current = future
        try:
            job()
        except BaseException as error:  # nobody to hand it to; a thread must not print it
            logger.warning("%s ended with %s", self._name, type(error).__name__)
        finally:
            self._local.current = None
            self._finish(future)

    async def _run_async(
        self,
        job: Callable[[], Coroutine[Any, Any, object]],
        future: concurrent.futures.Future[None],
    ) -> None:
        try:
            await job()
        except BaseException as error:
            logger.warning("%s ended with %s", self._name, type(error).__name__)
        finally:
            self._finish(future)

    def _finish(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        if not future.done():
            future.set_result(None)

    def shutdown(self) -> None:
        """Let the threads and the loop go (after :meth:`wait`); a later job starts new ones."""
        with self._lock:
            executor, loop = self._executor, self._loop
            self._executor = self._loop = None
        if executor is not None:
            executor.shutdown(wait=False)
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # closed already
                loop.call_soon_threadsafe(loop.stop)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no job is left, at most ``timeout`` seconds (``None``: as long as it
        takes); a job waiting for the jobs does not wait for itself. True when none is left."""
        current = getattr(self._local, "current", None)
        with self._lock:
            others = [future for future in self._pending if future is not current]
        _, not_done = concurrent.futures.wait(others, timeout)
        return not not_done


def _serve_forever(loop: asyncio.AbstractEventLoop) -> None:
    """The background loop's thread: run until stopped, then close what it holds (the
    transport's per-loop HTTP client closes through the async-generator shutdown)."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def refresh_wait_bound(timeout: Timeout, refresh_wait: float | None) -> float:
    """How long a follower waits for a concurrent refresh: as asked, else four total
    timeouts (the leader's refresh may need discovery, the token exchange and the keys)."""
    return refresh_wait if refresh_wait is not None else 4 * split_timeout(timeout)[1]


def write_all(storage: Storage, writes: Mapping[str, str | None]) -> None:
    """Apply storage writes to a synchronous storage (``None`` = delete)."""
    for key, value in writes.items():
        if value is None:
            storage.delete(key)
        else:
            storage.set(key, value)
