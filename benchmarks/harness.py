"""Shared pieces of the benchmarks: the provider on loopback, clocks, storages, clients, timing.

Everything here uses public APIs only: ``logto_adapters.sync`` / ``logto_adapters.aio``
(``LogtoClient``, ``LogtoConfig``, ``Storage``), ``logto_core.testing.TestProvider`` and
``logto_adapters.testing.serve_provider``. The one exception is :func:`served`, which wraps
the loopback HTTP server's ``get_request`` to count accepted TCP connections and to set
``TCP_NODELAY`` (see its docstring): a property of the test server, not of any client.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import multiprocessing
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from logto_adapters import aio, sync
from logto_adapters.testing import serve_provider
from logto_core.runtime import Runtime
from logto_core.testing import TestProvider

APP_ID = "bench-web"
APP_SECRET = "bench-secret-0123456789abcdef"
REDIRECT = "http://127.0.0.1:9/callback"
POST_LOGOUT = "http://127.0.0.1:9/"
API = "https://api.bench.example"
SHORT_API = "https://short.bench.example"
"""A resource whose access tokens live one second: every SDK finds them expired (the official
SDK subtracts 60 s, ours a 30 s margin), so each ``getAccessToken`` must refresh."""
ORG = "org-bench"
USERS = 100
KINDS = ("sync", "aio", "official")
OURS = ("sync", "aio")
LABEL = {
    "sync": "ours sync (requests)",
    "aio": "ours async (httpx)",
    "official": "official logto (aiohttp)",
}
NOT_BROWSER = frozenset({"authorization"})
"""Provider log entries that are the browser's (``approve``), not an SDK's request."""


def user_name(n: int) -> str:
    return f"user-{n % USERS}"


# ---- clocks -------------------------------------------------------------------------------


class Clock:
    """Real time plus an offset that a benchmark moves forward to expire tokens.

    Shared by one provider and our clients (through ``Runtime``). The official SDK reads
    ``time.time()`` itself, so its provider always runs with ``offset == 0``.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


# ---- storages -----------------------------------------------------------------------------


class DictStorage(sync.Storage):
    """The tutorial's Storage over a plain dict (one per client or per session)."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.data: dict[str, str] = {} if data is None else data

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def set(self, key: str, value: str | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


CURRENT: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("bench_session")


class RoutedStorage(sync.Storage):
    """The storage of the session the current request (thread or task) serves, as a Flask
    session is: the dict is chosen with :data:`CURRENT`."""

    def get(self, key: str) -> str | None:
        return CURRENT.get().get(key)

    def set(self, key: str, value: str | None) -> None:
        if value is None:
            CURRENT.get().pop(key, None)
        else:
            CURRENT.get()[key] = value

    def delete(self, key: str) -> None:
        CURRENT.get().pop(key, None)


def official_storage(routed: bool = False, data: dict[str, str] | None = None) -> Any:
    """The same dict storages, subclassing the official SDK's ``Storage``."""
    import logto

    base = RoutedStorage if routed else DictStorage

    class OfficialStorage(base, logto.Storage):  # type: ignore[misc, valid-type]
        pass

    return OfficialStorage() if routed else OfficialStorage(data)


def storage_for(kind: str, *, routed: bool = False, data: dict[str, str] | None = None) -> Any:
    if kind == "official":
        return official_storage(routed, data)
    return RoutedStorage() if routed else DictStorage(data)


