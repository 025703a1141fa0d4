"""Logto sign-in for Flask: one object per app, a session per request, ready routes, a guard.

::

    from flask import Flask
    from logto_adapters.flask import LogtoFlask
    from logto_adapters.sync import LogtoConfig

    app = Flask(__name__)
    logto = LogtoFlask(app, LogtoConfig(endpoint=..., appId=..., appSecret=...),
                       base_url="https://app.example.com")

    @app.route("/profile")
    @logto.login_required
    def profile():
        return logto.session.getIdTokenClaims().model_dump()

:class:`LogtoFlask` serves plain (sync) views with the ``requests`` client
(:mod:`logto_adapters.sync`); :class:`AsyncLogtoFlask` serves ``async def`` views with the
``httpx`` client (:mod:`logto_adapters.aio`; Flask runs each async view on an event loop of
its own, which that client supports). Both

* keep one :class:`~logto_adapters.sync.Logto` (or ``aio.Logto``) for the app, so that every
  request shares its connections, provider knowledge and the single flight that makes
  concurrent requests of one user send one refresh;
* open the request's session storage from its cookies on first use of :attr:`session` (by
  default :class:`~logto_adapters.web.ServerSessions`: tokens on the server, a random id in
  the cookie) and set the cookies it asks for on the response;
* register the blueprint ``logto`` with ``/sign-in`` (``?next=`` kept when it is a path of
  this app), ``/callback`` (the session id replaced, then back to ``next``; an error gives a
  400 page naming only the error code), ``/sign-out`` (through Logto's end-session page,
  back to the home page) and ``/back-channel-logout`` (Logto's POST when a session ended
  elsewhere: the server-side sessions it names are signed out);
* build the callback URL from ``base_url`` when given, else from the request, reading
  ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` only with ``trust_forwarded=True``;
* offer :meth:`~LogtoFlask.login_required` for sync and async views alike (a redirect to the
  sign-in for pages, a 401 JSON answer for APIs: :func:`~logto_adapters.web.wants_json`), and
  answer a :class:`~logto_core.errors.SignInRequiredError` raised by a view (the grant died)
  the same way.

An API that receives Logto access tokens guards its views with :func:`access_token_required`
(a :class:`~logto_adapters.sync.LogtoResourceServer` or its asyncio twin verifies the bearer
token; a refusal is answered 400, 401 or 403 with RFC 6750's ``WWW-Authenticate``), and reads
the verified claims with :func:`access_token_claims`. It needs no sign-in integration.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Generic, TypeVar, cast

from flask import Blueprint, Flask, g, jsonify, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from logto_core.config import LogtoConfig
from logto_core.errors import (
    CallbackError,
    LogtoError,
    LogtoUsageError,
    ProviderError,
    SignInRequiredError,
    StorageError,
    TransportError,
)
from logto_core.models import AccessTokenClaims
from logto_core.protocol.backchannel import MAX_BODY_BYTES, BackchannelLogoutResult
from logto_core.protocol.bearer import AccessTokenError
from logto_core.protocol.signin_url import SignInParams

from . import aio, sync
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

logger = logging.getLogger("logto.flask")

BLUEPRINT = "logto"
"""The blueprint's name: ``url_for("logto.sign_in", next=...)``, ``"logto.callback"``,
``"logto.sign_out"``, ``"logto.back_channel_logout"``."""

EXTENSION = "logto"
"""The key of the integration in ``app.extensions``."""

F = TypeVar("F", bound=Callable[..., Any])
LogtoT = TypeVar("LogtoT", sync.Logto, aio.Logto)
SessionT = TypeVar("SessionT", sync.LogtoSession, aio.LogtoSession)

CallbackErrorHandler = Callable[[LogtoError], ResponseReturnValue]
"""What answers a failed sign-in callback (``on_callback_error=``) instead of the 400 page."""


@dataclass
class _RequestState(Generic[SessionT]):
    opened: OpenedSession
    session: SessionT


class _LogtoFlaskBase(Generic[LogtoT, SessionT]):
    """What both flavours share; the routes' views are each flavour's."""

    logto: LogtoT
    """The app's ``Logto``: close it when the app stops (``close()``, or ``aclose()``)."""

    def __init__(
        self,
        app: Flask | None,
        config: LogtoConfig | None,
        logto: LogtoT | None,
        *,
        sessions: SessionBackend | None,
        base_url: str | None,
        trust_forwarded: bool,
        url_prefix: str | None,
        home: str | None,
        sign_in_options: SignInParams | None,
        on_callback_error: CallbackErrorHandler | None,
        logout_sessions: sync.SessionLookup | None,
    ) -> None:
        if (config is None) == (logto is None):
            raise LogtoUsageError(
                "give the Flask integration a LogtoConfig or a Logto: exactly one of the two",
                code="usage.flask_setup",
            )
        self.logto = logto if logto is not None else self._make_logto(cast(LogtoConfig, config))
        if base_url is not None:  # a wrong one fails now, not at the first sign-in
            external_origin(WebRequest("GET", "http://unused/"), base_url=base_url)
        self.base_url = base_url
        self.trust_forwarded = trust_forwarded
        # Secure cookies, except when the configured origin is plain http (development):
        # a browser never sends a Secure cookie back over http.
        self.sessions: SessionBackend = (
            sessions
            if sessions is not None
            else ServerSessions(secure=not (base_url or "").lower().startswith("http:"))
        )
        self.url_prefix = url_prefix
        self.home = home
        self.sign_in_options: SignInParams = sign_in_options if sign_in_options is not None else {}
        self.on_callback_error = on_callback_error
        # Back-channel logout ends the sessions it can find: server-side ones.
        if logout_sessions is None and isinstance(self.sessions, ServerSessions):
            logout_sessions = self.sessions.registry
        self.logout_sessions = logout_sessions
        self._g_key = f"_logto_flask_{id(self):x}"
        self._warned_insecure = False
        self._warned_no_lookup = False
        self.blueprint = Blueprint(BLUEPRINT, __name__)
        self.blueprint.add_url_rule("/sign-in", "sign_in", self._sign_in_view)
        self.blueprint.add_url_rule("/callback", "callback", self._callback_view)
        self.blueprint.add_url_rule(
            "/sign-out", "sign_out", self._sign_out_view, methods=["GET", "POST"]
        )
        self.blueprint.add_url_rule(
            "/back-channel-logout",
            "back_channel_logout",
            self._back_channel_logout_view,
            methods=["POST"],
        )
        if app is not None:
            self.init_app(app)

    # ---- set-up -------------------------------------------------------------------------

    def _make_logto(self, config: LogtoConfig) -> LogtoT:
        raise NotImplementedError

    def _new_session(self, opened: OpenedSession) -> SessionT:
        raise NotImplementedError

    def _sign_in_view(self) -> ResponseReturnValue:
        raise NotImplementedError

    def _callback_view(self) -> ResponseReturnValue:
        raise NotImplementedError

    def _sign_out_view(self) -> ResponseReturnValue:
        raise NotImplementedError

    def _back_channel_logout_view(self) -> ResponseReturnValue:
        raise NotImplementedError

    def init_app(self, app: Flask) -> None:
        """Register the routes (blueprint ``logto`` under ``url_prefix``), the hook that sets
        the session's cookies on every response, and the answer to
        :class:`SignInRequiredError`. One integration per app."""
        if EXTENSION in app.extensions:
            raise LogtoUsageError(
                "this Flask app already has a Logto integration", code="usage.flask_setup"
            )
        app.extensions[EXTENSION] = self
        app.register_blueprint(self.blueprint, url_prefix=self.url_prefix)
        app.after_request(self._set_cookies)
        app.register_error_handler(SignInRequiredError, self._sign_in_required)

    # ---- the request's session ----------------------------------------------------------

    @property
    def session(self) -> SessionT:
        """The current request's Logto session (opened from its cookies at first use; the
        same object for the rest of the request)."""
        return self._state().session

    @property
    def opened(self) -> OpenedSession:
        """The current request's session storage as the backend opened it (``rotate()``,
        ``set_cookies()``), for routes of your own."""
        return self._state().opened

    def _state(self) -> _RequestState[SessionT]:
        state: _RequestState[SessionT] | None = g.get(self._g_key)
        if state is None:
            opened = self.sessions.open(web_request())
            state = _RequestState(opened, self._new_session(opened))
            setattr(g, self._g_key, state)
        return state

    def _set_cookies(self, response: Response) -> Response:
        state: _RequestState[SessionT] | None = g.get(self._g_key)
        if state is None:
            return response
        response.vary.add("Cookie")  # what it says depends on who asks
        for cookie in state.opened.set_cookies():
            # The header exactly as the backend sized it (Werkzeug's set_cookie would add
            # an Expires attribute the 4 KB budget did not count).
            response.headers.add("Set-Cookie", cookie.header())
            if cookie.secure and cookie.max_age and not self._warned_insecure:
                self._warn_if_plain_http()
        return response

    def _warn_if_plain_http(self) -> None:
        try:
            origin = self.origin()
        except LogtoUsageError:
            return
        if origin.startswith("http:"):
            self._warned_insecure = True
            logger.warning(
                "the session cookie is Secure but the app is reached over plain http (%s): "
                "browsers will not send it back. Serve over https, or for development pass "
                "base_url='http://...' (or a session backend with secure=False)",
                origin,
            )

    # ---- where the app is ---------------------------------------------------------------

    def origin(self) -> str:
        """The app's origin as the browser sees it (see :func:`external_origin`)."""
        return external_origin(
            web_request(), base_url=self.base_url, trust_forwarded=self.trust_forwarded
        )

    @property
    def redirect_uri(self) -> str:
        """The callback URL to register at Logto (and that sign-ins send), for this request."""
        return self.origin() + url_for(f"{BLUEPRINT}.callback")

    def home_path(self) -> str:
        """Where the browser goes after sign-out, and after sign-in with no ``next``."""
        return self.home if self.home is not None else request.script_root + "/"

    def _callback_url(self) -> str:
        """The URL the browser came back to, on the app's external origin (behind a proxy the
        request's own URL is the internal one, which would not match the redirect URI)."""
        query = request.query_string.decode("latin-1")
        url = self.origin() + request.script_root + request.path
        return f"{url}?{query}" if query else url

    # ---- the guard ----------------------------------------------------------------------

    def login_required(self, view: F) -> F:
        """Decorate a view (plain or ``async def``) that needs a signed-in user: others are
        redirected to the sign-in (back here afterwards), or answered 401 with JSON when the
        request wants JSON (``Accept``, ``X-Requested-With``, a bearer token)."""
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                if not self.session.isAuthenticated():
                    return self.unauthenticated()
                return await view(*args, **kwargs)

            return cast(F, guarded_async)

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not self.session.isAuthenticated():
                return self.unauthenticated()
            return view(*args, **kwargs)

        return cast(F, guarded)

    def unauthenticated(self) -> ResponseReturnValue:
        """The answer to a request that needs a signed-in user: 401 JSON for APIs, else a
        redirect to the sign-in with ``next`` (this page)."""
        if wants_json(web_request()):
            body = jsonify(error="unauthenticated", error_description="sign in first")
            return body, 401
        here = request.script_root + request.full_path.rstrip("?")
        return redirect(url_for(f"{BLUEPRINT}.sign_in", next=here))

    def _sign_in_required(self, error: SignInRequiredError) -> ResponseReturnValue:
        return self.unauthenticated()

    # ---- what the routes share ----------------------------------------------------------

    def _before_sign_in(self) -> None:
        remember_return_to(self.opened.storage, request.args.get("next"))

    def _signed_in(self) -> ResponseReturnValue:
        self.opened.rotate()  # a session id planted before the sign-in stays signed out
        return _no_store(redirect(take_return_to(self.opened.storage, self.home_path())))

    def _callback_failed(self, error: LogtoError) -> ResponseReturnValue:
        logger.warning("sign-in callback failed: %s", error.code)
        if isinstance(error, CallbackError) and self.session.isAuthenticated():
            # A replayed or stale callback (the back button) in a signed-in session.
            return redirect(self.home_path())
        if self.on_callback_error is not None:
            return self.on_callback_error(error)
        if isinstance(error, TransportError):
            return _failure_page(503, "Logto could not be reached; try again.", error)
        if isinstance(error, StorageError):  # the app's storage, not the browser's doing
            return _failure_page(500, "The session could not be saved.", error)
        return _failure_page(400, "The sign-in did not complete.", error)

    def _sign_in_failed(self, error: LogtoError) -> ResponseReturnValue:
        logger.warning("sign-in could not start: %s", error.code)
        return _failure_page(503, "Logto could not be reached; try again.", error)

    def _post_logout_uri(self) -> str:
        return self.origin() + self.home_path()

    def _logout_request(self) -> tuple[str, list[tuple[str, str]], bytes]:
        """What Logto posted: the method, the headers and the body, read no further than a
        logout request may be (so that a huge body is refused unread)."""
        if self.logout_sessions is None and not self._warned_no_lookup:
            self._warned_no_lookup = True
            logger.warning(
                "a back-channel logout arrived, but the server cannot find the sessions it "
                "names (kept in cookies?): use ServerSessions, or pass logout_sessions="
            )
        body = request.stream.read(MAX_BODY_BYTES + 1)
        return request.method, list(request.headers.items()), body

    @staticmethod
    def _logout_answer(result: BackchannelLogoutResult) -> Response:
        if not result.ok and result.error is not None:
            logger.warning("back-channel logout refused: %s", result.error.code)
        return Response(result.body, status=result.status, headers=dict(result.headers))


