"""Either transport behind one blocking ``send``, for tests that run on both: each send is
one exchange as the clients make it (the core's retry loop, its waits and its deadline, over
single attempts of the transport)."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx
import requests
import trustme

from logto_adapters._common import DEFAULT_TIMEOUT, exchange_policy, sleep
from logto_adapters.transport_httpx import HttpxTransport
from logto_adapters.transport_requests import RequestsTransport
from logto_core.errors import TransportError
from logto_core.exchange import exchange
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.sleep import Sleep
from logto_core.transport_policy import Timeout

TRANSPORTS = ["requests", "httpx"]


class Sender:
    """A transport of ``kind``. The httpx one runs every send on one event loop of its own,
    so that its sends share one client and its connection pool, as on a long-lived loop.
    ``timeout`` and ``max_retries`` are the exchange's, as a client's."""

    def __init__(
        self,
        kind: str,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        runtime: Runtime = DEFAULT_RUNTIME,
        **options: Any,  # the transport's
    ) -> None:
        self.kind = kind
        self.policy = exchange_policy(timeout, max_retries)
        self.runtime = runtime
        options["timeout"] = timeout
        self.loop: asyncio.AbstractEventLoop | None = None
        self.transport: RequestsTransport | HttpxTransport
        if kind == "requests":
            self.transport = RequestsTransport(**options)
        else:
            self.loop = asyncio.new_event_loop()
            self.transport = HttpxTransport(**options)

    def send(self, request: HttpRequest) -> HttpResponse:
        """One exchange, driven by hand (no driver: nothing is logged but the transport's)."""
        steps = exchange(request, self.policy, runtime=self.runtime)
        transport = self.transport
        try:
            effect = next(steps)
            while True:
                if isinstance(effect, Sleep):
                    sleep(effect, self.runtime)
                    effect = steps.send(None)
                    continue
                try:
                    if isinstance(transport, RequestsTransport):
                        response = transport(effect)
                    else:
                        assert self.loop is not None
                        response = self.loop.run_until_complete(transport(effect))
                except TransportError as error:
                    failure = error
                else:
                    effect = steps.send(response)
                    continue
                effect = steps.throw(failure)
        except StopIteration as stop:
            answer: HttpResponse = stop.value
            return answer

    def close(self) -> None:
        if isinstance(self.transport, RequestsTransport):
            self.transport.close()
            return
        assert self.loop is not None
        self.loop.run_until_complete(self.transport.aclose())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def trusting(kind: str, ca: trustme.CA, path: str) -> dict[str, Any]:
    """Options that make a transport of ``kind`` trust ``ca`` (its PEM file at ``path``),
    the way the TLS errors tell users to."""
    if kind == "requests":
        session = requests.Session()
        session.verify = path
        return {"session": session}
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return {"client_factory": lambda: httpx.AsyncClient(verify=context)}
