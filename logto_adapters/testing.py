"""Serve a :class:`logto_core.testing.TestProvider` over real HTTP on a loopback address.

The test provider is a pure function from request to response; this module puts it behind an
HTTP/1.1 server so that the real clients (and their transports, timeouts and retries) can be
exercised end to end::

    with serve_provider(lambda url: TestProvider(url, clock=clock)) as server:
        provider = server.provider
        config = LogtoConfig(endpoint=server.url, appId=..., appSecret=...)

The provider's issuer contains its port, so pass a *factory* taking the base URL when the
port is chosen by the OS (``port=0``, the default); a ready-made provider works when it was
built for the URL the server binds.

The server is made for load: one asyncio event loop in a daemon thread serves every
connection (no thread per connection), HTTP/1.1 is parsed by ``h11`` (the parser ``httpx``
itself uses), connections are kept alive, the accept queue is deep, and ``TCP_NODELAY`` is set
so that kept-alive answers never wait for a delayed ACK. Fault delays (``Fault(delay=...)``)
are awaited, capped by ``max_delay``, without holding the provider lock, so a stalled answer
never stalls the others. The provider answers one request at a time (it is not thread-safe);
:attr:`ServedProvider.lock` is held while it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable
from typing import Literal, cast

import h11

from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.testing import ProviderReply, TestProvider

MAX_REQUEST_BODY = 1024 * 1024
"""Largest request body the server reads (the provider refuses much smaller ones anyway)."""

DEFAULT_MAX_DELAY = 30.0
"""Longest fault delay awaited, so that a test can never hang on a misconfigured fault."""

BACKLOG = 2048
"""Pending connections the kernel queues before the loop accepts them (load tests open
hundreds at once; Linux caps it at ``net.core.somaxconn``)."""

IDLE_TIMEOUT = 60.0
"""A kept-alive connection with no request for this long is closed."""

_READ_SIZE = 64 * 1024

ProviderSource = TestProvider | Callable[[str], TestProvider]


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise LogtoUsageError("the test provider only listens on loopback addresses")


class _Connection:
    """One client connection: read requests with h11, answer them one after the other."""

    def __init__(
        self,
        server: _Server,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._server = server
        self._reader = reader
        self._writer = writer
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)

    async def serve(self) -> None:
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while await self._one_exchange():
                self._h11.start_next_cycle()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, h11.ProtocolError):
            pass  # a client that drops or garbles its connection is routine in these tests
        finally:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    async def _next_event(self) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(self._reader.read(_READ_SIZE), IDLE_TIMEOUT)
            self._h11.receive_data(data)

    async def _one_exchange(self) -> bool:
        """Read one request and answer it; True when the connection may carry another."""
        event = await self._next_event()
        if not isinstance(event, h11.Request):
            return False  # the client closed the connection (ConnectionClosed) between requests
        body = bytearray()
        while True:
            part = await self._next_event()
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_REQUEST_BODY:
                    await self._write(
                        HttpResponse.build(413, {"content-type": "text/plain"}, b"too large")
                    )
                    return False
            elif isinstance(part, h11.EndOfMessage):
                break
            else:
                return False
        method = event.method.decode("ascii", "replace").upper()
        if method not in ("GET", "POST"):
            await self._write(HttpResponse.build(405, {"content-type": "text/plain"}, b""))
            return self._reusable()
        request = HttpRequest(
            method=cast(Literal["GET", "POST"], method),
            url=self._server.base_url + event.target.decode("ascii", "replace"),
            headers=tuple(
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in event.headers
            ),
            body=bytes(body) if body else None,
        )
        reply = self._server.respond(request)
        if reply.delay > 0:
            # Outside the provider lock: a stalled answer must not stall the others.
            await asyncio.sleep(min(reply.delay, self._server.max_delay))
        await self._write(reply.response)
        return self._reusable()

    def _reusable(self) -> bool:
        return self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE

    async def _write(self, response: HttpResponse) -> None:
        headers = [
            (name, value)
            for name, value in response.headers.items()
            if name not in ("content-length", "transfer-encoding", "connection")
        ]
        # 1xx, 204 and 304 answers carry no body (RFC 9110 section 6.4.1); h11 enforces it.
        bodiless = response.status < 200 or response.status in (204, 304)
        if not bodiless:
            headers.append(("content-length", str(len(response.body))))
        data = self._h11.send(h11.Response(status_code=response.status, headers=headers)) or b""
        if not bodiless and response.body:
            data += self._h11.send(h11.Data(data=response.body)) or b""
        data += self._h11.send(h11.EndOfMessage()) or b""
        self._writer.write(data)
        await self._writer.drain()


class _Server:
    """The provider, its lock, and the loop thread serving it."""

    def __init__(self, host: str, port: int, max_delay: float) -> None:
        self.max_delay = max_delay
        self.lock = threading.Lock()
        self.provider: TestProvider
        self.loop = asyncio.new_event_loop()
        self._connections: set[asyncio.Task[None]] = set()
        self.accepted = 0
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(BACKLOG)
            self._socket.setblocking(False)
        except BaseException:
            self._socket.close()
            self.loop.close()
            raise
        bound = cast(tuple[str, int], self._socket.getsockname()[:2])
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.port = bound[1]
        self.base_url = f"http://{shown}:{bound[1]}"
        self._thread = threading.Thread(target=self._run, name="logto-test-provider", daemon=True)
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None

    def respond(self, request: HttpRequest) -> ProviderReply:
        with self.lock:
            return self.provider.respond(request)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
            # Connections accepted while the server was closing: end them as asyncio.run would.
            while pending := asyncio.all_tasks(self.loop):
                for task in pending:
                    task.cancel()
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, sock=self._socket, backlog=BACKLOG)
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.accepted += 1
        self._connections.add(task)
        try:
            await _Connection(self, reader, writer).serve()
        except asyncio.CancelledError:
            # Only stop() cancels connections. Ending normally instead of as cancelled keeps
            # Python 3.11's stream callback (which calls task.exception()) from printing it.
            pass
        finally:
            self._connections.discard(task)

    def stop(self) -> None:
        if not self._thread.is_alive() and not self._ready.is_set():  # never started
            self._socket.close()
            self.loop.close()
            return
        stopping = self._stopping
        if stopping is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                self.loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout=10.0)
        self._socket.close()


class ServedProvider:
    """A running server: :attr:`url` (the Logto endpoint), :attr:`port`, :attr:`provider`.

    Stop it with :meth:`stop` (idempotent) or by leaving the ``with`` block.
    """

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._stopped = False

    @property
    def url(self) -> str:
        """``http://host:port``: use it as ``LogtoConfig.endpoint``."""
        return self._server.base_url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def provider(self) -> TestProvider:
        return self._server.provider

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted so far (benchmarks count how clients reuse them)."""
        return self._server.accepted

    @property
    def lock(self) -> threading.Lock:
        """Held while the provider answers; take it to change the provider safely."""
        return self._server.lock

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.stop()

    def __enter__(self) -> ServedProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_provider(
    provider: ProviderSource,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_delay: float = DEFAULT_MAX_DELAY,
) -> ServedProvider:
    """Start serving and return the handle (remember to :meth:`ServedProvider.stop` it)."""
    _check_loopback(host)
    server = _Server(host, port, max_delay)
    try:
        server.provider = (
            provider if isinstance(provider, TestProvider) else provider(server.base_url)
        )
        if server.provider.endpoint != server.base_url:
            raise LogtoUsageError(
                f"the provider was built for {server.provider.endpoint} but is served at "
                f"{server.base_url}; pass a factory taking the URL"
            )
    except BaseException:
        server.stop()
        raise
    server.start()
    return ServedProvider(server)


def serve_provider(
    provider: ProviderSource,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_delay: float = DEFAULT_MAX_DELAY,
) -> ServedProvider:
    """Serve ``provider`` (or ``provider(url)`` when it is a factory) in a daemon thread.

    The returned handle is also a context manager that stops the server on exit.
    """
    return start_provider(provider, host, port, max_delay=max_delay)


__all__ = ["ServedProvider", "serve_provider", "start_provider"]
