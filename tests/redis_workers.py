"""Worker processes for the multi-process tests: each is what one worker of a deployed app
is, a ``Logto(config, coordinator=RedisCoordinator(url))`` of its own (blocking or asyncio),
serving concurrent requests of sessions kept in a store the workers share.

The store is the real :class:`~logto_adapters.redis_storage.RedisStorage` (one hash per
session id, saved by compare-and-set), on a Redis of its own so that the coordinator's can
be stopped alone.

Workers are ``multiprocessing`` processes started with the *spawn* method (a fresh
interpreter each: nothing inherited), driven through a pipe by :class:`Workers`, and stopped
by their pid. A worker answers each request with its outcome: the token, or the error's
class and code (never a live exception: it crosses a pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis

from logto_adapters.redis_storage import RedisStorage
from logto_core.session import SessionState

Outcome = tuple[str, str]
"""``("ok", token)``, ``("signed_out", "")`` (``getAccessToken`` answered ``None``: the user
must sign in again), or ``(error class name, code)``."""

START_TIMEOUT = 30.0
ANSWER_TIMEOUT = 60.0


class SharedSessionStorage(RedisStorage):
    """One user's session as the real :class:`RedisStorage` keeps it (one hash, saved by
    compare-and-set), on the test's client, shared by every process."""

    def __init__(self, client: redis.Redis, session_id: str) -> None:
        super().__init__("redis://127.0.0.1", session_id, client=client)


def sessions_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, max_connections=256)


def stored_session(url: str, session_id: str) -> SessionState:
    """What the shared store holds for ``session_id`` now."""
    client = sessions_client(url)
    try:
        values = client.hgetall(f"logto:session:{session_id}")
    finally:
        client.close()
    return SessionState.from_values({str(k): str(v) for k, v in values.items()})


@dataclass(frozen=True)
class Setup:
    """What a worker is told to be."""

    kind: str  # "sync" or "aio"
    config: dict[str, Any]
    coordinator_url: str
    sessions_url: str
    clock_offset: float = 0.0
    provider_cache: str | None = None
    refresh_wait: float | None = None
    timeout: tuple[float, float] = (5.0, 15.0)
    shared: bool = True
    """False: each worker keeps the in-process default coordinator (the control case)."""


# ---- inside a worker ------------------------------------------------------------------------


class _Worker:
    def __init__(self, setup: Setup) -> None:
        from logto_adapters import aio, sync
        from logto_core.runtime import Runtime

        self.setup = setup
        self.offset = setup.clock_offset
        module: Any = sync if setup.kind == "sync" else aio
        options: dict[str, Any] = {"timeout": setup.timeout}
        if setup.refresh_wait is not None:
            options["refresh_wait"] = setup.refresh_wait
        if setup.provider_cache is not None:
            options["provider_cache"] = setup.provider_cache
        self.coordinator = (
            module.RedisCoordinator(setup.coordinator_url)
            if setup.shared
            else module.MemoryCoordinator()
        )
        self.logto = module.Logto(
            module.LogtoConfig(**setup.config),
            runtime=Runtime(clock=lambda: time.time() + self.offset),
            coordinator=self.coordinator,
            **options,
        )
        self.sessions = sessions_client(setup.sessions_url)

    def close(self) -> None:
        shared = self.setup.shared
        if self.setup.kind == "sync":
            self.logto.close()
            if shared:
                self.coordinator.close()
        else:

            async def close() -> None:
                await self.logto.aclose()
                if shared:
                    await self.coordinator.aclose()

            asyncio.run(close())
        self.sessions.close()

    def requests(self, session_ids: Sequence[str], resource: str, concurrency: int) -> Any:
        if self.setup.kind == "sync":
            with ThreadPoolExecutor(concurrency) as pool:
                return list(pool.map(lambda sid: self._one(sid, resource), session_ids))
        return asyncio.run(self._many(session_ids, resource, concurrency))

    def _one(self, session_id: str, resource: str) -> Outcome:
        storage = SharedSessionStorage(self.sessions, session_id)
        try:
            token = self.logto.session(storage).getAccessToken(resource)
        except Exception as error:
            return (type(error).__name__, str(getattr(error, "code", "")))
        return ("ok", token) if token is not None else ("signed_out", "")

    async def _many(self, session_ids: Sequence[str], resource: str, concurrency: int) -> Any:
        gate = asyncio.Semaphore(concurrency)

        async def one(session_id: str) -> Outcome:
            async with gate:
                storage = SharedSessionStorage(self.sessions, session_id)
                try:
                    token = await self.logto.session(storage).getAccessToken(resource)
                except Exception as error:
                    return (type(error).__name__, str(getattr(error, "code", "")))
                return ("ok", token) if token is not None else ("signed_out", "")

        return list(await asyncio.gather(*(one(sid) for sid in session_ids)))


