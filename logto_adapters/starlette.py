"""Logto sign-in for Starlette apps, on the async client (FastAPI's dependencies build on
this module: :mod:`logto_adapters.fastapi`).

One :class:`LogtoAuth` per app holds the app's :class:`~logto_adapters.aio.Logto` and where
sessions live (a :class:`~logto_adapters.web.SessionBackend`: tokens on the server by
default). Its :class:`LogtoMiddleware` gives every request its own
:class:`~logto_adapters.aio.LogtoSession` (:func:`logto_session`), over that request's
storage, and sets the storage's cookies on the response::

    auth = LogtoAuth(Logto(config), base_url="https://app.example.com")
    app = Starlette(
        routes=[*auth.routes(), Route("/", home)],
        middleware=[auth.middleware()],
    )

Then :meth:`LogtoAuth.routes` serve sign-in (``?next=`` kept for after it), the callback
(the session id replaced, then back to ``next``), sign-out and Logto's back-channel logout
(the server-side sessions it names signed out); :func:`require_sign_in` and
the :func:`authenticated` decorator guard pages (a redirect to sign-in) and APIs (401).
An API receiving Logto access tokens checks them with :func:`verify_bearer` (a
:class:`~logto_adapters.aio.LogtoResourceServer`, no session, no middleware).

Cookies are written when the response starts, from what the storage holds once the handler
is done: a refresh that rotated the refresh token during the handler reaches the browser.
A handler cancelled before it answers (the browser went away) sends nothing; the client
still finishes a refresh that reached Logto and keeps its result in the app's ``Logto``
(its coordinator), and the session's next request adopts it, never presenting the consumed
refresh token again, and stores it with its response. Several processes serving one app
need a coordinator they share for that (see ``Logto``'s ``coordinator`` option).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from logto_core.errors import LogtoError, LogtoUsageError, StorageError, TransportError
from logto_core.models import AccessTokenClaims
from logto_core.protocol.backchannel import MAX_BODY_BYTES
from logto_core.protocol.bearer import AccessTokenError
from logto_core.protocol.signin_url import SignInParams

from ._async.client import Logto, LogtoResourceServer, LogtoSession
from .cookie_session import SetCookie
from .web import (
    OpenedSession,
    ServerSessions,
    SessionBackend,
    WebRequest,
    external_origin,
    remember_return_to,
    take_return_to,
    wants_json,
)

SCOPE_KEY = "logto"
"""Where :class:`LogtoMiddleware` keeps a request's Logto state in the ASGI scope."""

logger = logging.getLogger("logto.starlette")

Endpoint = Callable[[Request], Awaitable[Response]]
"""A Starlette function endpoint."""


class SignInRequired(HTTPException):
    """The request needs a signed-in user. An ``HTTPException``, so Starlette and FastAPI
    answer it without any handler: ``303`` to the sign-in page (with ``next``) for a page,
    ``401`` for a request that wants JSON (:func:`~logto_adapters.web.wants_json`). Register
    an exception handler for this class to answer otherwise."""

    def __init__(self, sign_in_url: str, *, as_json: bool) -> None:
        if as_json:
            super().__init__(401, "Sign-in required")
        else:
            super().__init__(303, "Sign-in required", headers={"Location": sign_in_url})
        self.sign_in_url = sign_in_url
        """The sign-in route's path, with ``next`` naming the page asked for."""

    def response(self) -> Response:
        """The answer as a Starlette response (a JSON body ``{"detail": ...}``, as FastAPI
        gives an ``HTTPException``)."""
        if self.status_code == 401:
            return JSONResponse({"detail": self.detail}, status_code=401)
        return RedirectResponse(self.sign_in_url, status_code=303)


