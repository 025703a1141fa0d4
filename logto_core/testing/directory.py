"""What the test provider knows: applications, users, API resources and organizations.

This is the provider's "admin console": tests register things here before a sign-in, and the
endpoints read it to decide what a token may carry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from logto_core.enums import ReservedResource
from logto_core.errors import LogtoUsageError
from logto_core.urls import is_absolute_uri

ClientKind = Literal["traditional", "spa", "native", "m2m"]
CONFIDENTIAL_KINDS: frozenset[str] = frozenset({"traditional", "m2m"})

ORGANIZATIONS_RESOURCE = ReservedResource.organizations.value


def _usage(message: str) -> LogtoUsageError:
    return LogtoUsageError(message, code="testing.setup")


@dataclass(slots=True)
class Client:
    """A registered application."""

    client_id: str
    kind: ClientKind
    secret: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    always_issue_refresh_token: bool = False
    device_flow: bool = False
    """May use the device authorization grant (Logto: a native app with device flow on)."""

    @property
    def confidential(self) -> bool:
        """Traditional web and machine-to-machine apps authenticate with a secret."""
        return self.kind in CONFIDENTIAL_KINDS

    def __repr__(self) -> str:
        return f"Client(client_id={self.client_id!r}, kind={self.kind!r})"


@dataclass(slots=True)
class User:
    """A user account; ``claims`` holds everything passed to :meth:`Directory.add_user`."""

    sub: str
    claims: dict[str, Any]
    suspended: bool = False


@dataclass(slots=True)
class Resource:
    """An API resource (RFC 8707 resource indicator) and the scopes it defines."""

    indicator: str
    scopes: frozenset[str]
    access_token_ttl: int = 3600


@dataclass(slots=True)
class Membership:
    """A user's (or M2M app's) membership of an organization."""

    roles: tuple[str, ...] = ()
    scopes: frozenset[str] = frozenset()


@dataclass(slots=True)
class Organization:
    """An organization and its members, keyed by ``sub`` (or M2M client id)."""

    org_id: str
    name: str
    description: str | None
    members: dict[str, Membership] = field(default_factory=dict)


class Directory:
    """Registry of clients, users, resources, organizations and permissions."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.users: dict[str, User] = {}
        self.resources: dict[str, Resource] = {}
        self.organizations: dict[str, Organization] = {}
        # (subject or client id, resource) -> scopes that principal may receive.
        self.permissions: dict[tuple[str, str], set[str]] = {}
        # (organization, subject or client id, resource) -> organization-scoped API scopes.
        self.org_resource_permissions: dict[tuple[str, str, str], set[str]] = {}

    # -- clients -------------------------------------------------------------------------
    def add_client(
        self,
        client_id: str,
        *,
        kind: ClientKind,
        secret: str | None,
        redirect_uris: Iterable[str],
        post_logout_redirect_uris: Iterable[str],
        always_issue_refresh_token: bool,
        device_flow: bool = False,
    ) -> Client:
        if not client_id:
            raise _usage("client_id must not be empty")
        if kind not in ("traditional", "spa", "native", "m2m"):
            raise _usage(f"unknown application kind {kind!r}")
        if kind in CONFIDENTIAL_KINDS and not secret:
            raise _usage(f"a {kind} application needs a secret")
        if kind not in CONFIDENTIAL_KINDS and secret is not None:
            raise _usage(f"a {kind} application is public and has no secret")
        if device_flow and kind == "m2m":
            raise _usage("a machine-to-machine application cannot use the device flow")
        client = Client(
            client_id=client_id,
            kind=kind,
            secret=secret,
            redirect_uris=tuple(redirect_uris),
            post_logout_redirect_uris=tuple(post_logout_redirect_uris),
            always_issue_refresh_token=always_issue_refresh_token,
            device_flow=device_flow,
        )
        self.clients[client_id] = client
        return client

    # -- users ---------------------------------------------------------------------------
    def add_user(self, sub: str, claims: dict[str, Any]) -> User:
        if not sub:
            raise _usage("sub must not be empty")
        user = User(sub=sub, claims=claims)
        self.users[sub] = user
        return user

    def user(self, sub: str) -> User:
        """The registered user ``sub``; raises a usage error when unknown."""
        try:
            return self.users[sub]
        except KeyError:
            raise _usage(f"unknown user {sub!r}; call add_user first") from None

    # -- resources and permissions -------------------------------------------------------
    def add_resource(self, indicator: str, scopes: Iterable[str], access_token_ttl: int) -> None:
        if not is_absolute_uri(indicator):
            raise _usage("a resource indicator must be an absolute URI without a fragment")
        if indicator == ORGANIZATIONS_RESOURCE:
            raise _usage(f"{ORGANIZATIONS_RESOURCE} is reserved")
        if access_token_ttl <= 0:
            raise _usage("access_token_ttl must be positive")
        self.resources[indicator] = Resource(indicator, frozenset(scopes), access_token_ttl)

    def resource(self, indicator: str) -> Resource:
        try:
            return self.resources[indicator]
        except KeyError:
            raise _usage(f"unknown resource {indicator!r}; call add_resource first") from None

    def _check_scopes(self, resource: Resource, scopes: Iterable[str]) -> set[str]:
        wanted = set(scopes)
        unknown = wanted - resource.scopes
        if unknown:
            raise _usage(f"resource {resource.indicator!r} defines no scope {sorted(unknown)}")
        return wanted

    def grant_permissions(self, principal: str, indicator: str, scopes: Iterable[str]) -> None:
        wanted = self._check_scopes(self.resource(indicator), scopes)
        self.permissions.setdefault((principal, indicator), set()).update(wanted)

    def permitted(self, principal: str, indicator: str) -> set[str]:
        """Scopes of ``indicator`` that ``principal`` may receive outside organizations."""
        return set(self.permissions.get((principal, indicator), set()))

    # -- organizations -------------------------------------------------------------------
    def add_organization(self, org_id: str, name: str, description: str | None) -> None:
        if not org_id:
            raise _usage("org_id must not be empty")
        self.organizations[org_id] = Organization(org_id, name, description)

    def organization(self, org_id: str) -> Organization:
        try:
            return self.organizations[org_id]
        except KeyError:
            raise _usage(f"unknown organization {org_id!r}; call add_organization") from None

    def add_member(
        self, org_id: str, principal: str, roles: Iterable[str], scopes: Iterable[str]
    ) -> None:
        organization = self.organization(org_id)
        if principal not in self.users and principal not in self.clients:
            raise _usage(f"{principal!r} is neither a user nor a client")
        organization.members[principal] = Membership(tuple(roles), frozenset(scopes))

    def membership(self, org_id: str, principal: str) -> Membership | None:
        """The membership, or ``None`` when the organization is unknown or lacks the member."""
        organization = self.organizations.get(org_id)
        return None if organization is None else organization.members.get(principal)

    def organization_scopes(self) -> set[str]:
        """Every organization-role scope any member holds (what the organizations resource
        defines, as far as this provider knows)."""
        found: set[str] = set()
        for organization in self.organizations.values():
            for membership in organization.members.values():
                found.update(membership.scopes)
        return found

    def grant_organization_resource_permissions(
        self, org_id: str, principal: str, indicator: str, scopes: Iterable[str]
    ) -> None:
        self.organization(org_id)
        wanted = self._check_scopes(self.resource(indicator), scopes)
        key = (org_id, principal, indicator)
        self.org_resource_permissions.setdefault(key, set()).update(wanted)

    def org_permitted(self, org_id: str, principal: str, indicator: str) -> set[str]:
        """Organization-scoped scopes of ``indicator`` granted to ``principal`` in ``org_id``."""
        return set(self.org_resource_permissions.get((org_id, principal, indicator), set()))

    def user_permitted(self, sub: str, indicator: str, org_id: str | None) -> set[str]:
        """Scopes of ``indicator`` a user's token may carry: through their organization roles
        in ``org_id`` for an organization-scoped token, else through their roles."""
        if org_id is not None:
            return self.org_permitted(org_id, sub, indicator)
        return self.permitted(sub, indicator)

    def organizations_of(self, principal: str) -> list[Organization]:
        """Organizations ``principal`` belongs to, in registration order."""
        return [org for org in self.organizations.values() if principal in org.members]
