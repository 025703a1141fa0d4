"""Either transport behind one blocking ``send``, for tests that run on both."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx
import requests
import trustme

from logto_adapters.transport_httpx import HttpxTransport
from logto_adapters.transport_requests import RequestsTransport
from logto_core.http import HttpRequest, HttpResponse

TRANSPORTS = ["requests", "httpx"]


class Sender:
    """A transport of ``kind``. The httpx one runs every send on one event loop of its own,
    so that its sends share one client and its connection pool, as on a long-lived loop."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None
        self.transport: RequestsTransport | HttpxTransport
        if kind == "requests":
            self.transport = RequestsTransport(**options)
        else:
            self.loop = asyncio.new_event_loop()
            self.transport = HttpxTransport(**options)

    def send(self, request: HttpRequest) -> HttpResponse:
        if isinstance(self.transport, RequestsTransport):
            return self.transport(request)
        assert self.loop is not None
        return self.loop.run_until_complete(self.transport(request))

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
