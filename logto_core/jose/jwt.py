"""Decoding of compact JWS tokens without verifying them.

These helpers split a token, check its shape strictly and return the JSON header and claims.
They never check a signature: :mod:`logto_core.jose.chain` does that (for ID tokens through
:mod:`logto_core.protocol.id_token`), and the other helpers here only read tokens the client already
trusts (a stored, verified ID token) or merely displays (its own access tokens, which only the
API receiving them must verify).

Messages never quote the token or any part of it.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from .. import json_strict
from ..errors import TokenValidationError
from ..models import AccessTokenClaims, IdTokenClaims

MAX_TOKEN_BYTES = 16 * 1024
"""Tokens longer than this are refused before any decoding (16 KiB is far above what Logto
issues, yet small enough that parsing cannot be used to exhaust memory or CPU)."""

# Unpadded base64url, the only encoding RFC 7515 allows in the compact serialisation.
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
# RFC 7515 section 7.1 (header and payload non-empty) and RFC 7516 section 7.1 (five parts).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_COMPACT_JWE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){4}")

_ModelT = TypeVar("_ModelT", bound=BaseModel)

TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")
"""Claims whose value is a NumericDate (RFC 7519 section 2)."""


def _malformed(message: str, *, claim: str | None = None) -> NoReturn:
    raise TokenValidationError(message, code="jwt.malformed", claim=claim)


def split_token(token: object) -> tuple[str, str, str]:
    """Split a compact JWS into its three base64url segments, enforcing the size cap.

    Raises :class:`TokenValidationError` (``jwt.malformed``) for anything that is not a
    string of at most :data:`MAX_TOKEN_BYTES` characters holding exactly three segments of
    unpadded base64url (an encrypted, five-segment JWE is refused too).
    """
    if not isinstance(token, str):
        _malformed("token is not a string")
    # The cap comes first so that nothing below ever runs on a huge input.
    if len(token) > MAX_TOKEN_BYTES:
        _malformed(f"token is longer than {MAX_TOKEN_BYTES} characters")
    parts = token.split(".")
    if len(parts) != 3:
        _malformed("token is not a compact JWS (three dot-separated segments)")
    header, payload, signature = parts
    for part in parts:
        if not _SEGMENT.fullmatch(part):
            _malformed("token segment is not unpadded base64url")
    if not header or not payload:
        _malformed("token has an empty header or payload segment")
    return header, payload, signature


def compact_form(token: object) -> str | None:
    """``"jws"`` or ``"jwe"`` when ``token`` has the shape of a compact JWS (three segments)
    or JWE (five), else ``None``. Only the shape: no size cap, nothing decoded."""
    if not isinstance(token, str):
        return None
    if _COMPACT_JWS.fullmatch(token):
        return "jws"
    return "jwe" if _COMPACT_JWE.fullmatch(token) else None


def b64url_decode(segment: str) -> bytes:
    """Decode one unpadded base64url segment (already checked against the alphabet).

    Only the canonical encoding is accepted (unused trailing bits must be zero), so one
    token has exactly one spelling.
    """
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        # Only a length of 4n+1 characters gets here: no byte string encodes to it.
        _malformed("token segment has an impossible length")
    if b64url_encode(data) != segment:
        _malformed("token segment is not canonical base64url")
    return data


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode_json_object(segment: str, what: str) -> dict[str, Any]:
    raw = b64url_decode(segment)
    try:
        # The SDK's one strict decoder: UTF-8 only; duplicate member names (RFC 7515
        # section 5.2 lets a parser refuse them, removing any doubt about which of two "alg"
        # or "aud" values another parser would have seen), NaN and Infinity refused; nesting
        # bounded. The size is already bounded by MAX_TOKEN_BYTES.
        value = json_strict.loads(raw, max_bytes=MAX_TOKEN_BYTES)
    except json_strict.StrictJsonError as exc:
        _malformed(f"token {what} is not strict JSON: {exc}")
    if not isinstance(value, dict):
        _malformed(f"token {what} is not a JSON object")
    return value


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(header, claims)`` of a compact JWS **without verifying its signature**.

    Raises :class:`TokenValidationError` with code ``jwt.malformed`` when the token is
    oversized, not three base64url segments, or when the header or payload is not a UTF-8
    JSON object (duplicate member names and ``NaN``/``Infinity`` are refused as well).
    """
    header_b64, payload_b64, _ = split_token(token)
    header = _decode_json_object(header_b64, "header")
    claims = _decode_json_object(payload_b64, "payload")
    return header, claims


def validate_claims(
    model: type[_ModelT], claims: Mapping[str, Any], *, code: str = "jwt.claims_invalid"
) -> _ModelT:
    """Build ``model`` from decoded claims; a type error becomes a
    :class:`TokenValidationError` with ``code`` that names the claim but never its value."""
    try:
        return model.model_validate(claims)
    except ValidationError as exc:
        # pydantic's message quotes the input values, which may be personal data: name only
        # the offending claim.
        first = exc.errors(include_input=False, include_url=False)[0]
        claim = str(first["loc"][0]) if first["loc"] else None
        raise TokenValidationError(
            f"token claim {claim!r} is missing or has the wrong type",
            code=code,
            claim=claim,
        ) from None


def whole_second_times(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of verified ``claims`` with fractional times (:data:`TIME_CLAIMS`) rounded
    down, for the claim models, which hold whole seconds: NumericDate may be fractional
    (RFC 7519 section 2), and rounding down only makes times earlier (``exp`` and
    ``auth_time`` more conservative)."""
    normalised = dict(claims)
    for name in TIME_CLAIMS:
        value = normalised.get(name)
        if isinstance(value, float) and math.isfinite(value):
            normalised[name] = math.floor(value)
    return normalised


def decode_access_token_claims(token: str) -> AccessTokenClaims:
    """Decode the claims of a JWT access token, for display or routing only.

    The signature is **not** verified: an API receiving the token must verify it itself.
    Raises :class:`TokenValidationError` (``jwt.malformed`` or ``jwt.claims_invalid``).
    """
    _, claims = decode_unverified(token)
    return validate_claims(AccessTokenClaims, claims)


def decode_id_token_claims(token: str) -> IdTokenClaims:
    """Decode the claims of a stored ID token that was verified when it was received.

    Never use it on a token fresh from the network: use
    :func:`logto_core.protocol.id_token.verify_id_token` instead.
    Raises :class:`TokenValidationError` (``jwt.malformed`` or ``jwt.claims_invalid``).
    """
    _, claims = decode_unverified(token)
    return validate_claims(IdTokenClaims, claims)
