"""What only the blocking client does, behind the names the shared client source calls: the
``requests`` transport, shielded work on worker threads, background revocations on a daemon
thread, and the tutorial's storage.

The asyncio twin is :mod:`logto_adapters._async.kit`; the client itself is generated from
:mod:`logto_adapters._async.client` (``scripts/unasync.py``).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Callable
from functools import partial
from typing import TypedDict, TypeVar

import requests

from logto_core import operations as ops
from logto_core.coordination import Coordinator
from logto_core.driver import run_operation
from logto_core.errors import LogtoError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.session import SessionState, StorageKey, read_session
from logto_core.storage import Storage
from logto_core.transport_policy import Timeout

from .._background import RevocationJobs
from .._common import (
    AtomicWrite,
    ProviderCacheStore,
    RevocationMode,
    compare_and_set_of,
    ordered,
    publish_provider,
    save_contended,
    sleep,
    storage_failed,
)
from ..coordination import MemoryCoordinator
from ..transport_requests import RequestsTransport

T = TypeVar("T")

Transport = Callable[[HttpRequest], HttpResponse]
"""A callable sending one request, raising :class:`TransportError` on failure."""

Perform = Callable[[ops.Effect], object]
"""An interpreter of effects."""

AnyStorage = Storage
run = run_operation

SHIELD_THREADS = 32
"""Worker threads for shielded work (refreshes and code exchanges in progress)."""

__all__ = ["MemoryCoordinator", "publish_provider", "sleep"]


class SyncOptions(TypedDict, total=False):
    """The options of :class:`~logto_adapters.sync.Logto` (and of ``LogtoClient``, which
    passes them on).

    :param session: a ``requests.Session`` to send with (connection pools, proxies, TLS);
        by default one is created and reused for every request.
    :param timeout: ``(connect, total)`` seconds per provider exchange, retries included.
    :param runtime: clock and entropy (tests pass fakes).
    :param max_retries: extra attempts for discovery and JWKS fetches on connection errors,
        5xx and 429 (nothing else is ever retried).
    :param transport: replaces the ``requests`` transport altogether (any callable sending an
        :class:`~logto_core.http.HttpRequest` and raising
        :class:`~logto_core.errors.TransportError` on failure).
    :param refresh_wait: longest wait, in seconds, for a concurrent refresh of the same session
        (defaults to four total timeouts).
    :param revocation: how ``signOut`` revokes the refresh token (RFC 7009; the local
        sign-out is done first and never depends on it). ``"inline"`` (the default): before
        returning, waiting at most ``revocation_timeout`` seconds; a revocation that takes
        longer goes on in the background. ``"background"``: ``signOut`` returns at once. In
        both modes revocations still running are waited for by ``close()`` (and leaving a
        ``with`` block) and at interpreter exit, at most ``revocation_timeout`` seconds in
        all, so a script that exits right after ``signOut`` loses nothing.
    :param revocation_timeout: seconds, see ``revocation`` (default 3).
    :param provider_cache: what ``exportProviderCache()`` returned earlier (discovery and key
        sets with their fetch times), so that a short-lived process need not fetch them again;
        stale entries are refetched as usual. Or a store shared by the app's processes (a
        ``ProviderCacheStore`` such as ``RedisProviderCache(url)``): loaded now, published
        to after each fetch.
    :param coordinator: where concurrent callers of one grant agree on one refresh, and
        identical discovery and JWKS fetches on one exchange (a
        :class:`~logto_core.coordination.Coordinator`); by default a ``MemoryCoordinator``
        of this process. Processes sharing sessions need one they share.
    """

    session: requests.Session | None
    timeout: Timeout
    runtime: Runtime | None
    max_retries: int
    transport: Transport | None
    refresh_wait: float | None
    revocation: RevocationMode
    revocation_timeout: float
    provider_cache: str | ProviderCacheStore | None
    coordinator: Coordinator | None


# ---- sending --------------------------------------------------------------------------------


class Sending:
    """The transport: the caller's, or a :class:`RequestsTransport` made from the options."""

    def __init__(self, options: SyncOptions, timeout: Timeout, runtime: Runtime) -> None:
        self._requests: RequestsTransport | None = None
        transport = options.get("transport")
        if transport is None:
            self._requests = RequestsTransport(
                options.get("session"),
                timeout=timeout,
            )
            transport = self._requests
        self.send: Transport = transport
        self.wait_bound = 0.0

    def background_sender(self) -> Transport:
        """How background work (a revocation) sends: from any thread, directly."""
        return self.send

    def close(self) -> None:
        """Close the ``requests.Session`` the transport created (not one passed in)."""
        if self._requests is not None:
            self._requests.close()

    def after_fork_in_child(self) -> None:
        reset = getattr(self.send, "after_fork_in_child", None)
        if callable(reset):
            reset()