class LogtoAuth:
    """Sign-in for one app: its :class:`~logto_adapters.aio.Logto` (the app's connections,
    caches and single flight), where sessions live, and the routes' paths.

    :param logto: the app's client; close it when the app stops (``await logto.aclose()``,
        in a lifespan handler).
    :param sessions: a :class:`~logto_adapters.web.ServerSessions` (the default: an id in
        the cookie, tokens in memory; pass ``ServerSessions(secure=False)`` for plain-HTTP
        development, a shared store for several processes) or a
        :class:`~logto_adapters.web.CookieSessions`.
    :param base_url: the app's public origin (``https://app.example.com``), from which the
        callback and post-sign-out URLs are built: the safe choice. Without it, the
        request's own scheme and host are used, or with ``trust_forwarded`` the
        ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` a proxy sets (anyone can send them: trust
        them only behind a proxy that overwrites them).
    :param sign_in_path: where :meth:`routes` serve sign-in; the guard sends pages there.
    :param callback_path: the callback route; ``<origin><callback_path>`` is the redirect URI
        to register at Logto.
    :param sign_out_path: the sign-out route (GET or POST).
    :param after_sign_out_path: where Logto sends the browser after sign-out; register
        ``<origin><after_sign_out_path>`` as a post sign-out redirect URI.
    :param after_sign_in_path: where the callback goes when sign-in was not asked for a page.
    :param back_channel_logout_path: the back-channel logout receiver (POST, from Logto's
        server); ``<origin><back_channel_logout_path>`` is the application's Back-channel
        logout URI in the Logto Console. It ends the sessions of :class:`ServerSessions`
        (their registry); cookie sessions cannot be ended from the server.
    :param sign_in_options: ``signIn``'s keyword options for every sign-in
        (``{"firstScreen": "register"}``...).
    """

    def __init__(
        self,
        logto: Logto,
        *,
        sessions: SessionBackend | None = None,
        base_url: str | None = None,
        trust_forwarded: bool = False,
        sign_in_path: str = "/sign-in",
        callback_path: str = "/callback",
        sign_out_path: str = "/sign-out",
        after_sign_out_path: str = "/",
        after_sign_in_path: str = "/",
        back_channel_logout_path: str = "/back-channel-logout",
        sign_in_options: SignInParams | None = None,
    ) -> None:
        for name, path in (
            ("sign_in_path", sign_in_path),
            ("callback_path", callback_path),
            ("sign_out_path", sign_out_path),
            ("after_sign_out_path", after_sign_out_path),
            ("after_sign_in_path", after_sign_in_path),
            ("back_channel_logout_path", back_channel_logout_path),
        ):
            if not path.startswith("/") or path.startswith("//"):
                raise LogtoUsageError(
                    f"{name} must be a path such as /sign-in", code="usage.web_path"
                )
        if base_url is not None:
            # Checked now rather than at the first sign-in.
            external_origin(WebRequest("GET", "http://localhost/"), base_url=base_url)
        self.logto = logto
        self.sessions: SessionBackend = sessions if sessions is not None else ServerSessions()
        self.base_url = base_url
        self.trust_forwarded = trust_forwarded
        self.sign_in_path = sign_in_path
        self.callback_path = callback_path
        self.sign_out_path = sign_out_path
        self.after_sign_out_path = after_sign_out_path
        self.after_sign_in_path = after_sign_in_path
        self.back_channel_logout_path = back_channel_logout_path
        self.sign_in_options: SignInParams = sign_in_options.copy() if sign_in_options else {}

    # ---- wiring -------------------------------------------------------------------------

    def middleware(self) -> Middleware:
        """:class:`LogtoMiddleware` for ``Starlette(middleware=[...])`` (FastAPI:
        ``app.add_middleware(LogtoMiddleware, auth=auth)``)."""
        return Middleware(LogtoMiddleware, auth=self)

    def routes(self) -> list[BaseRoute]:
        """The sign-in, callback, sign-out and back-channel logout routes (left out of
        OpenAPI schemas)."""
        return [
            Route(self.sign_in_path, self.sign_in, methods=["GET"], include_in_schema=False),
            Route(self.callback_path, self.callback, methods=["GET"], include_in_schema=False),
            Route(
                self.sign_out_path, self.sign_out, methods=["GET", "POST"], include_in_schema=False
            ),
            Route(
                self.back_channel_logout_path,
                self.back_channel_logout,
                methods=["POST"],
                include_in_schema=False,
            ),
        ]

    # ---- where the app is ---------------------------------------------------------------

    def origin(self, conn: HTTPConnection) -> str:
        """The app's origin as the browser sees it (see ``base_url``)."""
        return external_origin(
            _state(conn).web, base_url=self.base_url, trust_forwarded=self.trust_forwarded
        )

    def callback_url(self, conn: HTTPConnection) -> str:
        """The redirect URI of a sign-in started by ``conn``."""
        return self.origin(conn) + _root(conn) + self.callback_path

    def sign_in_url(self, conn: HTTPConnection) -> str:
        """The sign-in route's path with ``next`` naming the page ``conn`` asked for."""
        target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
        return f"{_root(conn)}{self.sign_in_path}?next={quote(target, safe='/')}"

    # ---- the routes ---------------------------------------------------------------------

    async def sign_in(self, request: Request) -> Response:
        """Remember ``?next=`` (a path of this app only), then redirect to Logto."""
        state = _state(request)
        remember_return_to(state.opened.storage, request.query_params.get("next"))
        try:
            url = await state.session.signIn(
                redirectUri=self.callback_url(request), **self.sign_in_options
            )
        except LogtoError as error:
            return self._failure(request, error, "Sign-in could not start")
        return RedirectResponse(url, status_code=303)

    async def callback(self, request: Request) -> Response:
        """Finish the sign-in, then redirect to the page kept at sign-in."""
        state = _state(request)
        # A new session id before the code exchange, not after: a cancelled request's
        # exchange still completes and stores the tokens, and they must never land under an
        # id that was known (planted) before the sign-in.
        state.opened.rotate()
        query = request.url.query
        try:
            await state.session.handleSignInCallback(
                self.callback_url(request) + (f"?{query}" if query else "")
            )
        except LogtoError as error:
            return self._failure(request, error, "Sign-in failed")
        # ``next`` is the path as the browser saw it (a mount's prefix included); the
        # default is a path of this app.
        target = take_return_to(state.opened.storage, default="") or (
            _root(request) + self.after_sign_in_path
        )
        return RedirectResponse(target, status_code=303)

    async def sign_out(self, request: Request) -> Response:
        """Forget the session's tokens, then redirect to Logto's end-session page, which
        comes back to ``after_sign_out_path``."""
        state = _state(request)
        after = self.origin(request) + _root(request) + self.after_sign_out_path
        try:
            url = await state.session.signOut(postLogoutRedirectUri=after)
        except LogtoError as error:
            return self._failure(request, error, "Sign-out failed")
        return RedirectResponse(url, status_code=303)

    async def back_channel_logout(self, request: Request) -> Response:
        """Logto's back-channel logout (OpenID Connect Back-Channel Logout 1.0): verify the
        logout token and sign out the server-side sessions it names; 200, or 400 with the
        reason (logged by code). Needs no session cookie, and no CSRF token can come with
        it: the signed logout token is the request's only proof."""
        body = await _read_bounded(request, MAX_BODY_BYTES + 1)  # a longer body is refused
        lookup = self.sessions.registry if isinstance(self.sessions, ServerSessions) else None
        result = await self.logto.handleBackchannelLogout(
            request.method, request.headers.items(), body, lookup
        )
        if result.error is not None:
            logger.warning(
                "back-channel logout refused: %s (%s)",
                type(result.error).__name__,
                result.error.code,
            )
        elif lookup is None:
            logger.warning(
                "back-channel logout for a session kept in cookies: it cannot be ended here"
            )
        return Response(result.body, status_code=result.status, headers=dict(result.headers))

    def _failure(self, request: Request, error: LogtoError, title: str) -> Response:
        """A page naming the error's code: codes and classes carry no secret, and the
        message may quote provider text, so it stays in the logs' hands (by code only)."""
        status = 502 if isinstance(error, TransportError) else 400
        if isinstance(error, StorageError):
            status = 500
        logger.warning("%s: %s (%s)", title, type(error).__name__, error.code)
        body = (
            f"<!doctype html><title>{html.escape(title)}</title>"
            f"<h1>{html.escape(title)}</h1><p>Error code: <code>{html.escape(error.code)}"
            f'</code></p><p><a href="{html.escape(_root(request) + self.sign_in_path)}">'
            "Sign in again</a></p>"
        )
        return HTMLResponse(body, status_code=status)


