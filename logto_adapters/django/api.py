"""Protecting API views: ``@access_token_required`` verifies the request's bearer token.

The token must be a Logto access token for the API (RFC 9068, verified by
:class:`~logto_adapters.sync.LogtoResourceServer`) granting the scopes asked for (and, when
named, for the organization and its roles). The view then finds the verified claims on
``request.access_token_claims``. Otherwise the answer is RFC 6750's: 401 (no token, or one
not valid here), 400 (a malformed header) or 403 (a missing scope, organization or role),
with its ``WWW-Authenticate`` challenge; 503 when Logto cannot be reached to fetch its keys.

A plain view is verified with the sync resource server, an ``async def`` view with the
async one, each made once per app and audience. No session is involved (nor the
middleware), and the view is exempt from Django's CSRF check: a bearer token is never sent
by a browser on its own, so a cross-site form cannot forge such a request.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, JsonResponse

from logto_core.errors import LogtoError
from logto_core.models import AccessTokenClaims
from logto_core.protocol.bearer import AccessTokenError

from .conf import DjangoLogto, get_logto_app
from .views import csrf_exempt_view as _csrf_exempt

logger = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])
CLAIMS_ATTRIBUTE = "access_token_claims"
RETRY_AFTER = "10"


class ApiHttpRequest(HttpRequest):
    """An ``HttpRequest`` let through by :func:`access_token_required`, for annotations."""

    access_token_claims: AccessTokenClaims


_lock = threading.Lock()


def resource_server(app: DjangoLogto, audience: str, flavour: str) -> Any:
    """The app's ``LogtoResourceServer`` of ``flavour`` (``"sync"`` or ``"aio"``) for
    ``audience``, made at first use with the app's endpoint, clock tolerance and options."""
    key = (flavour, audience)
    with _lock:
        found = app.resource_servers.get(key)
        if found is None:
            module: Any = importlib.import_module(f"logto_adapters.{flavour}")
            config = app.settings.config
            found = module.LogtoResourceServer(
                config.endpoint,
                audience,
                realm=app.settings.api_realm,
                clockTolerance=config.clockTolerance,
                jwksMaxAge=config.jwksMaxAge,
                jwksRefetchCooldown=config.jwksRefetchCooldown,
                discoveryMaxAge=config.discoveryMaxAge,
                allowInsecureLoopback=config.allowInsecureLoopback,
                **app.settings.options,
            )
            app.resource_servers[key] = found
        return found


def _audience(app: DjangoLogto, given: str | None) -> str:
    audience = given if given is not None else app.settings.api_audience
    if not audience:
        raise ImproperlyConfigured(
            'access_token_required needs the API\'s resource indicator: set LOGTO["API_AUDIENCE"] '
            "or pass audience="
        )
    return audience


def refusal(error: AccessTokenError, realm: str | None = None) -> JsonResponse:
    """The RFC 6750 answer to a refused token: its status, challenge and error."""
    body = {"error": error.error or "unauthorized", "error_description": error.error_description}
    response = JsonResponse(body, status=error.status)
    response["WWW-Authenticate"] = error.www_authenticate(realm)
    return response


def unavailable(error: LogtoError) -> JsonResponse:
    """503: the API could not verify (Logto unreachable, or its keys unusable)."""
    logger.warning("access token not verified: %s", error.code)
    response = JsonResponse({"error": "temporarily_unavailable"}, status=503)
    response["Retry-After"] = RETRY_AFTER
    return response


def access_token_required(
    scopes: Sequence[str] | str | None = None,
    *,
    audience: str | None = None,
    organization_id: str | None = None,
    organization_roles: Sequence[str] | str | None = None,
) -> Callable[[View], View]:
    """Let through only requests whose bearer token is a Logto access token for
    ``audience`` (default ``LOGTO["API_AUDIENCE"]``) granting every one of ``scopes`` (and,
    when given, for ``organization_id`` with ``organization_roles``)."""

    def decorate(view: View) -> View:
        if iscoroutinefunction(view):

            @wraps(view)
            async def guarded_async(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                app = get_logto_app()
                server = resource_server(app, _audience(app, audience), "aio")
                try:
                    claims = await server.verifyAuthorization(
                        request.headers.get("Authorization"),
                        scopes,
                        organization_id,
                        organizationRoles=organization_roles,
                    )
                except AccessTokenError as error:
                    return refusal(error)
                except LogtoError as error:
                    return unavailable(error)
                setattr(request, CLAIMS_ATTRIBUTE, claims)
                return await view(request, *args, **kwargs)

            return cast(View, _csrf_exempt(guarded_async))

        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            app = get_logto_app()
            server = resource_server(app, _audience(app, audience), "sync")
            try:
                claims = server.verifyAuthorization(
                    request.headers.get("Authorization"),
                    scopes,
                    organization_id,
                    organizationRoles=organization_roles,
                )
            except AccessTokenError as error:
                return refusal(error)
            except LogtoError as error:
                return unavailable(error)
            setattr(request, CLAIMS_ATTRIBUTE, claims)
            return view(request, *args, **kwargs)

        return cast(View, _csrf_exempt(guarded))

    return decorate


__all__ = [
    "ApiHttpRequest",
    "access_token_required",
    "refusal",
    "resource_server",
    "unavailable",
]
