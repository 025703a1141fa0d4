"""The FastAPI sample app of :mod:`logto_adapters.fastapi`, configured from the environment
(``settings.py``).

    python -m logto_adapters.demo --serve --framework fastapi
    uvicorn --factory logto_adapters.demo.fastapi_app:create_app   # with LOGTO_* set

Routes: ``/`` (the user's ID-token claims as JSON, or a sign-in link), ``/sign-in``,
``/callback``, ``/sign-out``, ``/protected`` (signed-in users only: their ``sub`` and the
claims of their access token for the first API resource of ``LOGTO_RESOURCES``),
``/back-channel-logout`` (Logto's POST when a session ended there: the session it names is
signed out here), and ``/api/hello``, that API itself: ``{"sub": ...}`` for a bearer token
of it with the ``read`` scope, 401 / 403 with ``WWW-Authenticate`` otherwise.
"""

# No ``from __future__ import annotations``: FastAPI reads the routes' annotations at run
# time, and the API route's names a dependency local to create_app.
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse
from typing_extensions import Unpack

from logto_adapters.aio import (
    AccessTokenClaims,
    AsyncOptions,
    Logto,
    LogtoConfig,
    LogtoResourceServer,
    UserInfoScope,
)
from logto_adapters.fastapi import (
    LogtoAuth,
    LogtoMiddleware,
    LogtoSessionDep,
    RequireAccessToken,
    SignedInSession,
    logto_router,
)
from logto_adapters.web import ServerSessions, SessionBackend

from .settings import Settings, from_environment

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def create_app(
    settings: Settings | None = None,
    *,
    sessions: SessionBackend | None = None,
    **options: Unpack[AsyncOptions],
) -> FastAPI:
    """The sample app for ``settings`` (default: the environment's). ``sessions`` and the
    :class:`~logto_adapters.aio.Logto` ``options`` are for tests."""
    settings = settings or from_environment()
    logto = Logto(
        LogtoConfig(
            endpoint=settings.endpoint,
            appId=settings.app_id,
            appSecret=settings.app_secret,
            scopes=[UserInfoScope.email, UserInfoScope.organizations, *settings.scopes],
            resources=settings.resources,
        ),
        **options,
    )
    if sessions is None:
        # Cookies marked Secure are only sent over HTTPS: plain-HTTP development needs them
        # unmarked.
        sessions = ServerSessions(secure=settings.base_url.startswith("https://"))
    auth = LogtoAuth(logto, sessions=sessions, base_url=settings.base_url)
    api = settings.resources[0] if settings.resources else None
    # The app's own API (in a real deployment, often another service): one resource server
    # per API, made once.
    resource_server = (
        LogtoResourceServer(settings.endpoint, api, **options) if api is not None else None
    )

    async def no_api() -> AccessTokenClaims:
        raise HTTPException(404, "no API resource configured (LOGTO_RESOURCES)")

    read_token = RequireAccessToken(resource_server, ["read"]) if resource_server else no_api

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await logto.aclose()  # waits (bounded) for sign-out revocations still running
        if resource_server is not None:
            await resource_server.aclose()

    app = FastAPI(title="Logto FastAPI sample", lifespan=lifespan)
    app.state.logto_auth = auth
    app.add_middleware(LogtoMiddleware, auth=auth)
    app.include_router(logto_router(auth))

    @app.get("/", response_model=None)
    async def home(session: LogtoSessionDep) -> JSONResponse | HTMLResponse:
        if not await session.isAuthenticatedAsync():
            return HTMLResponse("Not signed in. <a href='/sign-in'>Sign in</a>")
        claims = session.getIdTokenClaims()
        return JSONResponse(claims.model_dump(mode="json", exclude_unset=True))

    @app.get("/protected")
    async def protected(session: SignedInSession) -> dict[str, Any]:
        page: dict[str, Any] = {"sub": session.getIdTokenClaims().sub}
        if api is not None:
            token = await session.getAccessTokenClaims(api)
            page["api"] = token.model_dump(mode="json", exclude_unset=True)
        return page

    @app.get("/api/hello")
    async def hello(
        claims: Annotated[AccessTokenClaims, Depends(read_token)],
    ) -> dict[str, str]:
        return {"sub": claims.sub}

    return app


class AppServer:
    """The sample app served by uvicorn on a thread of its own, for ``python -m
    logto_adapters.demo``: the socket is bound at once (the port is known before the app
    is made, as the embedded provider needs it), the app made and served at :meth:`start`,
    and :meth:`shutdown` stops it (connections closed, lifespan ended)."""

    def __init__(self, host: str, port: int, app: FastAPI | None = None) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family)
        self.port: int = self.socket.getsockname()[1]
        self._app = app  # None: the sample app, made from the environment at start
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn  # the fastapi extra's server, needed only here

        config = uvicorn.Config(
            self._app or create_app(),
            log_level="warning",
            access_log=False,
            # The app decides alone whether to trust X-Forwarded-* (LogtoAuth's
            # trust_forwarded); uvicorn would otherwise rewrite the scheme from them.
            proxy_headers=False,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the FastAPI sample app did not start")
            time.sleep(0.05)

    def shutdown(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=STOP_TIMEOUT)
        self.socket.close()
