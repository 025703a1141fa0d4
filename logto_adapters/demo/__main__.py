"""``make demo``: the tutorial's sample app signing a user in against the embedded provider.

    python -m logto_adapters.demo            # headless walk through a full sign-in, printed
    python -m logto_adapters.demo --serve    # keep provider and app running for a browser
    python -m logto_adapters.demo --client sync
    python -m logto_adapters.demo --serve --framework flask [--client sync|aio]
    python -m logto_adapters.demo --serve --framework django [--client sync|aio]

With ``LOGTO_ENDPOINT``, ``LOGTO_APP_ID`` and ``LOGTO_APP_SECRET`` set, the sample app talks to
that Logto instead (``--serve`` only: signing in there needs a person). With ``APP_BASE_URL``
set, a framework's sample app listens on that URL's host and port.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
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


def _start_app(host: str, port: int) -> tuple[BaseWSGIServer, _Deferred]:
    deferred = _Deferred()
    server = make_server(host, port, deferred, threaded=True, request_handler=_QuietHandler)
    return server, deferred


def _configured_address() -> tuple[str, int, str] | None:
    """Host, port and base URL from ``APP_BASE_URL``, when set."""
    configured = os.environ.get("APP_BASE_URL", "").rstrip("/")
    if not configured:
        return None
    parts = urlsplit(configured)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname or "127.0.0.1", port, configured


def _load_app(framework: str, client: str) -> WsgiApp:
    if framework == "tutorial":
        flavour = "sync" if client == "sync" else "async"
        module = importlib.import_module(f"logto_adapters.demo.tutorial_{flavour}")
        app: WsgiApp = module.app
        return app
    module = importlib.import_module(f"logto_adapters.demo.{framework}_app")
    flavour = "sync" if client == "sync" else "aio"
    make = module.make_app if framework == "django" else module.create_app
    made: WsgiApp = make(flavour)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m logto_adapters.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--serve", action="store_true", help="keep provider and app running")
    parser.add_argument("--client", choices=["async", "aio", "sync"], default="async")
    parser.add_argument(
        "--framework",
        choices=["tutorial", "flask", "django"],
        default="tutorial",
        help="the tutorial's app (default), or a framework integration's sample (with --serve)",
    )
    parser.add_argument(
        "--app-port",
        type=int,
        default=None,
        help="default: 5000 with --serve, else any (a framework's: APP_BASE_URL's when set)",
    )
    parser.add_argument(
        "--provider-port", type=int, default=None, help="default: 3001 with --serve, else any"
    )
    parser.add_argument("--user", default="alice", help="who signs in during the walk")
    args = parser.parse_args(argv)

    external = bool(os.environ.get("LOGTO_ENDPOINT"))
    if args.framework != "tutorial" and not (args.serve or external):
        parser.error("--framework needs --serve (the headless walk is the tutorial's)")
    # The tutorial's app keeps its ports; a framework's sample listens where APP_BASE_URL says.
    configured = _configured_address() if args.framework != "tutorial" else None
    if configured is not None:
        host, app_port, app_url = configured
        app_server, deferred = _start_app(host, app_port)
    else:
        app_port = args.app_port if args.app_port is not None else (5000 if args.serve else 0)
        app_server, deferred = _start_app("127.0.0.1", app_port)
        app_url = f"http://127.0.0.1:{app_server.port}"
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
    deferred.target = _load_app(args.framework, args.client)
    thread = threading.Thread(target=app_server.serve_forever, daemon=True)
    thread.start()
    try:
        if args.serve or external:
            print(f"Sample app ({args.framework}, {args.client} client): {app_url}/")
            print(f"Provider: {os.environ['LOGTO_ENDPOINT']}")
            if served is not None:
                print("Sign in as 'alice' or 'bob' (no password). Ctrl-C to stop.")
            threading.Event().wait()
            return 0
        assert served is not None
        return walk(app_url, served, client=args.client, user=args.user)
    except KeyboardInterrupt:
        return 0
    finally:
        app_server.shutdown()
        app_server.server_close()
        if served is not None:
            served.stop()


if __name__ == "__main__":
    sys.exit(main())