class _RequestState:
    """One request's Logto state; the session backend is opened on first use (a request
    that never asks, such as a static file, costs nothing)."""

    __slots__ = ("_opened", "_session", "auth", "web")

    def __init__(self, auth: LogtoAuth, scope: Scope) -> None:
        self.auth = auth
        self.web = _web_request(scope)
        self._opened: OpenedSession | None = None
        self._session: LogtoSession | None = None

    @property
    def opened(self) -> OpenedSession:
        if self._opened is None:
            self._opened = self.auth.sessions.open(self.web)
        return self._opened

    @property
    def session(self) -> LogtoSession:
        if self._session is None:
            self._session = self.auth.logto.session(self.opened.storage)
        return self._session

    def cookies(self) -> list[SetCookie]:
        return [] if self._opened is None else self._opened.set_cookies()


def _web_request(scope: Scope) -> WebRequest:
    conn = HTTPConnection(scope)
    headers: dict[str, str] = {}
    for name, value in conn.headers.items():
        if name == "cookie":
            continue  # the cookies go apart, kept out of any repr
        if name == "authorization":
            # Only its scheme is ever read (wants_json): the credentials stay out.
            value = value.split(" ", 1)[0] + " [redacted]"
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return WebRequest(scope.get("method", "GET"), str(conn.url), headers, dict(conn.cookies))


