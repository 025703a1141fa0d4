"""The small endpoints: discovery, JWKS, userinfo, revocation, introspection, end session."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from logto_core.http import HttpRequest, HttpResponse

from ._wire import NO_STORE, Rejection
from .authorize import redirect_with
from .claims import USER_SCOPES, userinfo_claims
from .clientauth import authenticate_client
from .directory import Directory
from .grants import GrantStore
from .keys import KeyRing
from .tokens import scope_text

_GRANT_TYPES = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange",
]
_AUTH_METHODS = [
    "client_secret_basic",
    "client_secret_jwt",
    "client_secret_post",
    "private_key_jwt",
    "none",
]
_CLAIMS = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "sid",
    "name",
    "username",
    "picture",
    "created_at",
    "updated_at",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "roles",
    "organizations",
    "organization_roles",
    "custom_data",
    "identities",
    "sso_identities",
    "organization_data",
]


@dataclass(frozen=True, slots=True)
class Paths:
    """Absolute URLs of every endpoint, derived from the issuer."""

    issuer: str

    def url(self, path: str) -> str:
        return f"{self.issuer}{path}"

    @property
    def authorization(self) -> str:
        return self.url("/auth")


def discovery(paths: Paths, keys: KeyRing) -> HttpResponse:
    """The OpenID Provider metadata, as Logto advertises it."""
    document: dict[str, Any] = {
        "issuer": paths.issuer,
        "authorization_endpoint": paths.authorization,
        "token_endpoint": paths.url("/token"),
        "userinfo_endpoint": paths.url("/me"),
        "jwks_uri": paths.url("/jwks"),
        "revocation_endpoint": paths.url("/token/revocation"),
        "introspection_endpoint": paths.url("/token/introspection"),
        "end_session_endpoint": paths.url("/session/end"),
        "device_authorization_endpoint": paths.url("/device/auth"),
        "pushed_authorization_request_endpoint": paths.url("/request"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["form_post", "fragment", "query"],
        "grant_types_supported": _GRANT_TYPES,
        "subject_types_supported": ["public"],
        "scopes_supported": sorted(USER_SCOPES | {"offline_access"}),
        "claims_supported": _CLAIMS,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "id_token_signing_alg_values_supported": [keys.alg],
        "token_endpoint_auth_methods_supported": _AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "RS256", "ES256", "ES384"],
        "revocation_endpoint_auth_methods_supported": _AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": _AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }
    return HttpResponse.json(200, document)


def jwks(keys: KeyRing) -> HttpResponse:
    """The public keys; ``no-cache`` as Logto serves it."""
    return HttpResponse.json(200, keys.jwks(), {"cache-control": "no-cache"})


def _bearer(request: HttpRequest) -> str:
    header = request.header("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Rejection("invalid_token", "no access token provided")
    return value.strip()


def _invalid_token(issuer: str, description: str) -> Rejection:
    challenge = f'Bearer realm="{issuer}", error="invalid_token", error_description="{description}"'
    return Rejection("invalid_token", description, headers={"www-authenticate": challenge})


def userinfo(
    request: HttpRequest, *, issuer: str, directory: Directory, store: GrantStore, now: float
) -> HttpResponse:
    """Claims for an opaque access token issued without a resource."""
    try:
        value = _bearer(request)
    except Rejection as rejection:
        raise _invalid_token(issuer, rejection.description) from None
    token = store.active_access(value, now)
    if token is None:
        # JWT access tokens (for an API or organization) are never accepted here.
        raise _invalid_token(issuer, "invalid token provided")
    user = directory.users.get(token.sub)
    if user is None or user.suspended:
        raise _invalid_token(issuer, "invalid token provided")
    return HttpResponse.json(200, userinfo_claims(directory, user, set(token.scopes)), NO_STORE)


def _token_param(params: dict[str, str]) -> str:
    token = params.get("token")
    if token is None:
        raise Rejection("invalid_request", "missing required parameter 'token'")
    hint = params.get("token_type_hint")
    if hint is not None and hint not in ("access_token", "refresh_token"):
        raise Rejection("unsupported_token_type", "unsupported token_type_hint")
    return token


def revocation(
    request: HttpRequest, params: dict[str, str], *, directory: Directory, store: GrantStore
) -> HttpResponse:
    """RFC 7009: revoking a refresh token revokes its grant; unknown tokens still get 200."""
    client = authenticate_client(request, params, directory)
    token = _token_param(params)
    refresh = store.refresh_tokens.get(token)
    if refresh is not None and store.grants[refresh.grant_id].client_id == client.client_id:
        store.revoke_grant(refresh.grant_id)
    access = store.access_tokens.get(token)
    if access is not None and access.client_id == client.client_id:
        access.revoked = True
    return HttpResponse.build(200, NO_STORE)


def introspection(
    request: HttpRequest,
    params: dict[str, str],
    *,
    issuer: str,
    directory: Directory,
    store: GrantStore,
    now: float,
) -> HttpResponse:
    """RFC 7662 for opaque tokens of the calling client; everything else is inactive."""
    client = authenticate_client(request, params, directory)
    token = _token_param(params)
    body: dict[str, Any] = {"active": False}
    access = store.active_access(token, now)
    if access is not None and access.client_id == client.client_id:
        body = {
            "active": True,
            "client_id": access.client_id,
            "sub": access.sub,
            "scope": scope_text(access.scopes),
            "iat": int(access.issued_at),
            "exp": int(access.expires_at),
            "iss": issuer,
            "token_type": "Bearer",
        }
        if access.actor is not None:
            body["act"] = {"sub": access.actor}
    elif store.is_refresh_active(token, now):
        refresh = store.refresh_tokens[token]
        grant = store.grants[refresh.grant_id]
        if grant.client_id == client.client_id:
            body = {
                "active": True,
                "client_id": grant.client_id,
                "sub": grant.sub,
                "scope": scope_text(grant.scopes),
                "iat": int(refresh.issued_at),
                "exp": int(refresh.expires_at),
                "iss": issuer,
                "token_type": "refresh_token",
            }
    return HttpResponse.json(200, body, NO_STORE)


def _confirmation_page(target: str | None) -> HttpResponse:
    where = f" and return to {html.escape(target)}" if target else ""
    page = (
        "<!DOCTYPE html><html><head><title>Sign out</title></head><body>"
        f"<p>Do you want to sign out{where}?</p></body></html>"
    )
    return HttpResponse.build(200, {"content-type": "text/html; charset=utf-8"}, page.encode())


def end_session(
    params: dict[str, str], *, keys: KeyRing, directory: Directory, ended: list[str]
) -> HttpResponse:
    """RP-initiated logout: checks the client and its post-logout redirect URI.

    With a valid ``id_token_hint`` it ends the session (its ``sid`` is appended to ``ended``)
    and answers 303 to the redirect URI with ``state``; without one it shows a confirmation
    page, as Logto does. Refresh tokens are not revoked.
    """
    hint_claims: dict[str, Any] | None = None
    hint = params.get("id_token_hint")
    if hint is not None:
        hint_claims = keys.verify(hint)
        if hint_claims is None:
            raise Rejection("invalid_request", "could not validate id_token_hint")
    client_id = params.get("client_id")
    if hint_claims is not None:
        audience = hint_claims.get("aud")
        if client_id is not None and audience != client_id:
            raise Rejection(
                "invalid_request", "client_id does not match the id_token_hint audience"
            )
        client_id = audience if isinstance(audience, str) else None
    target = params.get("post_logout_redirect_uri")
    client = directory.clients.get(client_id) if client_id is not None else None
    if client_id is not None and client is None:
        raise Rejection("invalid_client", "client is invalid")
    if target is not None:
        if client is None:
            raise Rejection(
                "invalid_request", "post_logout_redirect_uri can only be used with a client"
            )
        if target not in client.post_logout_redirect_uris:
            raise Rejection("invalid_request", "post_logout_redirect_uri not registered")
    if hint_claims is None:
        return _confirmation_page(target)
    sid = hint_claims.get("sid")
    if isinstance(sid, str):
        ended.append(sid)
    if target is None:
        return HttpResponse.build(200, {"content-type": "text/html; charset=utf-8"}, b"Signed out")
    location = redirect_with(target, {"state": params.get("state")})
    return HttpResponse.build(303, {"location": location})
