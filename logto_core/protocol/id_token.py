"""ID token verification (OpenID Connect Core 1.0 section 3.1.3.7, RFC 8725).

A thin wrapper over the JWT chain (:mod:`logto_core.jose.chain`): :func:`id_token_rules` says
what an ID token is (``typ`` absent, ``JWT`` or ``application/JWT``; ``sub``, ``exp``, ``iat``
required; the client as the only trusted audience; codes ``id_token.*``), and the wrapper adds
what only ID tokens have: the nonce and ``at_hash``. Everything is checked against the
injected ``now``, so the outcome never depends on the wall clock or on the library's defaults.

Every failure is a :class:`~logto_core.errors.TokenValidationError` with a stable ``code`` and,
where one is at fault, the ``claim`` (or header parameter) name; an unknown ``kid`` is
:data:`~logto_core.jose.keys.NEED_KEYS` from :func:`check_id_token` and an
:class:`UnknownKeyError` from :func:`verify_id_token`, after which the caller may refetch the
key set once (:func:`logto_core.jose.keys.retry_unknown_key`) and retry.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from typing import Any, Literal, NoReturn

from ..errors import TokenValidationError
from ..jose.chain import JwtRules, UnknownKeyError, allowed_algorithms, verify_jwt
from ..jose.jwt import b64url_encode, validate_claims, whole_second_times
from ..jose.keys import NEED_KEYS, KeySet, NeedKeys
from ..models import IdTokenClaims

# typ values an ID token may carry (Logto sends none). Anything else, such as "at+jwt" or
# "logout+jwt", is another kind of token and must not be accepted as an ID token.
_ID_TOKEN_TYPES = frozenset({"jwt", "application/jwt"})

__all__ = [
    "UnknownKeyError",
    "allowed_algorithms",
    "check_id_token",
    "check_refreshed_id_token",
    "id_token_rules",
    "unknown_key_error",
    "verify_id_token",
]


def _fail(code: str, message: str, claim: str | None = None) -> NoReturn:
    raise TokenValidationError(message, code=f"id_token.{code}", claim=claim)


def id_token_rules(
    *,
    issuer: str,
    client_id: str,
    algorithms: Collection[str],
    clock_tolerance: float,
    max_age: float | None = None,
) -> JwtRules:
    """The chain's rules for an ID token issued by ``issuer`` to ``client_id``."""
    return _rules(issuer, client_id, frozenset(algorithms), clock_tolerance, max_age)


@lru_cache(maxsize=64)
def _rules(
    issuer: str,
    client_id: str,
    algorithms: frozenset[str],
    clock_tolerance: float,
    max_age: float | None,
) -> JwtRules:
    # Rules are frozen values, the same for every token of one configuration: built once.
    return JwtRules(
        name="ID token",
        code_prefix="id_token",
        issuer=issuer,
        audience=client_id,
        algorithms=algorithms,
        types=_ID_TOKEN_TYPES,
        typ_required=False,
        required_claims=("sub", "exp", "iat"),
        leeway=clock_tolerance,
        max_age=max_age,
    )


def verify_id_token(
    token: str,
    *,
    keys: KeySet,
    issuer: str,
    client_id: str,
    now: float,
    clock_tolerance: float,
    algorithms: Collection[str],
    expected_nonce: str | None,
    access_token: str | None = None,
    max_age: float | None = None,
    nonce_unknown: bool = False,
) -> IdTokenClaims:
    """Verify an ID token and return its claims.

    ``algorithms`` is the accepted set (see :func:`allowed_algorithms`); ``none`` and HMAC are
    refused even if listed. ``expected_nonce`` is the nonce sent with the authorization request
    (for a refreshed token, the nonce of the original one); ``None`` means no nonce was sent,
    and a token carrying one is then refused. ``at_hash`` is checked when both it and
    ``access_token`` are present. With ``max_age``, ``auth_time`` is required and must be
    recent enough. ``nonce_unknown`` skips the nonce check, for a refreshed token whose
    original nonce the client no longer has (a nonce, if present, must still be a string).
    A token whose key ``keys`` lacks raises :class:`UnknownKeyError`.
    """
    result = check_id_token(
        token,
        keys=keys,
        issuer=issuer,
        client_id=client_id,
        now=now,
        clock_tolerance=clock_tolerance,
        algorithms=algorithms,
        expected_nonce=expected_nonce,
        access_token=access_token,
        max_age=max_age,
        nonce_unknown=nonce_unknown,
    )
    if result is NEED_KEYS:
        raise unknown_key_error()
    return result


def unknown_key_error() -> UnknownKeyError:
    """The error for an ID token whose key the key set still lacks (``id_token.kid_unknown``)."""
    return UnknownKeyError("no key of the provider's key set matches the ID token")


