"""JWT verification as one chain of checks, parameterised by a :class:`JwtRules` value.

:func:`verify_jwt` runs, in this order and against the injected ``now`` only:

1. **decode** - size cap, compact JWS shape, strict JSON header and payload
   (:func:`~logto_core.jose.jwt.decode_unverified`);
2. **header** (:func:`check_header`) - ``alg`` on the rules' allow-list (``none``, HMAC and
   algorithms the SDK cannot verify never are), no ``crit``, ``typ`` among the accepted
   types (or absent, when the rules allow it), ``kid`` a string;
3. **key** (:func:`~logto_core.jose.keys.select_key`) - exactly one key fits, or the chain
   returns :data:`~logto_core.jose.keys.NEED_KEYS` and checks nothing further;
4. **signature** (:func:`check_signature`);
5. **claims** (:func:`check_claims`) - ``iss``; ``sub``; ``aud`` (and ``azp``); the times
   (``exp``, ``iat``, ``nbf``, ``auth_time``, ``max_age``) with the rules' leeway; then any
   other required claim.

Only the facts of one kind of token are in the rules: the ID token's are built by
:func:`logto_core.protocol.id_token.id_token_rules`, which adds the nonce and ``at_hash`` after the
chain. Every failure is a :class:`~logto_core.errors.TokenValidationError` whose ``code`` is
the rules' ``code_prefix`` and one of :data:`CHECK_CODES` (``id_token.expired``), naming the
claim or header parameter at fault; the messages name the token by the rules' ``name``.
The JOSE library checks the signature and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, NoReturn

from joserfc.jws import JWSRegistry

from ..errors import JwksError, TokenValidationError
from .jwt import b64url_decode, decode_unverified, split_token
from .keys import (
    NEED_KEYS,
    SUPPORTED_ALGORITHMS,
    KeyConflict,
    KeySet,
    NeedKeys,
    load_public_key,
    select_key,
)

CHECK_CODES = frozenset(
    {
        "alg_not_allowed",
        "crit_unsupported",
        "typ_not_allowed",
        "header_invalid",
        "kid_ambiguous",
        "key_mismatch",
        "kid_unknown",
        "bad_signature",
        "missing_claim",
        "invalid_claim",
        "iss_mismatch",
        "aud_mismatch",
        "azp_mismatch",
        "aud_untrusted",
        "expired",
        "not_yet_valid",
        "iat_future",
        "auth_time_future",
        "auth_time_too_old",
    }
)
"""The codes the chain raises, each after the rules' ``code_prefix`` and a dot."""

# Claims the chain checks at their own place; any other required claim is checked last.
_CHECKED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "iat", "nbf", "auth_time"})


class AudiencePolicy(Enum):
    """How ``aud`` is checked beyond "it contains the rules' audience"."""

    CONTAINS = "contains"
    """Other audiences are allowed (RFC 9068 section 4: the token names this resource)."""
    EXCLUSIVE = "exclusive"
    """OpenID Connect Core 3.1.3.7 steps 3-5 (ID tokens, logout tokens): no audience this
    client does not trust, ``azp`` required with several audiences, and equal to the
    audience whenever present."""


class UnknownKeyError(JwksError):
    """No key of the set matches the token's ``kid`` (or, without a ``kid``, its algorithm).

    The provider may have rotated its keys: the caller may refetch the key set once (subject
    to its cooldown) and verify again. Its ``code`` is the rules' prefix and ``kid_unknown``;
    the class default is the ID token's.
    """

    code = "id_token.kid_unknown"


@dataclass(frozen=True, slots=True)
class JwtRules:
    """What one kind of JWT must satisfy; :func:`verify_jwt` knows nothing else about it.

    ``types`` are the accepted ``typ`` values (compared case-insensitively, RFC 7515 section
    4.1.9); without ``typ_required`` a token without ``typ`` is accepted as well (with it and
    no ``types``, every token is refused).
    ``algorithms`` is the allow-list (see :func:`allowed_algorithms`). ``audience`` must be
    among the token's ``aud`` values, under ``audience_policy``. ``required_claims`` must be
    present (``iss`` and ``aud`` always are); ``leeway`` (seconds) applies to every time
    check; with ``max_age``, ``auth_time`` is required and must be that recent.
    ``time_claims`` are the NumericDate claims the kind defines, the ones the chain reads
    (any other is a claim the kind does not understand, ignored: a logout token's
    ``auth_time`` means nothing, Back-Channel Logout 1.0 section 2.4).
    ``code_prefix`` starts every error code, ``name`` ("ID token") names the token in
    messages and ``audience_name`` ("this client") the audience.
    """

    name: str
    code_prefix: str
    issuer: str
    audience: str
    algorithms: frozenset[str]
    types: frozenset[str] = frozenset()
    typ_required: bool = False
    required_claims: tuple[str, ...] = ("sub", "exp", "iat")
    leeway: float = 0.0
    max_age: float | None = None
    audience_policy: AudiencePolicy = AudiencePolicy.EXCLUSIVE
    audience_name: str = "this client"
    time_claims: frozenset[str] = frozenset({"exp", "iat", "nbf", "auth_time"})

    def __post_init__(self) -> None:
        # Frozen, and made of frozen parts, whatever collections the caller passed.
        object.__setattr__(self, "algorithms", frozenset(self.algorithms))
        object.__setattr__(self, "types", frozenset(typ.lower() for typ in self.types))
        object.__setattr__(self, "required_claims", tuple(self.required_claims))
        object.__setattr__(self, "time_claims", frozenset(self.time_claims))

    @property
    def a_name(self) -> str:
        """The token's name after "a" or "an" ("an ID token", "a logout token")."""
        return f"{'an' if self.name[:1].lower() in 'aeiou' else 'a'} {self.name}"

    def reject(self, code: str, message: str, claim: str | None = None) -> NoReturn:
        """Raise the chain's error: ``code`` after the prefix, ``claim`` at fault."""
        raise TokenValidationError(message, code=f"{self.code_prefix}.{code}", claim=claim)

    def unknown_key(self) -> UnknownKeyError:
        """The error for a token whose key is still unknown after the allowed refetch."""
        return UnknownKeyError(
            f"no key of the provider's key set matches the {self.name}",
            code=f"{self.code_prefix}.kid_unknown",
        )


