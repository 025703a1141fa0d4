"""The ready routes: sign-in, callback, sign-out, for plain views (``CLIENT`` ``"sync"``) and
``async def`` views (``"aio"``); :mod:`logto_adapters.django.urls` picks the set.

- **sign-in** keeps ``?next=`` (a relative path on the app only,
  :func:`~logto_adapters.web.remember_return_to`) and redirects to Logto;
- **callback** checks Logto's answer, replaces the session's identity (a session id
  planted before the sign-in never becomes a signed-in one), and redirects to the kept
  path; a refused callback is a 400 page naming the error code, nothing more;
- **sign-out** forgets the tokens (revoking the refresh token) and redirects to Logto's
  end-session URL, which sends the browser back to ``AFTER_SIGN_OUT_URL``;
- **back-channel-logout** receives Logto's POST when a user's session ended elsewhere
  (OpenID Connect Back-Channel Logout 1.0), verifies its logout token and signs out the
  server-side sessions it names (``ServerSessions``' registry); exempt from CSRF checks,
  since Logto's server holds neither cookie nor CSRF token, and the signed token is the
  request's only proof.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.html import escape

from logto_core.errors import LogtoError

from ..web import remember_return_to, take_return_to
from .conf import DjangoLogto, get_logto_app
from .middleware import RequestState, request_state

if TYPE_CHECKING:
    from logto_adapters import aio, sync

logger = logging.getLogger(__name__)

NEXT_PARAMETER = "next"


def callback_url(request: HttpRequest, state: RequestState | None = None) -> str:
    """The redirect URI given to Logto: the ``callback`` route on the app's origin."""
    state = state if state is not None else request_state(request)
    match = request.resolver_match
    path = reverse("logto:callback", current_app=match.namespace if match else None)
    return state.absolute(path)


def _after_sign_out(state: RequestState) -> str:
    return state.absolute(resolve_url(state.app.settings.after_sign_out_url))


def _returned_to(request: HttpRequest, state: RequestState) -> str:
    """The URL the browser came back to, as Logto sent it (the app's origin, so that it
    matches the redirect URI even behind a proxy)."""
    return state.origin() + request.get_full_path()


def _refused(error: LogtoError) -> HttpResponseBadRequest:
    # The code says what failed; messages stay in the server's log (they never hold a token,
    # but may quote the provider, which is no business of the visitor's).
    logger.warning("sign-in callback refused: %s", error.code)
    return HttpResponseBadRequest(
        "<!doctype html><title>Sign-in failed</title>"
        f"<p>Sign-in failed ({escape(error.code)}). <a href='/'>Back to the app</a></p>",
        content_type="text/html; charset=utf-8",
    )


def _sessions_to_end(app: DjangoLogto) -> Any:
    """Where back-channel logout finds the sessions it ends: the server-side sessions'
    registry (cookie sessions live in browsers, out of the server's reach)."""
    registry = getattr(app.sessions, "registry", None)
    return registry if callable(getattr(registry, "matching", None)) else None


def _logout_answer(result: Any) -> HttpResponse:
    if not result.ok:  # the code says why; no message holds the token
        logger.warning("back-channel logout refused: %s", result.error.code)
    response = HttpResponse(result.body, status=result.status)
    for name, value in result.headers.items():
        response[name] = value
    return response


V = TypeVar("V", bound=Callable[..., Any])


def csrf_exempt_view(view: V) -> V:
    """What Django's ``csrf_exempt`` does, without its wrapper (a plain function before
    Django 5, which would make an ``async def`` view look sync)."""
    view.csrf_exempt = True  # type: ignore[attr-defined]
    return view


# ---- plain views (sync client) ----------------------------------------------------------


def _sync(state: RequestState) -> sync.LogtoSession:
    return cast("sync.LogtoSession", state.session)


def sign_in(request: HttpRequest) -> HttpResponseBase:
    state = request_state(request)
    remember_return_to(state.storage, request.GET.get(NEXT_PARAMETER))
    return HttpResponseRedirect(_sync(state).signIn(redirectUri=callback_url(request, state)))


def callback(request: HttpRequest) -> HttpResponseBase:
    state = request_state(request)
    try:
        _sync(state).handleSignInCallback(_returned_to(request, state))
    except LogtoError as error:
        return _refused(error)
    state.opened.rotate()
    return HttpResponseRedirect(take_return_to(state.storage))


def sign_out(request: HttpRequest) -> HttpResponseBase:
    state = request_state(request)
    return HttpResponseRedirect(_sync(state).signOut(postLogoutRedirectUri=_after_sign_out(state)))


@csrf_exempt_view
def back_channel_logout(request: HttpRequest) -> HttpResponseBase:
    app = get_logto_app()
    logto = cast("sync.Logto", app.logto)
    result = logto.handleBackchannelLogout(
        request.method or "", request.headers, request.body, _sessions_to_end(app)
    )
    return _logout_answer(result)


# ---- async def views (async client) -----------------------------------------------------


def _aio(state: RequestState) -> aio.LogtoSession:
    return cast("aio.LogtoSession", state.session)


async def sign_in_async(request: HttpRequest) -> HttpResponseBase:
    state = request_state(request)
    remember_return_to(state.storage, request.GET.get(NEXT_PARAMETER))
    url = await _aio(state).signIn(redirectUri=callback_url(request, state))
    return HttpResponseRedirect(url)


async def callback_async(request: HttpRequest) -> HttpResponseBase:
    state = request_state(request)
    try:
        await _aio(state).handleSignInCallback(_returned_to(request, state))
    except LogtoError as error:
        return _refused(error)
    state.opened.rotate()
    return HttpResponseRedirect(take_return_to(state.storage))


async def sign_out_async(request: HttpRequest) -> HttpResponseBase:
    state = request_state(request)
    url = await _aio(state).signOut(postLogoutRedirectUri=_after_sign_out(state))
    return HttpResponseRedirect(url)


@csrf_exempt_view
async def back_channel_logout_async(request: HttpRequest) -> HttpResponseBase:
    app = get_logto_app()
    logto = cast("aio.Logto", app.logto)
    result = await logto.handleBackchannelLogout(
        request.method or "", request.headers, request.body, _sessions_to_end(app)
    )
    return _logout_answer(result)


__all__ = [
    "back_channel_logout",
    "back_channel_logout_async",
    "callback",
    "callback_async",
    "callback_url",
    "sign_in",
    "sign_in_async",
    "sign_out",
    "sign_out_async",
]
