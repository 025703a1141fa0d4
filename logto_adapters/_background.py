"""Work that outlives the call that started it: the refresh-token revocations of sign-outs.

Plain jobs run on a few reused daemon threads, coroutine jobs on one event loop kept in a
daemon thread: reused threads and loops keep their connections alive, where a thread and a
loop per job would open a new connection (and load TLS settings) each time.

Nothing is lost when the process ends: jobs still queued or running when the interpreter
exits are waited for, in total at most :attr:`BackgroundJobs.exit_wait` seconds, so that a
stalled provider cannot hold the exit either (the threads are daemons: once the bound is
spent they are simply left behind). A forked child starts with none of its parent's jobs,
threads or loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from logto_core.log import logger

Job = Callable[[], object]


class BackgroundJobs:
    """Jobs run off the caller's thread, tracked so that they can be waited for. It knows
    nothing of what the jobs do; a job's own failures are its business (the revocation logs
    them), anything it lets escape is logged here, never printed."""

    MAX_THREADS = 4

    def __init__(self, name: str, *, exit_wait: float) -> None:
        self._name = name
        self.exit_wait = exit_wait
        self._local = threading.local()
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[None]] = set()
        self._queue: queue.SimpleQueue[tuple[Job, concurrent.futures.Future[None]] | None]
        self._queue = queue.SimpleQueue()
        self._threads = 0
        self._idle = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pending(self) -> int:
        """How many jobs are still queued or running."""
        with self._lock:
            return len(self._pending)

    def start(self, job: Job) -> concurrent.futures.Future[None] | None:
        """Run ``job`` on a background thread. When no thread can be started (the process is
        out of them), the job is dropped with a warning: the caller's own work is done and
        must not fail for it. Answers the job's future (``None`` when it did not start)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            with self._lock:
                self._pending.add(future)
                if self._idle == 0 and self._threads < self.MAX_THREADS:
                    self._start_thread()
                self._queue.put((job, future))
        except RuntimeError as error:
            self._not_started(future, error)
            return None
        return future

    def start_async(
        self, job: Callable[[], Coroutine[Any, Any, object]]
    ) -> concurrent.futures.Future[None] | None:
        """Run the coroutine ``job()`` on the background event loop (made on first use)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        try:
            with self._lock:
                loop = self._background_loop()
                self._pending.add(future)
            asyncio.run_coroutine_threadsafe(self._run_async(job, future), loop)
        except RuntimeError as error:
            self._not_started(future, error)
            return None
        return future

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{self._threads}", daemon=True
        )
        thread.start()  # RuntimeError when the process is out of threads
        self._threads += 1

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
            if item is None:
                return
            self._run(*item)

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

    def _not_started(self, future: concurrent.futures.Future[None], error: Exception) -> None:
        self._finish(future)
        logger.warning("%s could not start (%s)", self._name, type(error).__name__)

    def _run(self, job: Job, future: concurrent.futures.Future[None]) -> None:
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
            threads, loop = self._threads, self._loop
            self._threads, self._loop = 0, None
            for _ in range(threads):
                self._queue.put(None)
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

    def after_fork_in_child(self) -> None:
        """Forget the parent's jobs, threads and loop: none of them exists in this process
        (the threads were not copied), and the jobs are the parent's to finish."""
        self._local = threading.local()
        self._reset()


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


_LIVE: weakref.WeakSet[BackgroundJobs] = weakref.WeakSet()


def _flush_at_exit() -> None:
    """Wait for every client's unfinished jobs, within one overall bound: the largest
    ``exit_wait`` of the clients that still have jobs."""
    busy = [jobs for jobs in list(_LIVE) if jobs.pending]
    if not busy:
        return
    deadline = time.monotonic() + max(jobs.exit_wait for jobs in busy)
    for jobs in busy:
        if not jobs.wait(max(0.0, deadline - time.monotonic())):
            logger.warning(
                "%s: %d job(s) still running at exit were abandoned after %.1f s",
                jobs._name,
                jobs.pending,
                jobs.exit_wait,
            )


def _after_fork_in_child() -> None:
    for jobs in list(_LIVE):
        jobs.after_fork_in_child()


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RevocationJobs:
    """What both clients' revocation runners share: the jobs, their bound at exit, and the
    queries; each kit adds how a job starts and how closing waits (a thread, or a loop)."""

    def __init__(self, exit_wait: float) -> None:
        self._exit_wait = exit_wait
        self._jobs = BackgroundJobs("logto-revocation", exit_wait=exit_wait)

    def wait(self, timeout: float | None) -> bool:
        return self._jobs.wait(timeout)

    @property
    def pending(self) -> int:
        return self._jobs.pending

    def after_fork_in_child(self) -> None:
        self._jobs.after_fork_in_child()


__all__ = ["BackgroundJobs", "RevocationJobs"]
