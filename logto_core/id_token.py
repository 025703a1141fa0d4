"""ID token verification (OpenID Connect Core 1.0 section 3.1.3.7, RFC 8725).

The JOSE library is used for exactly one thing: checking a signature with a key the caller's
:class:`~logto_core.jose.keys.KeySet` supplies. Everything else (header rules, key choice, claims,
times) is checked here against the injected ``now``, so the outcome never depends on the wall
clock or on the library's defaults.

Every failure is a :class:`~logto_core.errors.TokenValidationError` with a stable ``code`` and,
where one is at fault, the ``claim`` (or header parameter) name; an unknown ``kid`` is an
:class:`UnknownKeyError`, after which the caller may refetch the key set once and retry.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, NoReturn

from joserfc.jws import JWSRegistry

from .errors import JwksError, TokenValidationError
from .jose.jwt import b64url_decode, b64url_encode, decode_unverified, split_token, validate_claims
from .jose.keys import SUPPORTED_ALGORITHMS, KeySet, load_public_key
from .models import IdTokenClaims

# typ values an ID token may carry (Logto sends none). Anything else, such as "at+jwt" or
# "logout+jwt", is another kind of token and must not be accepted as an ID token.
_ID_TOKEN_TYPES = frozenset({"jwt", "application/jwt"})

# Claims whose value is a NumericDate.
_TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")


class UnknownKeyError(JwksError):
    """No key of the set matches the token's ``kid`` (or, without a ``kid``, its algorithm).

    The provider may have rotated its keys: the caller may refetch the key set once (subject
    to its cooldown) and verify again.
    """

    code = "id_token.kid_unknown"


def _fail(code: str, message: str, claim: str | None = None) -> NoReturn:
    raise TokenValidationError(message, code=f"id_token.{code}", claim=claim)


def _is_forbidden_algorithm(alg: str) -> bool:
    return alg.lower() == "none" or alg.upper().startswith("HS")


def allowed_algorithms(
    client_allow_list: Collection[str], provider_advertised: Collection[str]
) -> frozenset[str]:
    """The algorithms to accept: the client's list intersected with the provider's.

    An empty advertised list means the provider said nothing, and the client's list applies.
    ``none``, HMAC and algorithms the SDK cannot verify are always removed, so the result may
    be empty (every token is then refused).
    """
    accepted = set(client_allow_list)
    if provider_advertised:
        accepted &= set(provider_advertised)
    return frozenset(
        alg for alg in accepted if alg in SUPPORTED_ALGORITHMS and not _is_forbidden_algorithm(alg)
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
    """
    header, claims = decode_unverified(token)
    alg = _check_header(header, algorithms)
    _check_signature(token, header, alg, keys)
    _check_issuer_and_audience(claims, issuer, client_id)
    _check_times(claims, now, clock_tolerance, max_age)
    if nonce_unknown:
        if not isinstance(claims.get("nonce", ""), str):
            _fail("invalid_claim", "ID token claim 'nonce' is not a string", "nonce")
    else:
        _check_nonce(claims, expected_nonce)
    if access_token is not None:
        _check_at_hash(claims, access_token, alg, header, keys)
    return _to_model(claims)


def _check_header(header: Mapping[str, Any], algorithms: Collection[str]) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str):
        _fail("alg_not_allowed", "ID token header has no algorithm", "alg")
    if _is_forbidden_algorithm(alg) or alg not in algorithms or alg not in SUPPORTED_ALGORITHMS:
        _fail("alg_not_allowed", f"ID token algorithm {alg[:20]!r} is not allowed", "alg")
    if "crit" in header:
        # No extension is understood, so any critical one makes the token unacceptable
        # (RFC 7515 section 4.1.11); this also rules out unencoded payloads (RFC 7797).
        _fail("crit_unsupported", "ID token header lists critical extensions", "crit")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in _ID_TOKEN_TYPES):
        _fail("typ_not_allowed", "token type is not an ID token", "typ")
    if "kid" in header and not isinstance(header["kid"], str):
        _fail("header_invalid", "ID token key id is not a string", "kid")
    return alg


def _select_key(header: Mapping[str, Any], alg: str, keys: KeySet) -> Mapping[str, Any]:
    kid = header.get("kid")
    candidates = keys.candidates(kid, alg)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        # Trying each key in turn would let a token pick its own key; "the first" is
        # arbitrary. Several fits is an ambiguity the provider must resolve with a kid.
        _fail(
            "kid_ambiguous", "several keys fit the ID token and its key id does not decide", "kid"
        )
    if kid is not None and kid in keys.key_ids():
        _fail("key_mismatch", "the key named by the ID token does not fit its algorithm", "alg")
    raise UnknownKeyError("no key of the provider's key set matches the ID token")


def _check_signature(token: str, header: Mapping[str, Any], alg: str, keys: KeySet) -> None:
    key = load_public_key(_select_key(header, alg, keys))
    header_b64, payload_b64, signature_b64 = split_token(token)
    signature = b64url_decode(signature_b64)
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    algorithm = JWSRegistry.algorithms[alg]
    try:
        algorithm.check_key(key)
        valid = bool(signature) and algorithm.verify(signing_input, signature, key)
    except Exception:  # the library and cryptography raise many types for an unusable key
        valid = False
    if not valid:
        _fail("bad_signature", "ID token signature is not valid")


