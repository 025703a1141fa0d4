"""A blocking transport over ``requests``: sends one :class:`HttpRequest` at a time.

One ``requests.Session`` per transport (so per client) reuses connections. Redirects are
never followed, bodies are streamed and capped, every attempt has connect and read timeouts
and the whole exchange (retries and their waits included) a total deadline. Every failure is
a :class:`~logto_core.errors.TransportError` whose message names the method, host and path
only; the underlying exception is not chained (its text may contain the full URL).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
import urllib3

from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.http import MAX_BODY_BYTES, HttpRequest, HttpResponse
from logto_core.runtime import DEFAULT_RUNTIME, Runtime

CHUNK_SIZE = 64 * 1024


class RequestsTransport:
    """``transport(request) -> HttpResponse``, raising :class:`TransportError`.

    ``timeout`` is ``(connect, total)`` seconds (or one number for both). Only idempotent
    GETs (discovery, JWKS) are retried, as :mod:`logto_core.transport_policy` decides.
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        timeout: policy.Timeout = (5.0, 15.0),
        retry: policy.RetryPolicy | None = None,
        runtime: Runtime = DEFAULT_RUNTIME,
        max_body: int = MAX_BODY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.session = session if session is not None else requests.Session()
        self._owns_session = session is None
        if self._owns_session:
            # requests re-reads the proxy and CA-bundle environment variables on every request
            # (a tenth of a loopback exchange); for a session of ours they are read once per
            # origin instead (see _environment). A caller's session is used as configured.
            self.session.trust_env = False
        self._environments: dict[str, dict[str, Any]] = {}
        self.connect_timeout, self.total_timeout = policy.split_timeout(timeout)
        self.retry = retry if retry is not None else policy.RetryPolicy()
        self._runtime = runtime
        self._max_body = max_body
        self._sleep = sleep

    def close(self) -> None:
        """Close the session if this transport created it."""
        if self._owns_session:
            self.session.close()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        deadline = time.monotonic() + self.total_timeout
        attempt = 0
        while True:
            response: HttpResponse | None = None
            failure: TransportError | None = None
            try:
                response = self._send_once(request, deadline)
            except TransportError as error:
                failure = error
            wait = policy.retry_delay(
                request,
                attempt,
                self.retry,
                entropy=self._runtime.entropy,
                now=self._runtime.now(),
                remaining=deadline - time.monotonic(),
                response=response,
                failure=failure,
            )
            if wait is None:
                break
            self._sleep(wait)
            attempt += 1
        if failure is not None:
            raise failure
        assert response is not None
        refusal = policy.final_check(request, response, self._runtime.now())
        if refusal is not None:
            raise refusal
        return response

    def _send_once(self, request: HttpRequest, deadline: float) -> HttpResponse:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise policy.timed_out(request)
        # The exception is classified inside the handler but raised outside it, so that the
        # library's exception (its text may hold the full URL) is not kept as __context__.
        problem: TransportError | None = None
        try:
            return self._exchange(request, deadline, remaining)
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            problem = policy.timed_out(request)
        except requests.ConnectionError as error:
            problem = _connection_problem(request, error)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError):
            # A read cut short by the socket timeout can surface as a broken chunk: past the
            # deadline, it is a timeout whatever the library called it.
            if time.monotonic() >= deadline:
                problem = policy.timed_out(request)
            else:
                problem = policy.request_failed(request, "the exchange failed")
        raise problem

    def _environment(self, url: str) -> dict[str, Any]:
        """Proxies and certificate settings from the environment, as requests would find
        them for ``url``, read once per origin (for sessions this transport created)."""
        if not self._owns_session:
            return {}
        origin = "/".join(url.split("/", 3)[:3])
        settings = self._environments.get(origin)
        if settings is None:
            with requests.Session() as probe:  # trust_env=True: the environment's view
                found = probe.merge_environment_settings(origin + "/", {}, None, None, None)
            settings = {name: found[name] for name in ("proxies", "verify", "cert")}
            self._environments[origin] = settings
        return settings

    def _exchange(self, request: HttpRequest, deadline: float, remaining: float) -> HttpResponse:
        with self.session.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            data=request.body,
            allow_redirects=False,
            stream=True,
            timeout=(min(self.connect_timeout, remaining), remaining),
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
                if time.monotonic() > deadline:
                    raise policy.timed_out(request)
            return HttpResponse.build(raw.status_code, raw.headers.items(), bytes(body))


def _connection_problem(request: HttpRequest, error: requests.ConnectionError) -> TransportError:
    # requests reports read timeouts inside a stream as ConnectionError(ReadTimeoutError).
    reason = error.args[0] if error.args else None
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return policy.timed_out(request)
    return policy.connection_failed(request, "could not connect or the connection broke")


__all__ = ["RequestsTransport"]
