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
* :func:`logto_router`: the sign-in, callback and sign-out routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ._async.client import LogtoSession
from .starlette import (
    LogtoAuth,
    LogtoMiddleware,
    SignInRequired,
    logto_auth,
    logto_session,
    require_sign_in,
)

LogtoSessionDep = Annotated[LogtoSession, Depends(logto_session)]
"""The request's session (``session: LogtoSessionDep``), whether signed in or not."""

SignedInSession = Annotated[LogtoSession, Depends(require_sign_in)]
"""The request's session, its user signed in; else a redirect to sign-in, or 401."""


def logto_router(auth: LogtoAuth) -> APIRouter:
    """The sign-in, callback and sign-out routes of ``auth``, to ``app.include_router``
    (left out of the OpenAPI schema)."""
    return APIRouter(routes=auth.routes())


__all__ = [
    "LogtoAuth",
    "LogtoMiddleware",
    "LogtoSessionDep",
    "SignInRequired",
    "SignedInSession",
    "logto_auth",
    "logto_router",
    "logto_session",
    "require_sign_in",
]
