"""The Django sample app: plain views on the sync client, or ``async def`` views on the async
one (``python -m logto_adapters.demo --serve --framework django --client sync|aio``).

Routes: ``/`` (the signed-in user's ID-token claims as JSON, or a sign-in link),
``/sign-in``, ``/callback``, ``/sign-out`` and ``/back-channel-logout`` (the ready routes of
:mod:`logto_adapters.django.urls`), ``/protected`` (signed-in users only: their ``sub`` and
the scopes of their token for the first API resource), ``/api/hello`` (an API: ``{"sub": ...}``
for a bearer token of the first API resource with scope ``read``, else 401 or 403 with a
``WWW-Authenticate`` challenge). Configured from the environment like
the tutorial's app (``settings.py``: ``LOGTO_ENDPOINT``, ``LOGTO_APP_ID``,
``LOGTO_APP_SECRET``, ``LOGTO_RESOURCES``, ``LOGTO_SCOPES``, ``APP_BASE_URL``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.http import HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import URLPattern, URLResolver, include, path

from logto_adapters.django import (
    AioLogtoHttpRequest,
    ApiHttpRequest,
    LogtoHttpRequest,
    access_token_required,
    get_logto_app,
    logto_required,
    sign_in_redirect,
)
from logto_core.errors import SignInRequiredError

from .settings import Settings, from_environment

SIGNED_OUT = "Not authenticated <a href='/sign-in'>Sign in</a>"


def django_settings(env: Settings, client: str = "sync") -> dict[str, Any]:
    """The sample app's Django settings (for ``settings.configure(**...)``)."""
    host = urlsplit(env.base_url).hostname or "127.0.0.1"
    return {
        "DEBUG": False,
        "SECRET_KEY": env.secret_key,
        "ALLOWED_HOSTS": sorted({host, "127.0.0.1", "localhost"}),
        "ROOT_URLCONF": __name__,
        "MIDDLEWARE": ["logto_adapters.django.LogtoMiddleware"],
        "INSTALLED_APPS": ["logto_adapters.django"],
        "LOGTO": {
            "ENDPOINT": env.endpoint,
            "APP_ID": env.app_id,
            "APP_SECRET": env.app_secret,
            "SCOPES": ["email", *env.scopes],
            "RESOURCES": env.resources,
            "CLIENT": client,
            "BASE_URL": env.base_url,
            # Plain-HTTP development only: a Secure cookie is not sent back over http.
            "COOKIE_SECURE": env.base_url.startswith("https://"),
            "API_AUDIENCE": env.resources[0] if env.resources else None,
        },
    }


def make_app(client: str = "sync") -> Any:
    """Configure Django from the environment and return the WSGI application."""
    import django
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    settings.configure(**django_settings(from_environment(), client))
    django.setup()
    return get_wsgi_application()


def _first_resource() -> str | None:
    resources = get_logto_app().settings.config.resources
    return resources[0] if resources else None


def _claims(request: LogtoHttpRequest | AioLogtoHttpRequest) -> dict[str, Any]:
    claims: dict[str, Any] = request.logto.getIdTokenClaims().model_dump(
        mode="json", exclude_unset=True
    )
    return claims


# ---- plain views (sync client) ----------------------------------------------------------


def home(request: LogtoHttpRequest) -> HttpResponseBase:
    if not request.logto.isAuthenticated():
        return HttpResponse(SIGNED_OUT)
    return JsonResponse(_claims(request))


@logto_required
def protected(request: LogtoHttpRequest) -> HttpResponseBase:
    body: dict[str, Any] = {"sub": request.logto.getIdTokenClaims().sub}
    resource = _first_resource()
    if resource is not None:
        try:  # from the session's cache, or refreshed
            token = request.logto.getAccessTokenClaims(resource)
        except SignInRequiredError:  # the grant is gone (revoked, expired): sign in again
            return sign_in_redirect(request)
        body["api"] = {"resource": resource, "scope": token.scope or ""}
    return JsonResponse(body)


@access_token_required("read")
def api_hello(request: ApiHttpRequest) -> HttpResponseBase:
    return JsonResponse({"sub": request.access_token_claims.sub})


# ---- async def views (async client) -----------------------------------------------------


async def home_async(request: AioLogtoHttpRequest) -> HttpResponseBase:
    if not request.logto.isAuthenticated():
        return HttpResponse(SIGNED_OUT)
    return JsonResponse(_claims(request))


@logto_required
async def protected_async(request: AioLogtoHttpRequest) -> HttpResponseBase:
    body: dict[str, Any] = {"sub": request.logto.getIdTokenClaims().sub}
    resource = _first_resource()
    if resource is not None:
        try:
            token = await request.logto.getAccessTokenClaims(resource)
        except SignInRequiredError:
            return sign_in_redirect(request)
        body["api"] = {"resource": resource, "scope": token.scope or ""}
    return JsonResponse(body)


@access_token_required("read")
async def api_hello_async(request: ApiHttpRequest) -> HttpResponseBase:
    return JsonResponse({"sub": request.access_token_claims.sub})


def patterns(client: str) -> list[URLPattern | URLResolver]:
    """The sample app's routes for ``client``."""
    pages = (
        [
            path("", home_async),
            path("protected", protected_async),
            path("api/hello", api_hello_async),
        ]
        if client == "aio"
        else [path("", home), path("protected", protected), path("api/hello", api_hello)]
    )
    return [*pages, path("", include("logto_adapters.django.urls"))]


def __getattr__(name: str) -> Any:
    # The URLconf's `urlpatterns`, after LOGTO["CLIENT"] (read when Django first resolves).
    if name == "urlpatterns":
        return patterns(get_logto_app().settings.client)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