class LogtoFlask(_LogtoFlaskBase[sync.Logto, sync.LogtoSession]):
    """Logto for a Flask app with plain views, on the ``requests`` client.

    ``LogtoFlask(app, config)`` (or ``LogtoFlask(config=config)`` then :meth:`init_app`;
    ``logto=`` a :class:`logto_adapters.sync.Logto` of your own, to set its options).

    * ``sessions``: where sessions live (a :class:`~logto_adapters.web.SessionBackend`);
      default :class:`~logto_adapters.web.ServerSessions` in this process's memory.
    * ``base_url``: the app's public origin (``https://app.example.com``), the safe way to
      build the callback URL; else the request's, with ``X-Forwarded-*`` read only when
      ``trust_forwarded`` (your proxy sets them; anyone else could).
    * ``url_prefix``: where the routes go (``/sign-in``, ``/callback``, ``/sign-out``).
    * ``home``: the path after sign-out, and after sign-in without ``next`` (default ``/``).
    * ``sign_in_options``: ``signIn`` options for the ready route (``prompt``,
      ``firstScreen``, ...).
    * ``on_callback_error``: answers a failed callback instead of the 400 page.
    * ``logout_sessions``: where ``/back-channel-logout`` finds the sessions a logout token
      names (a :class:`~logto_adapters.sync.SessionLookup`); default: the registry of the
      :class:`~logto_adapters.web.ServerSessions` backend (cookie sessions cannot be ended).
    """

    def __init__(
        self,
        app: Flask | None = None,
        config: LogtoConfig | None = None,
        *,
        logto: sync.Logto | None = None,
        sessions: SessionBackend | None = None,
        base_url: str | None = None,
        trust_forwarded: bool = False,
        url_prefix: str | None = None,
        home: str | None = None,
        sign_in_options: SignInParams | None = None,
        on_callback_error: CallbackErrorHandler | None = None,
        logout_sessions: sync.SessionLookup | None = None,
    ) -> None:
        super().__init__(
            app,
            config,
            logto,
            sessions=sessions,
            base_url=base_url,
            trust_forwarded=trust_forwarded,
            url_prefix=url_prefix,
            home=home,
            sign_in_options=sign_in_options,
            on_callback_error=on_callback_error,
            logout_sessions=logout_sessions,
        )

    def _make_logto(self, config: LogtoConfig) -> sync.Logto:
        return sync.Logto(config)

    def _new_session(self, opened: OpenedSession) -> sync.LogtoSession:
        return self.logto.session(opened.storage)

    def _sign_in_view(self) -> ResponseReturnValue:
        self._before_sign_in()
        try:
            url = self.session.signIn(self.redirect_uri, **self.sign_in_options)
        except (TransportError, ProviderError) as error:
            return self._sign_in_failed(error)
        return _no_store(redirect(url))

    def _callback_view(self) -> ResponseReturnValue:
        try:
            self.session.handleSignInCallback(self._callback_url())
        except LogtoError as error:
            if isinstance(error, LogtoUsageError):
                raise
            return self._callback_failed(error)
        return self._signed_in()

    def _sign_out_view(self) -> ResponseReturnValue:
        return _no_store(redirect(self.session.signOut(self._post_logout_uri())))

    def _back_channel_logout_view(self) -> ResponseReturnValue:
        method, headers, body = self._logout_request()
        result = self.logto.handleBackchannelLogout(method, headers, body, self.logout_sessions)
        return self._logout_answer(result)


