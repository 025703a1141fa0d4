"""PKCE (RFC 7636, S256 only) and the random ``state`` and ``nonce`` values of a sign-in.

Every value is drawn from the :class:`~logto_core.runtime.Runtime` entropy source, so tests can
make them deterministic. Values are base64url text without padding: 32 random bytes give 43
characters, all in the RFC 7636 unreserved alphabet, carrying 256 bits of entropy.
"""

from __future__ import annotations

import base64
import hashlib

from ..errors import LogtoUsageError
from ..runtime import Runtime

RANDOM_BYTES = 32
"""Bytes of entropy behind each verifier, state and nonce (256 bits)."""

VERIFIER_MIN_LENGTH = 43
VERIFIER_MAX_LENGTH = 128

UNRESERVED_CHARACTERS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
"""The RFC 7636 section 4.1 alphabet of a code verifier."""


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _random_text(runtime: Runtime) -> str:
    """``RANDOM_BYTES`` bytes from the runtime (which refuses a short or non-bytes read with
    a ``runtime.entropy`` usage error), as base64url text without padding."""
    return _base64url(runtime.random_bytes(RANDOM_BYTES))


def generate_code_verifier(runtime: Runtime) -> str:
    """A fresh PKCE code verifier: 43 characters carrying 256 bits of entropy."""
    return _random_text(runtime)


def generate_state(runtime: Runtime) -> str:
    """A fresh ``state`` value (256 bits) binding a callback to its sign-in attempt."""
    return _random_text(runtime)


def generate_nonce(runtime: Runtime) -> str:
    """A fresh ``nonce`` value (256 bits) binding the ID token to its sign-in attempt."""
    return _random_text(runtime)


def is_valid_code_verifier(verifier: object) -> bool:
    """True for 43 to 128 characters of the RFC 7636 unreserved alphabet."""
    return (
        isinstance(verifier, str)
        and VERIFIER_MIN_LENGTH <= len(verifier) <= VERIFIER_MAX_LENGTH
        and all(c in UNRESERVED_CHARACTERS for c in verifier)
    )


def code_challenge_s256(verifier: str) -> str:
    """The S256 code challenge of ``verifier``: base64url(SHA-256(verifier)) without padding.

    Raises :class:`LogtoUsageError` (code ``pkce.invalid_verifier``) when the verifier is not
    43-128 characters of the unreserved alphabet. The message never echoes the verifier.
    """
    if not is_valid_code_verifier(verifier):
        raise LogtoUsageError(
            "a PKCE code verifier must be 43 to 128 characters among A-Z, a-z, 0-9, "
            "'-', '.', '_' and '~'",
            code="pkce.invalid_verifier",
        )
    return _base64url(hashlib.sha256(verifier.encode("ascii")).digest())
