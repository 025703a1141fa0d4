"""Logto sign-in for Django: plain views on :mod:`logto_adapters.sync`, ``async def`` views
on :mod:`logto_adapters.aio` (``pip install "logto-sansio[django,requests]"`` or
``[django,httpx]``; the guide is docs/django.md).

.. code-block:: python

    # settings.py
    LOGTO = {"ENDPOINT": "https://your-tenant.logto.app", "APP_ID": "...", "APP_SECRET": "..."}
    MIDDLEWARE = [..., "logto_adapters.django.LogtoMiddleware"]

    # urls.py
    urlpatterns = [path("", include("logto_adapters.django.urls")), ...]

    # views.py
    @logto_required
    def profile(request: LogtoHttpRequest) -> HttpResponse:
        return JsonResponse(request.logto.getIdTokenClaims().model_dump(exclude_unset=True))

    @access_token_required("read")  # LOGTO["API_AUDIENCE"]: the API's resource indicator
    def hello(request: ApiHttpRequest) -> HttpResponse:
        return JsonResponse({"sub": request.access_token_claims.sub})

Importing this package reads no setting: ``settings.LOGTO`` is read at the first request.
"""

from __future__ import annotations

try:
    import django  # noqa: F401 - only to name the missing extra
except ImportError as missing:  # pragma: no cover - depends on the installation
    raise ImportError(
        'logto_adapters.django needs Django: pip install "logto-sansio[django]"'
    ) from missing

from .api import ApiHttpRequest, access_token_required
from .conf import DjangoLogto, LogtoSettings, get_logto_app, reset_logto_app
from .decorators import logto_required, sign_in_redirect, unauthenticated
from .middleware import (
    AioLogtoHttpRequest,
    LogtoHttpRequest,
    LogtoMiddleware,
    RequestState,
    request_state,
    web_request,
)
from .urls import routes
from .views import callback_url

__all__ = [
    "AioLogtoHttpRequest",
    "ApiHttpRequest",
    "DjangoLogto",
    "LogtoHttpRequest",
    "LogtoMiddleware",
    "LogtoSettings",
    "RequestState",
    "access_token_required",
    "callback_url",
    "get_logto_app",
    "logto_required",
    "request_state",
    "reset_logto_app",
    "routes",
    "sign_in_redirect",
    "unauthenticated",
    "web_request",
]
