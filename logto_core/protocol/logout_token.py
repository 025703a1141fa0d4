"""Logout token verification (OpenID Connect Back-Channel Logout 1.0, sections 2.4 and 2.6).

A thin wrapper over the JWT chain (:mod:`logto_core.jose.chain`), as the ID token's is:
:func:`logout_token_rules` says what a logout token is, and :func:`check_logout_token` adds
what only logout tokens have. Section 2.6, step by step:

- **signature and** ``alg``: the chain, with the ID token's algorithm allow-list (the spec
  ties the two together), ``none`` and HMAC never; the provider's rotating key set, an
  unknown ``kid`` answered :data:`~logto_core.jose.keys.NEED_KEYS` (the flow refetches at
  most once per cooldown, as for ID tokens);
- ``typ`` **must be** ``logout+jwt`` (or ``application/logout+jwt``, RFC 7515 section
  4.1.9). Section 2.4 only RECOMMENDS explicit typing, so the spec would allow an untyped
  token; Logto (and the oidc-provider it runs on) always types its logout tokens, so an
  untyped one is not Logto's, and refusing it keeps any other JWT of the provider (an ID
  token has no ``typ``) from ever being read as a logout (RFC 8725 section 3.11);
- ``iss`` is the issuer, ``aud`` contains the client (and names no other audience, with
  ``azp`` rules, as for ID tokens: "validated in the same way");
- ``iat`` present and not in the future beyond the clock tolerance; ``exp`` not passed when
  present. The 2022 text of section 2.4 REQUIRES ``exp``, but Logto sends none (see
  ``logto-protocol.md``): a token without one is accepted, and every token's age is bounded
  by ``iat`` instead (:data:`MAX_AGE`; OIDC Core 3.1.3.7 step 10 leaves the window to the
  client, and section 4 asks for short-lived tokens), so a captured token cannot be replayed
  later and a ``jti`` need only be remembered that long (:attr:`LogoutToken.until`);
- ``jti`` present (a non-empty string; :mod:`logto_core.replay_cache` refuses it a second
  time), ``events`` a JSON object whose member
  ``http://schemas.openid.net/event/backchannel-logout`` is a JSON object;
- ``sid``, ``sub`` or both; **no** ``nonce``, whatever its value (so that a logout token can
  never pass as an ID token, and the reverse is refused by ``typ`` and ``events``).

Other claims are ignored, as section 2.4 asks: the chain reads no time claim a logout token
does not define (``auth_time``). Every failure is a
:class:`~logto_core.errors.TokenValidationError` with a ``logout_token.*`` code naming the
claim at fault; no message holds the token or a claim's value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from ..errors import TokenValidationError
from ..jose.chain import JwtRules, UnknownKeyError, verify_jwt
from ..jose.keys import NEED_KEYS, KeySet, NeedKeys

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
"""The member of ``events`` that declares a JWT a logout token (section 2.4)."""

LOGOUT_TOKEN_TYPES = frozenset({"logout+jwt", "application/logout+jwt"})
"""The ``typ`` values accepted (compared case-insensitively); one is required."""

MAX_AGE = 120.0
"""Seconds after its ``iat`` (plus the clock tolerance) a logout token is still accepted.
The provider sends it the moment the session ends (oidc-provider gives its logout tokens two
minutes, and the spec encourages at most that); an older one is a replay or a stale retry."""

CODE_PREFIX = "logout_token"

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "LOGOUT_TOKEN_TYPES",
    "MAX_AGE",
    "LogoutToken",
    "check_logout_token",
    "logout_token_rules",
    "replayed_error",
    "unknown_key_error",
    "verify_logout_token",
]


@dataclass(frozen=True, slots=True)
class LogoutToken:
    """A verified logout token: who is to be signed out (``sid``, ``sub`` or both, issued by
    ``iss``), and until when it is acceptable (``until``: its ``jti`` must be remembered that
    long to refuse a replay, and no longer)."""

    iss: str
    sub: str | None
    sid: str | None
    iat: float
    exp: float | None
    until: float
    jti: str = field(repr=False)

    @property
    def replay_key(self) -> str:
        """What the replay cache remembers: a digest of the issuer and the ``jti`` (fixed in
        size whatever the provider put in ``jti``; a ``jti`` is unique per issuer)."""
        text = f"{self.iss}\x00{self.jti}".encode("utf-8", "surrogatepass")
        return hashlib.sha256(text).hexdigest()


def logout_token_rules(
    *, issuer: str, client_id: str, algorithms: Collection[str], clock_tolerance: float
) -> JwtRules:
    """The chain's rules for a logout token issued by ``issuer`` to ``client_id``."""
    return _rules(issuer, client_id, frozenset(algorithms), clock_tolerance)


