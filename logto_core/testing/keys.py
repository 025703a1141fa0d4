"""Signing keys of the test provider: generation, rotation, JWKS and compact JWS signing.

Tokens are signed with joserfc's algorithm implementations over a header we serialise
ourselves, so that fault injection can publish any header (``alg: none``, a foreign ``kid``)
while the signature is still made with the real key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import JWSRegistry

from logto_core.errors import LogtoUsageError
from logto_core.runtime import Runtime

from ._wire import b64url, b64url_decode, json_b64

SUPPORTED_ALGS: dict[str, str] = {"ES384": "P-384", "ES256": "P-256", "ES512": "P-521", "RS256": ""}
"""Signing algorithms the provider can use, with the elliptic curve each needs (RSA: none)."""

Key = ECKey | RSAKey


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One private signing key with its ``kid`` and algorithm."""

    kid: str
    alg: str
    key: Key

    def public_jwk(self) -> dict[str, Any]:
        """The public JWK, with ``kid``, ``alg`` and ``use=sig``."""
        jwk = dict(self.key.as_dict(private=False))
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk

    def sign(self, signing_input: bytes) -> bytes:
        """Raw JWS signature of ``signing_input`` with this key's algorithm."""
        algorithm = JWSRegistry.algorithms[self.alg]
        return algorithm.sign(signing_input, self.key)


def generate_key(alg: str, runtime: Runtime) -> SigningKey:
    """A new key for ``alg`` (ES384, ES256, ES512 or RS256) with a random ``kid``.

    The key material comes from the cryptography library's own CSPRNG; the ``kid`` comes from
    the injected runtime so that it is reproducible in tests.
    """
    if alg not in SUPPORTED_ALGS:
        raise LogtoUsageError(
            f"unsupported signing algorithm {alg!r}; use one of {sorted(SUPPORTED_ALGS)}",
            code="testing.unsupported_alg",
        )
    kid = b64url(runtime.random_bytes(16))
    params: dict[str, str] = {"kid": kid, "alg": alg, "use": "sig"}
    key: Key
    if alg == "RS256":
        key = RSAKey.generate_key(2048, parameters=params, private=True)  # type: ignore[arg-type]
    else:
        key = ECKey.generate_key(SUPPORTED_ALGS[alg], parameters=params, private=True)  # type: ignore[arg-type]
    return SigningKey(kid=kid, alg=alg, key=key)


@dataclass(frozen=True, slots=True)
class SignOptions:
    """How to sign one token; the defaults give a normal, valid token."""

    header_overrides: Mapping[str, Any] | None = None
    """Header members to set; a ``None`` value removes the member."""
    unsigned: bool = False
    """Emit an empty signature segment."""
    bad_signature: bool = False
    """Corrupt the signature so that it no longer verifies."""


def apply_overrides(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``overrides`` applied; ``None`` values delete the member."""
    merged = dict(base)
    for name, value in (overrides or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


class KeyRing:
    """The current signing key and, after a rotation, the previous one.

    The JWKS lists the current key first, then the previous key (if kept), so tokens signed
    before a rotation keep verifying.
    """

    def __init__(self, alg: str, runtime: Runtime) -> None:
        self._runtime = runtime
        self.current = generate_key(alg, runtime)
        self.previous: SigningKey | None = None

    @property
    def alg(self) -> str:
        """The algorithm of the current key."""
        return self.current.alg

    def rotate(self, alg: str | None = None, *, keep_previous: bool = True) -> SigningKey:
        """Make a new current key (same algorithm unless ``alg`` is given) and return it."""
        new_key = generate_key(alg or self.current.alg, self._runtime)
        self.previous = self.current if keep_previous else None
        self.current = new_key
        return new_key

    def published(self) -> list[SigningKey]:
        """Keys listed in the JWKS, current first."""
        return [self.current] + ([self.previous] if self.previous else [])

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set document."""
        return {"keys": [key.public_jwk() for key in self.published()]}

    def find(self, kid: str) -> SigningKey | None:
        """The published key with this ``kid``."""
        for key in self.published():
            if key.kid == kid:
                return key
        return None

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        typ: str | None = None,
        options: SignOptions | None = None,
    ) -> str:
        """A compact JWS of ``claims`` signed with the current key."""
        options = options or SignOptions()
        key = self.current
        header: dict[str, Any] = {"alg": key.alg, "kid": key.kid}
        if typ is not None:
            header["typ"] = typ
        header = apply_overrides(header, options.header_overrides)
        signing_input = f"{json_b64(header)}.{json_b64(claims)}"
        if options.unsigned:
            return signing_input + "."
        signature = bytearray(key.sign(signing_input.encode("ascii")))
        if options.bad_signature:
            # Flip bits in the middle: still well-formed base64url, no longer a valid signature.
            signature[len(signature) // 2] ^= 0xFF
        return f"{signing_input}.{b64url(bytes(signature))}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """Claims of a token signed by a published key, or ``None`` (end-session hints)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except ValueError:
            return None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        key = self.find(str(header.get("kid")))
        if key is None or header.get("alg") != key.alg:
            return None
        algorithm = JWSRegistry.algorithms[key.alg]
        signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not algorithm.verify(signing_input, signature, key.key):
            return None
        return claims
