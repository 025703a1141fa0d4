"""An awaitable transport over ``httpx.AsyncClient``.

An ``AsyncClient`` holds connections bound to the event loop that opened them, and some
frameworks (Flask's async views among them) run every request in a fresh loop. So unless the
caller provides a client (used as is, on whatever loop they use it), this transport keeps one
client per running loop, forgotten when the loop is garbage-collected or closed.

As for the requests transport: one call sends one attempt (retries, and the waits between
them, are the core's: :func:`logto_core.exchange.exchange`), redirects are never followed (a
3xx is handed back), bodies are streamed and capped, and every failure is a
:class:`~logto_core.errors.TransportError` without the library exception chained.

Deadlines. Each attempt ends within its ``request.timeout`` seconds (the time left of its
exchange's deadline; the transport's ``timeout=(connect, total)`` for a request without one)
whatever the peer does. It runs, connect, TLS handshake, headers and the whole body, inside
``asyncio.wait_for`` with that time, on top of httpx's per-operation timeouts (so name
resolution, run in a worker thread by anyio, is abandoned at the deadline too). A cancelled
exchange closes its connection (httpcore removes it from the pool; the tests pin that the
next request works, on a pool of one connection).

TLS. A refused certificate or a failed handshake is ``transport.tls``: it names the host and
the fix, chains the TLS library's reason as a
:class:`~logto_core.transport_policy.TlsFailure`, and is logged once at WARNING (see
:mod:`logto_adapters.transport_tls`).

Fork. :meth:`HttpxTransport.after_fork_in_child` makes a forked child forget every per-loop
client without closing it (closing would write to, and shut, the parent's connections).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import httpx

from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.http import MAX_BODY_BYTES, HttpRequest, HttpResponse

from .transport_tls import tls_problem

ClientFactory = Callable[[], httpx.AsyncClient]
TRUST_FIX = (
    "pass the client a client_factory that builds httpx.AsyncClient(verify=context) with "
    "that CA loaded (context = ssl.create_default_context(cafile=...)), or set SSL_CERT_FILE"
)


@dataclass(frozen=True, slots=True)
class _LoopClient:
    client: httpx.AsyncClient
    closer: AsyncGenerator[None, None]


async def _close_with_loop(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Parks at ``yield`` until the loop shuts its async generators down, then closes."""
    try:
        yield
    finally:
        await client.aclose()


