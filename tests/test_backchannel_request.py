"""The back-channel logout request (section 2.5) and its answer (section 2.8): the parser, the
results, and the whole exchange as one pure function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import (
    LogoutRequestError,
    LogtoError,
    StorageError,
    TokenValidationError,
    TransportError,
)
from logto_core.jose.keys import NEED_KEYS
from logto_core.protocol.backchannel import (
    MAX_BODY_BYTES,
    Answered,
    BackchannelLogoutResult,
    answer_logout_request,
    logout_accepted,
    logout_refused,
    parse_logout_request,
)
from logto_core.replay_cache import EMPTY_REPLAY_CACHE, ReplayCache
from tests.jwt_factory import ALL_ALGORITHMS, CLIENT_ID, ISSUER, NOW, SUBJECT, TOLERANCE, key_set
from tests.test_logout_token import JTI, SID, logout_token

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
KEY_SET = key_set()


def form(**fields: str) -> bytes:
    return urlencode(fields).encode("ascii")


def refused(method: str, headers: Any, body: Any, code: str) -> None:
    with pytest.raises(LogoutRequestError) as info:
        parse_logout_request(method, headers, body)
    assert info.value.code == code


# ---- the request ------------------------------------------------------------------------------


def test_the_token_of_a_well_formed_request() -> None:
    assert parse_logout_request("POST", FORM, form(logout_token="a.b.c")) == "a.b.c"


class WerkzeugLikeHeaders:
    """Iterates as pairs and has items(), as werkzeug's EnvironHeaders does."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def items(self) -> Iterator[tuple[str, str]]:
        return iter(self.pairs)


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/x-www-form-urlencoded"},
        {"Content-Type": "Application/X-WWW-Form-Urlencoded; charset=utf-8"},
        [("Host", "rp"), ("CONTENT-TYPE", "application/x-www-form-urlencoded")],
        WerkzeugLikeHeaders([("Content-Type", "application/x-www-form-urlencoded")]),
    ],
)
def test_headers_as_frameworks_give_them(headers: Any) -> None:
    assert parse_logout_request("POST", headers, form(logout_token="t")) == "t"


def test_other_parameters_are_ignored() -> None:
    # Section 2.5: values not understood MUST be ignored.
    body = b"state=x&logout_token=a.b.c&flag&empty="
    assert parse_logout_request("post", FORM, body) == "a.b.c"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "", None])
def test_only_a_post(method: Any) -> None:
    refused(method, FORM, form(logout_token="t"), "logout_request.method")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Content-Type": "application/json"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        [("Content-Type", FORM["Content-Type"]), ("content-type", FORM["Content-Type"])],
    ],
)
def test_only_one_form_content_type(headers: Any) -> None:
    refused("POST", headers, form(logout_token="t"), "logout_request.content_type")


def test_an_oversized_body_is_refused_unread() -> None:
    body = form(logout_token="t" * MAX_BODY_BYTES)
    refused("POST", FORM, body, "logout_request.too_large")
    assert parse_logout_request("POST", FORM, form(logout_token="t" * 60_000)) == "t" * 60_000


@pytest.mark.parametrize(
    "body",
    [
        "logout_token=t",  # text, not bytes
        b"logout_token=\xff",  # not ASCII
        b"logout_token=%ff%fe",  # not UTF-8 once decoded
        b"&".join(b"p%d=1" % i for i in range(40)) + b"&logout_token=t",  # too many fields
    ],
)
def test_an_undecodable_body_is_refused(body: Any) -> None:
    refused("POST", FORM, body, "logout_request.malformed")


@pytest.mark.parametrize("body", [b"", b"state=1", b"logout_token=", b"logout_token"])
def test_no_token(body: bytes) -> None:
    refused("POST", FORM, body, "logout_request.token_missing")


def test_two_tokens() -> None:
    refused("POST", FORM, b"logout_token=a&logout_token=b", "logout_request.token_repeated")
    refused("POST", FORM, b"logout_token=a&logout_token=", "logout_request.token_repeated")


def test_bytearray_and_memoryview_bodies() -> None:
    body = form(logout_token="t")
    assert parse_logout_request("POST", FORM, bytearray(body)) == "t"
    assert parse_logout_request("POST", FORM, memoryview(body)) == "t"


