"""The middleware: one Logto session per request, its cookies on the response.

``LogtoMiddleware`` opens the request's session storage with the app's session backend,
puts a ``LogtoSession`` of the app's one ``Logto`` on ``request.logto``, and after the view
sets the cookies the backend asks for. It runs in Django's sync and async stacks alike
(WSGI or ASGI), without a thread hop in either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import Morsel
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers

from logto_core.storage import Storage

from ..cookie_session import SetCookie
from ..web import OpenedSession, WebRequest
from .conf import DjangoLogto, get_logto_app

if TYPE_CHECKING:
    from logto_adapters import aio, sync

STATE_ATTRIBUTE = "_logto_state"


class LogtoHttpRequest(HttpRequest):
    """An ``HttpRequest`` that went through :class:`LogtoMiddleware`, for annotating views of
    the sync client (``def home(request: LogtoHttpRequest)``)."""

    logto: sync.LogtoSession


class AioLogtoHttpRequest(HttpRequest):
    """The same for ``async def`` views of the async client (``CLIENT`` ``"aio"``)."""

    logto: aio.LogtoSession


def web_request(request: HttpRequest) -> WebRequest:
    """What :mod:`logto_adapters.web` reads of a Django request. Its URL is the one Django
    builds (``request.scheme``, which follows ``SECURE_PROXY_SSL_HEADER``, and
    ``get_host()``, which checks ``ALLOWED_HOSTS``)."""
    return WebRequest(
        method=request.method or "GET",
        url=request.build_absolute_uri(),
        headers={name.lower(): value for name, value in request.headers.items()},
        cookies=dict(request.COOKIES),
    )


class _Watched(Storage):
    """The backend's storage, noting whether the view read it (the response then depends
    on the session cookie: ``Vary: Cookie``, so a cache never serves it to someone else)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.accessed = False

    def get(self, key: str) -> str | None:
        self.accessed = True
        return self.inner.get(key)

    def set(self, key: str, value: str | None) -> None:
        self.accessed = True
        self.inner.set(key, value)

    def delete(self, key: str) -> None:
        self.accessed = True
        self.inner.delete(key)


@dataclass
class RequestState:
    """What the middleware keeps on a request for the ready views and the guards."""

    app: DjangoLogto
    request: WebRequest
    opened: OpenedSession
    storage: _Watched
    session: Any = field(repr=False)
    """The ``LogtoSession`` (also ``request.logto``)."""

    def origin(self) -> str:
        return self.app.origin(self.request)

    def absolute(self, path: str) -> str:
        """``path`` on the app's origin (a URL already absolute is kept)."""
        return path if "://" in path else self.origin() + path


def request_state(request: HttpRequest) -> RequestState:
    """The :class:`RequestState` the middleware put on ``request``."""
    state = getattr(request, STATE_ATTRIBUTE, None)
    if not isinstance(state, RequestState):
        raise ImproperlyConfigured(
            "request.logto is missing: add 'logto_adapters.django.LogtoMiddleware' to "
            "settings.MIDDLEWARE"
        )
    return state


def _morsel(cookie: SetCookie) -> Morsel[str]:
    """``cookie`` as Django emits it, attribute for attribute what :meth:`SetCookie.header`
    counts: ``HttpResponse.set_cookie`` would add an ``expires`` date (about 40 bytes more
    than the cookie backend measured against the 4 KB limit) and quote values holding ``=``
    (Fernet padding)."""
    morsel: Morsel[str] = Morsel()
    morsel.set(cookie.name, cookie.value, cookie.value)
    morsel["max-age"] = str(cookie.max_age)
    morsel["path"] = cookie.path
    if cookie.domain:
        morsel["domain"] = cookie.domain
    morsel["httponly"] = True
    morsel["secure"] = cookie.secure
    morsel["samesite"] = cookie.same_site
    return morsel


Response = HttpResponseBase


class LogtoMiddleware:
    """Put a ``LogtoSession`` on ``request.logto`` and set the session's cookies on the
    response. Add ``"logto_adapters.django.LogtoMiddleware"`` to ``settings.MIDDLEWARE``."""

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], Response | Awaitable[Response]]
    ) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Response | Awaitable[Response]:
        if self._async:
            return self._acall(request)
        state = self._open(request)
        response = cast(Response, self.get_response(request))  # sync mode: a response
        return self._finish(state, response)

    async def _acall(self, request: HttpRequest) -> Response:
        state = self._open(request)
        response = cast(Awaitable[Response], self.get_response(request))  # async mode
        return self._finish(state, await response)

    @staticmethod
    def _open(request: HttpRequest) -> RequestState:
        app = get_logto_app()
        web = web_request(request)
        opened = app.sessions.open(web)
        storage = _Watched(opened.storage)
        session = app.logto.session(storage)
        state = RequestState(app, web, opened, storage, session)
        setattr(request, STATE_ATTRIBUTE, state)
        setattr(request, "logto", session)  # noqa: B010 - an attribute the stubs do not know
        return state

    @staticmethod
    def _finish(state: RequestState, response: Response) -> Response:
        # Always, even on an error page: a refresh may have rotated the refresh token, and
        # the browser must keep the new one.
        cookies = state.opened.set_cookies()
        for cookie in cookies:
            response.cookies[cookie.name] = _morsel(cookie)
        if cookies or state.storage.accessed:
            patch_vary_headers(response, ("Cookie",))
        return response


__all__ = [
    "AioLogtoHttpRequest",
    "LogtoHttpRequest",
    "LogtoMiddleware",
    "RequestState",
    "request_state",
    "web_request",
]