@lru_cache(maxsize=64)
def _rules(
    issuer: str, client_id: str, algorithms: frozenset[str], clock_tolerance: float
) -> JwtRules:
    return JwtRules(
        name="logout token",
        code_prefix=CODE_PREFIX,
        issuer=issuer,
        audience=client_id,
        algorithms=algorithms,
        types=LOGOUT_TOKEN_TYPES,
        typ_required=True,
        # sub is optional (a sid alone names a session); exp is checked when present.
        required_claims=("iat", "jti", "events"),
        leeway=clock_tolerance,
        time_claims=frozenset({"exp", "iat", "nbf"}),
    )


def verify_logout_token(
    token: str,
    *,
    keys: KeySet,
    issuer: str,
    client_id: str,
    now: float,
    clock_tolerance: float,
    algorithms: Collection[str],
    max_age: float = MAX_AGE,
) -> LogoutToken:
    """Verify a logout token (see the module doc); a token whose key ``keys`` lacks raises
    :class:`UnknownKeyError` (``logout_token.kid_unknown``)."""
    result = check_logout_token(
        token,
        keys=keys,
        issuer=issuer,
        client_id=client_id,
        now=now,
        clock_tolerance=clock_tolerance,
        algorithms=algorithms,
        max_age=max_age,
    )
    if result is NEED_KEYS:
        raise unknown_key_error()
    return result


def unknown_key_error() -> UnknownKeyError:
    """The error for a logout token whose key the key set still lacks."""
    return UnknownKeyError(
        "no key of the provider's key set matches the logout token",
        code=f"{CODE_PREFIX}.kid_unknown",
    )


def replayed_error() -> TokenValidationError:
    """The error for a logout token whose ``jti`` was received before (section 2.6 step 8)."""
    return TokenValidationError(
        "the logout token was received before (its jti is a replay)",
        code=f"{CODE_PREFIX}.replayed",
        claim="jti",
    )


def check_logout_token(
    token: str,
    *,
    keys: KeySet | None,
    issuer: str,
    client_id: str,
    now: float,
    clock_tolerance: float,
    algorithms: Collection[str],
    max_age: float = MAX_AGE,
) -> LogoutToken | Literal[NeedKeys.NEED_KEYS]:
    """:func:`verify_logout_token`, answering :data:`NEED_KEYS` instead of raising when
    ``keys`` (``None``: none yet) has no key for the token. ``algorithms`` is the accepted
    set (:func:`~logto_core.jose.chain.allowed_algorithms` of the ID token's lists)."""
    rules = logout_token_rules(
        issuer=issuer, client_id=client_id, algorithms=algorithms, clock_tolerance=clock_tolerance
    )
    verified = verify_jwt(token, rules, keys, now=now)
    if verified is NEED_KEYS:
        return NEED_KEYS
    claims = verified.claims
    # Present at all, even null: a nonce would let the token pass as an ID token elsewhere.
    if "nonce" in claims:
        rules.reject("nonce_present", "logout token carries a nonce", "nonce")
    _check_events(claims, rules)
    jti = _optional_string(claims, "jti", rules)  # required: present and not null
    sid = _optional_string(claims, "sid", rules)
    sub = claims.get("sub")  # the chain checked it is a non-empty string when present
    if sid is None and sub is None:
        rules.reject(
            "subject_missing",
            "logout token names neither a session (sid) nor a user (sub)",
            "sid",
        )
    iat = float(claims["iat"])  # required, and a finite number: the chain checked it
    tolerance = rules.leeway
    if now > iat + max_age + tolerance:
        rules.reject("too_old", "logout token was issued too long ago", "iat")
    exp = None if claims.get("exp") is None else float(claims["exp"])
    # The chain refuses the token from exp (plus tolerance) on, and this check from iat plus
    # the window on: whichever comes first ends what a replay could achieve.
    until = iat + max_age + tolerance
    if exp is not None:
        until = min(until, exp + tolerance)
    assert jti is not None
    return LogoutToken(iss=issuer, sub=sub, sid=sid, iat=iat, exp=exp, until=until, jti=jti)


def _check_events(claims: Mapping[str, Any], rules: JwtRules) -> None:
    events = claims["events"]  # required: the chain checked it is present
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        rules.reject(
            "events_invalid",
            "logout token events claim is not an object with the back-channel logout event "
            "as an object",
            "events",
        )


def _optional_string(claims: Mapping[str, Any], name: str, rules: JwtRules) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        rules.reject(
            "invalid_claim", f"logout token claim {name!r} is not a non-empty string", name
        )
    return value
