"""JWT access tokens at the API that receives them (RFC 9068), and what a request needs of
them (scopes, organization, organization roles).

A thin variation of the JWT chain (:mod:`logto_core.jose.chain`), as ID tokens are:
:func:`access_token_rules` says what a Logto access token is (``typ`` ``at+jwt`` or
``application/at+jwt``, required; the provider's asymmetric algorithms; the issuer; the
API's resource indicator among the audiences; the claims RFC 9068 section 2.2 requires:
``iss``, ``exp``, ``aud``, ``sub``, ``client_id``, ``iat``, ``jti``; codes
``access_token.*``). An ID token has no ``typ`` and the client id as its audience, so it is
refused twice over. :func:`check_access_token` runs the chain and answers the claims, or
:data:`~logto_core.jose.keys.NEED_KEYS` when the key set lacks the token's key;
:func:`authorize` then checks a :class:`Requirements` value against them.

Every failure is an :class:`~logto_core.protocol.bearer.AccessTokenError` carrying what the
API answers with: an invalid token is 401 ``invalid_token`` with the chain's check in its
code (``access_token.expired``, ``access_token.aud_mismatch``...); a valid token that does
not allow the request is 403 ``insufficient_scope`` (``access_token.insufficient_scope``,
``access_token.organization_mismatch``, ``access_token.organization_role_missing``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, NoReturn

from ..config import DEFAULT_ALGORITHMS, LogtoConfig
from ..enums import ORGANIZATION_URN_PREFIX
from ..errors import LogtoUsageError, TokenValidationError
from ..jose.chain import (
    AudiencePolicy,
    JwtRules,
    check_header,
    is_forbidden_algorithm,
    verify_jwt,
)
from ..jose.jwt import decode_unverified, validate_claims, whole_second_times
from ..jose.keys import NEED_KEYS, SUPPORTED_ALGORITHMS, KeySet, NeedKeys
from ..models import AccessTokenClaims
from ..urls import is_absolute_uri
from .bearer import AccessTokenError

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
"""The ``typ`` values RFC 9068 section 4 accepts (compared case-insensitively)."""

REQUIRED_CLAIMS = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")
"""RFC 9068 section 2.2: every JWT access token has these."""

# RFC 6750 section 3: a scope-token is %x21 / %x23-5B / %x5D-7E.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "REQUIRED_CLAIMS",
    "AccessTokenError",
    "AccessTokenPolicy",
    "Requirements",
    "access_token_rules",
    "authorize",
    "check_access_token",
    "granted_scopes",
    "precheck",
    "resource_server_config",
    "token_organization",
    "unknown_key_error",
    "verify_access_token",
]


@dataclass(frozen=True, slots=True)
class AccessTokenPolicy:
    """What an API accepts, besides the provider's issuer and keys: its ``audience`` (the
    resource indicator, the API identifier in the Logto Console), the client-side
    ``algorithms`` allow-list (intersected with the provider's), and the ``realm`` its
    challenges name (``None``: none)."""

    audience: str
    algorithms: frozenset[str] = frozenset(DEFAULT_ALGORITHMS)
    realm: str | None = None

    @classmethod
    def of(
        cls,
        audience: str,
        algorithms: Collection[str] = DEFAULT_ALGORITHMS,
        realm: str | None = None,
    ) -> AccessTokenPolicy:
        """A checked policy: ``audience`` an absolute URI of printable ASCII (as Logto's API
        identifiers are), ``algorithms`` a non-empty list of asymmetric algorithms the SDK
        verifies (never ``none`` or HMAC). Raises :class:`LogtoUsageError`
        (``usage.resource_server``)."""
        if not isinstance(audience, str) or not _visible_ascii(audience):
            _bad_policy("the audience must be the API's resource indicator, printable ASCII")
        if not is_absolute_uri(audience):
            _bad_policy(
                "the audience must be the API's resource indicator: an absolute URI without "
                "fragment (the API identifier in the Logto Console)"
            )
        if isinstance(algorithms, str):
            algorithms = [algorithms]
        chosen = frozenset(algorithms)
        if not chosen:
            _bad_policy("at least one algorithm is needed")
        for alg in chosen:
            if not isinstance(alg, str) or is_forbidden_algorithm(alg):
                _bad_policy(f"algorithm {str(alg)[:20]!r} is never accepted for access tokens")
            if alg not in SUPPORTED_ALGORITHMS:
                _bad_policy(f"algorithm {alg[:20]!r} is not one the SDK verifies")
        if realm is not None and not isinstance(realm, str):
            _bad_policy("the realm must be a str")
        return cls(audience, chosen, realm)

    def in_realm(self, error: AccessTokenError) -> AccessTokenError:
        """``error``, naming this policy's realm in its challenge unless it names one."""
        if error.realm is None:
            error.realm = self.realm
        return error


def _visible_ascii(value: str) -> bool:
    return bool(value) and value.isascii() and value.isprintable() and not value.isspace()


def _bad_policy(message: str) -> NoReturn:
    raise LogtoUsageError(f"LogtoResourceServer: {message}", code="usage.resource_server")


def resource_server_config(
    endpoint: str, policy: AccessTokenPolicy, **settings: Any
) -> LogtoConfig:
    """The :class:`LogtoConfig` of a resource server for ``policy``, with ``settings`` (the
    config's fields that matter to it: ``clockTolerance``, ``jwksMaxAge``,
    ``jwksRefetchCooldown``, ``discoveryMaxAge``, ``allowInsecureLoopback``).

    A resource server has no client id or secret, yet a configuration needs an ``appId``:
    it is the API's resource indicator (the identity of the API at Logto). It never leaves
    the process: a resource server only fetches discovery and the key set (GETs that carry
    no client identity) and never authenticates as a client; no secret is set.
    """
    return LogtoConfig(endpoint=endpoint, appId=policy.audience, appSecret=None, **settings)


@dataclass(frozen=True, slots=True)
class Requirements:
    """What one request needs of a valid token: every one of ``scopes`` in its ``scope``
    claim; with ``organization_id``, to be for that organization; with
    ``organization_roles``, each role ``<organization>:<role>`` in its
    ``organization_roles`` claim (the organization being ``organization_id``, or the
    token's own)."""

    scopes: tuple[str, ...] = ()
    organization_id: str | None = None
    organization_roles: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        requiredScopes: Sequence[str] | str | None = None,
        organizationId: str | None = None,
        organizationRoles: Sequence[str] | str | None = None,
    ) -> Requirements:
        """Checked requirements. Scopes and roles are lists, or one space-delimited string
        (as OAuth writes scopes); each scope a scope-token (RFC 6750 section 3), each role
        and the organization id non-empty text. Raises :class:`LogtoUsageError`
        (``usage.access_requirements``)."""
        scopes = _words(requiredScopes, "requiredScopes")
        for scope in scopes:
            if _SCOPE_TOKEN.fullmatch(scope) is None:
                _bad_requirement(f"the scope {scope[:40]!r} is not a scope-token")
        if organizationId is not None and (
            not isinstance(organizationId, str) or not organizationId.strip()
        ):
            _bad_requirement("organizationId must be a non-empty str")
        roles = _words(organizationRoles, "organizationRoles")
        return cls(scopes, organizationId, roles)