async def _read_bounded(request: Request, limit: int) -> bytes:
    """At most ``limit`` bytes of the body: a stranger's huge POST is never held whole."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _root(conn: HTTPConnection) -> str:
    root: str = conn.scope.get("root_path", "")
    return root.rstrip("/")


def _state(conn: HTTPConnection) -> _RequestState:
    state = conn.scope.get(SCOPE_KEY)
    if not isinstance(state, _RequestState):
        raise LogtoUsageError(
            "this request did not go through LogtoMiddleware: add auth.middleware() to the "
            "app's middleware (FastAPI: app.add_middleware(LogtoMiddleware, auth=auth))",
            code="usage.web_middleware",
        )
    return state


class LogtoMiddleware:
    """The ASGI middleware that gives each HTTP (and WebSocket) request its Logto state and
    sets its session cookies when the response starts. Put it outside anything that reads
    the session."""

    def __init__(self, app: ASGIApp, auth: LogtoAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = _RequestState(self.auth, scope)
        scope[SCOPE_KEY] = state
        sent: list[SetCookie] | None = None

        async def send_with_cookies(message: Message) -> None:
            nonlocal sent
            if message["type"] in ("http.response.start", "websocket.accept") and sent is None:
                # Read now, once the handler has answered: what the storage holds then
                # includes any refresh token rotated while the handler ran.
                sent = state.cookies()
                if sent:
                    headers = list(message.get("headers", []))
                    headers.extend(
                        (b"set-cookie", cookie.header().encode("latin-1")) for cookie in sent
                    )
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookies)
        finally:
            if sent is None and state.cookies():
                # An error page made outside this middleware, or a cancelled request.
                logger.warning(
                    "the request ended without a response: its session cookies were not sent"
                )
            elif sent is not None and state.cookies() != sent:
                # A streaming body that used the session after its headers went out.
                logger.warning(
                    "the session changed after the response headers were sent: the browser "
                    "keeps its previous session cookies"
                )


def logto_session(conn: HTTPConnection) -> LogtoSession:
    """The request's :class:`~logto_adapters.aio.LogtoSession` (also a FastAPI dependency).
    Raises :class:`~logto_core.errors.LogtoUsageError` (``usage.web_middleware``) when
    :class:`LogtoMiddleware` is not installed."""
    return _state(conn).session


def logto_auth(conn: HTTPConnection) -> LogtoAuth:
    """The :class:`LogtoAuth` of the middleware that saw ``conn``."""
    return _state(conn).auth


async def require_sign_in(conn: HTTPConnection) -> LogtoSession:
    """The request's session if its user is signed in, else :class:`SignInRequired` (a
    redirect to sign-in for pages, 401 for APIs). A FastAPI dependency as it is."""
    state = _state(conn)
    if await state.session.isAuthenticatedAsync():
        return state.session
    raise SignInRequired(state.auth.sign_in_url(conn), as_json=wants_json(state.web))


class AccessTokenRefused(HTTPException):
    """An API request its bearer token does not allow: the status of the
    :class:`~logto_adapters.aio.AccessTokenError` (400, 401 or 403) with its
    ``WWW-Authenticate`` challenge (RFC 6750), or 503 with ``Retry-After`` when Logto could
    not be asked (the caller is not at fault). The error is :attr:`error` (and the
    ``__cause__``); the detail is its description, which never holds the token."""

    def __init__(self, error: LogtoError) -> None:
        if isinstance(error, AccessTokenError):
            super().__init__(
                error.status,
                error.error_description,
                headers={"WWW-Authenticate": error.www_authenticate()},
            )
        else:
            super().__init__(503, "Logto could not be asked", headers={"Retry-After": "10"})
        self.error = error


async def verify_bearer(
    conn: HTTPConnection,
    api: LogtoResourceServer,
    requiredScopes: Sequence[str] | str | None = None,
    organizationId: str | None = None,
    *,
    organizationRoles: Sequence[str] | str | None = None,
) -> AccessTokenClaims:
    """The claims of the request's bearer token once ``api`` accepts it for the request
    (:meth:`~logto_adapters.aio.LogtoResourceServer.verifyAuthorization`); else
    :class:`AccessTokenRefused`, which Starlette and FastAPI answer as it says. Needs no
    middleware."""
    try:
        return await api.verifyAuthorization(
            conn.headers.get("authorization"),
            requiredScopes,
            organizationId,
            organizationRoles=organizationRoles,
        )
    except AccessTokenError as refused:
        raise AccessTokenRefused(refused) from refused
    except LogtoError as trouble:  # Logto out of reach, or unusable: not the caller's fault
        logger.warning("access token not verified: %s (%s)", type(trouble).__name__, trouble.code)
        raise AccessTokenRefused(trouble) from trouble


def authenticated(endpoint: Endpoint) -> Endpoint:
    """Guard a Starlette endpoint: it runs only for a signed-in user (see
    :func:`require_sign_in`); read the session in it with :func:`logto_session`."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            await require_sign_in(request)
        except SignInRequired as refused:
            return refused.response()
        return await endpoint(request)

    return guarded


__all__ = [
    "SCOPE_KEY",
    "AccessTokenRefused",
    "LogtoAuth",
    "LogtoMiddleware",
    "SignInRequired",
    "authenticated",
    "logto_auth",
    "logto_session",
    "require_sign_in",
    "verify_bearer",
]