def check_id_token(
    token: str,
    *,
    keys: KeySet | None,
    issuer: str,
    client_id: str,
    now: float,
    clock_tolerance: float,
    algorithms: Collection[str],
    expected_nonce: str | None,
    access_token: str | None = None,
    max_age: float | None = None,
    nonce_unknown: bool = False,
) -> IdTokenClaims | Literal[NeedKeys.NEED_KEYS]:
    """:func:`verify_id_token`, answering :data:`~logto_core.jose.keys.NEED_KEYS` instead of
    raising when ``keys`` (``None``: none yet) has no key for the token."""
    rules = id_token_rules(
        issuer=issuer,
        client_id=client_id,
        algorithms=algorithms,
        clock_tolerance=clock_tolerance,
        max_age=max_age,
    )
    verified = verify_jwt(token, rules, keys, now=now)
    if verified is NEED_KEYS:
        return NEED_KEYS
    claims = verified.claims
    if nonce_unknown:
        if not isinstance(claims.get("nonce", ""), str):
            _fail("invalid_claim", "ID token claim 'nonce' is not a string", "nonce")
    else:
        _check_nonce(claims, expected_nonce)
    if access_token is not None:
        _check_at_hash(claims, access_token, verified.alg, verified.key)
    return _to_model(claims)


def _check_nonce(claims: Mapping[str, Any], expected_nonce: str | None) -> None:
    nonce = claims.get("nonce")
    if expected_nonce is None:
        if nonce is not None:
            _fail("unexpected_nonce", "ID token carries a nonce that was not sent", "nonce")
        return
    if nonce is None:
        _fail("missing_claim", "ID token has no 'nonce' claim", "nonce")
    if not isinstance(nonce, str):
        _fail("invalid_claim", "ID token claim 'nonce' is not a string", "nonce")
    if not _same_text(nonce, expected_nonce):
        _fail("nonce_mismatch", "ID token nonce is not the one sent", "nonce")


def _same_text(received: str, expected: str) -> bool:
    """Constant-time comparison of text from a token; ``surrogatepass`` because JSON may carry
    lone surrogates (``\\ud800``), which strict UTF-8 refuses."""
    return hmac.compare_digest(
        received.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _hash_function(alg: str, key: Mapping[str, Any]) -> Callable[[bytes], bytes]:
    if alg != "EdDSA":
        size = alg[2:]  # RS256 -> 256, ES384 -> 384, PS512 -> 512
        return lambda data: hashlib.new(f"sha{size}", data).digest()
    # For EdDSA the hash follows the curve: SHA-512 for Ed25519, SHAKE256 (114 bytes) for
    # Ed448 (OpenID Connect Core errata and RFC 8037); ``key`` verified the signature.
    if key.get("crv") == "Ed448":
        return lambda data: hashlib.shake_256(data).digest(114)
    return lambda data: hashlib.sha512(data).digest()


def _check_at_hash(
    claims: Mapping[str, Any], access_token: str, alg: str, key: Mapping[str, Any]
) -> None:
    at_hash = claims.get("at_hash")
    if at_hash is None:
        return
    if not isinstance(at_hash, str):
        _fail("invalid_claim", "ID token claim 'at_hash' is not a string", "at_hash")
    digest = _hash_function(alg, key)(access_token.encode("utf-8", "surrogatepass"))
    expected = b64url_encode(digest[: len(digest) // 2])
    if not _same_text(at_hash, expected):
        _fail("at_hash_mismatch", "ID token at_hash does not match the access token", "at_hash")


def _to_model(claims: dict[str, Any]) -> IdTokenClaims:
    return validate_claims(IdTokenClaims, whole_second_times(claims), code="id_token.invalid_claim")


def check_refreshed_id_token(previous: IdTokenClaims, refreshed: IdTokenClaims) -> None:
    """Check an ID token from a refresh against the one of the original sign-in.

    OpenID Connect Core section 12.2: ``iss``, ``sub`` and ``aud`` must be the same, and an
    ``auth_time`` present in both must still be the time of the original authentication.
    Raises :class:`TokenValidationError` (``id_token.iss_changed``, ``id_token.sub_changed``,
    ``id_token.aud_changed``, ``id_token.auth_time_changed``).
    """
    if refreshed.iss != previous.iss:
        _fail("iss_changed", "refreshed ID token has another issuer", "iss")
    if refreshed.sub != previous.sub:
        _fail("sub_changed", "refreshed ID token is about another user", "sub")
    if _audience_set(refreshed.aud) != _audience_set(previous.aud):
        _fail("aud_changed", "refreshed ID token has other audiences", "aud")
    if (
        previous.auth_time is not None
        and refreshed.auth_time is not None
        and refreshed.auth_time != previous.auth_time
    ):
        _fail(
            "auth_time_changed", "refreshed ID token has another authentication time", "auth_time"
        )


def _audience_set(aud: str | list[str]) -> frozenset[str]:
    return frozenset([aud] if isinstance(aud, str) else aud)
