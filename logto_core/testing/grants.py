"""Authorization codes, grants, refresh tokens and opaque access tokens, with Logto's rules.

The rules that matter to clients live here:

* a code is single-use and lives :data:`CODE_TTL` seconds; presenting it twice revokes the
  grant it created;
* public clients get a new refresh token on every refresh; confidential clients only once
  :data:`ROTATION_THRESHOLD` of the token's lifetime has passed;
* a consumed (rotated-away) refresh token keeps working for :data:`REUSE_WINDOW` seconds; after
  that, presenting it revokes the whole grant, newest refresh token included.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from logto_core.runtime import Runtime

from ._wire import Rejection, b64url

CODE_TTL = 60
ACCESS_TOKEN_TTL = 3600
ID_TOKEN_TTL = 3600
ORGANIZATION_TOKEN_TTL = 3600
REFRESH_TOKEN_TTL = 14 * 24 * 3600
GRANT_TTL = 180 * 24 * 3600
REUSE_WINDOW = 3.0
"""Seconds a consumed refresh token stays usable (inclusive)."""
ROTATION_THRESHOLD = 0.7
"""Share of a confidential client's refresh-token lifetime after which it rotates."""


def new_token_value(runtime: Runtime) -> str:
    """A 43-character opaque value without dots (256 bits of entropy)."""
    return b64url(runtime.random_bytes(32))


@dataclass(slots=True)
class Grant:
    """What one sign-in allowed a client to do on behalf of a user."""

    grant_id: str
    client_id: str
    sub: str
    scopes: frozenset[str]
    resources: frozenset[str]
    nonce: str | None
    sid: str
    auth_time: float | None
    created_at: float
    expires_at: float
    revoked: bool = False


@dataclass(slots=True)
class AuthorizationCode:
    value: str
    grant_id: str
    redirect_uri: str
    code_challenge: str | None
    expires_at: float
    consumed: bool = False

    def __repr__(self) -> str:
        return f"AuthorizationCode(grant_id={self.grant_id!r}, consumed={self.consumed})"


@dataclass(slots=True)
class RefreshToken:
    value: str = field(repr=False)
    grant_id: str
    issued_at: float
    expires_at: float
    consumed_at: float | None = None


