"""Fuzz targets: one hypothesis strategy and one checking function per parser or builder.

Every target enforces the same invariant: the SDK function returns a valid result or raises a
:class:`~logto_core.errors.LogtoError` subclass, nothing else; and no secret it was handed
(client secret, authorization code, code verifier, token values) shows up in the error's
message, ``str()`` or ``repr()``. Where a result comes back, the target also checks that it
really is valid (an oracle), so a parser that accepts garbage fails too.

The checking functions are shared by the hypothesis short profile (``test_fuzz.py``, part of
the normal suite), the fast mutation engine (``fast.py``, whose generators produce values of
the same shapes as the strategies here) and the long profile (``run_long.py``). Secrets are
long, distinctive markers that random data never produces, so finding one in a message means
the SDK copied it there.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from hypothesis import strategies as st

from logto_core.config import LogtoConfig
from logto_core.errors import LogtoError
from logto_core.http import HttpResponse
from logto_core.jose.jwt import (
    b64url_encode,
    decode_access_token_claims,
    decode_id_token_claims,
    decode_unverified,
)
from logto_core.jose.keys import parse_jwks_response
from logto_core.models import OidcProviderMetadata
from logto_core.protocol.callback import parse_callback
from logto_core.protocol.discovery import parse_discovery_response
from logto_core.protocol.end_session import build_end_session_url
from logto_core.protocol.id_token import verify_id_token
from logto_core.protocol.pkce import code_challenge_s256
from logto_core.protocol.signin_url import RESERVED_PARAMETERS, SignInOptions, build_sign_in
from logto_core.protocol.token_endpoint import parse_token_response
from logto_core.protocol.userinfo import parse_userinfo_response
from logto_core.responses import raise_for_status, read_object
from logto_core.runtime import Runtime
from logto_core.session import PENDING_SIGN_IN_TTL, PendingSignIn
from logto_core.urls import origin_and_path
from tests import jwt_factory as jf

T = TypeVar("T")

ENDPOINT = "https://tenant.logto.app"
ISSUER = f"{ENDPOINT}/oidc"
CLIENT_ID = "app-fuzz-client"
CLIENT_SECRET = "cs-FUZZSECRET-0d7a91c4e2b84f66a1"
CODE = "code-FUZZSECRET-5be1d9c07f"
VERIFIER = "vFUZZSECRETvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
STATE = "state-0123456789abcdef-state"
NONCE = "nonce-0123456789abcdef-nonce"
ACCESS = "at-FUZZSECRET-1e2d3c4b5a69788796a5b4c3d2e1f"
REFRESH = "rt-FUZZSECRET-9f8e7d6c5b4a39281706f5e4d3c2b"
REDIRECT = "https://app.example.com/callback"
NOW = 1_700_000_000.0
TOLERANCE = 60.0
SECRETS = (CLIENT_SECRET, CODE, VERIFIER, ACCESS, REFRESH, "FUZZSECRET")

CONFIG = LogtoConfig(endpoint=ENDPOINT, appId=CLIENT_ID, appSecret=CLIENT_SECRET)
DEV_CONFIG = LogtoConfig(endpoint="http://127.0.0.1:3001", appId=CLIENT_ID, appSecret=CLIENT_SECRET)
PENDING = PendingSignIn(
    state=STATE, nonce=NONCE, code_verifier=VERIFIER, redirect_uri=REDIRECT, created_at=NOW - 5
)


class InvariantError(AssertionError):
    """A fuzz invariant was broken (the SDK raised something untyped or leaked a secret)."""


def assert_clean(error: BaseException, secrets: Iterable[str]) -> None:
    """No secret in the error's message, ``str()`` or ``repr()`` (nor in a typed cause)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts = (str(current), repr(current), getattr(current, "message", ""))
        for secret in secrets:
            if secret and any(secret in text for text in texts):
                raise InvariantError(
                    f"{type(current).__name__} ({getattr(current, 'code', '?')}) leaks a secret"
                )
        current = current.__cause__ if isinstance(current.__cause__, LogtoError) else None


