"""Data models of what the provider sends: metadata, token responses, claims, userinfo.

All models keep unknown fields (``extra="allow"``), so claims Logto adds later are not lost,
and ``model_dump_json(exclude_unset=True)`` shows exactly what the provider sent.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_OPEN = ConfigDict(extra="allow", frozen=True)
# For what the provider sends as plain JSON: no lax coercion ("true" or 1 for a boolean,
# "123" for a number), so a mistyped claim is refused, never silently converted.
_STRICT = ConfigDict(extra="allow", frozen=True, strict=True)


def _whole_seconds(value: object) -> object:
    # A time is a JSON number (OIDC Core section 5.1: "number"); a finite float is truncated.
    # Strings and booleans are left for the strict check to refuse.
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return value


JsonTime = Annotated[int, BeforeValidator(_whole_seconds)]
"""A time claim as a JSON number (integer or not), kept as an ``int``."""


def _spec_list() -> Any:
    """An OPTIONAL JSON array of strings; absent means empty (and ``null`` is no array)."""
    return Field(default_factory=list)


class OidcProviderMetadata(BaseModel):
    """The discovery document: OpenID Connect Discovery 1.0 section 3, with the members of
    RFC 8414 (authorization server metadata), RFC 9207 (``iss`` in the authorization
    response), RFC 9126 (PAR), RP-Initiated, Back- and Front-Channel Logout.

    Every member the specifications define is typed here, strictly (a JSON array of strings
    is a ``list`` of ``str``, a boolean is ``true`` or ``false``, never ``"true"`` or ``1``),
    whether or not the SDK uses it, so that a mistyped document is refused as a whole rather
    than read in part. The members section 3 marks REQUIRED have no default. Unknown members
    are kept as they are. The checks that need the configuration (issuer, https endpoints,
    what the SDK needs the provider to support) are in :mod:`logto_core.protocol.discovery`.
    """

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    # REQUIRED (section 3; token_endpoint "unless only the Implicit Flow is used").
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    response_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    # Endpoints (RECOMMENDED or OPTIONAL).
    userinfo_endpoint: str | None = None
    registration_endpoint: str | None = None
    end_session_endpoint: str | None = None
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    pushed_authorization_request_endpoint: str | None = None
    check_session_iframe: str | None = None
    # Documentation URLs (OPTIONAL).
    service_documentation: str | None = None
    op_policy_uri: str | None = None
    op_tos_uri: str | None = None
    # OPTIONAL JSON arrays of strings.
    scopes_supported: list[str] = _spec_list()
    response_modes_supported: list[str] = _spec_list()
    grant_types_supported: list[str] = _spec_list()
    acr_values_supported: list[str] = _spec_list()
    id_token_encryption_alg_values_supported: list[str] = _spec_list()
    id_token_encryption_enc_values_supported: list[str] = _spec_list()
    userinfo_signing_alg_values_supported: list[str] = _spec_list()
    userinfo_encryption_alg_values_supported: list[str] = _spec_list()
    userinfo_encryption_enc_values_supported: list[str] = _spec_list()
    request_object_signing_alg_values_supported: list[str] = _spec_list()
    request_object_encryption_alg_values_supported: list[str] = _spec_list()
    request_object_encryption_enc_values_supported: list[str] = _spec_list()
    token_endpoint_auth_methods_supported: list[str] = _spec_list()
    token_endpoint_auth_signing_alg_values_supported: list[str] = _spec_list()
    revocation_endpoint_auth_methods_supported: list[str] = _spec_list()
    introspection_endpoint_auth_methods_supported: list[str] = _spec_list()
    code_challenge_methods_supported: list[str] = _spec_list()
    display_values_supported: list[str] = _spec_list()
    claim_types_supported: list[str] = _spec_list()
    claims_supported: list[str] = _spec_list()
    claims_locales_supported: list[str] = _spec_list()
    ui_locales_supported: list[str] = _spec_list()
    # OPTIONAL booleans, with the defaults the specifications give them.
    claims_parameter_supported: bool = False
    request_parameter_supported: bool = False
    request_uri_parameter_supported: bool = True
    require_request_uri_registration: bool = False
    authorization_response_iss_parameter_supported: bool = False
    require_pushed_authorization_requests: bool = False
    backchannel_logout_supported: bool = False
    backchannel_logout_session_supported: bool = False
    frontchannel_logout_supported: bool = False
    frontchannel_logout_session_supported: bool = False


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

    The client decodes them for its convenience, unverified; an API that receives the token
    verifies it with ``LogtoResourceServer`` (:mod:`logto_core.protocol.access_token`), whose
    claims always have ``jti`` and ``client_id`` (RFC 9068 section 2.2).
    ``organization_roles`` (``<organization id>:<role>``) is there only when a custom token
    claims script at Logto adds it.
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
    organization_roles: list[str] | None = None


class UserIdentity(BaseModel):
    """A linked social identity in userinfo's ``identities``."""

    model_config = _STRICT

    userId: str
    details: dict[str, Any] | None = None


class OrganizationData(BaseModel):
    """An entry of userinfo's ``organization_data``."""

    model_config = _STRICT

    id: str
    name: str | None = None
    description: str | None = None


class UserInfoResponse(BaseModel):
    """The userinfo endpoint's claims (OIDC Core section 5.3.2, with the types of section
    5.1 and Logto's own claims), read strictly. Unknown claims are kept."""

    model_config = _STRICT

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
    created_at: JsonTime | None = None
    updated_at: JsonTime | None = None
