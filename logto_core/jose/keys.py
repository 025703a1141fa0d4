"""The provider's signing keys (JWKS): the request, the response check, and a cacheable set.

Only public signature keys of the asymmetric types a JWT may use are kept; encryption
keys, symmetric keys, unknown key types, malformed or weak keys are ignored, and private key
members are never stored even when a careless server publishes them. A :class:`KeySet` is an
immutable value that can be exported to JSON and imported again (for multi-process apps).

Choosing the key for a token is here too, and pure: :func:`select_key` answers the key, a
:class:`KeyConflict`, or :data:`NEED_KEYS` ("I need a (fresh) key set", like h11's
``NEED_DATA``) when no key of the set has the token's ``kid``. What to do then is decided here
as well (:func:`retry_unknown_key`: try a set a concurrent flow fetched meanwhile, then at most
one forced refetch per ``jwksRefetchCooldown``); the flow only carries the decision out.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from joserfc.jwk import Key, import_key

from .. import json_strict
from ..errors import JwksError, ProviderResponseError
from ..http import MAX_BODY_BYTES, HttpRequest, HttpResponse
from ..models import OidcProviderMetadata

if TYPE_CHECKING:  # provider_state imports this module
    from ..config import LogtoConfig
    from ..provider_state import ProviderState

# Which key an algorithm needs: the key type and, for curve keys, the accepted curves.
ALGORITHM_KEY_TYPES: Mapping[str, tuple[str, frozenset[str] | None]] = MappingProxyType(
    {
        "RS256": ("RSA", None),
        "RS384": ("RSA", None),
        "RS512": ("RSA", None),
        "PS256": ("RSA", None),
        "PS384": ("RSA", None),
        "PS512": ("RSA", None),
        "ES256": ("EC", frozenset({"P-256"})),
        "ES384": ("EC", frozenset({"P-384"})),
        "ES512": ("EC", frozenset({"P-521"})),
        "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    }
)

SUPPORTED_ALGORITHMS: frozenset[str] = frozenset(ALGORITHM_KEY_TYPES)
"""Asymmetric JWS algorithms the SDK can verify. ``none`` and HMAC are deliberately absent."""

MAX_KEYS = 64
"""Entries of a JWKS beyond this many are ignored (Logto publishes at most three), so a
hostile key set cannot make the client import thousands of keys."""

MIN_RSA_BITS = 2048
"""RSA keys with a shorter modulus are ignored (RFC 7518 section 3.3)."""

MAX_CACHE_CHARS = 2 * MAX_BODY_BYTES
"""Cached key sets (:meth:`KeySet.from_json`) longer than this are refused unread: an export
holds only public members of keys read from one response body, so it is never longer."""

_EXCERPT_CHARS = 200

# Members kept from a published key; anything else (private parts, certificates) is dropped.
_COMMON_MEMBERS = ("kty", "kid", "use", "alg", "key_ops")
_PUBLIC_MEMBERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"RSA": ("n", "e"), "EC": ("crv", "x", "y"), "OKP": ("crv", "x")}
)
_CURVES: Mapping[str, frozenset[str]] = MappingProxyType(
    {"EC": frozenset({"P-256", "P-384", "P-521"}), "OKP": frozenset({"Ed25519", "Ed448"})}
)


@dataclass(frozen=True, slots=True)
class KeySet:
    """The provider's public signature keys, as fetched at ``fetched_at`` (epoch seconds)."""

    keys: tuple[Mapping[str, Any], ...]
    fetched_at: float

    def candidates(self, kid: str | None, alg: str) -> list[Mapping[str, Any]]:
        """Keys that can verify a signature made with ``alg`` and, if given, named ``kid``.

        A key fits when its type (and curve) suits the algorithm and its own ``alg``, if it
        declares one, is the same. Returns an empty list for an unsupported algorithm.
        """
        return [key for key in self.keys if _fits(key, alg) and (kid is None or key_id(key) == kid)]

    def key_ids(self) -> frozenset[str]:
        """The ``kid`` values of all keys in the set."""
        return frozenset(kid for key in self.keys if (kid := key_id(key)) is not None)

    def is_fresh(self, now: float, max_age: float) -> bool:
        """True while the set is younger than ``max_age`` seconds.

        A ``fetched_at`` in the future (the clock went back) counts as stale, so the set is
        fetched again rather than trusted for an unknown time.
        """
        return self.fetched_at <= now < self.fetched_at + max_age

    def to_json(self) -> str:
        """Export the set (public keys and fetch time only) for a shared cache."""
        payload = {"keys": [dict(key) for key in self.keys], "fetched_at": self.fetched_at}
        return json.dumps(payload, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> KeySet:
        """Import a set exported by :meth:`to_json`, checking every key again.

        Raises :class:`JwksError` (``jwks.cache_invalid``) when the text is not such an
        export, or (``jwks.no_usable_keys``) when no usable key remains.
        """
        try:
            payload = json_strict.loads(text, max_bytes=MAX_CACHE_CHARS)
        except json_strict.StrictJsonError as exc:
            raise JwksError(
                f"cached key set is not strict JSON ({exc})", code="jwks.cache_invalid"
            ) from None
        if not isinstance(payload, dict):
            raise JwksError("cached key set is not a JSON object", code="jwks.cache_invalid")
        fetched_at, entries = payload.get("fetched_at"), payload.get("keys")
        if not isinstance(fetched_at, (int, float)) or not _is_number(fetched_at):
            raise JwksError("cached key set has no valid fetch time", code="jwks.cache_invalid")
        if not isinstance(entries, list):
            raise JwksError("cached key set has no 'keys' list", code="jwks.cache_invalid")
        return _build_key_set(entries, float(fetched_at))


def key_id(key: Mapping[str, Any]) -> str | None:
    """The ``kid`` of a kept key (always a string or absent)."""
    kid = key.get("kid")
    return kid if isinstance(kid, str) else None


def _fits(key: Mapping[str, Any], alg: str) -> bool:
    requirement = ALGORITHM_KEY_TYPES.get(alg)
    if requirement is None:
        return False
    kty, curves = requirement
    if key["kty"] != kty or (curves is not None and key.get("crv") not in curves):
        return False
    declared = key.get("alg")
    return declared is None or declared == alg


class NeedKeys(Enum):
    """The type of :data:`NEED_KEYS`."""

    NEED_KEYS = "NEED_KEYS"

    def __repr__(self) -> str:
        return "NEED_KEYS"


NEED_KEYS: Final = NeedKeys.NEED_KEYS
"""Returned instead of a key (and by the verification chain instead of a result) when the key
set has no key for the token: there is no key set yet, or no key has the token's ``kid`` (or,
without a ``kid``, fits its algorithm). The provider may have rotated its keys; see
:func:`retry_unknown_key` for whether a (fresh) key set may be fetched."""


class KeyConflict(Enum):
    """A key set that has keys for a token, but not exactly one that fits it."""

    AMBIGUOUS = "ambiguous"
    """Several keys fit and the token's ``kid`` (if any) does not decide between them."""
    MISMATCH = "mismatch"
    """The key the ``kid`` names does not fit the token's algorithm."""


def select_key(
    keys: KeySet | None, kid: str | None, alg: str
) -> Mapping[str, Any] | KeyConflict | Literal[NeedKeys.NEED_KEYS]:
    """The one key of ``keys`` that verifies a token signed with ``alg`` and named ``kid``.

    Several fitting keys are a :data:`KeyConflict.AMBIGUOUS`, never "the first": trying each
    would let a token pick its own key. Without a key set, or when no key has the ``kid``
    (or fits without one), :data:`NEED_KEYS`. Pure: no error raised, nothing fetched.
    """
    if keys is None:
        return NEED_KEYS
    candidates = keys.candidates(kid, alg)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        return KeyConflict.AMBIGUOUS
    if kid is not None and kid in keys.key_ids():
        return KeyConflict.MISMATCH
    return NEED_KEYS


@dataclass(frozen=True, slots=True)
class KeyRetry:
    """What to do after a key set answered :data:`NEED_KEYS`: first try ``newer`` (a set
    fetched since, by a concurrent flow) if given, then, if the key is still unknown and
    ``refetch`` is true, fetch the JWKS once (the fetch counts against the cooldown). What
    is still unknown after that is an unknown key."""

    newer: KeySet | None
    refetch: bool


def refetch_allowed(last_forced: float | None, now: float, cooldown: float) -> bool:
    """True when an unknown ``kid`` may force a JWKS refetch: none was forced yet, the last
    one is at least ``cooldown`` seconds old, or the clock went back (``now`` before it)."""
    return last_forced is None or now - last_forced >= cooldown or now < last_forced


def retry_unknown_key(
    provider: ProviderState,
    config: LogtoConfig,
    now: float,
    *,
    tried: KeySet,
    fetched: bool,
) -> KeyRetry:
    """The decision after ``tried`` had no key for a token (signing-key rotation, or a forged
    ``kid``): a fresh set in ``provider`` fetched after ``tried`` is tried first; then the
    JWKS is refetched unless this flow ``fetched`` it already or a refetch was forced less
    than ``config.jwksRefetchCooldown`` ago (:meth:`ProviderState.may_force_jwks_refetch`),
    so a stream of forged kids costs the provider one request per cooldown."""
    fresh = provider.fresh_keys(config, now)
    newer = fresh if fresh is not None and fresh.fetched_at > tried.fetched_at else None
    return KeyRetry(
        newer=newer, refetch=not fetched and provider.may_force_jwks_refetch(config, now)
    )


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def build_jwks_request(metadata: OidcProviderMetadata) -> HttpRequest:
    """The GET request for the provider's ``jwks_uri``."""
    return HttpRequest.get(metadata.jwks_uri, purpose="jwks")


def parse_jwks_response(response: HttpResponse, *, now: float) -> KeySet:
    """Check a JWKS response and keep its usable public signature keys.

    Raises :class:`ProviderResponseError` (``jwks.bad_status``) for a status other than 200,
    and :class:`JwksError` for a body that is not a JSON object with a ``keys`` list
    (``jwks.malformed``), too large (``jwks.too_large``), or without any usable key
    (``jwks.no_usable_keys``).
    """
    if response.status != 200:
        raise ProviderResponseError(
            f"JWKS endpoint answered HTTP {response.status}",
            status=response.status,
            body_excerpt=body_excerpt(response.body),
            code="jwks.bad_status",
        )
    if len(response.body) > MAX_BODY_BYTES:
        raise JwksError("JWKS response body is too large", code="jwks.too_large")
    try:
        payload = json_strict.loads(response.body, max_bytes=MAX_BODY_BYTES)
    except json_strict.StrictJsonError as exc:
        # RFC 7517 section 5: a JWK Set parser should refuse repeated member names.
        raise JwksError(
            f"JWKS response is not strict JSON ({exc})", code="jwks.malformed"
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("keys"), list):
        raise JwksError("JWKS response is not an object with a 'keys' list", code="jwks.malformed")
    return _build_key_set(payload["keys"], now)


def body_excerpt(body: bytes) -> str:
    """A short, printable prefix of a response body for error reports."""
    text = body[: _EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:_EXCERPT_CHARS]
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _build_key_set(entries: list[Any], fetched_at: float) -> KeySet:
    kept = [key for entry in entries[:MAX_KEYS] if (key := public_signature_key(entry))]
    if not kept:
        raise JwksError("key set holds no usable signature key", code="jwks.no_usable_keys")
    return KeySet(tuple(MappingProxyType(key) for key in kept), fetched_at)


def public_signature_key(entry: object) -> dict[str, Any] | None:
    """The public part of one published JWK, or ``None`` when it is not a usable signature key.

    Refused: non-objects, encryption keys (``use`` other than ``sig``, ``key_ops`` without
    ``verify``), symmetric and unknown key types, unsupported curves or algorithms,
    RSA keys under :data:`MIN_RSA_BITS`, and anything the JOSE library cannot import.
    """
    if not isinstance(entry, dict):
        return None
    kty = entry.get("kty")
    if not isinstance(kty, str) or kty not in _PUBLIC_MEMBERS:
        return None
    members = _COMMON_MEMBERS + _PUBLIC_MEMBERS[kty]
    key = {name: entry[name] for name in members if name in entry}
    if not _members_valid(key):
        return None
    try:
        load_public_key(key)
    except JwksError:
        return None
    return key


def _members_valid(key: dict[str, Any]) -> bool:
    kty = key["kty"]
    for name in _PUBLIC_MEMBERS[kty] + ("kid", "alg"):
        if name in key and not isinstance(key[name], str):
            return False
    if any(name not in key for name in _PUBLIC_MEMBERS[kty]):
        return False
    if "use" in key and key["use"] != "sig":
        return False
    ops = key.get("key_ops")
    if ops is not None and not _valid_key_ops(ops):
        return False
    if "use" in key and ops is not None and not set(ops) <= {"sign", "verify"}:
        return False  # RFC 7517 section 4.3: "use" and "key_ops" MUST be consistent
    if kty in _CURVES and key["crv"] not in _CURVES[kty]:
        return False
    if "alg" in key and not _fits(key, key["alg"]):
        return False
    return kty != "RSA" or _modulus_bits(key["n"]) >= MIN_RSA_BITS


def _valid_key_ops(ops: object) -> bool:
    # RFC 7517 section 4.3: an array of strings without duplicates; a signature key must
    # allow "verify" (its public half cannot sign).
    return (
        isinstance(ops, list)
        and all(isinstance(op, str) for op in ops)
        and len(set(ops)) == len(ops)
        and "verify" in ops
    )


def _modulus_bits(n: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except (binascii.Error, ValueError):
        return 0
    return int.from_bytes(raw, "big").bit_length()


def load_public_key(key: Mapping[str, Any]) -> Key:
    """The JOSE library's key object for a kept public JWK.

    Raises :class:`JwksError` (``jwks.bad_key``) when the library refuses it.
    """
    return _import_cached(json.dumps(dict(key), sort_keys=True))


@functools.lru_cache(maxsize=128)
def _import_cached(key_json: str) -> Key:
    # Importing an RSA or EC key costs more than a verification; a set is verified against
    # many tokens, so imported keys are memoised by their canonical JSON.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return import_key(json.loads(key_json))
    except Exception:  # the library and cryptography raise many types for a bad key
        raise JwksError("key could not be imported", code="jwks.bad_key") from None
