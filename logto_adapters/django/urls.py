"""The ready routes, for ``path("", include("logto_adapters.django.urls"))``.

``sign-in``, ``callback``, ``sign-out`` and ``back-channel-logout`` (URL names
``logto:sign-in``, ``logto:callback``, ``logto:sign-out``, ``logto:back-channel-logout``),
as plain or ``async def`` views after ``LOGTO["CLIENT"]``. The list is made when Django
first reads it (not at import, so this module imports without settings), and again after
a test changes ``settings.LOGTO``.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path

from . import views
from .conf import Client, get_logto_app

app_name = "logto"


def routes(client: Client | None = None) -> list[URLPattern]:
    """The ready routes for ``client`` (default: ``LOGTO["CLIENT"]``)."""
    chosen = client if client is not None else get_logto_app().settings.client
    if chosen == "aio":
        return [
            path("sign-in", views.sign_in_async, name="sign-in"),
            path("callback", views.callback_async, name="callback"),
            path("sign-out", views.sign_out_async, name="sign-out"),
            path(
                "back-channel-logout",
                views.back_channel_logout_async,
                name="back-channel-logout",
            ),
        ]
    return [
        path("sign-in", views.sign_in, name="sign-in"),
        path("callback", views.callback, name="callback"),
        path("sign-out", views.sign_out, name="sign-out"),
        path("back-channel-logout", views.back_channel_logout, name="back-channel-logout"),
    ]


def __getattr__(name: str) -> Any:
    # `urlpatterns`, read by Django's resolver when it first resolves a URL.
    if name == "urlpatterns":
        return routes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app_name", "routes"]
