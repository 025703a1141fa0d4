"""Which user claims each scope releases, in the ID token and at the userinfo endpoint.

Follows the "claims by scope" table of the protocol reference. Claims a test passes to
``add_user`` that belong to no scope are returned by userinfo only, so tests can check that a
client keeps claims it does not know.
"""

from __future__ import annotations

from typing import Any

from logto_core.enums import OAuthScope, UserInfoScope

from .directory import Directory, User

# Optional OIDC profile claims: released with ``profile`` only when the user has them.
_OPTIONAL_PROFILE = (
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
)

# Claims that belong to some scope; everything else a user has is an "extra" claim.
_SCOPED = frozenset(
    {
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
        "custom_data",
        "identities",
        "sso_identities",
        *_OPTIONAL_PROFILE,
    }
)

USER_SCOPES: frozenset[str] = frozenset(scope.value for scope in UserInfoScope)
"""Scopes that release user claims (the rows of the table)."""

OIDC_SCOPES: frozenset[str] = frozenset(USER_SCOPES | {OAuthScope.offline_access.value})
"""The OpenID Connect scopes an opaque (userinfo) access token may carry."""


def _profile(claims: dict[str, Any]) -> dict[str, Any]:
    released = {key: claims.get(key) for key in ("name", "username", "picture")}
    released.update({key: claims[key] for key in _OPTIONAL_PROFILE if key in claims})
    released["created_at"] = claims.get("created_at")
    released["updated_at"] = claims.get("updated_at")
    return released


def _verified_pair(claims: dict[str, Any], value_claim: str, flag_claim: str) -> dict[str, Any]:
    value = claims.get(value_claim)
    return {value_claim: value, flag_claim: bool(claims.get(flag_claim, value is not None))}


def id_token_claims(directory: Directory, user: User, scopes: set[str]) -> dict[str, Any]:
    """Claims the ID token carries for ``scopes`` (besides the protocol claims)."""
    claims = user.claims
    released: dict[str, Any] = {"sub": user.sub}
    if "profile" in scopes:
        released.update(_profile(claims))
    if "email" in scopes:
        released.update(_verified_pair(claims, "email", "email_verified"))
    if "phone" in scopes:
        released.update(_verified_pair(claims, "phone_number", "phone_number_verified"))
    if "address" in scopes and "address" in claims:
        released["address"] = claims["address"]
    if "roles" in scopes:
        released["roles"] = list(claims.get("roles", []))
    organizations = directory.organizations_of(user.sub)
    if UserInfoScope.organizations.value in scopes:
        released["organizations"] = [org.org_id for org in organizations]
    if UserInfoScope.organization_roles.value in scopes:
        released["organization_roles"] = [
            f"{org.org_id}:{role}" for org in organizations for role in org.members[user.sub].roles
        ]
    return released


def userinfo_claims(directory: Directory, user: User, scopes: set[str]) -> dict[str, Any]:
    """Everything userinfo returns: ID-token claims plus the userinfo-only ones."""
    claims = user.claims
    released = id_token_claims(directory, user, scopes)
    if "custom_data" in scopes:
        released["custom_data"] = claims.get("custom_data", {})
    if "identities" in scopes:
        released["identities"] = claims.get("identities", {})
        released["sso_identities"] = claims.get("sso_identities", [])
    if UserInfoScope.organizations.value in scopes:
        released["organization_data"] = [
            {"id": org.org_id, "name": org.name, "description": org.description}
            for org in directory.organizations_of(user.sub)
        ]
    released.update({key: value for key, value in claims.items() if key not in _SCOPED})
    return released