class AsyncLogtoFlask(_LogtoFlaskBase[aio.Logto, aio.LogtoSession]):
    """Logto for a Flask app with ``async def`` views, on the ``httpx`` client
    (``pip install "flask[async]"``): :attr:`session` is an
    :class:`logto_adapters.aio.LogtoSession` whose network methods are awaited. The same
    options as :class:`LogtoFlask` (``logto=`` an :class:`logto_adapters.aio.Logto`)."""

    def __init__(
        self,
        app: Flask | None = None,
        config: LogtoConfig | None = None,
        *,
        logto: aio.Logto | None = None,
        sessions: SessionBackend | None = None,
        base_url: str | None = None,
        trust_forwarded: bool = False,
        url_prefix: str | None = None,
        home: str | None = None,
        sign_in_options: SignInParams | None = None,
        on_callback_error: CallbackErrorHandler | None = None,
        logout_sessions: sync.SessionLookup | None = None,
    ) -> None:
        super().__init__(
            app,
            config,
            logto,
            sessions=sessions,
            base_url=base_url,
            trust_forwarded=trust_forwarded,
            url_prefix=url_prefix,
            home=home,
            sign_in_options=sign_in_options,
            on_callback_error=on_callback_error,
            logout_sessions=logout_sessions,
        )

    def _make_logto(self, config: LogtoConfig) -> aio.Logto:
        return aio.Logto(config)

    def _new_session(self, opened: OpenedSession) -> aio.LogtoSession:
        return self.logto.session(opened.storage)

    async def _sign_in_view(self) -> ResponseReturnValue:  # type: ignore[override]
        self._before_sign_in()
        try:
            url = await self.session.signIn(self.redirect_uri, **self.sign_in_options)
        except (TransportError, ProviderError) as error:
            return self._sign_in_failed(error)
        return _no_store(redirect(url))

    async def _callback_view(self) -> ResponseReturnValue:  # type: ignore[override]
        try:
            await self.session.handleSignInCallback(self._callback_url())
        except LogtoError as error:
            if isinstance(error, LogtoUsageError):
                raise
            return self._callback_failed(error)
        return self._signed_in()

    async def _sign_out_view(self) -> ResponseReturnValue:  # type: ignore[override]
        return _no_store(redirect(await self.session.signOut(self._post_logout_uri())))

    async def _back_channel_logout_view(self) -> ResponseReturnValue:  # type: ignore[override]
        method, headers, body = self._logout_request()
        result = await self.logto.handleBackchannelLogout(
            method, headers, body, self.logout_sessions
        )
        return self._logout_answer(result)


