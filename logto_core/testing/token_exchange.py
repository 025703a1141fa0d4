"""Token exchange (RFC 8693), as Logto implements it.

Logto exchanges subject tokens that its administrators make, not tokens of an OAuth flow:

* a *subject token* (``subject_token_type`` :data:`ACCESS_TOKEN_TYPE`), made for a user with
  the Management API (``POST /api/subject-tokens``); it expires (10 minutes by default) and
  is used up by one successful exchange. :meth:`TestProvider.create_subject_token` makes one;
* a *personal access token* (:data:`PERSONAL_ACCESS_TOKEN_TYPE`), reusable until it expires,
  if it ever does. :meth:`TestProvider.create_personal_access_token` makes one.

The client that exchanges receives an access token for that user, and nothing else (no
refresh token, no ID token, no ``issued_token_type``):

* with ``resource``: a JWT for that API carrying the requested scopes the API defines and the
  user holds (the scopes Logto's resource server grants this user, as on a refresh), plus
  claim ``organization_id`` when ``organization_id`` is sent too;
* with ``organization_id`` alone: an organization token (``aud`` =
  ``urn:logto:organization:<id>``), the requested scopes the user's organization roles carry;
* with neither: an opaque token with the requested OpenID Connect scopes.

An ``actor_token`` (an opaque access token of this provider with ``openid``) names who acts
for the user: the issued token carries ``act: {"sub": <actor>}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from logto_core.enums import ORGANIZATION_URN_PREFIX, UserInfoScope
from logto_core.errors import LogtoUsageError
from logto_core.runtime import Runtime

from ._wire import Rejection, TokenRequest
from .claims import OIDC_SCOPES
from .directory import Client, Directory, Membership
from .grants import ACCESS_TOKEN_TTL, ORGANIZATION_TOKEN_TTL, GrantStore, new_token_value
from .tokens import AccessTokenSpec, TokenMinter, scope_text

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
"""``subject_token_type`` of a Management-API subject token (and the only actor token type)."""
PERSONAL_ACCESS_TOKEN_TYPE = "urn:logto:token-type:personal_access_token"
SUBJECT_TOKEN_TTL = 600
"""Seconds a subject token lives by default (Logto's Management API default)."""


def _invalid_grant(description: str) -> Rejection:
    return Rejection("invalid_grant", description)


@dataclass(slots=True)
class SubjectToken:
    """A single-use subject token made for ``sub``."""

    value: str = field(repr=False)
    sub: str
    expires_at: float
    consumed_at: float | None = None


@dataclass(slots=True)
class PersonalAccessToken:
    """A reusable personal access token of ``sub``; ``expires_at=None`` never expires."""

    value: str = field(repr=False)
    sub: str
    expires_at: float | None


class TokenExchange:
    """Subject tokens, personal access tokens and the token-exchange grant."""

    def __init__(
        self, *, directory: Directory, store: GrantStore, minter: TokenMinter, runtime: Runtime
    ) -> None:
        self._directory = directory
        self._store = store
        self._minter = minter
        self._runtime = runtime
        self.subject_tokens: dict[str, SubjectToken] = {}
        self.personal_access_tokens: dict[str, PersonalAccessToken] = {}

    # -- what the Management API makes ---------------------------------------------------
    def create_subject_token(self, sub: str, *, ttl: float, now: float) -> str:
        """A subject token for the registered user ``sub``, valid for ``ttl`` seconds."""
        self._directory.user(sub)
        if not ttl > 0:
            raise LogtoUsageError("ttl must be positive", code="testing.setup")
        token = SubjectToken(f"sub_{new_token_value(self._runtime)}", sub, now + ttl)
        self.subject_tokens[token.value] = token
        return token.value

    def create_personal_access_token(self, sub: str, *, expires_at: float | None) -> str:
        """A personal access token of the registered user ``sub``."""
        self._directory.user(sub)
        token = PersonalAccessToken(f"pat_{new_token_value(self._runtime)}", sub, expires_at)
        self.personal_access_tokens[token.value] = token
        return token.value

    # -- the grant -----------------------------------------------------------------------
    def exchange(self, client: Client, request: TokenRequest, now: float) -> dict[str, Any]:
        """The token response body, or a ``Rejection`` in the order Logto checks."""
        value = request.require("subject_token")
        kind = request.require("subject_token_type")
        sub, single_use = self._subject(value, kind, now)
        user = self._directory.users.get(sub)
        if user is None or user.suspended:
            raise _invalid_grant("subject token invalid (referenced account not found)")
        params = request.params
        org_id = params.get("organization_id")
        membership = None
        if org_id is not None:
            membership = self._directory.membership(org_id, sub)
            if membership is None:
                raise Rejection("access_denied", "user is not a member of the organization")
        requested = frozenset(params.get("scope", "").split())
        spec = self._jwt_spec(client, sub, requested, request.single_resource(), membership, org_id)
        actor = self._actor(params, now)
        if single_use is not None:
            single_use.consumed_at = now
        if spec is None:
            scopes = requested & OIDC_SCOPES
            grant = self._store.create_grant(
                client_id=client.client_id,
                sub=sub,
                scopes=scopes,
                resources=frozenset(),
                nonce=None,
                auth_time=None,
                now=now,
            )
            token = self._store.issue_access(grant, scopes, now, actor=actor)
            return _body(token.value, ACCESS_TOKEN_TTL, scopes)
        spec = replace(spec, actor=actor)
        return _body(self._minter.access_token(spec, now), spec.ttl, spec.scopes)

    def _subject(self, value: str, kind: str, now: float) -> tuple[str, SubjectToken | None]:
        """The user a subject token names, and the token to use up when it is single-use."""
        if kind == ACCESS_TOKEN_TYPE:
            token = self.subject_tokens.get(value)
            if token is None:
                raise _invalid_grant("subject token not found")
            if now >= token.expires_at:
                raise _invalid_grant("subject token is expired")
            if token.consumed_at is not None:
                raise _invalid_grant("subject token is already consumed")
            return token.sub, token
        if kind == PERSONAL_ACCESS_TOKEN_TYPE:
            personal = self.personal_access_tokens.get(value)
            if personal is None:
                raise _invalid_grant("subject token not found")
            if personal.expires_at is not None and now >= personal.expires_at:
                raise _invalid_grant("subject token is expired")
            return personal.sub, None
        raise _invalid_grant("unsupported subject token type")

    def _jwt_spec(
        self,
        client: Client,
        sub: str,
        requested: frozenset[str],
        resource: str | None,
        membership: Membership | None,
        org_id: str | None,
    ) -> AccessTokenSpec | None:
        """The JWT access token to issue, or ``None`` for an opaque one."""
        if resource is not None:
            api = self._directory.resources.get(resource)
            if api is None:
                raise Rejection("invalid_target", "resource indicator is missing, or unknown")
            allowed = self._directory.user_permitted(sub, resource, org_id)
            return AccessTokenSpec(
                sub,
                client.client_id,
                resource,
                requested & api.scopes & allowed,
                api.access_token_ttl,
                organization_id=org_id,
            )
        if membership is None or org_id is None:
            return None
        return AccessTokenSpec(
            sub,
            client.client_id,
            ORGANIZATION_URN_PREFIX + org_id,
            requested & membership.scopes,
            ORGANIZATION_TOKEN_TTL,
        )

    def _actor(self, params: dict[str, str], now: float) -> str | None:
        """``sub`` of the actor token's user, if one was sent."""
        value = params.get("actor_token")
        if value is None:
            # A stray actor_token_type without a token is ignored, as Logto does.
            return None
        if params.get("actor_token_type") != ACCESS_TOKEN_TYPE:
            raise _invalid_grant("unsupported actor token type")
        token = self._store.active_access(value, now)
        if token is None:
            raise _invalid_grant("invalid actor token")
        if UserInfoScope.openid.value not in token.scopes:
            raise _invalid_grant("actor token must have openid scope")
        return token.sub


def _body(access_token: str, expires_in: int, scopes: frozenset[str]) -> dict[str, Any]:
    """Logto's answer: exactly these four members."""
    return {
        "access_token": access_token,
        "expires_in": expires_in,
        "scope": scope_text(scopes),
        "token_type": "Bearer",
    }
