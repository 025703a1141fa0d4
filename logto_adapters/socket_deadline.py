"""A hard deadline for each ``requests`` exchange, enforced by shutting its socket down.

requests and urllib3 only have per-operation socket timeouts: a peer that sends one byte
within every timeout keeps a request alive for ever (a trickled status line, headers, body
or TLS handshake), and reading a body chunk blocks until the chunk is full. So the
``requests`` transport wraps each exchange in an :class:`Exchange` with an absolute deadline,
and the connections of :class:`DeadlineAdapter` register the socket they use for the
exchange of their thread; one watchdog thread (shared by every transport of the process)
shuts that socket down when the deadline passes. The blocked read or write then fails at
once, and the transport reports ``transport.timeout`` (whatever the library made of it, even
a body that looked complete).

Details that make this safe:

* The watchdog holds its own duplicate of the socket's descriptor for the exchange (closed
  when the exchange ends), so it can never shut down a descriptor number that was closed
  and reused meanwhile; the duplicate is made of the plain socket before the TLS handshake,
  so a slow handshake is cut too.
* A connection returned to the pool is disowned first (under the watchdog's lock): an
  exchange that overruns its deadline can never cut a connection that another request has
  taken from the pool since.
* Kept-alive connections register at each request (``request``), new ones as soon as the
  TCP connection exists (``_new_conn``). Name resolution and the TCP connect itself are not
  cut (no socket exists yet): each connect attempt is bounded by the connect timeout, which
  the transport caps at the time left.
* After :func:`os.fork` the child gets a new watchdog (the parent's thread does not exist
  there, and its lock may have been held at the fork).

Per exchange the cost is a heap push, three uncontended lock acquisitions and one
``dup``/``close`` of a descriptor.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any

from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager

_COMPACT_AFTER = 1024


class Exchange:
    """One request attempt with its absolute deadline (``time.monotonic()`` seconds)."""

    __slots__ = ("conn", "deadline", "done", "expired", "handle")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.conn: WatchedHTTPConnection | None = None
        self.handle: socket.socket | None = None  # our duplicate of the connection's socket
        self.expired = False
        self.done = False


class Watchdog:
    """One thread that shuts down the sockets of exchanges past their deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # (deadline, sequence, exchange): the unique sequence keeps exchanges uncompared.
        # Ended exchanges stay until their deadline comes, or until they are half of the
        # heap (then it is rebuilt without them: amortised O(1) per exchange, bounded size).
        self._heap: list[tuple[float, int, Exchange]] = []
        self._ended = 0
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def begin(self, deadline: float) -> Exchange:
        exchange = Exchange(deadline)
        with self._lock:
            if self._ended > _COMPACT_AFTER and 2 * self._ended > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._ended = 0
            earliest = self._heap[0][0] if self._heap else None
            heapq.heappush(self._heap, (deadline, next(self._order), exchange))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="logto-transport-deadlines", daemon=True
                )
                self._thread.start()
            elif earliest is None or deadline < earliest:
                self._wake.notify()
        return exchange

    def watch(
        self, exchange: Exchange, conn: WatchedHTTPConnection, sock: Any, *, fresh: bool
    ) -> None:
        """``conn`` carries ``exchange`` on ``sock``; ``fresh``: a socket just connected."""
        if exchange.done or (not fresh and exchange.conn is conn and exchange.handle is not None):
            return
        try:
            handle: socket.socket | None = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except (OSError, ValueError, AttributeError):
            handle = None
        with self._lock:
            previous, exchange.handle, exchange.conn = exchange.handle, handle, conn
            conn.owner = exchange
            if exchange.expired:
                _shut(handle)
        if previous is not None:
            previous.close()

    def end(self, exchange: Exchange) -> bool:
        """Stop watching ``exchange``; whether its deadline passed while it was watched."""
        with self._lock:
            exchange.done = True
            if not exchange.expired:  # an expired exchange has left the heap already
                self._ended += 1
            if exchange.conn is not None and exchange.conn.owner is exchange:
                exchange.conn.owner = None
            handle, exchange.handle, exchange.conn = exchange.handle, None, None
        if handle is not None:
            handle.close()
        return exchange.expired

    def disown(self, conn: WatchedHTTPConnection) -> None:
        """``conn`` goes back to its pool: no exchange may cut it any more."""
        if conn.owner is not None:
            with self._lock:
                conn.owner = None

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, exchange = heapq.heappop(self._heap)
                    if exchange.done:
                        self._ended -= 1
                    else:
                        exchange.expired = True
                        if exchange.conn is not None and exchange.conn.owner is exchange:
                            _shut(exchange.handle)
                self._wake.wait(self._heap[0][0] - now if self._heap else None)