@dataclass(frozen=True)
class KnownFinding:
    """A defect the fuzzers found in the SDK and that is not fixed yet.

    Matching exceptions are counted (``KNOWN_HITS``) instead of failing the target, so that the
    fuzzers keep looking for other defects; ``test_known_findings.py`` holds a strict xfail
    regression test for each, which starts failing (XPASS) once the SDK is fixed, and then the
    entry must be removed from here.
    """

    name: str
    exception: type[BaseException]
    raised_in: str
    """Path suffix of the innermost SDK (``logto_core``) module the exception passed through."""

    def matches(self, error: BaseException) -> bool:
        if type(error) is not self.exception:
            return False
        frame = error.__traceback__
        innermost = ""
        while frame is not None:
            filename = frame.tb_frame.f_code.co_filename
            if "logto_core" in filename:
                innermost = filename
            frame = frame.tb_next
        return innermost.endswith(self.raised_in)


KNOWN_FINDINGS: tuple[KnownFinding, ...] = ()
"""Open findings: none. Every finding so far (lone surrogates in userinfo ``sub``, in
end-session parameters and in ID-token ``nonce``/``at_hash``; a NaN or infinite
``expires_in``) is fixed and pinned in ``test_known_findings.py``."""
KNOWN_HITS: dict[str, int] = {}

ACCEPTED = "accepted"
OUTCOMES: dict[str, int] = {}
"""How each guarded SDK call ended, counted per process: :data:`ACCEPTED` (a result came
back) or the :class:`LogtoError` code. Codes that embed provider text (``oauth.<error>``) are
open-ended: one that does not look like an identifier is counted as ``family.<other>``, and
past :data:`_MAX_CODES` distinct codes new ones are folded the same way."""
_MAX_CODES = 200
_PLAIN_CODE = re.compile(r"[a-z0-9_.]{1,60}")
# The error codes of RFC 6749, RFC 6750, RFC 8628 and OpenID Connect Core; ``oauth.<error>``
# with any other (fuzzed) error is counted as ``oauth.<other>``.
_OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "unsupported_response_type",
        "invalid_scope",
        "invalid_target",
        "access_denied",
        "server_error",
        "temporarily_unavailable",
        "invalid_token",
        "insufficient_scope",
        "slow_down",
        "authorization_pending",
        "expired_token",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
    }
)


def code_family(code: str) -> str:
    """``id_token.bad_signature`` -> ``id_token``: the part before the first dot."""
    return code.split(".", 1)[0]


def _count(outcome: str) -> None:
    family, _, rest = outcome.partition(".")
    if (
        not _PLAIN_CODE.fullmatch(outcome)
        or (family == "oauth" and rest not in _OAUTH_ERRORS)
        or (outcome not in OUTCOMES and len(OUTCOMES) >= _MAX_CODES)
    ):
        outcome = code_family(outcome)[:30] + ".<other>"
    OUTCOMES[outcome] = OUTCOMES.get(outcome, 0) + 1


def guarded(
    call: Callable[[], T],
    secrets: Iterable[str] = SECRETS,
    outcome: Callable[[T], str] | None = None,
) -> T | None:
    """Run ``call``: its result, or ``None`` when it raised a clean :class:`LogtoError`
    (or one of the :data:`KNOWN_FINDINGS`, which is counted).

    Any other exception propagates (hypothesis or the fast engine reports it as a failure).
    Each outcome is counted in :data:`OUTCOMES`: the error code, or for a result
    ``outcome(result)`` (default :data:`ACCEPTED`; a result may carry an error, such as a
    callback answered with an OAuth error)."""
    try:
        result = call()
    except Exception as error:
        if not isinstance(error, LogtoError):
            for finding in KNOWN_FINDINGS:
                if finding.matches(error):
                    KNOWN_HITS[finding.name] = KNOWN_HITS.get(finding.name, 0) + 1
                    return None
            raise
        if not error.code or not isinstance(error.code, str):
            raise InvariantError(f"{type(error).__name__} has no stable code") from error
        assert_clean(error, secrets)
        _count(error.code)
        return None
    _count(ACCEPTED if outcome is None else outcome(result))
    return result


def check_repr_clean(value: object, secrets: Iterable[str] = SECRETS) -> None:
    text = repr(value)
    for secret in secrets:
        if secret in text:
            raise InvariantError(f"repr of {type(value).__name__} leaks a secret")


# ---- shared strategies ----------------------------------------------------------------------

