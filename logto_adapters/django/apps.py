"""``INSTALLED_APPS = [..., "logto_adapters.django"]``: optional, for the system check
(``manage.py check``) of ``settings.LOGTO`` and of the middleware, at start-up rather than
at the first request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .conf import LogtoSettings

MIDDLEWARE_PATHS = frozenset(
    {"logto_adapters.django.LogtoMiddleware", "logto_adapters.django.middleware.LogtoMiddleware"}
)


def check_logto(
    app_configs: Sequence[AppConfig] | None = None, **_: Any
) -> list[checks.CheckMessage]:
    """``logto.E001``: ``settings.LOGTO`` is wrong (the message says how);
    ``logto.W001``: the middleware is not in ``settings.MIDDLEWARE``."""
    found: list[checks.CheckMessage] = []
    try:
        LogtoSettings.from_django()
    except ImproperlyConfigured as error:
        found.append(checks.Error(str(error), id="logto.E001"))
    if not MIDDLEWARE_PATHS & set(getattr(settings, "MIDDLEWARE", None) or ()):
        found.append(
            checks.Warning(
                "LogtoMiddleware is not in settings.MIDDLEWARE: request.logto and the ready "
                "routes need it",
                hint="add 'logto_adapters.django.LogtoMiddleware' to settings.MIDDLEWARE",
                id="logto.W001",
            )
        )
    return found


class LogtoAppConfig(AppConfig):
    """The Django app of the integration (no models)."""

    name = "logto_adapters.django"
    label = "logto"
    verbose_name = "Logto"
    default = True

    def ready(self) -> None:
        checks.register(check_logto)


__all__ = ["LogtoAppConfig", "check_logto"]
