"""A web app's back end for the back-channel logout interop test, run as its own process:

    python -m tests.interop.backchannel_receiver --client sync|aio --port N --endpoint URL

It is the web app of the interop tenant (``web-app``): one ``Logto`` and one
``SessionRegistry``, served with the standard library on ``127.0.0.1:N`` (prints
``LISTENING <port>`` once bound). Routes, all JSON:

- ``POST /sign-in``: a new registry session; ``{"session": id, "url": authorization URL}``;
- ``POST /callback`` ``{"session": id, "url": callback URL}``: the sign-in finished in that
  session, whose id is then rotated (as an integration does); ``{"session": new id}``;
- ``GET /session?id=...``: ``{"authenticated": bool, "sid": ..., "sub": ...}`` (never a token);
- ``POST /back-channel-logout``: the receiver, ``handleBackchannelLogout`` with the registry;
  its answer goes back to the provider as it is;
- ``GET /received``: what each back-channel logout delivery gave (status, error code, sessions
  ended, ``sid``, ``sub``), in order.

The asyncio client runs each request's coroutine in a fresh loop (``asyncio.run``), as Flask's
async views do. The test stops the process by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from logto_adapters import aio, sync
from logto_adapters.session_registry import SessionRegistry

from .tenant import BACKCHANNEL_PATH, REDIRECT, WEB_APP, WEB_APP_SECRET

MAX_BODY = 64 * 1024


def _run(value: Any) -> Any:
    return asyncio.run(value) if inspect.iscoroutine(value) else value


class App:
    def __init__(self, kind: str, endpoint: str) -> None:
        module: Any = sync if kind == "sync" else aio
        config = module.LogtoConfig(endpoint=endpoint, appId=WEB_APP, appSecret=WEB_APP_SECRET)
        self.logto = module.Logto(config, timeout=(2.0, 10.0))
        self.sessions = SessionRegistry()
        self.received: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def sign_in(self) -> dict[str, Any]:
        storage = self.sessions.create()
        url = _run(self.logto.session(storage).signIn(REDIRECT))
        return {"session": storage.id, "url": url}

    def callback(self, session_id: str, url: str) -> dict[str, Any]:
        storage = self.sessions.open(session_id)
        _run(self.logto.session(storage).handleSignInCallback(url))
        return {"session": self.sessions.rotate(storage.id)}

    def session(self, session_id: str) -> dict[str, Any]:
        storage = self.sessions.get(session_id)
        if storage is None:
            return {"authenticated": False, "known": False}
        session = self.logto.session(storage)
        if not session.isAuthenticated():
            return {"authenticated": False, "known": True}
        claims = session.getIdTokenClaims()
        return {"authenticated": True, "known": True, "sid": claims.sid, "sub": claims.sub}

    def back_channel_logout(self, method: str, headers: Any, body: bytes) -> Any:
        result = _run(self.logto.handleBackchannelLogout(method, headers, body, self.sessions))
        with self.lock:
            self.received.append(
                {
                    "status": result.status,
                    "code": result.error.code if result.error is not None else None,
                    "ended": result.ended,
                    "sid": result.sid,
                    "sub": result.sub,
                }
            )
        return result


def handler_for(app: App) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _json(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
            return self.rfile.read(length)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/session":
                session_id = parse_qs(url.query).get("id", [""])[0]
                return self._json(200, app.session(session_id))
            if url.path == "/received":
                with app.lock:
                    return self._json(200, list(app.received))
            return self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            body = self._body()
            if self.path == BACKCHANNEL_PATH:
                result = app.back_channel_logout("POST", self.headers.items(), body)
                self.send_response(result.status)
                for name, value in result.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(result.body)))
                self.end_headers()
                self.wfile.write(result.body)
                return None
            if self.path == "/sign-in":
                return self._json(200, app.sign_in())
            if self.path == "/callback":
                sent = json.loads(body)
                return self._json(200, app.callback(sent["session"], sent["url"]))
            return self._json(404, {"error": "not found"})

    return Handler


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["sync", "aio"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--endpoint", required=True)
    options = parser.parse_args(argv)
    app = App(options.client, options.endpoint)
    server = ThreadingHTTPServer(("127.0.0.1", options.port), handler_for(app))
    server.daemon_threads = True
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
