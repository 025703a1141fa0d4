"""RFC 6750 at the resource server (logto_core/protocol/bearer.py): the token out of an
Authorization header, the error's status, and the WWW-Authenticate challenge, which no
input can break open."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logto_core.errors import LogtoError, LogtoUsageError
from logto_core.protocol.bearer import (
    MAX_DESCRIPTION_CHARS,
    MAX_HEADER_CHARS,
    AccessTokenError,
    bearer_token,
    quotable,
    scope_tokens,
    www_authenticate,
)

TOKEN = "eyJhbGciOiJFUzM4NCJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"

# ---- the Authorization header ---------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",
        f"BEARER {TOKEN}",
        f"BeArEr {TOKEN}",
        f"Bearer    {TOKEN}",  # 1*SP
        f"Bearer\t{TOKEN}",
        f"  Bearer {TOKEN}  ",  # optional whitespace around a field value
    ],
)
def test_the_token_of_a_bearer_header(header: str) -> None:
    assert bearer_token(header) == TOKEN


def test_b64token_allows_its_whole_alphabet_and_trailing_padding() -> None:
    token = "AZaz09-._~+/abc=="
    assert bearer_token(f"Bearer {token}") == token


@pytest.mark.parametrize("header", [None, "", "   ", "\t"])
def test_no_credentials_is_401_without_an_error(header: str | None) -> None:
    with pytest.raises(AccessTokenError) as caught:
        bearer_token(header)
    error = caught.value
    assert error.code == "bearer.missing"
    assert error.status == 401 and error.error is None
    # RFC 6750 section 3.1: no error code when the request has no authentication at all.
    assert error.www_authenticate() == "Bearer"
    assert error.www_authenticate(realm="api") == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "header",
    [f"Basic {TOKEN}", "Basic dXNlcjpwYXNz", f"Bearerx {TOKEN}", f"DPoP {TOKEN}", "Digest"],
)
def test_another_scheme_is_401_without_an_error(header: str) -> None:
    with pytest.raises(AccessTokenError) as caught:
        bearer_token(header)
    assert caught.value.code == "bearer.other_scheme"
    assert caught.value.status == 401 and caught.value.error is None
    assert caught.value.www_authenticate() == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer   ",
        f"Bearer {TOKEN} {TOKEN}",  # exactly one token
        f"Bearer {TOKEN},{TOKEN}",  # two headers folded into one
        f"Bearer {TOKEN}, Bearer {TOKEN}",
        f'Bearer "{TOKEN}"',
        "Bearer a=b",  # padding only at the end
        "Bearer ===",
        f"Bearer {TOKEN}\nX-Injected: 1",
        f"Bearer {TOKEN}\x00",
        "Bearer tökén",
        f"(Bearer) {TOKEN}",  # not a scheme token
        f"Bearer:{TOKEN}",
        "Bearer " + "a" * MAX_HEADER_CHARS,
    ],
)
def test_a_malformed_bearer_header_is_400_invalid_request(header: str) -> None:
    with pytest.raises(AccessTokenError) as caught:
        bearer_token(header)
    error = caught.value
    assert error.code == "bearer.malformed"
    assert (error.status, error.error) == (400, "invalid_request")
    assert error.www_authenticate().startswith('Bearer error="invalid_request", error_description=')
    assert TOKEN not in error.message and TOKEN not in repr(error)
    assert TOKEN not in error.www_authenticate()


def test_a_header_that_is_not_text_is_a_usage_error() -> None:
    with pytest.raises(LogtoUsageError) as caught:
        bearer_token(b"Bearer abc")  # type: ignore[arg-type]
    assert caught.value.code == "usage.authorization_header"


B64TOKEN = st.from_regex(r"[A-Za-z0-9._~+/-]{1,60}={0,2}", fullmatch=True)
SCHEME = st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"])
SPACES = st.text(alphabet=" \t", min_size=1, max_size=4)
OWS = st.text(alphabet=" \t", max_size=3)


@given(SCHEME, SPACES, B64TOKEN, OWS, OWS)
def test_every_well_formed_header_gives_its_token(
    scheme: str, gap: str, token: str, before: str, after: str
) -> None:
    assert bearer_token(f"{before}{scheme}{gap}{token}{after}") == token


@given(st.text(max_size=200))
def test_any_header_gives_a_b64token_or_a_typed_answer(header: str) -> None:
    """The one untrusted input: accepted as one b64token of the header, or refused with the
    error RFC 6750 gives it, nothing else."""
    try:
        token: str | None = bearer_token(header)
    except AccessTokenError as caught:
        token, error = None, caught
    if token is not None:
        assert re.fullmatch(r"[A-Za-z0-9._~+/-]+=*", token)
        assert token in header
        return
    assert error.code in {"bearer.missing", "bearer.other_scheme", "bearer.malformed"}
    assert error.status in {400, 401}
    assert (error.status == 400) == (error.error == "invalid_request")
    if len(header.strip()) > 8:  # a fixed message never quotes the header
        assert header.strip() not in error.message


# ---- WWW-Authenticate -----------------------------------------------------------------------


def test_the_examples_of_rfc_6750_section_3() -> None:
    assert www_authenticate(realm="example") == 'Bearer realm="example"'
    assert www_authenticate(
        realm="example", error="invalid_token", error_description="The access token expired"
    ) == (
        'Bearer realm="example", error="invalid_token", error_description="The access token expired"'
    )
    assert www_authenticate() == "Bearer"


def test_values_lose_quotes_backslashes_and_control_characters() -> None:
    header = www_authenticate(
        realm='a"b\\c',
        error="invalid_token",
        error_description='bad "token"\r\nSet-Cookie: x=1\x00 \\ end',
        scope='read "write"\nadmin\\',
    )
    assert header == (
        'Bearer realm="a b c", error="invalid_token", '
        'error_description="bad token Set-Cookie: x=1 end", scope="read write admin"'
    )


def test_non_ascii_text_is_not_sent() -> None:
    assert quotable("jeton expiré – réessayez") == "jeton expir r essayez"
    assert scope_tokens("lire écrire") == "lire crire"


def test_long_values_are_bounded() -> None:
    header = www_authenticate(
        error="invalid_token", error_description="x" * 5000, scope="s " * 5000
    )
    description = re.search(r'error_description="([^"]*)"', header)
    scope = re.search(r'scope="([^"]*)"', header)
    assert description is not None and len(description.group(1)) == MAX_DESCRIPTION_CHARS
    assert scope is not None and len(scope.group(1)) <= 1000
    assert scope.group(1).split() == ["s"] * len(scope.group(1).split())  # whole tokens only


def test_empty_values_are_left_out_but_an_empty_realm_stays() -> None:
    assert www_authenticate(error="invalid_token", error_description='"\\', scope="\n") == (
        'Bearer error="invalid_token"'
    )
    assert www_authenticate(realm="") == 'Bearer realm=""'


_PARAM = re.compile(r'([a-z_]+)="([^"\\]*)"')


def parse_challenge(header: str) -> dict[str, str]:
    """The parameters of a challenge this module built: ``Bearer`` then ``name="value"``
    pairs joined by ``", "``; anything else fails the test."""
    assert header == "Bearer" or header.startswith("Bearer ")
    rest = header[len("Bearer ") :]
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        assert match is not None, header
        params[match.group(1)] = match.group(2)
        position = match.end()
        if position < len(rest):
            assert rest.startswith(", ", position), header
            position += 2
    return params


optional_text = st.none() | st.text(max_size=300)


@given(optional_text, optional_text, optional_text, optional_text)
def test_a_challenge_never_breaks_and_round_trips(
    realm: str | None, error: str | None, description: str | None, scope: str | None
) -> None:
    header = www_authenticate(realm=realm, error=error, error_description=description, scope=scope)
    # Printable ASCII only (no CR, LF, NUL, nothing a header could be split or forged with),
    # no backslash, and every quote is one of a pair this module wrote.
    assert all(" " <= ch <= "~" for ch in header)
    assert "\\" not in header
    params = parse_challenge(header)
    assert header.count('"') == 2 * len(params)
    expected: dict[str, str] = {}
    if realm is not None:
        expected["realm"] = quotable(realm, 1000)
    if error is not None and (code := re.sub(r"[^\x21\x23-\x5b\x5d-\x7e]", "", error)[:64]):
        expected["error"] = code
    if description is not None and quotable(description):
        expected["error_description"] = quotable(description)
    if scope is not None and scope_tokens(scope):
        expected["scope"] = scope_tokens(scope)
    assert params == expected
    if scope is not None:  # every scope kept is a scope-token of the input, in order
        kept = params.get("scope", "").split()
        assert all(re.fullmatch(r"[\x21\x23-\x5b\x5d-\x7e]+", token) for token in kept)


@given(st.text(max_size=300))
def test_quotable_is_idempotent_and_bounded(text: str) -> None:
    once = quotable(text)
    assert quotable(once) == once
    assert len(once) <= MAX_DESCRIPTION_CHARS
    assert not once.startswith(" ") and not once.endswith(" ")


# ---- the error ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [(None, 401), ("invalid_request", 400), ("invalid_token", 401), ("insufficient_scope", 403)],
)
def test_each_error_has_its_status(error: str | None, status: int) -> None:
    assert AccessTokenError("x", error=error).status == status  # type: ignore[arg-type]


def test_the_challenge_of_an_error() -> None:
    expired = AccessTokenError("the access token has expired", code="access_token.expired")
    assert isinstance(expired, LogtoError)
    assert expired.www_authenticate() == (
        'Bearer error="invalid_token", error_description="the access token has expired"'
    )
    in_realm = AccessTokenError("x", realm="orders")
    assert in_realm.www_authenticate().startswith('Bearer realm="orders", ')
    assert in_realm.www_authenticate(realm="other").startswith('Bearer realm="other", ')
    scoped = AccessTokenError(
        "lacks 'write'",
        code="access_token.insufficient_scope",
        error="insufficient_scope",
        scope="read write",
    )
    assert scoped.status == 403
    assert scoped.www_authenticate() == (
        'Bearer error="insufficient_scope", error_description="lacks \'write\'", scope="read write"'
    )
    # scope belongs to insufficient_scope only.
    assert "scope=" not in AccessTokenError("x", scope="read").www_authenticate()


def test_the_description_is_the_message_bounded() -> None:
    error = AccessTokenError("m" * 1000)
    assert error.error_description == "m" * MAX_DESCRIPTION_CHARS