# ---- shielded work and background revocations -----------------------------------------------


class Shield:
    """Runs work on a worker thread, with the caller's context (a Flask session is a context
    variable), and waits for it: whatever interrupts the caller's thread (an exception raised
    by a signal handler) stops the waiting, not the work."""

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            SHIELD_THREADS, thread_name_prefix="logto-shield"
        )
        self._inside = threading.local()

    def run(self, operation: ops.Operation[T], perform: Perform) -> T:
        if getattr(self._inside, "active", False):  # already on a worker thread
            return run_operation(operation, perform)
        context = contextvars.copy_context()
        try:
            job = self._pool.submit(context.run, self._run_inside, operation, perform)
        except RuntimeError:  # closed, or out of threads: the work cannot be shielded here
            return run_operation(operation, perform)
        return job.result()

    def _run_inside(self, operation: ops.Operation[T], perform: Perform) -> T:
        self._inside.active = True
        try:
            return run_operation(operation, perform)
        finally:
            self._inside.active = False

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class Revocations(RevocationJobs):
    """Sign-outs' revocations, on a daemon thread, finished at ``close()`` and at interpreter
    exit within the revocation timeout."""

    def run(self, job: Callable[[], LogtoError | None], *, inline: bool, timeout: float) -> None:
        """Start ``job``; with ``inline``, wait for it at most ``timeout`` seconds."""
        started = self._jobs.start(job)
        if started is not None and inline:
            concurrent.futures.wait([started], timeout)

    def drain(self) -> None:
        """Wait for those still running (bounded), then stop the background thread."""
        self._jobs.wait(self._exit_wait)
        self._jobs.shutdown()


# ---- storage ----------------------------------------------------------------------------------


def read_now(storage: Storage) -> SessionState:
    """The stored session."""
    return SessionState.load(partial(_get, storage))


read = read_now
"""A blocking storage is read the same way by the plain getters and by operations."""


def write(storage: Storage, session: SessionState) -> None:
    """Store ``session`` (its value first, then the official SDK's entries deleted)."""
    for key, value in ordered(session.writes()):
        try:
            if value is None:
                storage.delete(key)
            else:
                storage.set(key, value)
        except Exception as error:
            raise storage_failed("write", key, error) from error


def is_atomic(storage: Storage) -> bool:
    """Whether ``storage`` has a ``compare_and_set``: the client then saves with it,
    atomically across processes."""
    return compare_and_set_of(storage) is not None


def read_stored(storage: Storage) -> tuple[str | None, SessionState]:
    """The session's one value as stored (what a compare-and-set compares with: ``None``
    when absent, or not a string) and the session read (from the official SDK's entries
    when that value is absent)."""
    value = _get(storage, StorageKey.SESSION)
    reader = read_session(value)
    try:
        key = next(reader)
        while True:
            key = reader.send(_get(storage, key))
    except StopIteration as stop:
        session: SessionState = stop.value
    return (value if type(value) is str else None), session


def compare_and_set(storage: Storage, expected: str | None, session: SessionState) -> bool:
    """Store ``session`` if the storage still holds ``expected``: the one value compared and
    set, then the official SDK's entries deleted. False, having written nothing, when another
    writer came first."""
    write = AtomicWrite.of(session)
    if not _compare_and_set(storage, expected, write.value):
        return False
    for key in write.legacy:
        try:
            storage.delete(key)
        except Exception as error:
            raise storage_failed("write", key, error) from error
    if write.unmark:  # best effort: a writer who came since keeps its value
        _compare_and_set(storage, write.value, None)
    return True


contended = save_contended


def _compare_and_set(storage: Storage, expected: str | None, value: str | None) -> bool:
    method = compare_and_set_of(storage)
    assert method is not None
    try:
        return bool(method(StorageKey.SESSION, expected, value))
    except Exception as error:
        raise storage_failed("write", StorageKey.SESSION, error) from error


def _get(storage: Storage, key: str) -> str | None:
    try:
        return storage.get(key)
    except Exception as error:
        raise storage_failed("read", key, error) from error