# Text that can trip parsers: control characters, lone surrogates, URL and JSON syntax.
NASTY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec=None),
        st.sampled_from(list('?&=#%:/@[]{}"\\.+ \t\r\n\x00\ud800')),
    ),
    max_size=40,
)
SHORT_TEXT = st.text(max_size=20)

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT,
)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(SHORT_TEXT, inner, max_size=4)
    ),
    max_leaves=10,
)
STATUSES = st.one_of(
    st.sampled_from([200, 201, 204, 301, 302, 307, 400, 401, 403, 404, 429, 500, 503]),
    st.integers(min_value=100, max_value=599),
)


def json_bytes(value: Any) -> bytes:
    """JSON as a provider might send it (NaN/Infinity included, lone surrogates escaped)."""
    return json.dumps(value).encode("utf-8")


RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"{", b'{"a":1,"a":2}', b"\xff\xfe", b"[" * 2000]),
)


@st.composite
def mutated_object(draw: st.DrawFn, base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with a few members removed, retyped or replaced, and a few added."""
    result = dict(base)
    for name in draw(st.lists(st.sampled_from(sorted(base)), max_size=3, unique=True)):
        action = draw(st.sampled_from(["drop", "value"]))
        if action == "drop":
            result.pop(name, None)
        else:
            result[name] = draw(JSON_VALUES)
    result.update(draw(st.dictionaries(SHORT_TEXT, JSON_VALUES, max_size=2)))
    return result


def body_from(payload: Any) -> st.SearchStrategy[bytes]:
    return st.just(json_bytes(payload))


@dataclass(frozen=True)
class Target:
    """A fuzz target: ``check`` is called with each value the strategy draws."""

    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


# ---- callback parser --------------------------------------------------------------------------

_CALLBACK_BASES = st.sampled_from(
    [
        REDIRECT,
        "HTTPS://APP.example.com:443/callback",
        "https://app.example.com/callback/",
        "https://app.example.com/other",
        "http://app.example.com/callback",
        "https://evil.example.com/callback",
        "https://app.example.com:8443/callback",
        "https://app.example.com/callback?keep=1",
        "//app.example.com/callback",
        "/callback",
        "https://app.example.com:99999/callback",
        "https://[::1/callback",
        "",
    ]
)
_CALLBACK_VALUES = {
    "state": st.one_of(st.just(STATE), st.just(STATE.upper()), NASTY_TEXT),
    "code": st.one_of(st.just(CODE), st.just(""), NASTY_TEXT),
    "iss": st.one_of(st.just(ISSUER), st.just(ISSUER + "/"), NASTY_TEXT),
    "error": st.one_of(st.sampled_from(["access_denied", "login_required", ""]), NASTY_TEXT),
    "error_description": NASTY_TEXT,
    "error_uri": NASTY_TEXT,
}


@st.composite
def callback_urls(draw: st.DrawFn) -> tuple[str, bool, float]:
    """(callback URL, iss_required, now)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(NASTY_TEXT), draw(st.booleans()), NOW
    names = draw(
        st.lists(
            st.sampled_from([*_CALLBACK_VALUES, "extra"]),
            max_size=7,
        )
    )
    pairs = [(name, draw(_CALLBACK_VALUES.get(name, NASTY_TEXT))) for name in names]
    query = (
        urlencode(pairs, errors="surrogatepass")
        if draw(st.booleans())
        else "&".join(f"{k}={v}" for k, v in pairs)
    )
    base = draw(_CALLBACK_BASES)
    where = draw(st.sampled_from(["query", "query", "fragment"]))
    separator = "#" if where == "fragment" else ("&" if "?" in base else "?")
    now = draw(st.sampled_from([NOW, NOW + 3594, NOW + 3596, math.nan]))
    return f"{base}{separator}{query}", draw(st.booleans()), now


def check_callback(drawn: tuple[str, bool, float]) -> None:
    url, iss_required, now = drawn
    result = guarded(
        lambda: parse_callback(
            url, pending=[PENDING], issuer=ISSUER, iss_required=iss_required, now=now
        ),
        outcome=lambda parsed: ACCEPTED if parsed.error is None else parsed.error.code,
    )
    if result is None:
        return
    if result.error is not None:
        assert_clean(result.error, SECRETS)
    check_repr_clean(result)
    if not result.ok:
        return
    # Oracle: a code is handed out only for a callback that passes every check.
    params = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    assert params.get("state") == STATE
    assert result.code == params.get("code") and result.code
    assert origin_and_path(url) == origin_and_path(REDIRECT)
    assert "error" not in params
    assert params.get("iss", ISSUER if not iss_required else None) == ISSUER
    assert now - PENDING.created_at < PENDING_SIGN_IN_TTL


# ---- JWT decoding -------------------------------------------------------------------------------

_SEGMENTS = st.one_of(
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/", max_size=30
    ),
    JSON_VALUES.map(lambda v: b64url_encode(json_bytes(v))),
    st.binary(max_size=30).map(b64url_encode),
)


