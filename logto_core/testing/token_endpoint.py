"""The token endpoint: the authorization_code, refresh_token, client_credentials, device_code
and token-exchange grants."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from logto_core.enums import ORGANIZATION_URN_PREFIX, OAuthScope, UserInfoScope
from logto_core.http import HttpRequest, HttpResponse

from ._wire import NO_STORE, Rejection, TokenRequest
from .claims import OIDC_SCOPES
from .clientauth import authenticate_client
from .device import DEVICE_CODE_GRANT, DeviceFlow
from .directory import Client, Directory, User
from .faults import Fault
from .grants import ACCESS_TOKEN_TTL, ORGANIZATION_TOKEN_TTL, Grant, GrantStore
from .token_exchange import TOKEN_EXCHANGE_GRANT, TokenExchange
from .tokens import AccessTokenSpec, TokenMinter, scope_text

SUPPORTED_GRANTS = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    DEVICE_CODE_GRANT,
    TOKEN_EXCHANGE_GRANT,
)
ORGANIZATIONS_SCOPE = UserInfoScope.organizations.value


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """The access token a grant is about to receive: opaque when ``spec`` is ``None``."""

    spec: AccessTokenSpec | None
    opaque_scopes: frozenset[str] = frozenset()


class TokenEndpoint:
    """Answers ``POST /oidc/token``."""

    def __init__(
        self,
        *,
        directory: Directory,
        store: GrantStore,
        minter: TokenMinter,
        devices: DeviceFlow,
        exchange: TokenExchange,
    ) -> None:
        self._directory = directory
        self._store = store
        self._minter = minter
        self._devices = devices
        self._exchange = exchange

    def handle(
        self, request: HttpRequest, token_request: TokenRequest, now: float, fault: Fault | None
    ) -> HttpResponse:
        grant_type = token_request.require("grant_type")
        if grant_type not in SUPPORTED_GRANTS:
            raise Rejection(
                "unsupported_grant_type", f"unsupported grant_type requested ({grant_type})"
            )
        client = authenticate_client(request, token_request.params, self._directory)
        # M2M apps use client_credentials and nothing else; devices need the device flow.
        allowed = (grant_type == "client_credentials") == (client.kind == "m2m")
        if grant_type == DEVICE_CODE_GRANT:
            allowed = allowed and client.device_flow
        if not allowed:
            raise Rejection(
                "unauthorized_client", "requested grant type is not allowed for this client"
            )
        if grant_type == "authorization_code":
            body = self._authorization_code(client, token_request, now, fault)
        elif grant_type == "refresh_token":
            body = self._refresh_token(client, token_request, now, fault)
        elif grant_type == DEVICE_CODE_GRANT:
            body = self._device_code(client, token_request, now, fault)
        elif grant_type == TOKEN_EXCHANGE_GRANT:
            body = self._exchange.exchange(client, token_request, now)
        else:
            body = self._client_credentials(client, token_request, now)
        return HttpResponse.json(200, body, NO_STORE)

    # -- shared pieces -------------------------------------------------------------------
    def _live_user(self, grant: Grant) -> User:
        user = self._directory.users.get(grant.sub)
        if user is None or user.suspended:
            raise Rejection("invalid_grant", "user is suspended or deleted")
        return user

    def _resource_for_grant(self, grant: Grant, indicator: str) -> None:
        if indicator not in self._directory.resources or indicator not in grant.resources:
            raise Rejection("invalid_target", "resource indicator is missing, or unknown")

    def _user_access(
        self, grant: Grant, scopes: frozenset[str], resource: str | None, org_id: str | None
    ) -> AccessGrant:
        """Which access token a user grant gets for (resource, organization, scopes)."""
        directory = self._directory
        if org_id is not None:
            if ORGANIZATIONS_SCOPE not in grant.scopes:
                raise Rejection(
                    "insufficient_scope",
                    f"refresh token missing required scope '{ORGANIZATIONS_SCOPE}'",
                )
            membership = directory.membership(org_id, grant.sub)
            if membership is None:
                raise Rejection("access_denied", "user is not a member of the organization")
            if resource is None:
                return AccessGrant(
                    AccessTokenSpec(
                        grant.sub,
                        grant.client_id,
                        ORGANIZATION_URN_PREFIX + org_id,
                        scopes & membership.scopes,
                        ORGANIZATION_TOKEN_TTL,
                    )
                )
        if resource is None:
            return AccessGrant(None, scopes & OIDC_SCOPES)
        self._resource_for_grant(grant, resource)
        api = directory.resources[resource]
        allowed = directory.user_permitted(grant.sub, resource, org_id)
        return AccessGrant(
            AccessTokenSpec(
                grant.sub,
                grant.client_id,
                resource,
                scopes & api.scopes & allowed,
                api.access_token_ttl,
                organization_id=org_id,
            )
        )

    def _access_fields(self, grant: Grant, access: AccessGrant, now: float) -> dict[str, Any]:
        if access.spec is None:
            token = self._store.issue_access(grant, access.opaque_scopes, now)
            return {
                "access_token": token.value,
                "expires_in": ACCESS_TOKEN_TTL,
                "token_type": "Bearer",
                "scope": scope_text(access.opaque_scopes),
            }
        return {
            "access_token": self._minter.access_token(access.spec, now),
            "expires_in": access.spec.ttl,
            "token_type": "Bearer",
            "scope": scope_text(access.spec.scopes),
        }

    # -- grants --------------------------------------------------------------------------
    def _sign_in_tokens(
        self, grant: Grant, resource: str | None, now: float, fault: Fault | None
    ) -> dict[str, Any]:
        """What a grant the user just approved gives: the access token, an ID token with
        ``openid``, a refresh token with ``offline_access``."""
        user = self._live_user(grant)
        access = self._user_access(grant, grant.scopes, resource, None)
        body = self._access_fields(grant, access, now)
        if UserInfoScope.openid.value in grant.scopes:
            body["id_token"] = self._minter.id_token(grant, user, grant.scopes, now, fault)
        if OAuthScope.offline_access.value in grant.scopes:
            body["refresh_token"] = self._store.issue_refresh(grant, now).value
        return body

    def _authorization_code(
        self, client: Client, request: TokenRequest, now: float, fault: Fault | None
    ) -> dict[str, Any]:
        code = request.require("code")
        resource = request.single_resource()
        grant = self._store.redeem_code(
            code,
            client_id=client.client_id,
            redirect_uri=request.params.get("redirect_uri"),
            code_verifier=request.params.get("code_verifier"),
            now=now,
        )
        return self._sign_in_tokens(grant, resource, now, fault)

    def _device_code(
        self, client: Client, request: TokenRequest, now: float, fault: Fault | None
    ) -> dict[str, Any]:
        # The grant takes no resource: the access token is the opaque (userinfo) one.
        grant = self._devices.redeem(client, request.require("device_code"), now)
        return self._sign_in_tokens(grant, None, now, fault)

    def _refresh_token(
        self, client: Client, request: TokenRequest, now: float, fault: Fault | None
    ) -> dict[str, Any]:
        value = request.require("refresh_token")
        resource = request.single_resource()
        token, grant = self._store.check_refresh(value, client_id=client.client_id, now=now)
        user = self._live_user(grant)
        scopes = grant.scopes
        if "scope" in request.params:
            asked = frozenset(request.params["scope"].split())
            if not asked <= grant.scopes:
                raise Rejection("invalid_scope", "refresh token missing requested scope")
            scopes = asked
        try:
            access = self._user_access(
                grant, scopes, resource, request.params.get("organization_id")
            )
        except Rejection as rejection:
            if rejection.error == "invalid_target":
                # As oidc-provider (and so Logto) does: the refresh token is consumed before the
                # resource is checked, so the client never sees its successor.
                self._store.rotate_if_due(token, grant, confidential=client.confidential, now=now)
            raise
        successor = self._store.rotate_if_due(
            token, grant, confidential=client.confidential, now=now
        )
        body = self._access_fields(grant, access, now)
        body["refresh_token"] = successor.value
        if UserInfoScope.openid.value in scopes:
            body["id_token"] = self._minter.id_token(grant, user, scopes, now, fault)
        return body

    def _client_credentials(
        self, client: Client, request: TokenRequest, now: float
    ) -> dict[str, Any]:
        resource = request.single_resource()
        org_id = request.params.get("organization_id")
        spec = self._m2m_spec(client.client_id, resource, org_id)
        # As oidc-provider's grant (and so Logto): only scopes asked for are granted, so a
        # request without ``scope`` gets a token without any.
        asked = frozenset(request.params.get("scope", "").split())
        spec = replace(spec, scopes=spec.scopes & asked)
        return {
            "access_token": self._minter.access_token(spec, now),
            "expires_in": spec.ttl,
            "token_type": "Bearer",
            "scope": scope_text(spec.scopes),
        }

    def _m2m_spec(
        self, client_id: str, resource: str | None, org_id: str | None
    ) -> AccessTokenSpec:
        """The token an M2M app may get for (resource, organization), before ``scope``."""
        directory = self._directory
        if resource is not None and resource not in directory.resources:
            raise Rejection("invalid_target", "resource indicator is missing, or unknown")
        if org_id is not None and directory.membership(org_id, client_id) is None:
            raise Rejection("access_denied", "application is not a member of the organization")
        if resource is not None:
            if org_id is not None:
                allowed = directory.org_permitted(org_id, client_id, resource)
            else:
                allowed = directory.permitted(client_id, resource)
            ttl = directory.resources[resource].access_token_ttl
            return AccessTokenSpec(
                client_id, client_id, resource, frozenset(allowed), ttl, organization_id=org_id
            )
        if org_id is None:
            raise Rejection("invalid_target", "both resource and organization_id are not provided")
        membership = directory.membership(org_id, client_id)
        assert membership is not None  # checked above
        return AccessTokenSpec(
            client_id,
            client_id,
            ORGANIZATION_URN_PREFIX + org_id,
            membership.scopes,
            ORGANIZATION_TOKEN_TTL,
        )
