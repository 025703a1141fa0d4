"""The Flask sample app on :mod:`logto_adapters.flask`, with plain views (``client="sync"``)
or ``async def`` views (``client="aio"``).

    python -m logto_adapters.demo --serve --framework flask [--client sync|aio]

Routes: ``/`` (the signed-in user's ID-token claims as JSON, or a sign-in link),
``/sign-in``, ``/callback``, ``/sign-out``, ``/back-channel-logout`` (the integration's; set
``APP_BASE_URL/back-channel-logout`` as the app's back-channel logout URI), ``/protected``
(signed-in users only: the claims of an access token for each of ``LOGTO_RESOURCES``, and of
an organization token for ``LOGTO_ORGANIZATION_ID`` when set), and ``/api/hello``, an API for
the first of ``LOGTO_RESOURCES`` (``{"sub": ...}`` for a bearer token granting ``read``; 401
or 403 with ``WWW-Authenticate`` otherwise).

Configured from the environment (``settings.py``), plus where sessions live:
``APP_SESSIONS=server`` (the default: tokens in this process, a session id in the cookie) or
``cookie`` (encrypted cookies, keys from ``APP_COOKIE_KEYS``, space-separated Fernet keys,
newest first; a fresh key for this run when unset).
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.fernet import Fernet
from flask import Flask, jsonify

from logto_adapters import aio, sync
from logto_adapters.cookie_session import CookieCipher
from logto_adapters.flask import (
    AsyncLogtoFlask,
    LogtoFlask,
    access_token_claims,
    access_token_required,
)
from logto_adapters.web import CookieSessions, ServerSessions, SessionBackend

from .settings import Settings, from_environment

SIGNED_OUT = "Not signed in. <a href='/sign-in'>Sign in</a>"
API_SCOPE = "read"
"""What ``/api/hello`` asks of a token."""


def sessions_from_environment(base_url: str) -> SessionBackend:
    """``APP_SESSIONS`` and ``APP_COOKIE_KEYS``; cookies are ``Secure`` unless the app is
    served over plain http (development)."""
    secure = not base_url.lower().startswith("http:")
    if os.environ.get("APP_SESSIONS", "server") == "cookie":
        keys = os.environ.get("APP_COOKIE_KEYS", "").split() or [Fernet.generate_key().decode()]
        return CookieSessions(CookieCipher(keys, secure=secure))
    return ServerSessions(secure=secure)


def config_of(settings: Settings) -> sync.LogtoConfig:
    return sync.LogtoConfig(
        endpoint=settings.endpoint,
        appId=settings.app_id,
        appSecret=settings.app_secret,
        scopes=[sync.UserInfoScope.email, sync.UserInfoScope.organizations, *settings.scopes],
        resources=settings.resources,
    )


def create_app(
    client: str = "sync",
    settings: Settings | None = None,
    *,
    sessions: SessionBackend | None = None,
    logto: sync.Logto | aio.Logto | None = None,
) -> Flask:
    """The sample app; ``logto`` (a ``Logto`` of the ``client``'s flavour) for tests that set
    its clock or timeouts."""
    settings = settings if settings is not None else from_environment()
    sessions = sessions if sessions is not None else sessions_from_environment(settings.base_url)
    app = Flask(__name__)
    if client == "aio" and not isinstance(logto, sync.Logto):
        _async_routes(app, settings, sessions, logto)
    elif client == "sync" and not isinstance(logto, aio.Logto):
        _sync_routes(app, settings, sessions, logto)
    else:
        raise ValueError(f"client must be 'sync' or 'aio' (and logto of its kind), not {client!r}")
    return app


def _sync_routes(
    app: Flask, settings: Settings, sessions: SessionBackend, logto: sync.Logto | None
) -> None:
    integration = LogtoFlask(
        app,
        None if logto is not None else config_of(settings),
        logto=logto,
        sessions=sessions,
        base_url=settings.base_url,
    )

    @app.get("/")
    def home() -> Any:
        if not integration.session.isAuthenticated():
            return SIGNED_OUT
        return integration.session.getIdTokenClaims().model_dump(exclude_unset=True)

    @app.get("/protected")
    @integration.login_required
    def protected() -> Any:
        session = integration.session
        tokens = [session.getAccessTokenClaims(resource) for resource in settings.resources]
        if settings.organization_id:
            tokens.append(session.getOrganizationTokenClaims(settings.organization_id))
        return {
            "sub": session.getIdTokenClaims().sub,
            "tokens": [_summary(claims) for claims in tokens],
        }

    _api_route(app, settings, sync.LogtoResourceServer, integration.logto)


def _async_routes(
    app: Flask, settings: Settings, sessions: SessionBackend, logto: aio.Logto | None
) -> None:
    integration = AsyncLogtoFlask(
        app,
        None if logto is not None else config_of(settings),
        logto=logto,
        sessions=sessions,
        base_url=settings.base_url,
    )

    @app.get("/")
    async def home() -> Any:
        if not integration.session.isAuthenticated():
            return SIGNED_OUT
        return integration.session.getIdTokenClaims().model_dump(exclude_unset=True)

    @app.get("/protected")
    @integration.login_required
    async def protected() -> Any:
        session = integration.session
        tokens = [await session.getAccessTokenClaims(resource) for resource in settings.resources]
        if settings.organization_id:
            tokens.append(await session.getOrganizationTokenClaims(settings.organization_id))
        return {
            "sub": session.getIdTokenClaims().sub,
            "tokens": [_summary(claims) for claims in tokens],
        }

    _api_route(app, settings, aio.LogtoResourceServer, integration.logto)


def _api_route(
    app: Flask,
    settings: Settings,
    kind: type[sync.LogtoResourceServer] | type[aio.LogtoResourceServer],
    logto: sync.Logto | aio.Logto,
) -> None:
    """``/api/hello``, for the first configured API resource (the same client kind and
    clock as the sign-in's)."""
    if not settings.resources:

        @app.get("/api/hello")
        def no_api() -> Any:
            return jsonify(error="no API resource configured (LOGTO_RESOURCES)"), 404

        return
    api = kind(settings.endpoint, settings.resources[0], runtime=logto.runtime)

    @app.get("/api/hello")
    @access_token_required(api, [API_SCOPE])
    def hello() -> Any:
        return {"sub": access_token_claims().sub}


def _summary(claims: aio.AccessTokenClaims) -> dict[str, Any]:
    """What an access token is for (never the token itself)."""
    return {"aud": claims.aud, "scope": claims.scope, "exp": claims.exp}
