"""Django in the test process: configured once (``settings.configure`` can run only once per
process), each test then choosing its ``LOGTO`` and URLconf with ``override_settings``; a
browser over Django's test ``Client``/``AsyncClient`` for both clients; a threaded WSGI
server on loopback for the runs through real HTTP."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import django
from django.conf import settings
from django.test import AsyncClient, Client
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

TEST_HOST = "testserver"  # the test Client's host
TEST_ORIGIN = f"http://{TEST_HOST}"


def configure_django() -> None:
    """Configure Django for the tests, once per process."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-tests-only",
        ALLOWED_HOSTS=[TEST_HOST, "127.0.0.1", "localhost", "app.example.com"],
        ROOT_URLCONF="logto_adapters.demo.django_app",
        MIDDLEWARE=["logto_adapters.django.LogtoMiddleware"],
        INSTALLED_APPS=["logto_adapters.django"],
        LOGTO={"ENDPOINT": "http://127.0.0.1:9", "APP_ID": "unset"},
        USE_TZ=True,
        LOGGING_CONFIG=None,  # leave the process's logging (and warnings) to the other tests
    )
    django.setup()


class Browser:
    """Django's test client as a browser: ``sync`` flavour through the WSGI-like handler,
    ``aio`` through the ASGI handler (``AsyncClient``, each request in its own loop, as an
    ASGI server with one loop per worker would not do, but as the client allows). Cookies
    deleted by a response (``Max-Age=0``) are forgotten, as a browser does."""

    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self.client: Any = AsyncClient() if flavour == "aio" else Client()

    def get(self, url: str, **headers: str) -> Any:
        result = self.client.get(url, headers=headers)
        response = asyncio.run(result) if inspect.iscoroutine(result) else result
        for name, morsel in response.cookies.items():
            if str(morsel["max-age"]) == "0":
                self.client.cookies.pop(name, None)
        return response

    @property
    def cookies(self) -> dict[str, str]:
        return {name: morsel.value for name, morsel in self.client.cookies.items()}


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """Tests read responses, not access logs."""


@contextmanager
def live_server(port: int) -> Iterator[BaseWSGIServer]:
    """Django's WSGI handler on ``127.0.0.1:port`` in a thread, for the duration."""
    from django.core.handlers.wsgi import WSGIHandler

    server = make_server("127.0.0.1", port, WSGIHandler(), threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