@dataclass(frozen=True, slots=True)
class VerifiedJwt:
    """A token that passed the chain: its header, claims, algorithm and the key that
    verified it (an ID token's ``at_hash`` follows the key's curve for EdDSA)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    alg: str
    key: Mapping[str, Any]


def is_forbidden_algorithm(alg: str) -> bool:
    """``none`` and HMAC (a shared secret is no proof of the provider): never accepted."""
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
        alg for alg in accepted if alg in SUPPORTED_ALGORITHMS and not is_forbidden_algorithm(alg)
    )


def verify_jwt(
    token: str, rules: JwtRules, keys: KeySet | None, *, now: float
) -> VerifiedJwt | Literal[NeedKeys.NEED_KEYS]:
    """Run the whole chain on ``token``; :data:`NEED_KEYS` when ``keys`` (``None``: no set
    yet) has no key for it, after the header was checked and before any claim is.

    Raises :class:`TokenValidationError` (``<prefix>.<check>``, see :data:`CHECK_CODES`, or
    ``jwt.malformed`` for a token that does not decode).
    """
    header, claims = decode_unverified(token)
    alg = check_header(header, rules)
    key = select_key(keys, header.get("kid"), alg)
    if key is NEED_KEYS:
        return NEED_KEYS
    if key is KeyConflict.AMBIGUOUS:
        rules.reject(
            "kid_ambiguous",
            f"several keys fit the {rules.name} and its key id does not decide",
            "kid",
        )
    if key is KeyConflict.MISMATCH:
        rules.reject(
            "key_mismatch", f"the key named by the {rules.name} does not fit its algorithm", "alg"
        )
    check_signature(token, alg, key, rules)
    check_claims(claims, rules, now=now)
    return VerifiedJwt(header, claims, alg, key)


def check_header(header: Mapping[str, Any], rules: JwtRules) -> str:
    """Check the protected header; answer the algorithm. No key is looked at."""
    alg = header.get("alg")
    if not isinstance(alg, str):
        rules.reject("alg_not_allowed", f"{rules.name} header has no algorithm", "alg")
    if (
        is_forbidden_algorithm(alg)
        or alg not in rules.algorithms
        or alg not in SUPPORTED_ALGORITHMS
    ):
        rules.reject(
            "alg_not_allowed", f"{rules.name} algorithm {alg[:20]!r} is not allowed", "alg"
        )
    if "crit" in header:
        # No extension is understood, so any critical one makes the token unacceptable
        # (RFC 7515 section 4.1.11); this also rules out unencoded payloads (RFC 7797).
        rules.reject("crit_unsupported", f"{rules.name} header lists critical extensions", "crit")
    typ = header.get("typ")
    if typ is None:
        if rules.typ_required:
            rules.reject("typ_not_allowed", f"{rules.name} header has no type", "typ")
    elif not isinstance(typ, str) or typ.lower() not in rules.types:
        # RFC 8725 section 3.11: explicit typing keeps one kind of token from being
        # accepted as another (an access token as an ID token, say).
        rules.reject("typ_not_allowed", f"token type is not {rules.a_name}", "typ")
    if "kid" in header and not isinstance(header["kid"], str):
        rules.reject("header_invalid", f"{rules.name} key id is not a string", "kid")
    return alg


def check_signature(token: str, alg: str, key: Mapping[str, Any], rules: JwtRules) -> None:
    """Check the signature with ``key`` (a kept public JWK that fits ``alg``)."""
    public_key = load_public_key(key)
    header_b64, payload_b64, signature_b64 = split_token(token)
    signature = b64url_decode(signature_b64)
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    algorithm = JWSRegistry.algorithms[alg]
    try:
        algorithm.check_key(public_key)
        valid = bool(signature) and algorithm.verify(signing_input, signature, public_key)
    except Exception:  # the library and cryptography raise many types for an unusable key
        valid = False
    if not valid:
        rules.reject("bad_signature", f"{rules.name} signature is not valid")


def check_claims(claims: Mapping[str, Any], rules: JwtRules, *, now: float) -> None:
    """The claim checks, in order: issuer, subject, audience, times, other required claims."""
    check_issuer(claims, rules)
    if "sub" in rules.required_claims or claims.get("sub") is not None:
        _require_string(claims, "sub", rules)
    check_audience(claims, rules)
    check_times(claims, rules, now=now)
    for name in rules.required_claims:
        if name not in _CHECKED_CLAIMS:
            _require(claims, name, rules)


def check_issuer(claims: Mapping[str, Any], rules: JwtRules) -> None:
    if _require_string(claims, "iss", rules) != rules.issuer:
        rules.reject("iss_mismatch", f"{rules.name} issuer is not the expected issuer", "iss")


def check_audience(claims: Mapping[str, Any], rules: JwtRules) -> None:
    audiences = _audiences(claims, rules)
    audience = rules.audience
    if audience not in audiences:
        rules.reject("aud_mismatch", f"{rules.name} is not issued to {rules.audience_name}", "aud")
    if rules.audience_policy is AudiencePolicy.CONTAINS:
        return
    azp = claims.get("azp")
    if azp is None and len(set(audiences)) > 1:
        rules.reject(
            "missing_claim", f"{rules.name} with several audiences has no 'azp' claim", "azp"
        )
    if azp is not None and azp != audience:
        rules.reject(
            "azp_mismatch", f"{rules.name} authorized party is not {rules.audience_name}", "azp"
        )
    if any(aud != audience for aud in audiences):
        # No other audience is trusted (OIDC Core 3.1.3.7 step 3).
        rules.reject(
            "aud_untrusted",
            f"{rules.name} names audiences {rules.audience_name} does not trust",
            "aud",
        )


def check_times(claims: Mapping[str, Any], rules: JwtRules, *, now: float) -> None:
    """``exp``, ``iat``, ``nbf`` and ``auth_time`` against ``now``, with the rules' leeway.

    Every present time of the rules' ``time_claims`` is read (and must be a finite number)
    before any is compared; a time claim the kind does not define is not looked at.
    """
    required = rules.required_claims
    tolerance = rules.leeway
    exp = _time(claims, "exp", rules, required="exp" in required)
    iat = _time(claims, "iat", rules, required="iat" in required)
    nbf = _time(claims, "nbf", rules, required="nbf" in required)
    auth_time = _time(
        claims, "auth_time", rules, required=rules.max_age is not None or "auth_time" in required
    )
    # The token is valid strictly before exp (RFC 7519 section 4.1.4), plus the tolerance.
    if exp is not None and now >= exp + tolerance:
        rules.reject("expired", f"{rules.name} has expired", "exp")
    if nbf is not None and nbf > now + tolerance:
        rules.reject("not_yet_valid", f"{rules.name} is not valid yet", "nbf")
    if iat is not None and iat > now + tolerance:
        rules.reject("iat_future", f"{rules.name} is issued in the future", "iat")
    if auth_time is not None and auth_time > now + tolerance:
        rules.reject(
            "auth_time_future", f"{rules.name} authentication time is in the future", "auth_time"
        )
    max_age = rules.max_age
    if max_age is not None and auth_time is not None and now > auth_time + max_age + tolerance:
        rules.reject(
            "auth_time_too_old", "the end-user authenticated longer ago than max_age", "auth_time"
        )


def _require(claims: Mapping[str, Any], name: str, rules: JwtRules) -> Any:
    if name not in claims or claims[name] is None:
        rules.reject("missing_claim", f"{rules.name} has no {name!r} claim", name)
    return claims[name]


def _require_string(claims: Mapping[str, Any], name: str, rules: JwtRules) -> str:
    value = _require(claims, name, rules)
    if not isinstance(value, str) or not value:
        rules.reject(
            "invalid_claim", f"{rules.name} claim {name!r} is not a non-empty string", name
        )
    return value


def _audiences(claims: Mapping[str, Any], rules: JwtRules) -> list[str]:
    aud = _require(claims, "aud", rules)
    values = aud if isinstance(aud, list) else [aud]
    if not values or not all(isinstance(value, str) and value for value in values):
        rules.reject(
            "invalid_claim", f"{rules.name} audience is not a string or a list of strings", "aud"
        )
    return values


def _time(claims: Mapping[str, Any], name: str, rules: JwtRules, *, required: bool) -> float | None:
    if not required and (name not in rules.time_claims or claims.get(name) is None):
        return None
    value = _require(claims, name, rules)
    # bool is an int subclass in Python, but true is not a time.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        rules.reject("invalid_claim", f"{rules.name} claim {name!r} is not a number", name)
    if not math.isfinite(value):
        rules.reject("invalid_claim", f"{rules.name} claim {name!r} is not a finite number", name)
    return float(value)