def _require(claims: Mapping[str, Any], name: str) -> Any:
    if name not in claims or claims[name] is None:
        _fail("missing_claim", f"ID token has no {name!r} claim", name)
    return claims[name]


def _require_string(claims: Mapping[str, Any], name: str) -> str:
    value = _require(claims, name)
    if not isinstance(value, str) or not value:
        _fail("invalid_claim", f"ID token claim {name!r} is not a non-empty string", name)
    return value


def _check_issuer_and_audience(claims: Mapping[str, Any], issuer: str, client_id: str) -> None:
    if _require_string(claims, "iss") != issuer:
        _fail("iss_mismatch", "ID token issuer is not the expected issuer", "iss")
    _require_string(claims, "sub")
    audiences = _audiences(claims)
    if client_id not in audiences:
        _fail("aud_mismatch", "ID token is not issued to this client", "aud")
    azp = claims.get("azp")
    if azp is None and len(set(audiences)) > 1:
        _fail("missing_claim", "ID token with several audiences has no 'azp' claim", "azp")
    if azp is not None and azp != client_id:
        _fail("azp_mismatch", "ID token authorized party is not this client", "azp")
    if any(aud != client_id for aud in audiences):
        # No other audience is trusted by this client (OIDC Core 3.1.3.7 step 3).
        _fail("aud_untrusted", "ID token names audiences this client does not trust", "aud")


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = _require(claims, "aud")
    values = aud if isinstance(aud, list) else [aud]
    if not values or not all(isinstance(value, str) and value for value in values):
        _fail("invalid_claim", "ID token audience is not a string or a list of strings", "aud")
    return values


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = _require(claims, name)
    # bool is an int subclass in Python, but true is not a time.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail("invalid_claim", f"ID token claim {name!r} is not a number", name)
    if not math.isfinite(value):
        _fail("invalid_claim", f"ID token claim {name!r} is not a finite number", name)
    return float(value)


def _optional_number(claims: Mapping[str, Any], name: str) -> float | None:
    return None if claims.get(name) is None else _number(claims, name)


def _check_times(
    claims: Mapping[str, Any], now: float, tolerance: float, max_age: float | None
) -> None:
    exp = _number(claims, "exp")
    iat = _number(claims, "iat")
    nbf = _optional_number(claims, "nbf")
    auth_time = _number(claims, "auth_time") if max_age is not None else None
    if auth_time is None:
        auth_time = _optional_number(claims, "auth_time")
    # The token is valid strictly before exp (RFC 7519 section 4.1.4), plus the tolerance.
    if now >= exp + tolerance:
        _fail("expired", "ID token has expired", "exp")
    if nbf is not None and nbf > now + tolerance:
        _fail("not_yet_valid", "ID token is not valid yet", "nbf")
    if iat > now + tolerance:
        _fail("iat_future", "ID token is issued in the future", "iat")
    if auth_time is not None and auth_time > now + tolerance:
        _fail("auth_time_future", "ID token authentication time is in the future", "auth_time")
    if max_age is not None and auth_time is not None and now > auth_time + max_age + tolerance:
        _fail(
            "auth_time_too_old", "the end-user authenticated longer ago than max_age", "auth_time"
        )


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


def _hash_function(alg: str, header: Mapping[str, Any], keys: KeySet) -> Callable[[bytes], bytes]:
    if alg != "EdDSA":
        size = alg[2:]  # RS256 -> 256, ES384 -> 384, PS512 -> 512
        return lambda data: hashlib.new(f"sha{size}", data).digest()
    # For EdDSA the hash follows the curve: SHA-512 for Ed25519, SHAKE256 (114 bytes) for
    # Ed448 (OpenID Connect Core errata and RFC 8037). The key was found before.
    curve = _select_key(header, alg, keys).get("crv")
    if curve == "Ed448":
        return lambda data: hashlib.shake_256(data).digest(114)
    return lambda data: hashlib.sha512(data).digest()


def _check_at_hash(
    claims: Mapping[str, Any], access_token: str, alg: str, header: Mapping[str, Any], keys: KeySet
) -> None:
    at_hash = claims.get("at_hash")
    if at_hash is None:
        return
    if not isinstance(at_hash, str):
        _fail("invalid_claim", "ID token claim 'at_hash' is not a string", "at_hash")
    digest = _hash_function(alg, header, keys)(access_token.encode("utf-8", "surrogatepass"))
    expected = b64url_encode(digest[: len(digest) // 2])
    if not _same_text(at_hash, expected):
        _fail("at_hash_mismatch", "ID token at_hash does not match the access token", "at_hash")


def _to_model(claims: dict[str, Any]) -> IdTokenClaims:
    # The model holds whole seconds; NumericDate may be fractional (RFC 7519 section 2), and
    # rounding down only makes times earlier (i.e. exp and auth_time more conservative).
    normalised = dict(claims)
    for name in _TIME_CLAIMS:
        if isinstance(normalised.get(name), float):
            normalised[name] = math.floor(normalised[name])
    return validate_claims(IdTokenClaims, normalised, code="id_token.invalid_claim")


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
