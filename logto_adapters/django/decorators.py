"""Guards for views: signed-in users only.

``@logto_required`` works on plain and ``async def`` views. A signed-out visitor of a page is
redirected to the sign-in route with ``?next=`` (the page, kept across the sign-in by the
ready views); a script or API client (:func:`logto_adapters.web.wants_json`) gets a 401 JSON
answer instead, since a redirect to an HTML sign-in page means nothing to it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import resolve_url

from ..web import wants_json
from .middleware import RequestState, request_state

View = TypeVar("View", bound=Callable[..., Any])


def sign_in_redirect(request: HttpRequest, state: RequestState | None = None) -> HttpResponseBase:
    """A redirect to ``LOGTO["SIGN_IN_URL"]`` with ``next`` set to this request's path and
    query (only a relative path is ever followed after the sign-in)."""
    state = state if state is not None else request_state(request)
    url = resolve_url(state.app.settings.sign_in_url)
    separator = "&" if "?" in url else "?"
    return HttpResponseRedirect(f"{url}{separator}{urlencode({'next': request.get_full_path()})}")


def unauthenticated(request: HttpRequest) -> HttpResponseBase | None:
    """``None`` for a signed-in session; else what the guard answers (a redirect to sign in,
    or a 401 for :func:`~logto_adapters.web.wants_json` requests)."""
    state = request_state(request)
    if state.session.isAuthenticated():
        return None
    if wants_json(state.request):
        return JsonResponse(
            {"error": "unauthenticated", "error_description": "sign in first"}, status=401
        )
    return sign_in_redirect(request, state)


def logto_required(view: View) -> View:
    """Let only signed-in users reach ``view`` (a plain or ``async def`` view; for a
    class-based view, ``method_decorator(logto_required, name="dispatch")``)."""
    if iscoroutinefunction(view):

        @wraps(view)
        async def guarded_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = unauthenticated(request)
            if refusal is not None:
                return refusal
            return await view(request, *args, **kwargs)

        return cast(View, guarded_async)

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        refusal = unauthenticated(request)
        if refusal is not None:
            return refusal
        return view(request, *args, **kwargs)

    return cast(View, guarded)


__all__ = ["logto_required", "sign_in_redirect", "unauthenticated"]