def _words(values: Sequence[str] | str | None, name: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        return tuple(dict.fromkeys(values.split()))
    if not all(isinstance(value, str) and value.strip() for value in values):
        _bad_requirement(f"{name} must hold non-empty strings")
    return tuple(dict.fromkeys(value.strip() for value in values))


def _bad_requirement(message: str) -> NoReturn:
    raise LogtoUsageError(message, code="usage.access_requirements")


# ---- the token ---------------------------------------------------------------------------


def access_token_rules(
    *, issuer: str, audience: str, algorithms: Collection[str], clock_tolerance: float
) -> JwtRules:
    """The chain's rules for an access token issued by ``issuer`` for ``audience``."""
    return _rules(issuer, audience, frozenset(algorithms), clock_tolerance)


@lru_cache(maxsize=64)
def _rules(
    issuer: str, audience: str, algorithms: frozenset[str], clock_tolerance: float
) -> JwtRules:
    # Frozen values, the same for every token of one API: built once.
    return JwtRules(
        name="access token",
        code_prefix="access_token",
        issuer=issuer,
        audience=audience,
        algorithms=algorithms,
        types=ACCESS_TOKEN_TYPES,
        typ_required=True,
        required_claims=REQUIRED_CLAIMS,
        leeway=clock_tolerance,
        # RFC 9068 section 4: the token must name this resource; other audiences may be
        # there too (a token for several APIs), and there is no azp to check.
        audience_policy=AudiencePolicy.CONTAINS,
        audience_name="this API",
    )


def precheck(token: str, policy: AccessTokenPolicy) -> None:
    """Refuse, before anything is fetched, what needs no word of the provider to refuse:
    what is not a compact JWS of JSON objects at all, and a header that fails the chain's
    header checks against the API's own allow-list (no ``at+jwt`` type: an ID token; ``none``,
    HMAC or another algorithm the API never accepts; critical extensions), so that garbage,
    ID tokens and unsigned tokens cost the provider no request. The provider's algorithms
    narrow the list later, in :func:`check_access_token`.

    Raises :class:`AccessTokenError` (``access_token.malformed``, ``.typ_not_allowed``,
    ``.alg_not_allowed``, ``.crit_unsupported``, ``.header_invalid``).
    """
    # Only the header parameters are looked at here: the issuer is the chain's claim check.
    rules = access_token_rules(
        issuer="", audience=policy.audience, algorithms=policy.algorithms, clock_tolerance=0.0
    )
    try:
        header, _ = decode_unverified(token)
        check_header(header, rules)
    except TokenValidationError as error:
        raise _invalid(error) from None


def check_access_token(
    token: str,
    *,
    keys: KeySet | None,
    issuer: str,
    audience: str,
    algorithms: Collection[str],
    now: float,
    clock_tolerance: float,
) -> AccessTokenClaims | Literal[NeedKeys.NEED_KEYS]:
    """Verify ``token`` as an access token for ``audience`` and answer its claims, or
    :data:`~logto_core.jose.keys.NEED_KEYS` when ``keys`` (``None``: none yet) has no key for
    it (after its header was checked). ``algorithms`` is the accepted set
    (:func:`~logto_core.jose.chain.allowed_algorithms`).

    Raises :class:`AccessTokenError` (401 ``invalid_token``, ``access_token.<check>``).
    """
    rules = access_token_rules(
        issuer=issuer, audience=audience, algorithms=algorithms, clock_tolerance=clock_tolerance
    )
    try:
        verified = verify_jwt(token, rules, keys, now=now)
        if verified is NEED_KEYS:
            return NEED_KEYS
        claims = verified.claims
        for name in ("client_id", "jti"):
            if not isinstance(claims[name], str) or not claims[name]:
                rules.reject("invalid_claim", f"access token claim {name!r} is not a string", name)
        return validate_claims(AccessTokenClaims, whole_second_times(claims))
    except TokenValidationError as error:
        raise _invalid(error) from None


def verify_access_token(
    token: str,
    *,
    keys: KeySet,
    issuer: str,
    audience: str,
    algorithms: Collection[str],
    now: float,
    clock_tolerance: float,
) -> AccessTokenClaims:
    """:func:`check_access_token`, raising :func:`unknown_key_error` when ``keys`` has no key
    for the token."""
    claims = check_access_token(
        token,
        keys=keys,
        issuer=issuer,
        audience=audience,
        algorithms=algorithms,
        now=now,
        clock_tolerance=clock_tolerance,
    )
    if claims is NEED_KEYS:
        raise unknown_key_error()
    return claims


def unknown_key_error() -> AccessTokenError:
    """The error for an access token whose key the provider's key set lacks, after the
    allowed refetch (``access_token.kid_unknown``: forged, or signed by a key retired)."""
    return AccessTokenError(
        "no key of the provider's key set matches the access token",
        code="access_token.kid_unknown",
        claim="kid",
    )


def _invalid(error: TokenValidationError) -> AccessTokenError:
    """The chain's verdict as the API's answer: 401 ``invalid_token``, the check kept in the
    code (``access_token.expired``; ``jwt.malformed`` becomes ``access_token.malformed``).
    The chain's messages never quote the token."""
    check = error.code.rsplit(".", 1)[-1]
    return AccessTokenError(error.message, code=f"access_token.{check}", claim=error.claim)


# ---- what the request needs --------------------------------------------------------------


def token_organization(claims: AccessTokenClaims) -> str | None:
    """The organization a verified token is for: its ``organization_id`` claim (an API
    token for an organization), else the one organization its audience names
    (``urn:logto:organization:<id>``, an organization token); ``None`` when neither, or
    when the audience names several."""
    if claims.organization_id is not None:
        return claims.organization_id
    audiences = [claims.aud] if isinstance(claims.aud, str) else claims.aud
    named = {
        aud[len(ORGANIZATION_URN_PREFIX) :]
        for aud in audiences
        if aud.startswith(ORGANIZATION_URN_PREFIX) and len(aud) > len(ORGANIZATION_URN_PREFIX)
    }
    return named.pop() if len(named) == 1 else None


def granted_scopes(claims: AccessTokenClaims) -> frozenset[str]:
    """The scopes of a verified token (its space-delimited ``scope`` claim)."""
    return frozenset((claims.scope or "").split())


def authorize(claims: AccessTokenClaims, requirements: Requirements) -> None:
    """Check that a verified token allows the request. Raises :class:`AccessTokenError`, 403
    ``insufficient_scope``: ``access_token.insufficient_scope`` (its ``scope`` lists every
    scope the request needs), ``access_token.organization_mismatch`` (for another
    organization, or for none), ``access_token.organization_role_missing`` (the token's
    ``organization_roles`` lack a role, or it has none: Logto puts them in access tokens
    only through a custom token claims script)."""
    if requirements.scopes:
        missing = [scope for scope in requirements.scopes if scope not in granted_scopes(claims)]
        if missing:
            raise AccessTokenError(
                f"the access token lacks the scopes {_listed(missing)}",
                code="access_token.insufficient_scope",
                error="insufficient_scope",
                scope=" ".join(requirements.scopes),
            )
    organization = token_organization(claims)
    wanted = requirements.organization_id
    if wanted is not None and organization != wanted:
        raise AccessTokenError(
            "the access token is not for this organization"
            if organization is not None
            else "the access token is not for an organization",
            code="access_token.organization_mismatch",
            error="insufficient_scope",
            claim="organization_id",
        )
    if requirements.organization_roles:
        _check_roles(claims, wanted if wanted is not None else organization, requirements)


def _check_roles(
    claims: AccessTokenClaims, organization: str | None, requirements: Requirements
) -> None:
    if organization is None:
        raise AccessTokenError(
            "the access token is not for an organization, so it has no organization role",
            code="access_token.organization_mismatch",
            error="insufficient_scope",
            claim="organization_id",
        )
    held = _organization_roles(claims)
    missing = [
        role for role in requirements.organization_roles if f"{organization}:{role}" not in held
    ]
    if missing:
        raise AccessTokenError(
            f"the access token lacks the organization roles {_listed(missing)}",
            code="access_token.organization_role_missing",
            error="insufficient_scope",
            claim="organization_roles",
        )


def _organization_roles(claims: AccessTokenClaims) -> frozenset[str]:
    return frozenset(claims.organization_roles or ())


def _listed(names: Sequence[str]) -> str:
    shown = " ".join(names)
    return repr(shown if len(shown) <= 120 else shown[:117] + "...")