@st.composite
def jwt_strings(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(NASTY_TEXT)
    if choice == 1:
        parts = draw(st.lists(_SEGMENTS, min_size=1, max_size=5))
        return ".".join(parts)
    header = draw(mutated_object({"alg": "ES256", "kid": "p256-1", "typ": "JWT"}))
    claims = draw(mutated_object(jf.base_claims()))
    return f"{jf.b64_json(header)}.{b64url_encode(json_bytes(claims))}.{b64url_encode(VERIFIER.encode())}"


def check_jwt(token: str) -> None:
    secrets = (*SECRETS, token) if len(token) >= 24 else SECRETS
    decoded = guarded(lambda: decode_unverified(token), secrets)
    if decoded is not None:
        header, claims = decoded
        assert isinstance(header, dict) and isinstance(claims, dict)
    guarded(lambda: decode_id_token_claims(token), secrets)
    guarded(lambda: decode_access_token_claims(token), secrets)


# ---- ID token verification ------------------------------------------------------------------------

_KEYS = jf.key_set(["P-256", "P-384", "rsa"])
_ALLOWED = frozenset({"ES256", "ES384", "RS256"})
_ID_ACCESS = ACCESS


@st.composite
def id_tokens(draw: st.DrawFn) -> tuple[str, str | None]:
    """(token, expected nonce) around a valid ES256 token with fuzzed header and claims."""
    base_claims = jf.base_claims(alg="ES256")
    base_claims["at_hash"] = jf.at_hash(_ID_ACCESS, "ES256")
    claims = draw(mutated_object(base_claims))
    for name in draw(st.lists(st.sampled_from(["exp", "iat", "nbf", "auth_time"]), max_size=2)):
        claims[name] = NOW + draw(st.sampled_from([-3700, -61, -59, 0, 59, 61, 3600]))
    if draw(st.booleans()):
        claims["aud"] = draw(
            st.sampled_from([[CLIENT_ID], [CLIENT_ID, "other"], "other", [], jf.CLIENT_ID])
        )
    if draw(st.booleans()):
        claims["azp"] = draw(st.sampled_from([jf.CLIENT_ID, CLIENT_ID, "other"]))
    header = draw(mutated_object({"alg": "ES256", "kid": "p256-1"}))
    if draw(st.booleans()):
        header["alg"] = draw(
            st.sampled_from(["none", "HS256", "ES384", "RS256", "ES512", "EdDSA", "NONE"])
        )
    signing = draw(st.sampled_from(["good", "good", "other_key", "unsigned", "bad"]))
    if signing == "unsigned":
        token = jf.sign(header, claims, sign_alg="none")
    else:
        key = jf.KEYS["P-256" if signing != "other_key" else "P-384"].private
        alg = "ES256" if signing != "other_key" else "ES384"
        token = jf.sign(header, claims, key=key, sign_alg=alg)
        if signing == "bad":
            head, _, signature = token.rpartition(".")
            token = f"{head}.{signature[::-1]}"
    nonce = draw(st.sampled_from([jf.NONCE, None, "other-nonce"]))
    return token, nonce


def check_id_token(drawn: tuple[str, str | None]) -> None:
    token, nonce = drawn

    def verify() -> Any:
        return verify_id_token(
            token,
            keys=_KEYS,
            issuer=jf.ISSUER,
            client_id=jf.CLIENT_ID,
            now=NOW,
            clock_tolerance=TOLERANCE,
            algorithms=_ALLOWED,
            expected_nonce=nonce,
            access_token=_ID_ACCESS,
        )

    # The token is a secret too, but a very short one occurs in any message by chance.
    claims = guarded(verify, (*SECRETS, token) if len(token) >= 24 else SECRETS)
    if claims is None:
        return
    # Oracle: everything OIDC Core 3.1.3.7 requires holds for an accepted token.
    header, raw = decode_unverified(token)
    assert header["alg"] in _ALLOWED
    assert raw["iss"] == jf.ISSUER
    audiences = raw["aud"] if isinstance(raw["aud"], list) else [raw["aud"]]
    assert set(audiences) == {jf.CLIENT_ID}
    # A null member is treated as absent (as for every optional claim the SDK reads).
    assert raw.get("azp") in (None, jf.CLIENT_ID)
    assert isinstance(raw["sub"], str) and raw["sub"]
    assert raw["exp"] + TOLERANCE > NOW and raw["iat"] <= NOW + TOLERANCE
    assert raw.get("nonce") == nonce
    if raw.get("at_hash") is not None:
        # The hash follows the token's own algorithm (SHA-384 for ES384, SHA-256 otherwise).
        assert raw["at_hash"] == jf.at_hash(_ID_ACCESS, header["alg"])


# ---- JSON body parsers ---------------------------------------------------------------------------

_DISCOVERY = {
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
}
_BAD_URLS = st.sampled_from(
    [
        "http://tenant.logto.app/oidc/token",
        "file:///etc/passwd",
        "ftp://tenant.logto.app/x",
        "https://user:pw@tenant.logto.app/x",
        "http://127.0.0.1:3001/oidc/token",
        "https://other.example/token",
        "javascript:alert(1)",
        "",
    ]
)


@st.composite
def discovery_inputs(draw: st.DrawFn) -> tuple[int, bytes, bool]:
    status = draw(st.sampled_from([200, 200, 200, 204])) if draw(st.booleans()) else draw(STATUSES)
    if draw(st.integers(0, 4)) == 0:
        return status, draw(RAW_BODIES), draw(st.booleans())
    doc = draw(mutated_object(_DISCOVERY))
    for name in draw(st.lists(st.sampled_from(sorted(_DISCOVERY)), max_size=2)):
        doc[name] = draw(_BAD_URLS)
    return status, json_bytes(doc), draw(st.booleans())


def check_discovery(drawn: tuple[int, bytes, bool]) -> None:
    status, body, dev = drawn
    config = DEV_CONFIG if dev else CONFIG
    metadata = guarded(lambda: parse_discovery_response(HttpResponse(status, {}, body), config))
    if metadata is None:
        return
    assert status == 200
    assert metadata.issuer == config.issuer
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        scheme = urlsplit(getattr(metadata, name)).scheme
        assert scheme == "https" or (dev and scheme == "http")


_TOKEN = {
    "access_token": ACCESS,
    "refresh_token": REFRESH,
    "id_token": f"eyJ.{ACCESS}.sig",
    "token_type": "Bearer",
    "expires_in": 3600,
    "scope": "openid offline_access",
}


@st.composite
def token_inputs(draw: st.DrawFn) -> tuple[int, bytes]:
    status = draw(st.sampled_from([200, 200, 400, 401])) if draw(st.booleans()) else draw(STATUSES)
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return status, draw(RAW_BODIES)
    if kind == 1:
        return status, json_bytes(draw(mutated_object(_ERROR)))
    return status, json_bytes(draw(mutated_object(_TOKEN)))


def check_token(drawn: tuple[int, bytes]) -> None:
    status, body = drawn
    token = guarded(lambda: parse_token_response(HttpResponse(status, {}, body)))
    if token is None:
        return
    check_repr_clean(token)
    assert 200 <= status < 300
    assert isinstance(token.access_token, str) and token.access_token
    assert token.expires_in is None or token.expires_in >= 0
    assert token.token_type.lower() == "bearer"


_USERINFO = {"sub": jf.SUBJECT, "name": "Ada", "email": "ada@example.com", "custom_data": {}}


@st.composite
def userinfo_inputs(draw: st.DrawFn) -> tuple[int, bytes]:
    status = draw(st.sampled_from([200, 200, 401])) if draw(st.booleans()) else draw(STATUSES)
    if draw(st.integers(0, 4)) == 0:
        return status, draw(RAW_BODIES)
    doc = draw(mutated_object(_USERINFO))
    if draw(st.booleans()):
        doc["sub"] = draw(st.sampled_from([jf.SUBJECT + "x", "", "\ud800", jf.SUBJECT.upper()]))
    return status, json_bytes(doc)


def check_userinfo(drawn: tuple[int, bytes]) -> None:
    status, body = drawn
    info = guarded(
        lambda: parse_userinfo_response(HttpResponse(status, {}, body), expected_sub=jf.SUBJECT)
    )
    if info is None:
        return
    assert 200 <= status < 300
    assert info.sub == jf.SUBJECT


_JWK = jf.KEYS["P-256"].public_jwk()


@st.composite
def jwks_inputs(draw: st.DrawFn) -> tuple[int, bytes]:
    status = draw(st.sampled_from([200, 200, 200, 500])) if draw(st.booleans()) else draw(STATUSES)
    if draw(st.integers(0, 4)) == 0:
        return status, draw(RAW_BODIES)
    keys: list[Any] = []
    for _ in range(draw(st.integers(0, 3))):
        base = draw(
            st.sampled_from([_JWK, jf.KEYS["rsa"].public_jwk(), {"kty": "oct", "k": "AAAA"}])
        )
        key = draw(mutated_object(base))
        if draw(st.booleans()):
            key["d"] = "PRIVATE-FUZZSECRET"
        keys.append(key)
    doc: Any = draw(mutated_object({"keys": keys}))
    return status, json_bytes(doc)


def check_jwks(drawn: tuple[int, bytes]) -> None:
    status, body = drawn
    keys = guarded(lambda: parse_jwks_response(HttpResponse(status, {}, body), now=NOW))
    if keys is None:
        return
    assert status == 200
    assert keys.keys
    for key in keys.keys:
        assert "d" not in key  # private members are never kept
        assert key.get("use", "sig") == "sig"


_ERROR = {
    "error": "invalid_grant",
    "error_description": "grant request is invalid",
    "code": "oidc.invalid_grant",
    "message": "grant request is invalid",
    "error_uri": "https://docs.logto.io/errors",
}


@st.composite
def error_inputs(draw: st.DrawFn) -> tuple[int, bytes, str | None]:
    status = draw(STATUSES)
    body = (
        draw(RAW_BODIES)
        if draw(st.integers(0, 3)) == 0
        else json_bytes(draw(mutated_object(_ERROR)))
    )
    retry_after = draw(st.one_of(st.none(), NASTY_TEXT, st.sampled_from(["0", "5", "-1", "1e9"])))
    return status, body, retry_after


def check_error_body(drawn: tuple[int, bytes, str | None]) -> None:
    status, body, retry_after = drawn
    headers = {} if retry_after is None else {"retry-after": retry_after}
    response = HttpResponse(status, headers, body)
    guarded(lambda: raise_for_status(response, what="token"))
    guarded(lambda: read_object(response, what="token"))


# ---- URL builders -----------------------------------------------------------------------------------


def _counting_entropy() -> Callable[[int], bytes]:
    """Deterministic but never-repeating bytes (each draw differs from the previous ones)."""
    counter = [0]

    def entropy(n: int) -> bytes:
        counter[0] += 1
        return hashlib.shake_256(counter[0].to_bytes(8, "big")).digest(n)

    return entropy


_RUNTIME = Runtime(clock=lambda: NOW, entropy=_counting_entropy())
_SIGN_IN_CONFIG = LogtoConfig(
    endpoint=ENDPOINT,
    appId=CLIENT_ID,
    appSecret=CLIENT_SECRET,
    scopes=["email"],
    resources=["https://api.example.com"],
)
_OPTION_TEXT = st.one_of(st.none(), NASTY_TEXT)


@st.composite
def sign_in_inputs(draw: st.DrawFn) -> SignInOptions:
    redirect = draw(st.one_of(st.just(REDIRECT), _CALLBACK_BASES, NASTY_TEXT))
    extra_names = st.one_of(
        st.sampled_from(sorted(RESERVED_PARAMETERS)).map(lambda n: n.upper() if len(n) % 2 else n),
        NASTY_TEXT,
    )
    return SignInOptions(
        redirect_uri=redirect,
        interaction_mode=draw(
            st.one_of(st.none(), st.sampled_from(["signIn", "signUp"]), NASTY_TEXT)
        ),
        first_screen=draw(
            st.one_of(st.none(), st.sampled_from(["sign_in", "register"]), NASTY_TEXT)
        ),
        identifiers=draw(
            st.one_of(st.none(), st.lists(st.sampled_from(["email", "phone", "x"]), max_size=3))
        ),
        direct_sign_in=draw(
            st.one_of(st.none(), st.sampled_from(["social:google", "sso:abc", "bad"]), NASTY_TEXT)
        ),
        login_hint=draw(_OPTION_TEXT),
        prompt=draw(
            st.one_of(
                st.none(),
                st.sampled_from(["consent", "login", "none", "none login"]),
                st.lists(st.sampled_from(["consent", "login", "none", "x"]), max_size=3),
            )
        ),
        organization_id=draw(_OPTION_TEXT),
        ui_locales=draw(_OPTION_TEXT),
        max_age=draw(st.one_of(st.none(), st.integers(min_value=-5, max_value=10**10))),
        extra_params=draw(
            st.one_of(st.none(), st.dictionaries(extra_names, NASTY_TEXT, max_size=3))
        ),
    )


def check_sign_in(options: SignInOptions) -> None:
    built = guarded(lambda: build_sign_in(_SIGN_IN_CONFIG, f"{ISSUER}/auth", options, _RUNTIME))
    if built is None:
        return
    url, attempt = built
    check_repr_clean(attempt, (CLIENT_SECRET, attempt.code_verifier))
    assert attempt.code_verifier not in url and CLIENT_SECRET not in url
    assert url.startswith(f"{ISSUER}/auth?")
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    lowered: dict[str, int] = {}
    for name, values in query.items():
        lowered[name.lower()] = lowered.get(name.lower(), 0) + len(values)
    for name in (
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "nonce",
        "prompt",
        "code_challenge",
        "code_challenge_method",
        "scope",
    ):
        assert lowered.get(name) == 1, name
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [attempt.redirect_uri]
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [code_challenge_s256(attempt.code_verifier)]
    assert query["state"] == [attempt.state] and query["nonce"] == [attempt.nonce]
    assert lowered.get("resource") == 1
    for name, value in (options.extra_params or {}).items():
        assert name.lower() not in RESERVED_PARAMETERS
        assert value in query.get(name, []) or (value == "" and name in query) or name == ""


_METADATA = OidcProviderMetadata.model_validate(_DISCOVERY)


@st.composite
def end_session_inputs(draw: st.DrawFn) -> tuple[str | None, str | None, str | None, bool]:
    post = draw(
        st.one_of(st.none(), st.just("https://app.example.com/"), _CALLBACK_BASES, NASTY_TEXT)
    )
    hint = draw(st.one_of(st.none(), st.just(f"eyJ.{ACCESS}.sig"), NASTY_TEXT))
    state = draw(st.one_of(st.none(), NASTY_TEXT))
    return post, hint, state, draw(st.booleans())


def check_end_session(drawn: tuple[str | None, str | None, str | None, bool]) -> None:
    post, hint, state, with_metadata = drawn
    url = guarded(
        lambda: build_end_session_url(
            CONFIG,
            _METADATA if with_metadata else None,
            post_logout_redirect_uri=post,
            id_token_hint=hint,
            state=state,
        ),
        (CLIENT_SECRET, ACCESS),
    )
    if url is None:
        return
    assert CLIENT_SECRET not in url
    assert url.startswith(f"{ISSUER}/session/end?")
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert query["client_id"] == [CLIENT_ID]
    if post is not None:
        assert query["post_logout_redirect_uri"] == [post]
    if hint:
        assert query["id_token_hint"] == [hint]
    if state:
        assert query["state"] == [state]


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("callback", callback_urls(), check_callback),
        Target("jwt", jwt_strings(), check_jwt),
        Target("id_token", id_tokens(), check_id_token),
        Target("discovery", discovery_inputs(), check_discovery),
        Target("token", token_inputs(), check_token),
        Target("userinfo", userinfo_inputs(), check_userinfo),
        Target("jwks", jwks_inputs(), check_jwks),
        Target("error_body", error_inputs(), check_error_body),
        Target("sign_in_url", sign_in_inputs(), check_sign_in),
        Target("end_session_url", end_session_inputs(), check_end_session),
    )
}
"""Every fuzz target, by name."""
