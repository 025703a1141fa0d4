"""Seed corpora and input generators of the fast fuzz engine, one per target in ``targets.py``.

Each generator starts from a valid input (a callback URL the SDK accepts, an ID token signed
with a key of the test key set, a provider JSON body, sign-in options) and applies the
mutators of :mod:`tests.fuzz.mutate`. It returns a value of exactly the shape that target's
hypothesis strategy draws, so the target's own ``check`` (its oracle) judges it unchanged.

ID tokens are the costly target: a signature check is real ES256/ES384/RS256 verification. A
share of the examples is re-signed after its header or claims were changed (so the claim
checks behind the signature are exercised, not just the signature); the rest mutate the
compact form without signing, which mostly fails before any verification and is cheap.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from joserfc.jwk import Key, generate_key
from joserfc.jws import JWSRegistry

from logto_core.protocol.signin_url import RESERVED_PARAMETERS, SignInOptions
from tests import jwt_factory as jf

from . import mutate as m
from .targets import (
    ACCESS,
    CODE,
    DEV_CONFIG,
    ISSUER,
    NOW,
    REDIRECT,
    REFRESH,
    STATE,
)

Generator = Callable[[random.Random], Any]
"""Draws one input for a target from the given random source."""

_DROP: Any = object()
"""Marker in the edge-value tables: remove the member instead of setting it."""

STATUSES = (200, 201, 204, 301, 302, 307, 400, 401, 403, 404, 429, 500, 503)
RAW_BODIES: tuple[bytes, ...] = (
    b"",
    b"null",
    b"[]",
    b"{}",
    b"{",
    b'{"a":1,"a":2}',
    b"\xff\xfe",
    b"[" * 2000,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    b"1" * 5000,
    b'"' + b"\\ud800" + b'"',
    b"NaN",
    b"\xef\xbb\xbf{}",
    b'{"keys": NaN}',
)


# ---- secrets in their place ----------------------------------------------------------------------
#
# The targets check that no secret marker (see ``targets.SECRETS``) shows up in an error. That
# means "the SDK copied a secret it holds into a message", which holds only while the marker
# sits where the SDK holds secrets (the code parameter, the token members of a token
# response, the private member of a key). Mutations that copy or move a span can carry the
# marker elsewhere (``iss=<the code>``, a ``scope`` equal to the ID token), where the SDK may
# rightly quote what the provider or browser sent; such inputs get their markers defused, so
# that they are still fuzzed but cannot raise a false alarm.

MARKER = "FUZZSECRET"
_DEFUSED = "FUZZCOPIED"


def _defuse(text: str) -> str:
    return text.replace(MARKER, _DEFUSED)


def callback_secrets_in_place(url: str) -> bool:
    """Every marker is in the value of a ``code`` parameter."""
    if MARKER not in url and "%" not in url:
        return True  # the common case, decided without decoding
    decoded = unquote(url, errors="surrogateescape")
    if MARKER not in url and MARKER not in decoded:
        return True
    query = url.split("?", 1)[-1].replace("#", "&")
    pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    in_code = sum(value.count(MARKER) for name, value in pairs if name == "code")
    everywhere = sum(name.count(MARKER) + value.count(MARKER) for name, value in pairs)
    return in_code == everywhere == url.count(MARKER) == decoded.count(MARKER)


def body_secrets_in_place(body: bytes, members: Sequence[str], nested: str = "") -> bool:
    """Every marker is in one of ``members`` of the JSON object (or of the objects in its
    ``nested`` list), or the body is not JSON at all (then all of it is the secret-bearing
    response, and no part of it may be quoted)."""
    marker = MARKER.encode()
    total = body.count(marker)
    if not total:
        return True
    try:
        doc = json.loads(body)
        if json.dumps(doc).count(MARKER) != total:
            return False  # a duplicate member hid one copy: which one the SDK reads is unclear
    except (ValueError, RecursionError):
        return True
    holders = doc.get(nested) if nested and isinstance(doc, dict) else [doc]
    if not isinstance(holders, list):
        holders = []
    inside = sum(
        json.dumps(holder[name]).count(MARKER)
        for holder in holders
        if isinstance(holder, dict)
        for name in members
        if name in holder
    )
    return inside == total


def _defuse_body(body: bytes, members: Sequence[str], nested: str = "") -> bytes:
    if body_secrets_in_place(body, members, nested):
        return body
    return body.replace(MARKER.encode(), _DEFUSED.encode())


def _status(rng: random.Random, usual: Sequence[int]) -> int:
    roll = rng.random()
    if roll < 0.8:
        return rng.choice(usual)
    if roll < 0.95:
        return rng.choice(STATUSES)
    return rng.randrange(100, 600)


def _with_edge(
    rng: random.Random, value: dict[str, Any], edges: Mapping[str, Sequence[Any]]
) -> dict[str, Any]:
    """``value`` with one member set to (or removed by) a value from its edge table."""
    name = rng.choice(list(edges))
    choice = rng.choice(edges[name])
    result = dict(value)
    if choice is _DROP:
        result.pop(name, None)
    else:
        result[name] = choice
    return result


def _body(
    rng: random.Random,
    doc: Any,
    names: Sequence[str],
    edges: Mapping[str, Sequence[Any]],
) -> bytes:
    """A JSON body around ``doc``: raw junk, the seed as is, or edge values and structural
    mutations, sometimes followed by byte-level havoc on the serialised form."""
    roll = rng.random()
    if roll < 0.03:
        return rng.choice(RAW_BODIES)
    if roll < 0.06:
        return m.mutate_bytes(rng, rng.choice(RAW_BODIES))
    value = doc
    if roll >= 0.12:
        for _ in range(m.geometric(rng, 0.7, cap=5)):
            if edges and isinstance(value, dict) and rng.random() < 0.4:
                value = _with_edge(rng, value, edges)
            else:
                value = m.mutate_json(rng, value, names)
    data = m.dump_json(rng, value)
    if rng.random() < 0.12:
        data = m.mutate_bytes(rng, data)
    return data


def _times(now: float) -> tuple[Any, ...]:
    offsets = (-3700, -61, -60, -59, -1, 0, 1, 59, 60, 61, 3600)
    return (
        *(int(now) + delta for delta in offsets),
        now + 60.5,
        now - 60.5,
        1e308,
        2**63,
        2**70,
        -1,
        0,
        True,
        str(int(now) + 3600),
        None,
        [int(now) + 3600],
        _DROP,
    )


def _text_or_edge(rng: random.Random, valid: Sequence[str]) -> str:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(valid)
    if roll < 0.8:
        return m.mutate_text(rng, rng.choice(valid))
    return m.nasty_text(rng)


# ---- callback URLs ----------------------------------------------------------------------------

_CALLBACK_SEEDS: tuple[tuple[str, tuple[tuple[str, str], ...], bool], ...] = (
    (REDIRECT, (("code", CODE), ("state", STATE), ("iss", ISSUER)), True),
    (REDIRECT, (("code", CODE), ("state", STATE)), False),
    (REDIRECT, (("state", STATE), ("iss", ISSUER), ("code", CODE)), False),
    (REDIRECT, (("code", CODE), ("state", STATE), ("iss", ISSUER), ("session_state", "x")), True),
    (
        REDIRECT,
        (("error", "access_denied"), ("error_description", "denied"), ("state", STATE)),
        False,
    ),
    (REDIRECT, (("error", "login_required"), ("state", STATE), ("iss", ISSUER)), True),
)
_CALLBACK_BASES = (
    REDIRECT,
    "HTTPS://APP.example.com:443/callback",
    "https://app.example.com/callback/",
    "https://app.example.com/other",
    "http://app.example.com/callback",
    "https://evil.example.com/callback",
    "https://app.example.com:8443/callback",
    "https://app.example.com/callback?keep=1",
    "https://app.example.com/%63allback",
    "https://user@app.example.com/callback",
    "//app.example.com/callback",
    "/callback",
    "https://app.example.com:99999/callback",
    "https://[::1/callback",
    "",
)
_CALLBACK_VALUES: dict[str, tuple[str, ...]] = {
    "state": (STATE, STATE.upper(), STATE + " ", "", STATE + "\x00"),
    "code": (CODE, "", " "),
    "iss": (ISSUER, ISSUER + "/", ISSUER.upper(), "https://evil.example/oidc", ""),
    "error": ("access_denied", "login_required", "", "server_error"),
    "error_description": ("denied", ""),
    "error_uri": ("https://docs.logto.io", ""),
    "session_state": ("x",),
}
_CALLBACK_NAMES = (*_CALLBACK_VALUES, "extra", "STATE", "Code", "response", "id_token")
_CALLBACK_NOWS = (NOW + 3594, NOW + 3596, NOW - 10, NOW + 10**9, math.nan, math.inf, -math.inf)


def _callback_pairs(rng: random.Random, pairs: list[tuple[str, str]]) -> None:
    """One structural change to the callback parameters, in place."""
    action = rng.randrange(7)
    if action == 0 and pairs:
        del pairs[rng.randrange(len(pairs))]
    elif action == 1 and pairs:
        pairs.insert(rng.randrange(len(pairs) + 1), pairs[rng.randrange(len(pairs))])
    elif action == 2:
        rng.shuffle(pairs)
    elif action == 3 and pairs:
        i = rng.randrange(len(pairs))
        name = pairs[i][0]
        pairs[i] = (name, _text_or_edge(rng, _CALLBACK_VALUES.get(name, ("",))))
    elif action == 4 and pairs:
        i = rng.randrange(len(pairs))
        pairs[i] = (_text_or_edge(rng, _CALLBACK_NAMES), pairs[i][1])
    else:
        name = rng.choice(_CALLBACK_NAMES)
        value = _text_or_edge(rng, _CALLBACK_VALUES.get(name, ("1",)))
        pairs.insert(rng.randrange(len(pairs) + 1), (name, value))


def gen_callback(rng: random.Random) -> tuple[str, bool, float]:
    """(callback URL, iss_required, now), as ``targets.callback_urls`` draws."""
    base, seed_pairs, iss_required = rng.choice(_CALLBACK_SEEDS)
    pairs = list(seed_pairs)
    fragment = False
    if rng.random() < 0.9:
        for _ in range(m.geometric(rng, 0.6, cap=5)):
            roll = rng.random()
            if roll < 0.75:
                _callback_pairs(rng, pairs)
            elif roll < 0.9:
                base = rng.choice(_CALLBACK_BASES)
            else:
                fragment = not fragment
    if rng.random() < 0.6:
        query = urlencode(pairs, errors="surrogatepass")
    else:
        query = "&".join(f"{name}={value}" for name, value in pairs)
    separator = "#" if fragment else ("&" if "?" in base else "?")
    url = f"{base}{separator}{query}"
    if rng.random() < 0.25:
        url = m.mutate_text(rng, url)
    if rng.random() < 0.1:
        iss_required = not iss_required
    now = NOW if rng.random() < 0.85 else rng.choice(_CALLBACK_NOWS)
    if not callback_secrets_in_place(url):
        url = _defuse(url)
    return url, iss_required, now


# ---- signed tokens ------------------------------------------------------------------------------

_SIGNERS: dict[str, str] = {"ES256": "P-256", "ES384": "P-384", "RS256": "rsa"}
# Re-signing cost differs a lot (ES256 signs in ~35 us, RS256 in ~280 us, ES384 verifies in
# ~370 us): ES256 carries most of the claim checks, the others enough to cover their paths.
_SIGNER_WEIGHTS = (("ES256", 0.7), ("RS256", 0.15), ("ES384", 0.15))
_HEADER_NAMES = ("alg", "kid", "typ", "crit", "b64", "jku", "jwk", "x5u", "x5c", "cty", "zip")
_CLAIM_NAMES = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "sid",
    "name",
    "email",
    "scope",
    "client_id",
    "organization_id",
    "roles",
    "jti",
)


def _sign(header: Any, payload: bytes, key: Key | None, alg: str) -> str:
    """A compact JWS over any header value and payload; ``key`` ``None`` leaves it unsigned."""
    signing_input = f"{m.b64url(json.dumps(header).encode())}.{m.b64url(payload)}"
    if key is None:
        return signing_input + "."
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{m.b64url(signature)}"


def _id_claims(alg: str) -> dict[str, Any]:
    claims = jf.base_claims(alg=alg)
    claims["at_hash"] = jf.at_hash(ACCESS, alg)
    return claims


def _claim_edges(alg: str) -> dict[str, tuple[Any, ...]]:
    good_hash = jf.at_hash(ACCESS, alg)
    other_alg = "ES384" if alg != "ES384" else "ES256"
    return {
        "iss": (jf.ISSUER + "/", jf.ISSUER.upper(), "", None, [jf.ISSUER], "https://evil/oidc"),
        "aud": (
            [jf.CLIENT_ID],
            [jf.CLIENT_ID, "other"],
            [jf.CLIENT_ID, jf.CLIENT_ID],
            [],
            "other",
            [None],
            1,
            jf.CLIENT_ID.upper(),
            "",
            _DROP,
        ),
        "azp": (jf.CLIENT_ID, "other", None, "", [jf.CLIENT_ID], _DROP),
        "sub": ("", None, 1, ["x"], "\ud800", "x" * 5000, _DROP),
        "nonce": ("other-nonce", None, "", jf.NONCE.upper(), [jf.NONCE], jf.NONCE + "\x00", _DROP),
        "at_hash": (
            good_hash,
            jf.at_hash(ACCESS, other_alg),
            jf.at_hash(jf.ACCESS_TOKEN, alg),
            "",
            None,
            1,
            good_hash[:-1],
            good_hash + "=",
            _DROP,
        ),
        "exp": _times(NOW),
        "iat": _times(NOW),
        "nbf": _times(NOW),
        "auth_time": _times(NOW),
    }


def _header_edges(kid: str) -> dict[str, tuple[Any, ...]]:
    return {
        "alg": (
            "ES256",
            "ES384",
            "RS256",
            "none",
            "None",
            "HS256",
            "ES512",
            "PS256",
            "EdDSA",
            "es256",
            "",
            None,
            1,
            ["ES256"],
            _DROP,
        ),
        "kid": (kid, "p256-1", "p384-1", "rsa-1", "unknown", "", None, 1, [kid], _DROP),
        "typ": ("JWT", "jwt", "application/jwt", "at+jwt", "logout+jwt", "JOSE", 1, None),
        "crit": (["exp"], [], ["b64"]),
        "b64": (False, True),
        "jku": ("https://evil.example/jwks",),
        "jwk": ({"kty": "oct", "k": "AAAA"},),
    }


class _IdTokens:
    """Generator of (token, expected nonce) for ``targets.check_id_token``."""

    RING = 128

    def __init__(self) -> None:
        self.keys = {alg: jf.KEYS[name].private for alg, name in _SIGNERS.items()}
        self.kids = {alg: jf.KEYS[name].kid for alg, name in _SIGNERS.items()}
        # A key the provider never published: its signatures must never verify.
        self.stranger = generate_key("EC", "P-256")
        self.claim_edges = {alg: _claim_edges(alg) for alg in _SIGNERS}
        self.header_edges = {alg: _header_edges(self.kids[alg]) for alg in _SIGNERS}
        self.seeds = [self._seed(alg, variant) for alg in _SIGNERS for variant in range(4)]
        self.ring: list[str] = list(self.seeds)
        self.resigned = 0

    def _seed(self, alg: str, variant: int) -> str:
        header: dict[str, Any] = {"alg": alg, "kid": self.kids[alg]}
        claims = _id_claims(alg)
        if variant == 1:
            header["typ"] = "JWT"
            claims["azp"] = jf.CLIENT_ID
        elif variant == 2:
            del header["kid"]
            claims["aud"] = [jf.CLIENT_ID]
        elif variant == 3:
            del claims["at_hash"]
            claims["auth_time"] = int(NOW) - 30
        return _sign(header, json.dumps(claims).encode(), self.keys[alg], alg)

    def _nonce(self, rng: random.Random) -> str | None:
        if rng.random() < 0.9:
            return jf.NONCE
        return rng.choice((None, "other-nonce", jf.NONCE.upper(), ""))

    def _signer(self, rng: random.Random) -> str:
        roll = rng.random()
        for alg, weight in _SIGNER_WEIGHTS:
            if roll < weight:
                return alg
            roll -= weight
        return "ES256"

    def _resigned(self, rng: random.Random) -> str:
        alg = self._signer(rng)
        header: Any = {"alg": alg, "kid": self.kids[alg]}
        claims: Any = _id_claims(alg)
        for _ in range(m.geometric(rng, 0.6, cap=4)):
            roll = rng.random()
            if roll < 0.55 and isinstance(claims, dict):
                claims = _with_edge(rng, claims, self.claim_edges[alg])
            elif roll < 0.75 and isinstance(header, dict):
                header = _with_edge(rng, header, self.header_edges[alg])
            elif roll < 0.9:
                claims = m.mutate_json(rng, claims, _CLAIM_NAMES)
            else:
                header = m.mutate_json(rng, header, _HEADER_NAMES)
        payload = json.dumps(claims).encode()
        how = rng.random()
        if how < 0.88:
            token = _sign(header, payload, self.keys[alg], alg)
        elif how < 0.93:
            token = _sign(header, payload, self.stranger, "ES256")
        elif how < 0.96:
            token = _sign(header, payload, None, alg)
        else:
            token = m.mutate_token(rng, _sign(header, payload, self.keys[alg], alg))
        if len(self.ring) < self.RING:
            self.ring.append(token)
        else:
            self.ring[self.resigned % self.RING] = token
        self.resigned += 1
        return token

    def __call__(self, rng: random.Random) -> tuple[str, str | None]:
        roll = rng.random()
        if roll < 0.03:
            token = rng.choice(self.seeds)
        elif roll < 0.45:
            token = self._resigned(rng)
        else:
            base = rng.choice(self.seeds) if rng.random() < 0.5 else rng.choice(self.ring)
            token = m.mutate_token(rng, base, self.ring, _CLAIM_NAMES)
        return token, self._nonce(rng)


class _Jwts:
    """Generator of compact tokens for ``targets.check_jwt`` (no signature is checked)."""

    def __init__(self, id_tokens: _IdTokens) -> None:
        access_claims = {
            "iss": ISSUER,
            "sub": jf.SUBJECT,
            "aud": "https://api.example.com",
            "exp": int(NOW) + 3600,
            "iat": int(NOW),
            "jti": "jti-1",
            "client_id": jf.CLIENT_ID,
            "scope": "read write",
            "organization_id": "org-1",
        }
        access = _sign(
            {"alg": "ES384", "kid": "p384-1", "typ": "at+jwt"},
            json.dumps(access_claims).encode(),
            jf.KEYS["P-384"].private,
            "ES384",
        )
        self.seeds = [*id_tokens.seeds, access]

    def __call__(self, rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(self.seeds)
        if roll < 0.93:
            return m.mutate_token(rng, rng.choice(self.seeds), self.seeds, _CLAIM_NAMES)
        if roll < 0.97:
            return ".".join(
                m.b64url(m.dump_json(rng, m.random_json(rng))) for _ in range(rng.randrange(1, 5))
            )
        return m.nasty_text(rng)


# ---- provider JSON bodies -----------------------------------------------------------------------

_DISCOVERY: dict[str, Any] = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/auth",
    "token_endpoint": f"{ISSUER}/token",
    "jwks_uri": f"{ISSUER}/jwks",
    "userinfo_endpoint": f"{ISSUER}/me",
    "end_session_endpoint": f"{ISSUER}/session/end",
    "revocation_endpoint": f"{ISSUER}/token/revocation",
    "code_challenge_methods_supported": ["S256"],
    "id_token_signing_alg_values_supported": ["ES384"],
    "authorization_response_iss_parameter_supported": True,
    "response_types_supported": ["code"],
    "subject_types_supported": ["public"],
    "scopes_supported": ["openid", "offline_access", "profile", "email"],
}
_DEV_ISSUER = DEV_CONFIG.issuer
_DEV_DISCOVERY = {
    **{
        name: value.replace(ISSUER, _DEV_ISSUER)
        for name, value in _DISCOVERY.items()
        if name.endswith("_endpoint")
    },
    "issuer": _DEV_ISSUER,
    "jwks_uri": f"{_DEV_ISSUER}/jwks",
    "code_challenge_methods_supported": ["plain", "S256"],
}
_MINIMAL_DISCOVERY = {
    name: _DISCOVERY[name]
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
}
_BAD_URLS = (
    "http://tenant.logto.app/oidc/token",
    "file:///etc/passwd",
    "ftp://tenant.logto.app/x",
    "https://user:pw@tenant.logto.app/x",
    "http://127.0.0.1:3001/oidc/token",
    "https://other.example/token",
    "javascript:alert(1)",
    "https://tenant.logto.app/oidc/token#frag",
    "https://tenant.logto.app:443/oidc/token",
    "HTTPS://TENANT.LOGTO.APP/oidc/token",
    "https://tenant.logto.app\x00.evil/x",
    "",
    None,
    1,
    [f"{ISSUER}/token"],
    _DROP,
)
_DISCOVERY_EDGES: dict[str, tuple[Any, ...]] = {
    **{name: _BAD_URLS for name in _DISCOVERY if "endpoint" in name or name == "jwks_uri"},
    "issuer": (ISSUER + "/", ISSUER.upper(), _DEV_ISSUER, "", None, _DROP, *_BAD_URLS[:6]),
    "code_challenge_methods_supported": (["plain"], [], "S256", ["s256"], None, _DROP, [1]),
    "id_token_signing_alg_values_supported": (["none"], ["HS256"], [], "ES384", None, _DROP),
    "authorization_response_iss_parameter_supported": (False, "true", None, 1, _DROP),
}
_DISCOVERY_SEEDS = ((_DISCOVERY, False), (_MINIMAL_DISCOVERY, False), (_DEV_DISCOVERY, True))


def gen_discovery(rng: random.Random) -> tuple[int, bytes, bool]:
    """(status, body, development config?), as ``targets.discovery_inputs`` draws."""
    doc, dev = rng.choice(_DISCOVERY_SEEDS)
    body = _body(rng, doc, list(_DISCOVERY), _DISCOVERY_EDGES)
    if rng.random() < 0.1:
        dev = not dev
    return _status(rng, (200,)), body, dev


_TOKEN = {
    "access_token": ACCESS,
    "refresh_token": REFRESH,
    "id_token": f"eyJ.{ACCESS}.sig",
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "openid offline_access",
}
_ERROR = {
    "error": "invalid_grant",
    "error_description": "grant request is invalid",
    "code": "oidc.invalid_grant",
    "message": "grant request is invalid",
    "error_uri": "https://docs.logto.io/errors",
}
_TOKEN_SEEDS: tuple[tuple[dict[str, Any], tuple[int, ...]], ...] = (
    (_TOKEN, (200,)),
    ({"access_token": ACCESS, "token_type": "Bearer", "expires_in": 3600}, (200,)),
    ({**_TOKEN, "token_type": "DPoP", "expires_in": 0}, (200,)),
    ({"access_token": ACCESS, "token_type": "bearer"}, (200,)),
    (_ERROR, (400, 401)),
    ({"error": "invalid_client"}, (401,)),
)
_TOKEN_EDGES: dict[str, tuple[Any, ...]] = {
    "access_token": ("", None, 1, ACCESS + "\x00", [ACCESS], _DROP),
    "refresh_token": ("", None, 1, REFRESH.upper(), _DROP),
    "id_token": ("", None, 1, "not.a.jwt", _DROP),
    "token_type": ("bearer", "BEARER", "mac", "", None, 1, "Bearer ", _DROP),
    "expires_in": (0, -1, 3600.5, "3600", 2**63, 10**20, None, True, math.nan, _DROP),
    "scope": ("", None, ["openid"], 1, "openid\x00", _DROP),
    "error": ("", None, 1, "slow_down", "invalid_grant ", "\ud800", _DROP),
}
_TOKEN_NAMES = (*_TOKEN, *_ERROR)
_TOKEN_SECRET_MEMBERS = ("access_token", "refresh_token", "id_token")


def gen_token(rng: random.Random) -> tuple[int, bytes]:
    """(status, body), as ``targets.token_inputs`` draws."""
    doc, statuses = rng.choice(_TOKEN_SEEDS)
    body = _body(rng, doc, _TOKEN_NAMES, _TOKEN_EDGES)
    return _status(rng, statuses), _defuse_body(body, _TOKEN_SECRET_MEMBERS)


_USERINFO_SEEDS: tuple[dict[str, Any], ...] = (
    {"sub": jf.SUBJECT, "name": "Ada", "email": "ada@example.com", "custom_data": {}},
    {
        "sub": jf.SUBJECT,
        "username": "ada",
        "picture": "https://example.com/a.png",
        "email_verified": True,
        "phone_number": "+15555550100",
        "roles": ["admin"],
        "organizations": ["org-1"],
        "organization_roles": ["org-1:admin"],
        "identities": {"google": {"userId": "g-1", "details": {}}},
        "custom_data": {"plan": "pro", "nested": [1, 2, {"x": None}]},
    },
    {"sub": jf.SUBJECT},
)
_USERINFO_NAMES = tuple(sorted({name for seed in _USERINFO_SEEDS for name in seed}))
_USERINFO_EDGES: dict[str, tuple[Any, ...]] = {
    "sub": (jf.SUBJECT + "x", "", "\ud800", jf.SUBJECT.upper(), None, 1, [jf.SUBJECT], _DROP),
    "email_verified": ("true", 1, None),
    "custom_data": ([], "x", None, {"\ud800": 1}),
}


def gen_userinfo(rng: random.Random) -> tuple[int, bytes]:
    """(status, body), as ``targets.userinfo_inputs`` draws."""
    doc = rng.choice(_USERINFO_SEEDS)
    return _status(rng, (200,)), _body(rng, doc, _USERINFO_NAMES, _USERINFO_EDGES)


_JWK_NAMES = ("kty", "crv", "x", "y", "n", "e", "kid", "use", "alg", "key_ops", "d", "k", "x5c")


def _jwks_seeds() -> tuple[dict[str, Any], ...]:
    p256 = jf.KEYS["P-256"].public_jwk()
    p384 = jf.KEYS["P-384"].public_jwk(use="sig", alg="ES384")
    rsa = jf.KEYS["rsa"].public_jwk(alg="RS256")
    ed = jf.KEYS["Ed25519"].public_jwk()
    return (
        {"keys": [p256, rsa]},
        {"keys": [p384]},
        {"keys": [p256, p384, rsa, ed]},
        {"keys": [{**p256, "use": "enc"}, rsa]},
    )


_JWKS_SEEDS = _jwks_seeds()


def gen_jwks(rng: random.Random) -> tuple[int, bytes]:
    """(status, body), as ``targets.jwks_inputs`` draws."""
    doc: Any = rng.choice(_JWKS_SEEDS)
    if rng.random() < 0.1:
        # A private member on a key: it must be dropped, and never quoted in an error.
        keys = [dict(key) for key in doc["keys"]]
        keys[rng.randrange(len(keys))]["d"] = "PRIVATE-FUZZSECRET"
        doc = {"keys": keys}
    body = _defuse_body(_body(rng, doc, _JWK_NAMES, {}), ("d",), nested="keys")
    return _status(rng, (200,)), body


_ERROR_SEEDS: tuple[dict[str, Any], ...] = (
    _ERROR,
    {"error": "invalid_request"},
    {"code": "session.not_found", "message": "Session not found."},
    {"error": "slow_down", "error_description": "wait"},
    {"error": "invalid_token", "error_description": "expired", "error_uri": "https://x"},
)
_ERROR_EDGES: dict[str, tuple[Any, ...]] = {
    "error": ("", None, 1, ["x"], {"x": 1}, "x" * 5000, "\ud800", _DROP),
    "error_description": ("", None, 1, "\x00" * 10, _DROP),
    "code": ("", None, 1, _DROP),
    "message": ("", None, 1, _DROP),
}
_RETRY_AFTERS = (
    "0",
    "5",
    "-1",
    "1e9",
    "120",
    "Wed, 21 Oct 2015 07:28:00 GMT",
    "",
    " 5",
    "5 ",
    "0x10",
    "9" * 5000,
    "NaN",
    "inf",
    "\u0665",  # ARABIC-INDIC DIGIT FIVE: int() accepts it
)


def gen_error_body(rng: random.Random) -> tuple[int, bytes, str | None]:
    """(status, body, Retry-After), as ``targets.error_inputs`` draws."""
    doc = rng.choice(_ERROR_SEEDS)
    body = _body(rng, doc, tuple(_ERROR), _ERROR_EDGES)
    roll = rng.random()
    retry_after: str | None
    if roll < 0.5:
        retry_after = None
    elif roll < 0.8:
        retry_after = rng.choice(_RETRY_AFTERS)
    else:
        retry_after = _text_or_edge(rng, _RETRY_AFTERS)
    return _status(rng, (400, 401, 429, 500, 503)), body, retry_after


# ---- URL builders -------------------------------------------------------------------------------

_SIGN_IN_SEEDS = (
    SignInOptions(redirect_uri=REDIRECT),
    SignInOptions(
        redirect_uri=REDIRECT,
        first_screen="identifier:register",
        identifiers=["email", "phone"],
        login_hint="ada@example.com",
        prompt=["login", "consent"],
        organization_id="org-1",
        ui_locales="en fr-CA",
        max_age=3600,
        extra_params={"one_time_token": "ott-1", "custom": "x"},
    ),
    SignInOptions(
        redirect_uri="http://localhost:3000/callback?keep=1",
        interaction_mode="signUp",
        direct_sign_in="social:google",
        prompt="none",
    ),
    SignInOptions(redirect_uri=REDIRECT, direct_sign_in="sso:abc-123", first_screen="sign_in"),
)
_SIGN_IN_TEXT: dict[str, tuple[str, ...]] = {
    "interaction_mode": ("signIn", "signUp", "signin", ""),
    "first_screen": (
        "sign_in",
        "register",
        "reset_password",
        "identifier:sign_in",
        "single_sign_on",
    ),
    "direct_sign_in": ("social:google", "sso:abc", "social:", ":google", "bad", "sso:a:b"),
    "login_hint": ("ada@example.com", "+15555550100", ""),
    "organization_id": ("org-1", ""),
    "ui_locales": ("en", "fr-CA en", ""),
}
_REDIRECTS = (*_CALLBACK_BASES, "https://app.example.com/callback#frag", "custom-scheme://cb")
_PROMPTS = ("consent", "login", "none", "none login", "", "x")
_MAX_AGES = (None, 0, -1, -5, 1, 3600, 2**31, 2**63, 10**10, 10**30)


def _extra_params(rng: random.Random, current: Mapping[str, str] | None) -> dict[str, str] | None:
    if rng.random() < 0.15:
        return None
    params = dict(current or {})
    for _ in range(m.geometric(rng, 0.6, cap=4)):
        roll = rng.random()
        if roll < 0.35:
            name = rng.choice(sorted(RESERVED_PARAMETERS))
            name = name.upper() if rng.random() < 0.5 else name
        elif roll < 0.7:
            name = _text_or_edge(rng, ("one_time_token", "custom", "", "a b"))
        elif params:
            params.pop(rng.choice(list(params)))
            continue
        else:
            name = "x"
        params[name] = _text_or_edge(rng, ("v", ""))
    return params


def _sign_in_field(rng: random.Random, options: SignInOptions) -> SignInOptions:
    name = rng.choice(
        (
            "redirect_uri",
            "redirect_uri",
            *_SIGN_IN_TEXT,
            "identifiers",
            "prompt",
            "max_age",
            "extra_params",
            "extra_params",
        )
    )
    value: Any
    if name == "redirect_uri":
        value = _text_or_edge(rng, _REDIRECTS)
    elif name in _SIGN_IN_TEXT:
        value = None if rng.random() < 0.2 else _text_or_edge(rng, _SIGN_IN_TEXT[name])
    elif name == "identifiers":
        choices = ("email", "phone", "username", "x", "", "EMAIL")
        value = None if rng.random() < 0.2 else rng.sample(choices, rng.randrange(4))
    elif name == "prompt":
        roll = rng.random()
        if roll < 0.2:
            value = None
        elif roll < 0.6:
            value = _text_or_edge(rng, _PROMPTS)
        else:
            value = [rng.choice(_PROMPTS) for _ in range(rng.randrange(4))]
    elif name == "max_age":
        value = rng.choice(_MAX_AGES)
    else:
        value = _extra_params(rng, options.extra_params)
    return dataclasses.replace(options, **{name: value})


def gen_sign_in(rng: random.Random) -> SignInOptions:
    """Sign-in options, as ``targets.sign_in_inputs`` draws."""
    options = rng.choice(_SIGN_IN_SEEDS)
    if rng.random() < 0.95:
        for _ in range(m.geometric(rng, 0.8, cap=5)):
            options = _sign_in_field(rng, options)
    return options


_HINTS = (f"eyJ.{ACCESS}.sig", "eyJhbGciOiJFUzM4NCJ9.e30.sig", "")
_POSTS = ("https://app.example.com/", "https://app.example.com/bye?x=1", *_CALLBACK_BASES)


def _optional_text(rng: random.Random, valid: Sequence[str]) -> str | None:
    return None if rng.random() < 0.25 else _text_or_edge(rng, valid)


def gen_end_session(rng: random.Random) -> tuple[str | None, str | None, str | None, bool]:
    """(post-logout redirect, id_token_hint, state, with metadata?), as
    ``targets.end_session_inputs`` draws."""
    return (
        _optional_text(rng, _POSTS),
        _optional_text(rng, _HINTS),
        _optional_text(rng, (STATE, "")),
        rng.random() < 0.5,
    )


def _build_id_token() -> Generator:
    return _IdTokens()


def _build_jwt() -> Generator:
    return _Jwts(_IdTokens())


GENERATORS: dict[str, Callable[[], Generator]] = {
    "callback": lambda: gen_callback,
    "jwt": _build_jwt,
    "id_token": _build_id_token,
    "discovery": lambda: gen_discovery,
    "token": lambda: gen_token,
    "userinfo": lambda: gen_userinfo,
    "jwks": lambda: gen_jwks,
    "error_body": lambda: gen_error_body,
    "sign_in_url": lambda: gen_sign_in,
    "end_session_url": lambda: gen_end_session,
}
"""For each target of ``targets.TARGETS``, a factory of its generator (factories, so that a
worker process signs seed tokens only for the target it runs)."""
