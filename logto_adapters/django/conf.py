"""The integration's one object per app, built from the ``LOGTO`` Django setting.

``settings.LOGTO`` is a dict. Every :class:`~logto_core.config.LogtoConfig` field is a key
in upper snake case (``ENDPOINT``, ``APP_ID``, ``APP_SECRET``, ``SCOPES``, ``RESOURCES``,
``CLOCK_TOLERANCE``, ...), next to the integration's own keys (:data:`OWN_KEYS`, described
on :class:`LogtoSettings`). Nothing is read before the first request (or the system check
of :mod:`logto_adapters.django.apps`), so the package imports without Django configured.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.urls import clear_url_caches
from pydantic.alias_generators import to_snake

from logto_core.config import ConfigError, LogtoConfig
from logto_core.errors import LogtoUsageError

from ..web import ServerSessions, SessionBackend, WebRequest, external_origin

if TYPE_CHECKING:
    from logto_adapters import aio, sync

SETTING = "LOGTO"
"""The name of the Django setting."""

Client = Literal["sync", "aio"]

OWN_KEYS = frozenset(
    {
        "CLIENT",
        "BASE_URL",
        "TRUST_FORWARDED",
        "SESSIONS",
        "COOKIE_SECURE",
        "SIGN_IN_URL",
        "AFTER_SIGN_OUT_URL",
        "OPTIONS",
        "CONFIG",
        "API_AUDIENCE",
        "API_REALM",
    }
)
"""Keys of ``settings.LOGTO`` that are the integration's; the others are LogtoConfig's."""


@dataclass(frozen=True)
class LogtoSettings:
    """``settings.LOGTO``, checked. Beyond the ``LogtoConfig`` fields (or ``CONFIG``, a
    ready ``LogtoConfig``):

    - ``CLIENT``: ``"sync"`` (plain views, :mod:`logto_adapters.sync`, the default) or
      ``"aio"`` (``async def`` views, :mod:`logto_adapters.aio`);
    - ``BASE_URL``: the app's public URL (``https://app.example.com``), used for the
      callback and post-sign-out URLs; recommended behind a proxy;
    - ``TRUST_FORWARDED``: without ``BASE_URL``, read ``X-Forwarded-Proto`` and
      ``X-Forwarded-Host`` for those URLs (only when a proxy you run sets them);
    - ``SESSIONS``: where sessions live, a :class:`~logto_adapters.web.SessionBackend`
      (default: :class:`~logto_adapters.web.ServerSessions`, in this process's memory);
    - ``COOKIE_SECURE``: the default backend's ``Secure`` cookie flag (``True``; turn it off
      only for plain-HTTP development);
    - ``SIGN_IN_URL``: where the guard sends signed-out visitors, a URL name or a path
      (default ``"logto:sign-in"``);
    - ``AFTER_SIGN_OUT_URL``: where Logto sends the browser after sign-out, a URL name or a
      path on the app (default ``"/"``; register it in the Logto Console);
    - ``OPTIONS``: keyword options of ``Logto(...)`` (``timeout``, ``revocation``, ...),
      also given to the resource servers;
    - ``API_AUDIENCE``: the resource indicator of the API this app serves, for
      ``@access_token_required`` (which may name another);
    - ``API_REALM``: the ``realm`` its challenges name (none by default).
    """

    config: LogtoConfig
    client: Client = "sync"
    base_url: str | None = None
    trust_forwarded: bool = False
    sessions: SessionBackend | None = None
    cookie_secure: bool = True
    sign_in_url: str = "logto:sign-in"
    after_sign_out_url: str = "/"
    options: Mapping[str, Any] = field(default_factory=dict)
    api_audience: str | None = None
    api_realm: str | None = None

    @classmethod
    def from_mapping(cls, values: object) -> LogtoSettings:
        """Check ``values`` (what ``settings.LOGTO`` holds); :class:`ImproperlyConfigured`
        names what is wrong (never a secret's value)."""
        if not isinstance(values, Mapping):
            raise ImproperlyConfigured(f"settings.{SETTING} must be a dict")
        own = {key: values[key] for key in values if key in OWN_KEYS}
        client = own.get("CLIENT", "sync")
        if client not in ("sync", "aio"):
            raise ImproperlyConfigured(f'settings.{SETTING}["CLIENT"] must be "sync" or "aio"')
        for key in ("BASE_URL", "API_AUDIENCE", "API_REALM"):
            if own.get(key) is not None and not isinstance(own[key], str):
                raise ImproperlyConfigured(f'settings.{SETTING}["{key}"] must be a string')
        for key in ("SIGN_IN_URL", "AFTER_SIGN_OUT_URL"):
            if key in own and not (isinstance(own[key], str) and own[key]):
                raise ImproperlyConfigured(
                    f'settings.{SETTING}["{key}"] must be a URL name or path'
                )
        for key in ("TRUST_FORWARDED", "COOKIE_SECURE"):
            if key in own and not isinstance(own[key], bool):
                raise ImproperlyConfigured(f'settings.{SETTING}["{key}"] must be True or False')
        sessions = own.get("SESSIONS")
        if sessions is not None and not callable(getattr(sessions, "open", None)):
            raise ImproperlyConfigured(
                f'settings.{SETTING}["SESSIONS"] must be a session backend such as '
                "logto_adapters.web.ServerSessions() or CookieSessions(CookieCipher(keys))"
            )
        options = own.get("OPTIONS", {})
        if not isinstance(options, Mapping):
            raise ImproperlyConfigured(f'settings.{SETTING}["OPTIONS"] must be a dict')
        settings = cls(
            config=_config(values, own.get("CONFIG")),
            client=client,
            base_url=own.get("BASE_URL") or None,
            trust_forwarded=own.get("TRUST_FORWARDED", False),
            sessions=sessions,
            cookie_secure=own.get("COOKIE_SECURE", True),
            sign_in_url=own.get("SIGN_IN_URL", "logto:sign-in"),
            after_sign_out_url=own.get("AFTER_SIGN_OUT_URL", "/"),
            options=dict(options),
            api_audience=own.get("API_AUDIENCE") or None,
            api_realm=own.get("API_REALM") or None,
        )
        if settings.base_url is not None:
            try:  # refused now rather than at the first sign-in
                external_origin(WebRequest("GET", "http://localhost/"), base_url=settings.base_url)
            except LogtoUsageError as error:
                raise ImproperlyConfigured(f'settings.{SETTING}["BASE_URL"]: {error}') from None
        return settings

    @classmethod
    def from_django(cls) -> LogtoSettings:
        """Read and check ``settings.LOGTO``."""
        from django.conf import settings

        if not hasattr(settings, SETTING):
            raise ImproperlyConfigured(
                f"settings.{SETTING} is missing: set it to a dict with at least ENDPOINT and "
                "APP_ID (see docs/django.md)"
            )
        return cls.from_mapping(getattr(settings, SETTING))


def _config(values: Mapping[str, Any], ready: object) -> LogtoConfig:
    fields = {key.lower(): value for key, value in values.items() if key not in OWN_KEYS}
    if ready is not None:
        if not isinstance(ready, LogtoConfig) or fields:
            raise ImproperlyConfigured(
                f'settings.{SETTING}["CONFIG"] must be a LogtoConfig, and then the only '
                "configuration given (no ENDPOINT, APP_ID, ... beside it)"
            )
        return ready
    if not fields:
        raise ImproperlyConfigured(f"settings.{SETTING} needs at least ENDPOINT and APP_ID")
    known = {to_snake(name) for name in LogtoConfig.model_fields}
    unknown = sorted(key for key in values if key not in OWN_KEYS and key.lower() not in known)
    if unknown:
        allowed = sorted({name.upper() for name in known} | OWN_KEYS)
        raise ImproperlyConfigured(
            f"settings.{SETTING} has unknown keys {unknown}; the keys are {allowed}"
        )
    try:
        return LogtoConfig(**fields)
    except ConfigError as error:  # its messages name fields, never secret values
        raise ImproperlyConfigured(f"settings.{SETTING}: {error}") from error
    except TypeError as error:
        raise ImproperlyConfigured(f"settings.{SETTING}: {error}") from None


class DjangoLogto:
    """The app's one :class:`~logto_adapters.sync.Logto` (or :class:`~logto_adapters.aio.Logto`
    with ``CLIENT`` ``"aio"``) and its session backend. Made from the settings at first use
    (:func:`get_logto_app`); every request gets its own session of it."""

    def __init__(self, settings: LogtoSettings) -> None:
        self.settings = settings
        # Imported here: the sync flavour needs `requests`, the async one `httpx`, and an app
        # installs only the one it uses.
        flavour: Any = importlib.import_module(f"logto_adapters.{settings.client}")
        self.logto: sync.Logto | aio.Logto = flavour.Logto(settings.config, **settings.options)
        self.sessions: SessionBackend = (
            settings.sessions
            if settings.sessions is not None
            else ServerSessions(secure=settings.cookie_secure)
        )
        self.resource_servers: dict[tuple[str, str], Any] = {}
        """The ``LogtoResourceServer`` of each (flavour, audience), made by
        :func:`logto_adapters.django.api.resource_server`."""

    @property
    def is_async(self) -> bool:
        return self.settings.client == "aio"

    def origin(self, request: WebRequest) -> str:
        """The app's origin for URLs given to Logto (``BASE_URL``, else the request's, with
        ``X-Forwarded-*`` only when trusted)."""
        return external_origin(
            request, base_url=self.settings.base_url, trust_forwarded=self.settings.trust_forwarded
        )

    def _closables(self) -> list[tuple[bool, Any]]:
        servers = [
            (flavour == "aio", server) for (flavour, _), server in self.resource_servers.items()
        ]
        return [(self.is_async, self.logto), *servers]

    def close(self) -> None:
        """Close the ``Logto`` (waiting, bounded, for sign-out revocations still running) and
        the resource servers. Outside a running event loop; in one, ``await aclose()``."""
        for is_async, closable in self._closables():
            if is_async:
                asyncio.run(closable.aclose())
            else:
                closable.close()

    async def aclose(self) -> None:
        """:meth:`close`, from a coroutine."""
        for is_async, closable in self._closables():
            if is_async:
                await closable.aclose()
            else:
                closable.close()

    def __repr__(self) -> str:
        return f"DjangoLogto(client={self.settings.client!r}, sessions={self.sessions!r})"


_lock = threading.Lock()
_app: DjangoLogto | None = None


def get_logto_app() -> DjangoLogto:
    """The app's :class:`DjangoLogto`, made from ``settings.LOGTO`` at the first call."""
    global _app
    with _lock:
        if _app is None:
            _app = DjangoLogto(LogtoSettings.from_django())
        return _app


def reset_logto_app() -> None:
    """Forget (and close) the app's object, so that the next request reads the settings
    again. Done when a test changes ``settings.LOGTO`` (``override_settings``)."""
    global _app
    with _lock:
        app, _app = _app, None
    clear_url_caches()  # the ready routes follow LOGTO["CLIENT"]
    if app is None:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        app.close()
    # Within a running loop (an async test), closing would block it: the connections go
    # with the object, and the interpreter's exit still waits for revocations.


def _on_setting_changed(*, setting: str, **_: Any) -> None:
    if setting == SETTING:
        reset_logto_app()


setting_changed.connect(_on_setting_changed, dispatch_uid="logto_adapters.django.conf")

__all__ = [
    "OWN_KEYS",
    "SETTING",
    "Client",
    "DjangoLogto",
    "LogtoSettings",
    "get_logto_app",
    "reset_logto_app",
]