# ---- protecting an API -------------------------------------------------------------------

_CLAIMS_KEY = "_logto_access_token_claims"

ResourceServer = sync.LogtoResourceServer | aio.LogtoResourceServer
"""Either client's resource server."""

OrganizationOf = str | Callable[[], str | None] | None
"""An organization id, or a function of the request that names one (``None``: none needed)."""

RETRY_AFTER = "10"
"""Seconds a caller is told to wait when Logto cannot be reached to verify its token."""


def access_token_required(
    api: ResourceServer,
    scopes: Sequence[str] | str | None = None,
    *,
    organization_id: OrganizationOf = None,
    organization_roles: Sequence[str] | str | None = None,
) -> Callable[[F], F]:
    """Decorate an API view that needs a Logto access token for ``api``'s audience, granting
    every one of ``scopes``; with ``organization_id`` (or a function returning it, such as
    ``lambda: request.view_args["org"]``), a token for that organization, holding each of
    ``organization_roles`` there. The claims are then :func:`access_token_claims`.

    A refused request gets the error's status (401 without or with an invalid token, 400
    for a malformed header, 403 for a scope, organization or role missing), its
    ``WWW-Authenticate`` challenge and a JSON body ``{"error", "error_description"}``; when
    Logto cannot be reached (or sends unusable keys) the answer is 503 with ``Retry-After``.

    With :class:`logto_adapters.aio.LogtoResourceServer` the guarded view runs as an async
    view (plain views too: Flask runs either)."""

    def decorate(view: F) -> F:
        if isinstance(api, aio.LogtoResourceServer):
            async_api = api

            @functools.wraps(view)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                try:
                    claims = await async_api.verifyAuthorization(
                        request.headers.get("Authorization"),
                        scopes,
                        _organization(organization_id),
                        organizationRoles=organization_roles,
                    )
                except LogtoError as error:
                    return _refused(error)
                setattr(g, _CLAIMS_KEY, claims)
                answer = view(*args, **kwargs)
                return await answer if inspect.isawaitable(answer) else answer

            return cast(F, guarded_async)

        sync_api = api

        def verified() -> ResponseReturnValue | None:
            try:
                claims = sync_api.verifyAuthorization(
                    request.headers.get("Authorization"),
                    scopes,
                    _organization(organization_id),
                    organizationRoles=organization_roles,
                )
            except LogtoError as error:
                return _refused(error)
            setattr(g, _CLAIMS_KEY, claims)
            return None

        if inspect.iscoroutinefunction(view):
            coroutine_view = cast(Callable[..., Awaitable[Any]], view)

            @functools.wraps(view)
            async def guarded_coroutine(*args: Any, **kwargs: Any) -> Any:
                refusal = verified()
                return refusal if refusal is not None else await coroutine_view(*args, **kwargs)

            return cast(F, guarded_coroutine)

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            refusal = verified()
            return refusal if refusal is not None else view(*args, **kwargs)

        return cast(F, guarded)

    return decorate


