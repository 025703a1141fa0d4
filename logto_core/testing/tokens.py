"""Minting of signed tokens: ID tokens and JWT access tokens.

Opaque access tokens and refresh tokens are plain random values kept in the grant store; only
these two kinds are JWTs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .claims import id_token_claims
from .directory import Directory, User
from .faults import Fault
from .grants import ID_TOKEN_TTL, Grant, GrantStore
from .keys import KeyRing, SignOptions, apply_overrides


def scope_text(scopes: Iterable[str]) -> str:
    """Space-joined scopes in a stable order."""
    return " ".join(sorted(scopes))


@dataclass(frozen=True, slots=True)
class AccessTokenSpec:
    """What a JWT access token is for."""

    sub: str
    client_id: str
    audience: str
    scopes: frozenset[str]
    ttl: int
    organization_id: str | None = None
    actor: str | None = None
    """``sub`` of the actor after a token exchange with an actor token (claim ``act``)."""


class TokenMinter:
    """Signs ID tokens and JWT access tokens with the provider's current key."""

    def __init__(self, *, issuer: str, keys: KeyRing, directory: Directory, store: GrantStore):
        self._issuer = issuer
        self._keys = keys
        self._directory = directory
        self._store = store

    def id_token(
        self, grant: Grant, user: User, scopes: frozenset[str], now: float, fault: Fault | None
    ) -> str:
        """An ID token for ``grant`` releasing the claims of ``scopes``.

        ``fault`` (if it touches the ID token) changes claims, header or signature.
        """
        claims: dict[str, Any] = id_token_claims(self._directory, user, set(scopes))
        claims.update(
            {
                "iss": self._issuer,
                "aud": grant.client_id,
                "iat": int(now),
                "exp": int(now) + ID_TOKEN_TTL,
                "sid": grant.sid,
            }
        )
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        if grant.auth_time is not None:
            claims["auth_time"] = int(grant.auth_time)
        options = SignOptions()
        if fault is not None:
            claims = apply_overrides(claims, fault.id_token_claims)
            options = SignOptions(
                header_overrides=fault.id_token_header,
                unsigned=fault.unsigned,
                bad_signature=fault.bad_signature,
            )
        # ID tokens carry no ``typ`` header in Logto.
        return self._keys.sign(claims, options=options)

    def access_token(self, spec: AccessTokenSpec, now: float) -> str:
        """A JWT access token (``typ: at+jwt``) for an API resource or organization."""
        claims: dict[str, Any] = {
            "jti": self._store.new_id(),
            "sub": spec.sub,
            "iat": int(now),
            "exp": int(now) + spec.ttl,
            "scope": scope_text(spec.scopes),
            "client_id": spec.client_id,
            "iss": self._issuer,
            "aud": spec.audience,
        }
        if spec.organization_id is not None:
            claims["organization_id"] = spec.organization_id
        if spec.actor is not None:
            claims["act"] = {"sub": spec.actor}
        return self._keys.sign(claims, typ="at+jwt")
