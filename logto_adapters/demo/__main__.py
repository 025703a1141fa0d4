"""``make demo``: the tutorial's sample app signing a user in against the embedded provider.

    python -m logto_adapters.demo            # headless walk through a full sign-in, printed
    python -m logto_adapters.demo --serve    # keep provider and app running for a browser
    python -m logto_adapters.demo --client sync
    python -m logto_adapters.demo --serve --framework flask [--client sync|aio]
    python -m logto_adapters.demo --serve --framework django [--client sync|aio]
    python -m logto_adapters.demo --serve --framework fastapi   # the asyncio client

With ``LOGTO_ENDPOINT``, ``LOGTO_APP_ID`` and ``LOGTO_APP_SECRET`` set, the sample app talks to
that Logto instead (``--serve`` only: signing in there needs a person). With ``APP_BASE_URL``
set, a framework's sample app listens on that URL's host and port.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from logto_adapters.testing import ServedProvider, serve_provider

from .walk import walk
from .world import build_tenant

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Deferred:
    """A WSGI app whose target is set after the server is bound (the app's settings need
    the server's port, which the OS picks)."""

    target: WsgiApp | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        assert self.target is not None
        return self.target(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        """The walk prints its own account of each request."""


def _wsgi_app(framework: str, client: str) -> WsgiApp:
    """The WSGI app of ``framework``, imported when it starts (its settings are read from
    the environment then)."""
    if framework == "tutorial":
        module = importlib.import_module(f"logto_adapters.demo.tutorial_{client}")
        app: WsgiApp = module.app
        return app
    flavour = "sync" if client == "sync" else "aio"
    module = importlib.import_module(f"logto_adapters.demo.{framework}_app")
    make = module.make_app if framework == "django" else module.create_app
    made: WsgiApp = make(flavour)
    return made


class _WsgiServer:
    """A WSGI sample app (the tutorial's, Flask's, Django's) on werkzeug: bound at once, the
    app loaded at :meth:`start`."""

    def __init__(self, host: str, port: int, framework: str, client: str) -> None:
        self._deferred = _Deferred()
        self._framework = framework
        self._client = client
        self._server: BaseWSGIServer = make_server(
            host, port, self._deferred, threaded=True, request_handler=_QuietHandler
        )
        self.port: int = self._server.port

    def start(self) -> None:
        self._deferred.target = _wsgi_app(self._framework, self._client)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _AppServer(Protocol):
    port: int

    def start(self) -> None: ...

    def shutdown(self) -> None: ...


def _app_server(framework: str, client: str, host: str, port: int) -> _AppServer:
    if framework == "fastapi":
        from .fastapi_app import AppServer

        return AppServer(host, port)
    return _WsgiServer(host, port, framework, client)


def _listen_on(base_url: str | None, port: int | None, serve: bool) -> tuple[str, int]:
    """Where the app listens: ``--app-port``, else ``APP_BASE_URL``'s host and port, else
    127.0.0.1 on 5000 (``--serve``) or any free port."""
    if base_url:
        parts = urlsplit(base_url)
        default = 443 if parts.scheme == "https" else 80
        return parts.hostname or "127.0.0.1", port if port is not None else parts.port or default
    return "127.0.0.1", port if port is not None else (5000 if serve else 0)


def _stop_on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt  # the servers are stopped in main's finally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m logto_adapters.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--serve", action="store_true", help="keep provider and app running")
    parser.add_argument("--client", choices=["async", "aio", "sync"], default="async")
    parser.add_argument(
        "--framework",
        choices=["tutorial", "flask", "django", "fastapi"],
        default="tutorial",
        help="the tutorial's Flask app (default), or a framework integration's sample (--serve)",
    )
    parser.add_argument(
        "--app-port", type=int, default=None, help="default: 5000 with --serve, else any"
    )
    parser.add_argument(
        "--provider-port", type=int, default=None, help="default: 3001 with --serve, else any"
    )
    parser.add_argument("--user", default="alice", help="who signs in during the walk")
    args = parser.parse_args(argv)
    args.client = "async" if args.client == "aio" else args.client
    external = bool(os.environ.get("LOGTO_ENDPOINT"))
    if args.framework == "fastapi" and args.client != "async":
        parser.error("--framework fastapi runs the async client")
    if args.framework != "tutorial" and not (args.serve or external):
        parser.error("--framework needs --serve (the headless walk is the tutorial's)")

    given_url = os.environ.get("APP_BASE_URL") if args.framework != "tutorial" else None
    host, app_port = _listen_on(given_url, args.app_port, args.serve)
    app_server = _app_server(args.framework, args.client, host, app_port)
    app_url = given_url.rstrip("/") if given_url else f"http://127.0.0.1:{app_server.port}"
    os.environ["APP_BASE_URL"] = app_url

    served: ServedProvider | None = None
    if not external:
        provider_port = (
            args.provider_port if args.provider_port is not None else (3001 if args.serve else 0)
        )
        tenant_box: list[Any] = []

        def factory(url: str) -> Any:
            tenant_box.append(build_tenant(url, app_url))
            return tenant_box[0].provider

        served = serve_provider(factory, port=provider_port)
        tenant = tenant_box[0]
        os.environ.update(
            LOGTO_ENDPOINT=served.url,
            LOGTO_APP_ID=tenant.app_id,
            LOGTO_APP_SECRET=tenant.app_secret,
            LOGTO_RESOURCES=" ".join(tenant.resources),
            LOGTO_SCOPES=" ".join(tenant.scopes),
            LOGTO_ORGANIZATION_ID=tenant.organization_id,
        )
    try:
        app_server.start()
        if args.serve or external:
            signal.signal(signal.SIGTERM, _stop_on_sigterm)
            print(f"Sample app ({args.framework}, {args.client} client): {app_url}/", flush=True)
            print(f"Provider: {os.environ['LOGTO_ENDPOINT']}", flush=True)
            if served is not None:
                print("Sign in as 'alice' or 'bob' (no password). Ctrl-C to stop.", flush=True)
            threading.Event().wait()
            return 0
        assert served is not None
        return walk(app_url, served, client=args.client, user=args.user)
    except KeyboardInterrupt:
        return 0
    finally:
        app_server.shutdown()
        if served is not None:
            served.stop()


if __name__ == "__main__":
    sys.exit(main())