def access_token_claims() -> AccessTokenClaims:
    """The claims of the access token that :func:`access_token_required` verified for the
    current request."""
    claims: AccessTokenClaims | None = g.get(_CLAIMS_KEY)
    if claims is None:
        raise LogtoUsageError(
            "access_token_claims() is for views guarded by access_token_required",
            code="usage.flask_setup",
        )
    return claims


def _organization(organization_id: OrganizationOf) -> str | None:
    return organization_id() if callable(organization_id) else organization_id


def _refused(error: LogtoError) -> ResponseReturnValue:
    if isinstance(error, AccessTokenError):  # the caller's credentials: 400, 401 or 403
        body: dict[str, str] = {"error": error.error or "unauthorized"}
        if error.error is not None:
            body["error_description"] = error.error_description
        return jsonify(body), error.status, {"WWW-Authenticate": error.www_authenticate()}
    if isinstance(error, LogtoUsageError):  # the app's mistake, not the request's
        raise error
    # Logto out of reach, or what it sent unusable: not the caller's fault.
    logger.warning("an access token could not be verified: %s", error.code)
    body = {"error": "temporarily_unavailable"}
    return jsonify(body), 503, {"Retry-After": RETRY_AFTER}


# ---- helpers -----------------------------------------------------------------------------


def web_request() -> WebRequest:
    """The current Flask request as :class:`~logto_adapters.web.WebRequest`."""
    return WebRequest(
        request.method,
        request.url,
        {name.lower(): value for name, value in request.headers.items()},
        request.cookies.to_dict(),
    )


