"""Logto for FastAPI apps: dependencies over :mod:`logto_adapters.starlette`.

::

    logto = Logto(config)
    auth = LogtoAuth(logto, base_url="https://app.example.com")
    app = FastAPI()
    app.add_middleware(LogtoMiddleware, auth=auth)
    app.include_router(logto_router(auth))

    @app.get("/profile")
    async def profile(session: SignedInSession) -> dict[str, str]:
        return {"sub": session.getIdTokenClaims().sub}

* :data:`LogtoSessionDep`: the request's :class:`~logto_adapters.aio.LogtoSession`,
  signed in or not;
* :data:`SignedInSession`: the same, for a signed-in user only; otherwise the request gets
  :class:`~logto_adapters.starlette.SignInRequired`: a redirect to sign-in (with ``next``)
  for a page, 401 for a request that wants JSON;
* :func:`logto_router`: the sign-in, callback and sign-out routes;
* :class:`RequireAccessToken`: for an API receiving Logto access tokens, the claims of a
  valid bearer token that allows the request (scopes, organization, organization roles);
  otherwise 401 / 403 (400 for a malformed header) with the RFC 6750 ``WWW-Authenticate``
  challenge, or 503 when Logto could not be asked::

      api = LogtoResourceServer("https://tenant.logto.app", "https://api.example.com")
      ReadToken = Annotated[AccessTokenClaims, Depends(RequireAccessToken(api, ["read"]))]

      @app.get("/api/hello")
      async def hello(claims: ReadToken) -> dict[str, str]:
          return {"sub": claims.sub}

  It needs neither the middleware nor a session, and shows in the OpenAPI schema as an HTTP
  bearer scheme.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from logto_core.models import AccessTokenClaims

from ._async.client import LogtoResourceServer, LogtoSession
from .starlette import (
    AccessTokenRefused,
    LogtoAuth,
    LogtoMiddleware,
    SignInRequired,
    logto_auth,
    logto_session,
    require_sign_in,
    verify_bearer,
)

LogtoSessionDep = Annotated[LogtoSession, Depends(logto_session)]
"""The request's session (``session: LogtoSessionDep``), whether signed in or not."""

SignedInSession = Annotated[LogtoSession, Depends(require_sign_in)]
"""The request's session, its user signed in; else a redirect to sign-in, or 401."""


def logto_router(auth: LogtoAuth) -> APIRouter:
    """The sign-in, callback and sign-out routes of ``auth``, to ``app.include_router``
    (left out of the OpenAPI schema)."""
    return APIRouter(routes=auth.routes())


class RequireAccessToken(SecurityBase):
    """A dependency for API routes: the claims of the request's bearer token, verified by
    ``api`` (one :class:`~logto_adapters.aio.LogtoResourceServer` per API, made once) and
    allowing the request: every one of ``scopes``; with ``organization_id``, for that
    organization; each of ``organization_roles`` held there. Otherwise
    :class:`~logto_adapters.starlette.AccessTokenRefused` answers (see
    :func:`~logto_adapters.starlette.verify_bearer`). For an organization known only from
    the path, call ``verify_bearer`` in a dependency of your own."""

    def __init__(
        self,
        api: LogtoResourceServer,
        scopes: Sequence[str] | str | None = None,
        *,
        organization_id: str | None = None,
        organization_roles: Sequence[str] | str | None = None,
        scheme_name: str | None = None,
        description: str | None = None,
    ) -> None:
        self.api = api
        self.scopes = scopes
        self.organization_id = organization_id
        self.organization_roles = organization_roles
        self.model = HTTPBearerModel(bearerFormat="JWT", description=description)
        self.scheme_name = scheme_name or "LogtoAccessToken"

    async def __call__(self, request: Request) -> AccessTokenClaims:
        return await verify_bearer(
            request,
            self.api,
            self.scopes,
            self.organization_id,
            organizationRoles=self.organization_roles,
        )


__all__ = [
    "AccessTokenRefused",
    "LogtoAuth",
    "LogtoMiddleware",
    "LogtoSessionDep",
    "RequireAccessToken",
    "SignInRequired",
    "SignedInSession",
    "logto_auth",
    "logto_router",
    "logto_session",
    "require_sign_in",
    "verify_bearer",
]
