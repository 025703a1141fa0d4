"""Names the Logto server understands: scopes, reserved resources, sign-in screen options.

Every enum is a ``str`` enum, so a plain string works wherever a member does
(``scopes=["email"]`` and ``scopes=[UserInfoScope.email]`` mean the same).
"""

from __future__ import annotations

from enum import Enum


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)


class UserInfoScope(_StrEnum):
    """Scopes that control which user claims the ID token and userinfo carry."""

    openid = "openid"
    """Required for OpenID Connect; gives ``sub``."""
    profile = "profile"
    """``name``, ``username``, ``picture``, ``created_at``, ``updated_at`` and profile fields."""
    email = "email"
    """``email`` and ``email_verified``."""
    phone = "phone"
    """``phone_number`` and ``phone_number_verified``."""
    address = "address"
    """``address``."""
    roles = "roles"
    """``roles``: the user's role names."""
    custom_data = "custom_data"
    """``custom_data``; userinfo only (it can be large)."""
    identities = "identities"
    """``identities`` and ``sso_identities``; userinfo only."""
    organizations = "urn:logto:scope:organizations"
    """``organizations`` (ids); userinfo adds ``organization_data``. Needed for organization
    tokens."""
    organization_roles = "urn:logto:scope:organization_roles"
    """``organization_roles`` as ``<organization id>:<role name>``."""


class OAuthScope(_StrEnum):
    """Protocol scopes that are not about user claims."""

    offline_access = "offline_access"
    """Asks for a refresh token (granted with ``prompt=consent``)."""


DEFAULT_SCOPES: tuple[str, ...] = (
    UserInfoScope.openid.value,
    OAuthScope.offline_access.value,
    UserInfoScope.profile.value,
)
"""Scopes every sign-in requests, before the configured ones."""


class ReservedResource(_StrEnum):
    """Resource indicators with a meaning fixed by Logto."""

    organizations = "urn:logto:resource:organizations"
    """Requested at sign-in so that organization tokens can be obtained later."""


ORGANIZATION_URN_PREFIX = "urn:logto:organization:"
"""Audience prefix of organization tokens: ``urn:logto:organization:<organization id>``."""


class Prompt(_StrEnum):
    """Values of the ``prompt`` authorization parameter."""

    consent = "consent"
    """Reuse an existing session; grants ``offline_access`` (refresh tokens)."""
    login = "login"
    """Always ask the user to sign in again."""
    none = "none"
    """Never show a page; fail with ``login_required`` if there is no session."""


class InteractionMode(_StrEnum):
    """First screen, in the older (deprecated) parameter; prefer :class:`FirstScreen`."""

    signIn = "signIn"
    signUp = "signUp"


class FirstScreen(_StrEnum):
    """The first screen Logto shows (``first_screen`` parameter)."""

    sign_in = "sign_in"
    register = "register"
    reset_password = "reset_password"
    identifier_sign_in = "identifier:sign_in"
    identifier_register = "identifier:register"
    single_sign_on = "single_sign_on"


class Identifier(_StrEnum):
    """Identifiers offered on the identifier screens (``identifier`` parameter)."""

    username = "username"
    email = "email"
    phone = "phone"


class DirectSignInMethod(_StrEnum):
    """Kinds of direct sign-in (``direct_sign_in`` parameter)."""

    social = "social"
    """A social connector target, such as ``google``."""
    sso = "sso"
    """An enterprise SSO connector id."""
