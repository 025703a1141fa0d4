"""A blocking transport over ``requests``: sends one attempt of one :class:`HttpRequest`.

One ``requests.Session`` per transport (so per client) reuses connections. Redirects are
never followed (a 3xx is handed back as it is) and bodies are streamed and capped. Retries
are not the transport's: the core's :func:`logto_core.exchange.exchange` decides them, and
the waits between them, and hands each attempt its share of the exchange's deadline.

Deadlines. Each attempt ends within its ``request.timeout`` seconds (the time left of its
exchange's deadline; ``timeout=(connect, total)`` of the transport when the request carries
none) whatever the peer does (a trickled status line, headers, body or TLS handshake, a peer
that accepts and never answers, a body that never ends). requests' own timeouts only
bound each socket operation, so each attempt is also watched by
:mod:`logto_adapters.socket_deadline`, whose watchdog thread shuts the attempt's socket down
at its deadline; the request then fails with ``transport.timeout``. Each read is also
bounded by the time left, and each connect by ``min(connect, time left)`` (name resolution
is the system resolver's).

A session you pass (``RequestsTransport(session)``, ``LogtoClient(session=...)``) is used
with its own settings (proxies, ``verify``, ``cert``, headers, hooks, ``trust_env``); where
requests would let an environment variable override a setting made on the session
(``REQUESTS_CA_BUNDLE`` over ``session.verify``, ``HTTPS_PROXY`` over ``session.proxies``),
the session's setting wins. Its stock ``HTTPAdapter`` instances are replaced, at the same
prefixes, by :class:`~logto_adapters.socket_deadline.DeadlineAdapter` instances with the same
pool sizes and retries (the same behaviour, plus the deadline). Adapters of your own classes
are kept as they are: requests through them have per-read timeouts (and a deadline check
between body chunks) only, and their prefixes are listed in
:attr:`RequestsTransport.unwatched_prefixes`.

Errors. Every failure is a :class:`~logto_core.errors.TransportError` whose message names
the method, host and path only; the library's exception is never chained (its text may hold
the full URL). A refused certificate or a failed TLS handshake is ``transport.tls``: it
names the host and the fix, chains the TLS library's reason alone as a
:class:`~logto_core.transport_policy.TlsFailure`, is logged once at WARNING and is not
retried by the core (see :mod:`logto_adapters.transport_tls`).

Fork. :meth:`RequestsTransport.after_fork_in_child` makes a forked child forget the
parent's pooled connections without touching their sockets.
"""

from __future__ import annotations

import time
from typing import Any

import requests
import urllib3

from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.http import MAX_BODY_BYTES, HttpRequest, HttpResponse

from . import socket_deadline
from .transport_tls import tls_problem

CHUNK_SIZE = 64 * 1024
TRUST_FIX = (
    "pass the client a requests.Session whose verify is the path of that CA's bundle "
    "(LogtoClient(config, session=session)), or set REQUESTS_CA_BUNDLE"
)