_TOKEN_CHARS = st.text("ABCxyz0189-_.", min_size=1, max_size=60)
_OTHER = st.dictionaries(
    st.text(min_size=1, max_size=6).filter(lambda n: n != "logout_token"),
    st.text(max_size=10),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(_TOKEN_CHARS, _OTHER)
def test_the_token_comes_back_whatever_else_the_form_holds(
    token: str, other: dict[str, str]
) -> None:
    pairs = [*other.items(), ("logout_token", token)]
    assert parse_logout_request("POST", FORM, urlencode(pairs).encode()) == token


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["POST", "GET", "post", ""]),
    st.lists(st.tuples(st.sampled_from(["Content-Type", "X"]), st.text(max_size=40)), max_size=3),
    st.binary(max_size=200),
)
def test_any_request_gives_a_token_or_the_request_error(
    method: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    token = _parsed(method, headers, body)
    if isinstance(token, LogoutRequestError):
        assert token.code.startswith("logout_request.")
    else:
        assert isinstance(token, str) and token


def _parsed(method: str, headers: Any, body: bytes) -> str | LogoutRequestError:
    try:
        return parse_logout_request(method, headers, body)
    except LogoutRequestError as error:
        return error


# ---- the answer -------------------------------------------------------------------------------


def test_success_is_200_no_store_and_no_body() -> None:
    result = logout_accepted(_logout(), ended=2)
    assert (result.status, result.body, result.ended) == (200, b"", 2)
    assert result.headers == {"Cache-Control": "no-store"}
    assert result.ok and result.sid == SID and result.sub == SUBJECT and result.error is None


def test_a_refusal_is_400_with_an_oauth_error_body() -> None:
    error = LogoutRequestError("the request carries no logout_token", code="x.y")
    result = logout_refused(error)
    assert result.status == 400 and not result.ok and result.error is error
    assert result.headers == {"Cache-Control": "no-store", "Content-Type": "application/json"}
    assert json.loads(result.body) == {
        "error": "invalid_request",
        "error_description": "the request carries no logout_token",
    }
    assert result.sid is None and result.sub is None and result.logout is None


@pytest.mark.parametrize(
    "error",
    [TransportError("connect to https://internal:8443 failed"), StorageError("redis down")],
)
def test_the_app_s_own_failures_are_not_described_to_the_caller(error: LogtoError) -> None:
    description = json.loads(logout_refused(error).body)["error_description"]
    assert "internal" not in description and "redis" not in description
    assert "could not be completed" in description


def test_a_description_is_bounded() -> None:
    result = logout_refused(TokenValidationError("x" * 5000))
    assert len(json.loads(result.body)["error_description"]) <= 210


def test_the_body_is_kept_out_of_repr() -> None:
    assert "invalid_request" not in repr(logout_refused(TokenValidationError("m")))


def _logout() -> Any:
    answered = _answer(form(logout_token=logout_token()))
    assert isinstance(answered, Answered)
    assert answered.result.logout is not None
    return answered.result.logout


def _answer(
    body: bytes,
    *,
    replay: ReplayCache = EMPTY_REPLAY_CACHE,
    now: float = NOW,
    keys: Any = KEY_SET,
    method: str = "POST",
) -> Answered | Any:
    return answer_logout_request(
        method,
        FORM,
        body,
        keys=keys,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        algorithms=ALL_ALGORITHMS,
        now=now,
        clock_tolerance=TOLERANCE,
        replay=replay,
    )


def test_the_whole_exchange_accepts_then_refuses_the_replay() -> None:
    body = form(logout_token=logout_token())
    first = _answer(body)
    assert first.result.status == 200 and first.result.sid == SID
    assert len(first.replay) == 1
    again = _answer(body, replay=first.replay, now=NOW + 1)
    assert again.result.status == 400
    assert again.result.error is not None and again.result.error.code == "logout_token.replayed"
    assert again.replay is first.replay
    # Another token of the same logout (another jti) is not a replay.
    other = _answer(form(logout_token=logout_token(claims={"jti": "jti-2"})), replay=first.replay)
    assert other.result.status == 200 and len(other.replay) == 2


def test_a_replay_once_its_window_is_over_is_refused_by_its_age() -> None:
    body = form(logout_token=logout_token())
    first = _answer(body)
    logout = first.result.logout
    assert logout is not None
    late = _answer(body, replay=first.replay, now=logout.until + 1)
    assert late.result.error is not None and late.result.error.code == "logout_token.too_old"


def test_a_bad_request_or_token_leaves_the_replay_cache_as_it_was() -> None:
    replay = EMPTY_REPLAY_CACHE.with_entry("k", NOW + 10, NOW)
    for body, method, code in [
        (form(logout_token=logout_token()), "GET", "logout_request.method"),
        (
            form(logout_token=logout_token(claims={"nonce": "n"})),
            "POST",
            "logout_token.nonce_present",
        ),
        (b"logout_token=not-a-jwt", "POST", "jwt.malformed"),
    ]:
        answered = _answer(body, replay=replay, method=method)
        assert answered.replay is replay
        assert answered.result.status == 400
        assert answered.result.error is not None and answered.result.error.code == code


def test_an_unknown_key_asks_for_keys() -> None:
    body = form(logout_token=logout_token(header={"kid": "new-key"}))
    assert _answer(body) is NEED_KEYS
    assert _answer(body, keys=None) is NEED_KEYS


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["POST", "GET"]))
def test_every_answer_is_200_or_400_no_store_and_never_quotes_the_token(
    body: bytes, method: str
) -> None:
    token = logout_token()
    for candidate in (body, body + b"&logout_token=" + token.encode()):
        answered = _answer(candidate, method=method)
        assert isinstance(answered, Answered)
        result: BackchannelLogoutResult = answered.result
        assert result.status in (200, 400)
        assert result.headers["Cache-Control"] == "no-store"
        assert token.encode() not in result.body
        assert JTI.encode() not in result.body
        assert token not in repr(result) and JTI not in repr(result)
        if result.status == 400:
            assert json.loads(result.body)["error"] == "invalid_request"
