"""Signing test tokens: fixed keys (generated once per test session) and a token builder.

Tokens are signed with the JOSE library's algorithm objects directly, so tests can put any
header they like (``crit``, odd ``typ``, no ``kid``) on a correctly signed token.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import Key, generate_key
from joserfc.jws import JWSRegistry

from logto_core.jose.keys import KeySet

ISSUER = "https://tenant.logto.app/oidc"
CLIENT_ID = "app-0123456789"
SUBJECT = "user-42"
NONCE = "n-0S6_WzA2Mj-nonce-value"
NOW = 1_700_000_000.0
TOLERANCE = 60.0
ACCESS_TOKEN = "opaque-access-token-" + "x" * 30
ALL_ALGORITHMS = (
    "ES256",
    "ES384",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)


class _Remove:
    """Marker: drop this claim or header parameter."""

    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Key

    def public_jwk(self, **extra: Any) -> dict[str, Any]:
        jwk = dict(self.private.as_dict(private=False))
        jwk["kid"] = self.kid
        jwk.update(extra)
        return jwk


def _generate() -> dict[str, SigningKey]:
    return {
        "rsa": SigningKey("rsa-1", generate_key("RSA", 2048)),
        "P-256": SigningKey("p256-1", generate_key("EC", "P-256")),
        "P-384": SigningKey("p384-1", generate_key("EC", "P-384")),
        "P-521": SigningKey("p521-1", generate_key("EC", "P-521")),
        "Ed25519": SigningKey("ed25519-1", generate_key("OKP", "Ed25519")),
        "Ed448": SigningKey("ed448-1", generate_key("OKP", "Ed448")),
    }


KEYS = _generate()

KEY_FOR_ALG = {
    **{f"{family}{size}": "rsa" for family in ("RS", "PS") for size in (256, 384, 512)},
    "ES256": "P-256",
    "ES384": "P-384",
    "ES512": "P-521",
    "EdDSA": "Ed25519",
}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def key_set(names: Iterable[str] | None = None, *, fetched_at: float = NOW) -> KeySet:
    """A key set with the public halves of the named test keys (all by default)."""
    chosen = list(KEYS) if names is None else list(names)
    return KeySet(tuple(KEYS[name].public_jwk() for name in chosen), fetched_at)


def jwks_body(names: Iterable[str] | None = None) -> dict[str, Any]:
    chosen = list(KEYS) if names is None else list(names)
    return {"keys": [KEYS[name].public_jwk() for name in chosen]}


def at_hash(access_token: str, alg: str) -> str:
    if alg == "EdDSA":
        digest = hashlib.sha512(access_token.encode()).digest()
    else:
        digest = hashlib.new(f"sha{alg[2:]}", access_token.encode()).digest()
    return b64(digest[: len(digest) // 2])


def base_claims(now: float = NOW, alg: str = "ES384") -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": CLIENT_ID,
        "exp": int(now) + 3600,
        "iat": int(now),
        "nonce": NONCE,
        "at_hash": at_hash(ACCESS_TOKEN, alg),
        "sid": "session-1",
        "name": "Ada",
    }


def _apply(base: dict[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    result = dict(base)
    for name, value in (changes or {}).items():
        if value is REMOVE:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def sign(
    header: Mapping[str, Any],
    claims: Mapping[str, Any] | bytes,
    *,
    key: Key | None = None,
    sign_alg: str | None = None,
) -> str:
    """Sign arbitrary header and claims; the signing algorithm defaults to ``header['alg']``."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = f"{b64_json(dict(header))}.{b64(payload)}"
    alg = sign_alg or str(header["alg"])
    if alg == "none":
        return signing_input + "."
    if key is None:
        key = KEYS[KEY_FOR_ALG[alg]].private
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def make_token(
    alg: str = "ES384",
    *,
    claims: Mapping[str, Any] | None = None,
    header: Mapping[str, Any] | None = None,
    key_name: str | None = None,
    now: float = NOW,
) -> str:
    """A valid ID token for the test client, with ``claims``/``header`` changes applied."""
    name = key_name or KEY_FOR_ALG[alg]
    base_header = {"alg": alg, "kid": KEYS[name].kid}
    return sign(
        _apply(base_header, header),
        _apply(base_claims(now, alg), claims),
        key=KEYS[name].private,
        sign_alg=alg,
    )
