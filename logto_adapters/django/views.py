"""The ready routes: sign-in, callback, sign-out, for plain views (``CLIENT`` ``"sync"``) and
``async def`` views (``"aio"``); :mod:`logto_adapters.django.urls` picks the set.

- **sign-in** keeps ``?next=`` (a relative path on the app only,
  :func:`~logto_adapters.web.remember_return_to`) and redirects to Logto;
- **callback** checks Logto's answer, replaces the session's identity (a session id
  planted before the sign-in never becomes a signed-in one), and redirects to the kept
  path; a refused callback is a 400 page naming the error code, nothing more;
- **sign-out** forgets the tokens (revoking the refresh token) and redirects to Logto's
  end-session URL, which sends the browser back to ``AFTER_SIGN_OUT_URL``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.html import escape

from logto_core.errors import LogtoError

from ..web import remember_return_to, take_return_to
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


__all__ = [
    "callback",
    "callback_async",
    "callback_url",
    "sign_in",
    "sign_in_async",
    "sign_out",
    "sign_out_async",
]