def worker_main(connection: multiprocessing.connection.Connection) -> None:
    """A worker's loop: ``("setup", Setup)``, ``("offset", seconds)``,
    ``("requests", ids, resource, concurrency)``, ``("stop",)``; each answered once."""
    worker: _Worker | None = None
    while True:
        message = connection.recv()
        command = message[0]
        try:
            if command == "stop":
                connection.send(("ok", None))
                return
            if command == "setup":
                if worker is not None:
                    worker.close()
                worker = _Worker(message[1])
                connection.send(("ok", os.getpid()))
            elif command == "offset":
                assert worker is not None
                worker.offset = float(message[1])
                connection.send(("ok", None))
            elif command == "requests":
                assert worker is not None
                connection.send(("ok", worker.requests(message[1], message[2], message[3])))
            else:
                connection.send(("error", f"unknown command {command!r}"))
        except Exception as error:  # reported to the test, which fails on it
            connection.send(("error", f"{type(error).__name__}: {error}"))


# ---- the test's side ------------------------------------------------------------------------


class Worker:
    """One worker process, driven through its pipe."""

    def __init__(self, context: Any) -> None:
        self.connection, child = multiprocessing.Pipe()
        self.process = context.Process(target=worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self._lock = threading.Lock()
        self.pending = False

    @property
    def pid(self) -> int:
        pid = self.process.pid
        assert isinstance(pid, int)
        return pid

    def send(self, *message: Any) -> None:
        with self._lock:
            assert not self.pending
            self.connection.send(message)
            self.pending = True

    def answer(self, timeout: float = ANSWER_TIMEOUT) -> Any:
        with self._lock:
            assert self.pending
            if not self.connection.poll(timeout):
                raise TimeoutError(f"worker {self.pid} did not answer in {timeout} s")
            status, value = self.connection.recv()
            self.pending = False
        if status != "ok":
            raise RuntimeError(f"worker {self.pid}: {value}")
        return value

    def call(self, *message: Any, timeout: float = ANSWER_TIMEOUT) -> Any:
        self.send(*message)
        return self.answer(timeout)

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a hung worker's supervisor would."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.process.join(10)

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.connection.send(("stop",))
                self.connection.poll(5)
            except (OSError, EOFError):
                pass
            self.process.join(5)
        if self.process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            self.process.join(5)
        if self.process.is_alive():
            self.kill()
        self.connection.close()


class Workers:
    """``count`` worker processes (spawned together), half blocking and half asyncio."""

    def __init__(self, count: int) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.workers = [Worker(self.context) for _ in range(count)]

    def __len__(self) -> int:
        return len(self.workers)

    def __getitem__(self, index: int) -> Worker:
        return self.workers[index]

    def kinds(self) -> list[str]:
        return ["sync" if i % 2 == 0 else "aio" for i in range(len(self.workers))]

    def setup(self, setups: Sequence[Setup]) -> None:
        for worker, setup in zip(self.workers, setups, strict=True):
            worker.send("setup", setup)
        for worker in self.workers:
            worker.answer(START_TIMEOUT)

    def replace(self, index: int) -> Worker:
        """A new process in place of worker ``index`` (after it was killed)."""
        self.workers[index].stop()
        self.workers[index] = Worker(self.context)
        return self.workers[index]

    def everywhere(self, *message: Any, timeout: float = ANSWER_TIMEOUT) -> list[Any]:
        for worker in self.workers:
            worker.send(*message)
        return [worker.answer(timeout) for worker in self.workers]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@contextlib.contextmanager
def started(count: int) -> Iterator[Workers]:
    workers = Workers(count)
    try:
        yield workers
    finally:
        workers.stop()