@dataclass(slots=True)
class OpaqueAccessToken:
    value: str = field(repr=False)
    grant_id: str
    client_id: str
    sub: str
    scopes: frozenset[str]
    issued_at: float
    expires_at: float
    revoked: bool = False
    actor: str | None = None
    """``sub`` of the actor when a token exchange named one (introspection shows ``act``)."""


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256 check, in constant time."""
    digest = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
    return hmac.compare_digest(digest, challenge)


def _grant_error(description: str) -> Rejection:
    return Rejection("invalid_grant", description)


class GrantStore:
    """All live protocol state of the provider."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self.grants: dict[str, Grant] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, OpaqueAccessToken] = {}

    def new_id(self) -> str:
        """A random identifier (grant ids, session ids, jti)."""
        return b64url(self._runtime.random_bytes(16))

    # -- grants and codes ----------------------------------------------------------------
    def create_grant(
        self,
        *,
        client_id: str,
        sub: str,
        scopes: frozenset[str],
        resources: frozenset[str],
        nonce: str | None,
        auth_time: float | None,
        now: float,
    ) -> Grant:
        grant = Grant(
            grant_id=self.new_id(),
            client_id=client_id,
            sub=sub,
            scopes=scopes,
            resources=resources,
            nonce=nonce,
            sid=self.new_id(),
            auth_time=auth_time,
            created_at=now,
            expires_at=now + GRANT_TTL,
        )
        self.grants[grant.grant_id] = grant
        return grant

    def issue_code(
        self, grant: Grant, *, redirect_uri: str, code_challenge: str | None, now: float
    ) -> str:
        value = new_token_value(self._runtime)
        self.codes[value] = AuthorizationCode(
            value, grant.grant_id, redirect_uri, code_challenge, now + CODE_TTL
        )
        return value

    def redeem_code(
        self,
        value: str,
        *,
        client_id: str,
        redirect_uri: str | None,
        code_verifier: str | None,
        now: float,
    ) -> Grant:
        """The grant behind a valid code; marks the code used. Raises ``invalid_grant``."""
        code = self.codes.get(value)
        if code is None:
            raise _grant_error("grant request is invalid")
        grant = self.grants[code.grant_id]
        if code.consumed:
            # RFC 6749 §4.1.2: a replayed code revokes what it produced.
            self.revoke_grant(grant.grant_id)
            raise _grant_error("authorization code already consumed")
        if now >= code.expires_at:
            raise _grant_error("authorization code is expired")
        if grant.client_id != client_id:
            raise _grant_error("client mismatch")
        if redirect_uri != code.redirect_uri:
            raise _grant_error("authorization code redirect_uri mismatch")
        self._check_pkce(code.code_challenge, code_verifier)
        if grant.revoked:
            raise _grant_error("grant request is invalid")
        code.consumed = True
        return grant

    @staticmethod
    def _check_pkce(challenge: str | None, verifier: str | None) -> None:
        if challenge is None and verifier is None:
            return
        if challenge is None or verifier is None or not pkce_matches(verifier, challenge):
            raise _grant_error("PKCE verification failed")

    # -- refresh tokens ------------------------------------------------------------------
    def issue_refresh(self, grant: Grant, now: float) -> RefreshToken:
        token = RefreshToken(
            value=new_token_value(self._runtime),
            grant_id=grant.grant_id,
            issued_at=now,
            expires_at=min(now + REFRESH_TOKEN_TTL, grant.expires_at),
        )
        self.refresh_tokens[token.value] = token
        return token

    def check_refresh(
        self, value: str, *, client_id: str, now: float
    ) -> tuple[RefreshToken, Grant]:
        """The token and its grant, if it may be used now. Reuse after the window revokes."""
        token = self.refresh_tokens.get(value)
        if token is None:
            raise _grant_error("grant request is invalid")
        grant = self.grants[token.grant_id]
        if grant.client_id != client_id:
            raise _grant_error("client mismatch")
        if grant.revoked:
            raise _grant_error("grant request is invalid")
        if now >= token.expires_at or now >= grant.expires_at:
            raise _grant_error("refresh token is expired")
        if token.consumed_at is not None and now - token.consumed_at > REUSE_WINDOW:
            self.revoke_grant(grant.grant_id)
            raise _grant_error("refresh token reused after rotation; grant revoked")
        return token, grant

    def rotate_if_due(
        self, token: RefreshToken, grant: Grant, *, confidential: bool, now: float
    ) -> RefreshToken:
        """The refresh token to hand back: ``token`` itself, or a rotated successor."""
        lifetime = token.expires_at - token.issued_at
        due = not confidential or (now - token.issued_at) >= ROTATION_THRESHOLD * lifetime
        if not due:
            return token
        if token.consumed_at is None:
            # The window counts from the first rotation; uses inside it must not extend it.
            token.consumed_at = now
        return self.issue_refresh(grant, now)

    def is_refresh_active(self, value: str, now: float) -> bool:
        """True when ``value`` is a refresh token that would be accepted now."""
        token = self.refresh_tokens.get(value)
        if token is None:
            return False
        grant = self.grants[token.grant_id]
        if grant.revoked or now >= token.expires_at or now >= grant.expires_at:
            return False
        return token.consumed_at is None or now - token.consumed_at <= REUSE_WINDOW

    # -- opaque access tokens ------------------------------------------------------------
    def issue_access(
        self, grant: Grant, scopes: frozenset[str], now: float, *, actor: str | None = None
    ) -> OpaqueAccessToken:
        token = OpaqueAccessToken(
            value=new_token_value(self._runtime),
            grant_id=grant.grant_id,
            client_id=grant.client_id,
            sub=grant.sub,
            scopes=scopes,
            issued_at=now,
            expires_at=now + ACCESS_TOKEN_TTL,
            actor=actor,
        )
        self.access_tokens[token.value] = token
        return token

    def active_access(self, value: str, now: float) -> OpaqueAccessToken | None:
        """The opaque access token if it is live (not expired, revoked, or of a dead grant)."""
        token = self.access_tokens.get(value)
        if token is None or token.revoked or now >= token.expires_at:
            return None
        if self.grants[token.grant_id].revoked:
            return None
        return token

    # -- revocation ----------------------------------------------------------------------
    def revoke_grant(self, grant_id: str) -> None:
        """Kill a grant: its refresh tokens and opaque access tokens stop working."""
        self.grants[grant_id].revoked = True

    def revoke_subject(self, sub: str) -> int:
        """Revoke every grant of ``sub``; returns how many were live."""
        count = 0
        for grant in self.grants.values():
            if grant.sub == sub and not grant.revoked:
                grant.revoked = True
                count += 1
        return count
