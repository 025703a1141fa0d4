"""Serve a :class:`logto_core.testing.TestProvider` over real HTTP on a loopback address.

The test provider is a pure function from request to response; this module puts it behind a
``ThreadingHTTPServer`` in a daemon thread, so that the real clients (and their transports,
timeouts and retries) can be exercised end to end::

    with serve_provider(lambda url: TestProvider(url, clock=clock)) as server:
        provider = server.provider
        config = LogtoConfig(endpoint=server.url, appId=..., appSecret=...)

The provider's issuer contains its port, so pass a *factory* taking the base URL when the
port is chosen by the OS (``port=0``, the default); a ready-made provider works when it was
built for the URL the server binds. Fault delays (``Fault(delay=...)``) are slept for real,
capped by ``max_delay``, without holding the provider lock. Requests are answered one at a
time by the provider (it is not thread-safe), concurrently by the server.
"""

from __future__ import annotations

import ipaddress
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, cast

from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.testing import ProviderReply, TestProvider

MAX_REQUEST_BODY = 1024 * 1024
"""Largest request body the server reads (the provider refuses much smaller ones anyway)."""

DEFAULT_MAX_DELAY = 30.0
"""Longest fault delay slept, so that a test can never hang on a misconfigured fault."""

ProviderSource = TestProvider | Callable[[str], TestProvider]


def _check_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise LogtoUsageError("the test provider only listens on loopback addresses")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Without it, Nagle's algorithm meets the client's delayed ACK on kept-alive connections
    # and every answer waits about 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def _answer(self, method: Literal["GET", "POST"]) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_REQUEST_BODY:
            self._write(HttpResponse.build(413, {"content-type": "text/plain"}, b"too large"))
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else None
        request = HttpRequest(
            method=method,
            url=self.server.base_url + self.path,
            headers=tuple((k.lower(), v) for k, v in self.headers.items()),
            body=body,
        )
        reply = self.server.respond(request)
        if reply.delay > 0:
            # Outside the provider lock: a stalled answer must not stall the others.
            time.sleep(min(reply.delay, self.server.max_delay))
        self._write(reply.response)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        try:
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence: tests read :attr:`TestProvider.log` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # bursts of connections from load tests (the default is 5)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops its connection is routine here (timeout and load tests);
        anything else is reported as usual."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    base_url: str
    provider: TestProvider
    max_delay: float
    lock: threading.Lock

    def respond(self, request: HttpRequest) -> ProviderReply:
        with self.lock:
            return self.provider.respond(request)


class ServedProvider:
    """A running server: :attr:`url` (the Logto endpoint), :attr:`port`, :attr:`provider`.

    Stop it with :meth:`stop` (idempotent) or by leaving the ``with`` block.
    """

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self._stopped = False

    @property
    def url(self) -> str:
        """``http://host:port``: use it as ``LogtoConfig.endpoint``."""
        return self._server.base_url

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def provider(self) -> TestProvider:
        return self._server.provider

    @property
    def lock(self) -> threading.Lock:
        """Held while the provider answers; take it to change the provider safely."""
        return self._server.lock

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)

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
    server = _Server((host, port), _Handler)
    bound = cast(tuple[str, int], server.server_address[:2])
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    server.base_url = f"http://{shown}:{bound[1]}"
    server.max_delay = max_delay
    server.lock = threading.Lock()
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
        server.server_close()
        raise
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    return ServedProvider(server, thread)


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