class HttpxTransport:
    """``await transport(request) -> HttpResponse``, raising :class:`TransportError`.

    Pass ``client`` to use one ``AsyncClient`` you manage (it must then only be used on one
    loop), or ``client_factory`` to build the per-loop clients yourself (proxies, TLS
    settings); by default each loop gets ``httpx.AsyncClient(follow_redirects=False)``.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        client_factory: ClientFactory | None = None,
        timeout: policy.Timeout = (5.0, 15.0),
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self._client = client
        self._factory = client_factory
        self.connect_timeout, self.total_timeout = policy.split_timeout(timeout)
        self._timeout = httpx.Timeout(self.total_timeout, connect=self.connect_timeout)
        self._max_body = max_body
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient]
        self._per_loop = weakref.WeakKeyDictionary()
        self._ssl_context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        # Per-loop tables a forked child inherited: kept, never closed nor collected (see
        # after_fork_in_child).
        self._forked_away: list[object] = []

    async def client_for_running_loop(self) -> httpx.AsyncClient:
        """The ``AsyncClient`` to use on the running loop (created on first use)."""
        if self._client is not None:
            return self._client
        loop = asyncio.get_running_loop()
        # Loops of several threads share the table (background revocations, Flask async views
        # in a threaded server): every read and write of it holds the lock.
        with self._lock:
            entry = self._per_loop.get(loop)
            if entry is not None and not entry.client.is_closed:
                return entry.client
            # Clients of loops closed without the asyncgen shutdown: drop them (they hold
            # references to their dead loop, which would otherwise never be collected).
            for other in [other for other in list(self._per_loop) if other.is_closed()]:
                self._per_loop.pop(other, None)
            client = self._factory() if self._factory is not None else self._default_client()
            entry = _LoopClient(client, _close_with_loop(client))
            self._per_loop[loop] = entry
        # Started here so that the loop registers it: asyncio.run (and anything that calls
        # loop.shutdown_asyncgens) then closes the client's connections before the loop
        # closes, instead of leaving sockets to a dead loop.
        await entry.closer.__anext__()
        return entry.client

    def _default_client(self) -> httpx.AsyncClient:
        # One TLS context for every loop's client: loading the certificate store costs far
        # more than the request itself (Flask async views make a loop per request).
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return httpx.AsyncClient(
            follow_redirects=False, timeout=self._timeout, verify=self._ssl_context
        )

    async def aclose(self) -> None:
        """Close the client of the running loop, if this transport created it."""
        if self._client is not None:
            return
        with self._lock:
            entry = self._per_loop.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry.closer.aclose()

    def after_fork_in_child(self) -> None:
        """In a forked child: forget every per-loop client (their connections are the
        parent's) so that the next request on any loop makes a new client with connections
        of its own. The forgotten clients are neither closed nor garbage-collected: closing
        one would write TLS close alerts to, and shut, the parent's sockets, and collecting
        one would make its loop-shutdown hook wake the parent's loop. A ``client`` you passed
        is yours to replace. The lock is new too (another thread of the parent may have held
        it at the fork)."""
        self._forked_away.append(self._per_loop)
        self._per_loop = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        """Send one attempt of ``request``, within its timeout."""
        outcome = await self._send_once(request)
        if isinstance(outcome, TransportError):
            raise outcome  # outside any handler: no library exception as its context
        return outcome

    def _timeout_of(self, request: HttpRequest) -> httpx.Timeout:
        if request.timeout is None and request.connect_timeout is None:
            return self._timeout
        total = request.timeout if request.timeout is not None else self.total_timeout
        connect = request.connect_timeout
        connect = min(connect if connect is not None else self.connect_timeout, total)
        return httpx.Timeout(total, connect=connect)

    async def _send_once(self, request: HttpRequest) -> HttpResponse | TransportError:
        timeout = self._timeout_of(request)
        remaining = timeout.read
        assert remaining is not None
        if remaining <= 0:
            return policy.timed_out(request)
        client = await self.client_for_running_loop()
        # Classified in the handler, raised later outside it: no library exception as
        # __context__ (its text may hold the full URL).
        try:
            return await asyncio.wait_for(self._exchange(client, request, timeout), remaining)
        except TransportError as ours:  # body too large
            return ours
        except (asyncio.TimeoutError, httpx.TimeoutException):
            return policy.timed_out(request)
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.NetworkError) as error:
            tls = tls_problem(request, error, trust_fix=TRUST_FIX)
            if tls is not None:
                return tls
            # Only idempotent GETs are ever retried, so a broken connection can count as one.
            return policy.connection_failed(request, "could not connect or the connection broke")
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError, ValueError):
            return policy.request_failed(request, "the exchange failed")

    async def _exchange(
        self, client: httpx.AsyncClient, request: HttpRequest, timeout: httpx.Timeout
    ) -> HttpResponse:
        async with client.stream(
            request.method,
            request.url,
            headers=list(request.headers),
            content=request.body,
            follow_redirects=False,
            timeout=timeout,
        ) as raw:
            declared = raw.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_body:
                raise policy.body_too_large(request, self._max_body)
            body = bytearray()
            async for chunk in raw.aiter_bytes():
                body += chunk
                if len(body) > self._max_body:
                    raise policy.body_too_large(request, self._max_body)
            return HttpResponse.build(raw.status_code, raw.headers.multi_items(), bytes(body))


__all__ = ["TRUST_FIX", "ClientFactory", "HttpxTransport"]