def _no_store(response: Response) -> Response:
    # These answers carry a session's cookies and one-time URLs: never kept by a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _failure_page(status: int, what: str, error: LogtoError) -> ResponseReturnValue:
    """A page that names the error's code (stable, from the SDK's registry; never a token,
    code or provider text) and offers to start again."""
    sign_in = escape(url_for(f"{BLUEPRINT}.sign_in"))
    body = (
        "<!doctype html><meta charset='utf-8'><title>Sign-in failed</title>"
        f"<h1>Sign-in failed</h1><p>{escape(what)}</p>"
        f"<p>Error code: <code>{escape(_codes(error))}</code></p>"
        f"<p><a href='{sign_in}'>Sign in again</a></p>"
    )
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _codes(error: LogtoError) -> str:
    """``storage.write (storage.cookie_too_large)``: the error's code and its cause's."""
    cause = error.__cause__
    return f"{error.code} ({cause.code})" if isinstance(cause, LogtoError) else error.code


__all__ = [
    "BLUEPRINT",
    "EXTENSION",
    "RETRY_AFTER",
    "AsyncLogtoFlask",
    "CallbackErrorHandler",
    "LogtoFlask",
    "OrganizationOf",
    "ResourceServer",
    "access_token_claims",
    "access_token_required",
    "web_request",
]