def storage_bytes(data: dict[str, str]) -> int:
    """Serialised size of a session: keys plus values, UTF-8."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())


# ---- the provider on loopback, in its own process -----------------------------------------


def setup_provider(provider: TestProvider) -> None:
    provider.add_client(
        APP_ID,
        secret=APP_SECRET,
        redirect_uris=[REDIRECT],
        post_logout_redirect_uris=[POST_LOGOUT],
        kind="traditional",
    )
    provider.add_resource(API, ["read", "write"])
    provider.add_resource(SHORT_API, ["read"], access_token_ttl=1)
    provider.add_organization(ORG, "Bench Org")
    for n in range(USERS):
        sub = user_name(n)
        provider.add_user(sub, name=f"User {n}", email=f"{sub}@bench.example")
        provider.grant_permissions(sub, API, ["read"])
        provider.grant_permissions(sub, SHORT_API, ["read"])
        provider.add_member(ORG, sub, roles=["member"], scopes=["read:docs"])


def _count(entries: list[Any]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for entry in entries:
        if entry.endpoint in NOT_BROWSER:
            continue
        name = entry.endpoint
        if entry.grant_type:
            name = f"{name}:{entry.grant_type}"
        counts[name] += 1
    return counts


def _serve(conn: Connection) -> None:
    """The provider process: serve on loopback, then answer the benchmark's commands.

    The loopback server is made for load (keep-alive, ``TCP_NODELAY``, a deep accept queue;
    see :mod:`logto_adapters.testing`), the same for every client, and counts the connections
    it accepts (benchmark 4).
    """
    clock = Clock()
    with serve_provider(lambda url: TestProvider(url, clock=clock)) as handle:
        with handle.lock:
            setup_provider(handle.provider)
        conn.send(handle.url)
        while True:
            try:
                command, args = conn.recv()
            except EOFError:
                return
            if command == "stop":
                conn.send(None)
                return
            with handle.lock:
                if command == "approve":
                    try:
                        reply: Any = handle.provider.approve(*args)
                    except Exception as error:  # report it to the benchmark, keep serving
                        reply = error
                elif command == "requests_since":
                    reply = _count(handle.provider.log[args[0] :])
                elif command == "mark":
                    reply = len(handle.provider.log)
                elif command == "connections":
                    reply = handle.connections_accepted
                elif command == "advance":
                    clock.advance(args[0])
                    reply = None
                else:
                    reply = ValueError(command)
            conn.send(reply)


class Served:
    """The test provider on 127.0.0.1 in a child process (so that its CPU work never competes
    with the client's for the interpreter lock), driven through a pipe."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        self._lock = threading.Lock()
        self.url: str = self._conn.recv()

    def _call(self, command: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((command, args))
            reply = self._conn.recv()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def approve(self, url: str, user: str) -> str:
        """The browser's part: sign ``user`` in at the provider, get the callback URL."""
        return str(self._call("approve", url, user))

    def mark(self) -> int:
        return int(self._call("mark"))

    def requests_since(self, mark: int) -> Counter[str]:
        """SDK requests by endpoint (token requests by grant type) since ``mark``; the
        browser's approvals are not counted."""
        return Counter(self._call("requests_since", mark))

    @property
    def connections(self) -> int:
        """TCP connections the server accepted so far."""
        return int(self._call("connections"))

    def advance(self, seconds: float) -> None:
        """Move the provider's clock (pair it with :meth:`Clock.advance` on the client)."""
        self._call("advance", seconds)

    def stop(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            self._call("stop")
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()


@contextlib.contextmanager
def served() -> Iterator[Served]:
    """A fresh, set-up provider on loopback in its own process."""
    server = Served()
    try:
        yield server
    finally:
        server.stop()


# ---- clients ------------------------------------------------------------------------------


def config_values(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "appId": APP_ID,
        "appSecret": APP_SECRET,
        "resources": [API, SHORT_API],
    }


def make_client(
    kind: str,
    endpoint: str,
    storage: Any,
    *,
    clock: Callable[[], float] | None = None,
    **options: Any,
) -> Any:
    """A client of ``kind`` configured identically (scopes: email, read, organizations)."""
    values = config_values(endpoint)
    if kind == "official":
        import logto

        values["scopes"] = ["email", "read", logto.UserInfoScope.organizations]
        return logto.LogtoClient(logto.LogtoConfig(**values), storage=storage)
    module: Any = sync if kind == "sync" else aio
    values["scopes"] = ["email", "read", module.UserInfoScope.organizations]
    runtime = Runtime(clock=clock) if clock is not None else None
    return module.LogtoClient(module.LogtoConfig(**values), storage, runtime=runtime, **options)


async def call(result: Any) -> Any:
    """Await ``result`` if it is awaitable (the sync client's methods are plain)."""
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        return await result
    return result


async def close(kind: str, client: Any) -> None:
    if kind == "aio":
        await client.aclose()
    elif kind == "sync":
        client.close()


async def sign_in(client: Any, srv: Served, user: str) -> None:
    """One complete sign-in: ``signIn``, the browser at the provider, the callback."""
    url = await call(client.signIn(REDIRECT))
    callback = srv.approve(url, user)
    await call(client.handleSignInCallback(callback))


# ---- timing -------------------------------------------------------------------------------


def best_per_op(run: Callable[[int], float], loops: int, repeats: int) -> tuple[float, float]:
    """(best, median) seconds per operation over ``repeats`` runs of ``loops`` operations;
    ``run(loops)`` returns the elapsed seconds of one run."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        samples.append(run(loops) / loops)
    return min(samples), statistics.median(samples)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Stopwatch:
    """Accumulates the time spent inside SDK calls, in total and by method."""

    def __init__(self) -> None:
        self.total = 0.0
        self.by_method: dict[str, float] = {}

    async def measure(self, method: str, start: Callable[[], Any]) -> Any:
        """Time ``start()`` (a call of the SDK's ``method``) until its result is ready."""
        started = time.perf_counter()
        try:
            return await call(start())
        finally:
            elapsed = time.perf_counter() - started
            self.total += elapsed
            self.by_method[method] = self.by_method.get(method, 0.0) + elapsed