class RequestsTransport:
    """``transport(request) -> HttpResponse``, raising :class:`TransportError`: one attempt.

    ``timeout`` is ``(connect, total)`` seconds (or one number for both) for a request that
    carries no timeout of its own (the clients' requests always carry one).
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        timeout: policy.Timeout = (5.0, 15.0),
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.session = session if session is not None else requests.Session()
        self._owns_session = session is None
        if self._owns_session:
            # requests re-reads the proxy and CA-bundle environment variables on every request
            # (a tenth of a loopback exchange); for a session of ours they are read once per
            # origin instead (see _environment). A caller's session is used as configured.
            self.session.trust_env = False
        self.unwatched_prefixes: tuple[str, ...] = tuple(socket_deadline.install(self.session))
        """Prefixes whose adapters (the caller's own classes) do not enforce the deadline."""
        self._environments: dict[str, dict[str, Any]] = {}
        self.connect_timeout, self.total_timeout = policy.split_timeout(timeout)
        self._max_body = max_body

    def close(self) -> None:
        """Close the session if this transport created it."""
        if self._owns_session:
            self.session.close()

    def after_fork_in_child(self) -> None:
        """In a forked child: forget every pooled connection (they are the parent's) without
        reading, writing, shutting down or closing their sockets for the parent, so that the
        next request opens a connection of its own. Applies to every ``HTTPAdapter`` of the
        session, the caller's too. (The deadline watchdog is renewed in the child by
        :mod:`~logto_adapters.socket_deadline` itself.)"""
        socket_deadline.forget_pools(self.session)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        total = request.timeout if request.timeout is not None else self.total_timeout
        connect = request.connect_timeout
        connect = min(connect if connect is not None else self.connect_timeout, total)
        outcome = self._send_once(request, time.monotonic() + total, connect)
        if isinstance(outcome, TransportError):
            raise outcome  # outside any handler: no library exception as its context
        return outcome

    def _send_once(
        self, request: HttpRequest, deadline: float, connect: float
    ) -> HttpResponse | TransportError:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return policy.timed_out(request)
        exchange = socket_deadline.begin(deadline)
        try:
            outcome = self._attempt(request, deadline, min(connect, remaining), exchange)
        finally:
            expired = socket_deadline.end(exchange)
        # Past the deadline the socket was cut: whatever the library made of that (an error,
        # or a body read to the cut and taken as complete), the exchange timed out.
        return policy.timed_out(request) if expired else outcome

    def _attempt(
        self,
        request: HttpRequest,
        deadline: float,
        connect: float,
        exchange: socket_deadline.Exchange,
    ) -> HttpResponse | TransportError:
        # The library's exception is classified inside the handler but the error is raised
        # later, outside it, so that the exception (its text may hold the full URL) is not
        # kept as __context__.
        try:
            return self._exchange(request, deadline, connect)
        except TransportError as ours:  # body too large, or past the deadline between chunks
            return ours
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            return policy.timed_out(request)
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            OSError,
            ValueError,
        ) as error:
            # A read cut at the deadline (by the watchdog, or by the socket timeout) surfaces
            # as a broken connection or chunk: past the deadline, it is a timeout.
            if exchange.expired or time.monotonic() >= deadline:
                return policy.timed_out(request)
            tls = tls_problem(request, error, trust_fix=TRUST_FIX)
            if tls is not None:
                return tls
            if isinstance(error, requests.ConnectionError):
                return _connection_problem(request, error)
            return policy.request_failed(request, "the exchange failed")

    def _environment(self, url: str) -> dict[str, Any]:
        """Proxies and certificate settings from the environment, as requests would find
        them for ``url``, read once per origin (for sessions this transport created); for a
        caller's session, the settings made on it, so that they win over the environment."""
        if not self._owns_session:
            return _explicit_settings(self.session)
        origin = "/".join(url.split("/", 3)[:3])
        settings = self._environments.get(origin)
        if settings is None:
            with requests.Session() as probe:  # trust_env=True: the environment's view
                found = probe.merge_environment_settings(origin + "/", {}, None, None, None)
            settings = {name: found[name] for name in ("proxies", "verify", "cert")}
            self._environments[origin] = settings
        return settings

    def _exchange(self, request: HttpRequest, deadline: float, connect: float) -> HttpResponse:
        remaining = max(deadline - time.monotonic(), 0.001)
        with self.session.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            data=request.body,
            allow_redirects=False,
            stream=True,
            timeout=(min(connect, remaining), remaining),
            **self._environment(request.url),
        ) as raw:
            declared = raw.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_body:
                raise policy.body_too_large(request, self._max_body)
            body = bytearray()
            for chunk in raw.iter_content(CHUNK_SIZE):
                body += chunk
                if len(body) > self._max_body:
                    raise policy.body_too_large(request, self._max_body)
                # For an adapter without the watchdog (see unwatched_prefixes), at least
                # between chunks.
                if time.monotonic() > deadline:
                    raise policy.timed_out(request)
            return HttpResponse.build(raw.status_code, raw.headers.items(), bytes(body))


def _explicit_settings(session: requests.Session) -> dict[str, Any]:
    """A caller's ``session.verify`` and ``session.proxies``, passed with each request:
    with ``trust_env``, requests would otherwise let REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
    replace the CA bundle (or ``verify=False``) set on the session (psf/requests#3829), and
    HTTP(S)_PROXY a proxy set on it: not what a caller who set them means, nor what the TLS
    error tells them to do."""
    settings: dict[str, Any] = {}
    if session.verify is not True:
        settings["verify"] = session.verify
    if session.proxies:
        settings["proxies"] = dict(session.proxies)
    return settings


def _connection_problem(request: HttpRequest, error: requests.ConnectionError) -> TransportError:
    # requests reports read timeouts inside a stream as ConnectionError(ReadTimeoutError).
    reason = error.args[0] if error.args else None
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return policy.timed_out(request)
    return policy.connection_failed(request, "could not connect or the connection broke")


__all__ = ["TRUST_FIX", "RequestsTransport"]
