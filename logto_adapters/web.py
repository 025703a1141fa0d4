"""What every web-framework integration needs, written once and framework-free.

A framework integration (Flask, Starlette/FastAPI, Django) turns its request into a
:class:`WebRequest`, and answers with what these pieces decide:

* **where the app is**: :func:`external_origin` builds the app's own origin for the callback
  URL from the configured base URL, or from the request; ``X-Forwarded-Proto`` and
  ``X-Forwarded-Host`` are read only when the app says its proxy sets them
  (``trust_forwarded``), since any client can send them;
* **where to go after sign-in**: :func:`remember_return_to` keeps a safe "return to" path
  (a relative path on the app's own origin, :func:`logto_core.return_to.safe_return_to`) in
  the session storage across the round trip to Logto, :func:`take_return_to` reads and
  forgets it;
* **pages or APIs**: :func:`wants_json` tells a request that wants a 401 from one that
  wants a redirect to the sign-in page;
* **where sessions live**: a :class:`SessionBackend` opens the storage of one request and
  says what cookies to set: :class:`CookieSessions` (the encrypted cookie session of
  :mod:`logto_adapters.cookie_session`) or :class:`ServerSessions` (tokens kept on the
  server in a :class:`~logto_adapters.session_registry.SessionRegistry`, under a random
  session id that the cookie carries and that is replaced at sign-in).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from logto_core.errors import LogtoUsageError
from logto_core.return_to import safe_return_to
from logto_core.storage import Storage

from .cookie_session import CookieCipher, SetCookie
from .session_registry import ServerSession, SessionRegistry, SessionStore

RETURN_TO_KEY = "logtoReturnTo"
"""The storage key of the path to return to after sign-in (next to the SDK's own key)."""

MAX_RETURN_TO = 2048
"""Longest "return to" path kept (a longer one falls back to the default)."""


@dataclass(frozen=True, slots=True)
class WebRequest:
    """What the integrations read of a request. ``url`` is the URL as the framework saw it
    (its scheme and host, the path and query); ``headers`` have lower-case names."""

    method: str
    url: str
    # Out of repr: headers carry bearer tokens, cookies session ids.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    cookies: Mapping[str, str] = field(default_factory=dict, repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# ---- where the app is --------------------------------------------------------------------

_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-:[]")


def _origin_of(scheme: str, host: str) -> str | None:
    scheme, host = scheme.strip().lower(), host.strip().lower()
    if scheme not in ("http", "https") or not host or not set(host) <= _HOST_CHARS:
        return None
    return f"{scheme}://{host}"


def external_origin(
    request: WebRequest, *, base_url: str | None = None, trust_forwarded: bool = False
) -> str:
    """The app's origin as the browser sees it: ``base_url``'s when configured (the safe
    choice); else, with ``trust_forwarded``, the first ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` values (a proxy the app trusts sets them; anyone else can send
    them, so they are ignored by default); else the request's own. A malformed value is
    refused (``usage.forwarded``) rather than put in a callback URL."""
    if base_url:
        parts = urlsplit(base_url)
        origin = _origin_of(parts.scheme, parts.netloc)
        if origin is None:
            raise LogtoUsageError(
                "the base URL must be an http(s) URL such as https://app.example.com",
                code="usage.base_url",
            )
        return origin
    own = urlsplit(request.url)
    scheme, host = own.scheme, own.netloc
    if trust_forwarded:
        forwarded_proto = request.header("x-forwarded-proto")
        forwarded_host = request.header("x-forwarded-host")
        if forwarded_proto:
            scheme = forwarded_proto.split(",")[0]
        if forwarded_host:
            host = forwarded_host.split(",")[0]
    origin = _origin_of(scheme, host)
    if origin is None:
        raise LogtoUsageError(
            "the request's scheme or host (or the X-Forwarded-* headers trusted) is not a "
            "valid origin; configure the app's base URL",
            code="usage.forwarded",
        )
    return origin


# ---- where to go after sign-in -----------------------------------------------------------


def remember_return_to(storage: Storage, target: str | None) -> None:
    """Keep ``target`` for after the sign-in, if it is a safe path (else nothing)."""
    safe = safe_return_to(target, default="")
    if safe and len(safe) <= MAX_RETURN_TO:
        storage.set(RETURN_TO_KEY, safe)
    elif storage.get(RETURN_TO_KEY) is not None:
        storage.delete(RETURN_TO_KEY)


def take_return_to(storage: Storage, default: str = "/") -> str:
    """The path kept by :func:`remember_return_to` (checked again), forgotten; ``default``
    when there is none."""
    target = storage.get(RETURN_TO_KEY)
    if target is None:
        return default
    storage.delete(RETURN_TO_KEY)
    return safe_return_to(target, default)


# ---- pages or APIs -----------------------------------------------------------------------


def wants_json(request: WebRequest) -> bool:
    """Whether an unauthenticated request should get a 401 rather than a redirect: it
    prefers JSON to HTML (``Accept``), or it is a script's (``X-Requested-With``), or it
    carries a bearer token (an API client)."""
    accept = (request.header("accept") or "").lower()
    if "application/json" in accept and "text/html" not in accept:
        return True
    if (request.header("x-requested-with") or "").lower() == "xmlhttprequest":
        return True
    return (request.header("authorization") or "").lower().startswith("bearer ")


# ---- where sessions live -----------------------------------------------------------------


class OpenedSession(Protocol):
    """The storage of one request, and what to tell the browser afterwards."""

    @property
    def storage(self) -> Storage: ...

    def rotate(self) -> None:
        """Give the session a new identity (at sign-in: a session id an attacker planted
        before it must not become a signed-in one)."""

    def set_cookies(self) -> list[SetCookie]:
        """The cookies to set on the response."""


class SessionBackend(Protocol):
    """Where an app keeps its sessions."""

    def open(self, request: WebRequest) -> OpenedSession: ...


class _CookieOpened:
    def __init__(self, storage: Storage, pending: Callable[[], list[SetCookie]]) -> None:
        self.storage = storage
        self._pending = pending

    def rotate(self) -> None:
        """Nothing to do: the cookie is encrypted anew at every write."""

    def set_cookies(self) -> list[SetCookie]:
        return self._pending()


class CookieSessions:
    """Sessions in encrypted cookies (:class:`~logto_adapters.cookie_session.CookieCipher`):
    nothing kept on the server; for small sessions."""

    def __init__(self, cipher: CookieCipher) -> None:
        self.cipher = cipher

    def open(self, request: WebRequest) -> OpenedSession:
        storage = self.cipher.session(request.cookies)
        return _CookieOpened(storage, storage.set_cookies)


class _ServerStorage(Storage):
    """One request's view of a server-side session: nothing is created until the first
    write (an anonymous visit costs no session and sets no cookie); every call goes to the
    registry, so a request reads what a concurrent request of the same session wrote (the
    SDK's saves compare on what the storage holds *now*, with the store's
    ``compare_and_set``: atomic across the workers sharing a Redis registry)."""

    def __init__(self, registry: SessionStore, session_id: str | None) -> None:
        self.registry = registry
        self.session: ServerSession | None = registry.get(session_id)

    @property
    def session_id(self) -> str | None:
        return self.session.id if self.session is not None else None

    def get(self, key: str) -> str | None:
        return self.session.get(key) if self.session is not None else None

    def set(self, key: str, value: str | None) -> None:
        if self.session is None:
            if value is None:
                return
            self.session = self.registry.create()  # made at the first write
        self.session.set(key, value)

    def delete(self, key: str) -> None:
        self.set(key, None)

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        if self.session is None:
            if value is None or expected is not None:
                return expected is None  # nothing stored: absent is what it holds
            self.session = self.registry.create()
        return self.session.compare_and_set(key, expected, value)


class _ServerOpened:
    def __init__(self, backend: ServerSessions, request: WebRequest) -> None:
        self._backend = backend
        self._given = request.cookies.get(backend.cookie_name)
        self._storage = _ServerStorage(backend.registry, self._given)

    @property
    def storage(self) -> Storage:
        return self._storage

    def rotate(self) -> None:
        current = self._storage.session_id
        if current is not None:
            self._backend.registry.rotate(current)  # the storage follows its session

    def set_cookies(self) -> list[SetCookie]:
        current = self._storage.session_id
        if current is None or current == self._given:
            return []
        backend = self._backend
        return [
            SetCookie(
                backend.cookie_name,
                current,
                backend.max_age,
                backend.path,
                backend.secure,
                backend.same_site,
                backend.domain,
            )
        ]


class ServerSessions:
    """Sessions kept on the server in ``registry`` (a
    :class:`~logto_adapters.session_registry.SessionRegistry` of this process by default;
    a :class:`~logto_adapters.redis_registry.RedisSessionRegistry` for several workers),
    the browser holding only a random session id in an ``HttpOnly`` cookie: sessions of any
    size, a sign-out that ends them on the server, and back-channel logout (pass
    :attr:`registry` as ``sessions`` to ``Logto.handleBackchannelLogout``). The id is made at
    the first write and replaced at sign-in (``rotate``)."""

    def __init__(
        self,
        registry: SessionStore | None = None,
        *,
        cookie_name: str = "logto_sid",
        max_age: int = 14 * 24 * 3600,
        path: str = "/",
        secure: bool = True,
        same_site: str = "Lax",
        domain: str | None = None,
    ) -> None:
        if same_site not in ("Lax", "Strict", "None") or (same_site == "None" and not secure):
            raise LogtoUsageError(
                'same_site must be "Lax", "Strict" or "None" (which needs secure)',
                code="usage.cookie_same_site",
            )
        self.registry: SessionStore = registry if registry is not None else SessionRegistry()
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.path = path
        self.secure = secure
        self.same_site = same_site
        self.domain = domain

    def open(self, request: WebRequest) -> OpenedSession:
        return _ServerOpened(self, request)


__all__ = [
    "MAX_RETURN_TO",
    "RETURN_TO_KEY",
    "CookieSessions",
    "OpenedSession",
    "ServerSessions",
    "SessionBackend",
    "WebRequest",
    "external_origin",
    "remember_return_to",
    "take_return_to",
    "wants_json",
]
