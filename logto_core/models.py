"""Data models of what the provider sends: metadata, token responses, claims, userinfo.

All models keep unknown fields (``extra="allow"``), so claims Logto adds later are not lost,
and ``model_dump_json(exclude_unset=True)`` shows exactly what the provider sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_OPEN = ConfigDict(extra="allow", frozen=True)


class OidcProviderMetadata(BaseModel):
    """The discovery document (OpenID Connect Discovery 1.0 section 3)."""

    model_config = _OPEN

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    pushed_authorization_request_endpoint: str | None = None
    response_types_supported: list[str] = Field(default_factory=list)
    scopes_supported: list[str] = Field(default_factory=list)
    grant_types_supported: list[str] = Field(default_factory=list)
    code_challenge_methods_supported: list[str] = Field(default_factory=list)
    id_token_signing_alg_values_supported: list[str] = Field(default_factory=list)
    token_endpoint_auth_methods_supported: list[str] = Field(default_factory=list)
    claims_supported: list[str] = Field(default_factory=list)
    authorization_response_iss_parameter_supported: bool = False
    backchannel_logout_supported: bool = False


class TokenResponse(BaseModel):
    """A successful token endpoint answer (RFC 6749 section 5.1)."""

    model_config = ConfigDict(extra="allow", frozen=True, hide_input_in_errors=True)

    access_token: str = Field(repr=False)
    token_type: str = "Bearer"
    expires_in: int | None = None
    refresh_token: str | None = Field(default=None, repr=False)
    id_token: str | None = Field(default=None, repr=False)
    scope: str | None = None

    def __repr_args__(self) -> Any:
        # Extra fields could carry tokens too (e.g. issued_token_type companions): show names only.
        for key, value in super().__repr_args__():
            if key in (self.model_extra or {}):
                yield key, "<redacted>"
            else:
                yield key, value


class IdTokenClaims(BaseModel):
    """Claims of a verified ID token. Unknown claims are kept."""

    model_config = _OPEN

    iss: str
    sub: str
    aud: str | list[str]
    exp: int
    iat: int
    nonce: str | None = Field(default=None, repr=False)
    sid: str | None = None
    auth_time: int | None = None
    azp: str | None = None
    at_hash: str | None = None
    name: str | None = None
    username: str | None = None
    picture: str | None = None
    email: str | None = None
    email_verified: bool | None = None
    phone_number: str | None = None
    phone_number_verified: bool | None = None
    address: dict[str, Any] | None = None
    roles: list[str] | None = None
    organizations: list[str] | None = None
    organization_roles: list[str] | None = None
    created_at: int | None = None
    updated_at: int | None = None


class AccessTokenClaims(BaseModel):
    """Claims of a JWT access token (an API-resource or organization token).

    The SDK decodes them for the client's convenience; an API that receives the token must
    verify it itself.
    """

    model_config = _OPEN

    iss: str
    sub: str
    aud: str | list[str]
    exp: int
    iat: int
    jti: str | None = None
    scope: str | None = None
    client_id: str | None = None
    organization_id: str | None = None


class UserIdentity(BaseModel):
    """A linked social identity in userinfo's ``identities``."""

    model_config = _OPEN

    userId: str
    details: dict[str, Any] | None = None


class OrganizationData(BaseModel):
    """An entry of userinfo's ``organization_data``."""

    model_config = _OPEN

    id: str
    name: str | None = None
    description: str | None = None


class UserInfoResponse(BaseModel):
    """The userinfo endpoint's claims. Unknown claims are kept."""

    model_config = _OPEN

    sub: str
    name: str | None = None
    username: str | None = None
    picture: str | None = None
    email: str | None = None
    email_verified: bool | None = None
    phone_number: str | None = None
    phone_number_verified: bool | None = None
    address: dict[str, Any] | None = None
    roles: list[str] | None = None
    custom_data: Any = None
    identities: dict[str, UserIdentity] | None = None
    sso_identities: list[dict[str, Any]] | None = None
    organizations: list[str] | None = None
    organization_roles: list[str] | None = None
    organization_data: list[OrganizationData] | None = None
    created_at: int | None = None
    updated_at: int | None = None