def _shut(handle: socket.socket | None) -> None:
    if handle is not None:
        with contextlib.suppress(OSError):  # already closed by the peer, or never connected
            handle.shutdown(socket.SHUT_RDWR)


_watchdog = Watchdog()
_current = threading.local()  # .exchange: the Exchange of this thread's request, if any


def watchdog() -> Watchdog:
    return _watchdog


def reset_after_fork() -> None:
    """A new watchdog for a forked child (the parent's thread does not exist in it)."""
    global _watchdog
    _watchdog = Watchdog()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reset_after_fork)


def begin(deadline: float) -> Exchange:
    """Start watching this thread's next exchange; pair with :func:`end`."""
    exchange = _watchdog.begin(deadline)
    _current.exchange = exchange
    return exchange


def end(exchange: Exchange) -> bool:
    """Stop watching; ``True`` when the deadline passed (the exchange must count as timed
    out, whatever it returned)."""
    _current.exchange = None
    return _watchdog.end(exchange)


class WatchedHTTPConnection(HTTPConnection):
    """An urllib3 connection that registers its socket with this thread's exchange."""

    owner: Exchange | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        exchange: Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None:
            _watchdog.watch(exchange, self, sock, fresh=True)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        exchange: Exchange | None = getattr(_current, "exchange", None)
        if exchange is not None and self.sock is not None:
            _watchdog.watch(exchange, self, self.sock, fresh=False)
        super().request(*args, **kwargs)


class WatchedHTTPSConnection(WatchedHTTPConnection, HTTPSConnection):
    """The TLS variant (its plain socket is registered before the handshake)."""


class WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        if isinstance(conn, WatchedHTTPConnection):
            _watchdog.disown(conn)
        super()._put_conn(conn)


class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = WatchedHTTPSConnection

    def _put_conn(self, conn: Any) -> None:
        if isinstance(conn, WatchedHTTPConnection):
            _watchdog.disown(conn)
        super()._put_conn(conn)


_WATCHED_POOLS: dict[str, type[HTTPConnectionPool]] = {
    "http": WatchedHTTPConnectionPool,
    "https": WatchedHTTPSConnectionPool,
}


def _watched(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = _WATCHED_POOLS
    return manager


class DeadlineAdapter(HTTPAdapter):
    """requests' ``HTTPAdapter`` whose connections (direct or through an HTTP proxy) take
    part in the exchange deadlines; outside an exchange of the transport it behaves as the
    stock adapter. SOCKS proxies keep urllib3's own connections (per-read timeouts only)."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        _watched(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        fresh = proxy not in self.proxy_manager
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if fresh and type(manager) is ProxyManager:
            _watched(manager)
        return manager

    @classmethod
    def like(cls, stock: HTTPAdapter) -> DeadlineAdapter:
        """An adapter with the pool sizes, retries and config of ``stock``."""
        connections, maxsize, block = _pool_settings(stock)
        adapter = cls(
            pool_connections=connections,
            pool_maxsize=maxsize,
            max_retries=stock.max_retries,
            pool_block=block,
        )
        adapter.config = dict(stock.config)
        return adapter


def _pool_settings(adapter: HTTPAdapter) -> tuple[int, int, bool]:
    """The pool sizes an ``HTTPAdapter`` was made with (kept by requests for pickling)."""
    return (
        int(getattr(adapter, "_pool_connections", DEFAULT_POOLSIZE)),
        int(getattr(adapter, "_pool_maxsize", DEFAULT_POOLSIZE)),
        bool(getattr(adapter, "_pool_block", DEFAULT_POOLBLOCK)),
    )


def install(session: Any) -> list[str]:
    """Replace the session's stock ``HTTPAdapter`` instances by equivalent
    :class:`DeadlineAdapter` instances (same prefixes, pool sizes and retries); adapters
    of other classes are kept. Returns the prefixes left without deadline enforcement."""
    unwatched: list[str] = []
    for prefix, adapter in list(session.adapters.items()):
        if type(adapter) is HTTPAdapter:
            session.adapters[prefix] = DeadlineAdapter.like(adapter)
        elif not isinstance(adapter, DeadlineAdapter):
            unwatched.append(prefix)
    return unwatched


def forget_pools(session: Any) -> None:
    """Drop every pooled connection of the session's ``HTTPAdapter`` instances without
    touching their sockets (for a forked child: they are the parent's connections). The
    abandoned pools are closed as garbage: that only closes the child's copies of the
    descriptors, which neither writes to nor shuts down the parent's connections."""
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter):
            connections, maxsize, block = _pool_settings(adapter)
            adapter.init_poolmanager(connections, maxsize, block=block)
            adapter.proxy_manager = {}


__all__ = [
    "DeadlineAdapter",
    "Exchange",
    "Watchdog",
    "begin",
    "end",
    "forget_pools",
    "install",
    "reset_after_fork",
    "watchdog",
]
