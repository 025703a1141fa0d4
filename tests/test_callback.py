"""Validation of the authorization response (the callback URL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import CallbackError, LogtoError, OAuthError
from logto_core.protocol.callback import MAX_QUERY_FIELDS, CallbackResult, parse_callback
from logto_core.session import PENDING_SIGN_IN_TTL, PendingSignIn

ISSUER = "https://tenant.logto.app/oidc"
REDIRECT = "https://app.example.com/callback"
STATE = "state-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
OTHER_STATE = "state-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
CODE = "code-SECRET-0123456789"
CREATED = 1_700_000_000.0
NOW = CREATED + 10


def attempt(
    state: str = STATE, redirect_uri: str = REDIRECT, created_at: float = CREATED
) -> PendingSignIn:
    return PendingSignIn(
        state=state,
        nonce="nonce-" + state,
        code_verifier="v" * 43,
        redirect_uri=redirect_uri,
        created_at=created_at,
    )


def url(base: str = REDIRECT, **params: str) -> str:
    return f"{base}?{urlencode(params)}" if params else base


def success_url(**extra: str) -> str:
    return url(code=CODE, state=STATE, iss=ISSUER, **extra)


def parse(
    callback_url: Any,
    pending: Sequence[PendingSignIn] | None = None,
    *,
    iss_required: bool = True,
    now: float = NOW,
) -> CallbackResult:
    return parse_callback(
        callback_url,
        pending=[attempt()] if pending is None else pending,
        issuer=ISSUER,
        iss_required=iss_required,
        now=now,
    )


def assert_no_secret(error: BaseException) -> None:
    for secret in (CODE, STATE, OTHER_STATE):
        assert secret not in str(error)
        assert secret not in repr(error)


def raised(callback_url: Any, **kwargs: Any) -> CallbackError:
    with pytest.raises(CallbackError) as info:
        parse(callback_url, **kwargs)
    assert_no_secret(info.value)
    return info.value


def failed(result: CallbackResult) -> LogtoError:
    assert result.error is not None
    assert result.code is None
    assert not result.ok
    assert_no_secret(result.error)
    return result.error


# ---- success ------------------------------------------------------------------------------------


def test_success() -> None:
    mine = attempt()
    result = parse(success_url(), [mine])
    assert result == CallbackResult(attempt=mine, code=CODE, error=None)
    assert result.ok
    assert CODE not in repr(result)
    assert STATE not in repr(result)


def test_second_tab_matches_its_own_attempt() -> None:
    first, second = attempt(STATE), attempt(OTHER_STATE, "https://app.example.com/other")
    result = parse(
        url("https://app.example.com/other", code=CODE, state=OTHER_STATE, iss=ISSUER),
        [first, second],
    )
    assert result.attempt is second
    assert result.ok


def test_single_attempt_instead_of_sequence_is_accepted() -> None:
    result = parse(success_url(), attempt())  # type: ignore[arg-type]
    assert result.ok


def test_iss_optional_when_not_required() -> None:
    result = parse(url(code=CODE, state=STATE), iss_required=False)
    assert result.ok
    assert result.code == CODE


@pytest.mark.parametrize(
    "base",
    [
        "https://APP.example.com/callback",
        "HTTPS://app.example.com/callback",
        "https://app.example.com:443/callback",
        "https://app.example.com/callback?tab=1&tab=2",
    ],
)
def test_equivalent_redirect_forms_accepted(base: str) -> None:
    sep = "&" if "?" in base else "?"
    callback = f"{base}{sep}{urlencode({'code': CODE, 'state': STATE, 'iss': ISSUER})}"
    assert parse(callback).ok


def test_unrelated_fragment_is_ignored() -> None:
    assert parse(success_url() + "#section").ok


def test_default_path_matches_root() -> None:
    pending = [attempt(redirect_uri="https://app.example.com")]
    assert parse(url("https://app.example.com/", code=CODE, state=STATE, iss=ISSUER), pending).ok


# ---- before the state matched: raised ---------------------------------------------------------


@pytest.mark.parametrize(
    "callback_url",
    [
        None,
        b"https://app.example.com/callback?state=x",
        42,
        "",
        "not a url",
        "/callback?code=x&state=y",
        "callback?state=y",
        "https://[::1/callback?state=y",
        "https://app.example.com:99999/callback?state=y",
        "https:///callback?state=y",
    ],
)
def test_malformed_url(callback_url: Any) -> None:
    assert raised(callback_url).code == "callback.malformed"


def test_too_many_fields_is_malformed() -> None:
    query = "&".join(f"f{i}=1" for i in range(MAX_QUERY_FIELDS + 1))
    assert raised(f"{REDIRECT}?{query}&state={STATE}").code == "callback.malformed"


@pytest.mark.parametrize(
    "callback_url",
    [
        f"{REDIRECT}#code={CODE}&state={STATE}&iss={ISSUER}",
        f"{REDIRECT}#error=access_denied&state={STATE}",
        f"{REDIRECT}?tab=1#state={STATE}",
    ],
)
def test_fragment_response_refused(callback_url: str) -> None:
    error = raised(callback_url)
    assert error.code == "callback.fragment_response"
    assert "fragment" in str(error)


@pytest.mark.parametrize("name", ["state", "code", "iss", "error", "error_description"])
def test_duplicate_response_parameter(name: str) -> None:
    callback = success_url(error="x", error_description="y") + f"&{name}=again"
    error = raised(callback)
    assert error.code == "callback.duplicate_parameter"
    assert repr(name) in str(error)


@pytest.mark.parametrize(
    "callback_url",
    [
        REDIRECT,
        url(code=CODE, iss=ISSUER),
        url(code=CODE, state="", iss=ISSUER),
        f"{REDIRECT}#section",
        url(error="access_denied"),
    ],
)
def test_state_missing(callback_url: str) -> None:
    assert raised(callback_url).code == "callback.state_missing"


@pytest.mark.parametrize(
    ("callback_url", "pending"),
    [
        (url(code=CODE, state=OTHER_STATE, iss=ISSUER), [attempt()]),
        (url(code=CODE, state=STATE.upper(), iss=ISSUER), [attempt()]),
        (url(code=CODE, state=STATE + "x", iss=ISSUER), [attempt()]),
        (url(code=CODE, state=STATE[:-1], iss=ISSUER), [attempt()]),
        (success_url(), []),
        (f"{REDIRECT}?code=x&state=é\ud800&iss={ISSUER}", [attempt()]),
    ],
)
def test_state_unknown(callback_url: str, pending: list[PendingSignIn]) -> None:
    assert raised(callback_url, pending=pending).code == "callback.state_unknown"


def test_state_checked_before_error_is_reported() -> None:
    error = raised(url(error="access_denied", state=OTHER_STATE, iss=ISSUER))
    assert error.code == "callback.state_unknown"


def test_non_ascii_pending_state_compares() -> None:
    pending = [attempt(state="ünïcode-state")]
    result = parse(url(code=CODE, state="ünïcode-state", iss=ISSUER), pending)
    assert result.ok


# ---- after the state matched: returned ---------------------------------------------------------


@pytest.mark.parametrize("age", [PENDING_SIGN_IN_TTL, PENDING_SIGN_IN_TTL + 1, 10 * 86400.0])
def test_expired_attempt(age: float) -> None:
    result = parse(success_url(), now=CREATED + age)
    assert failed(result).code == "callback.expired"
    assert result.attempt.state == STATE


def test_not_yet_expired() -> None:
    assert parse(success_url(), now=CREATED + PENDING_SIGN_IN_TTL - 1).ok


def test_corrupt_creation_time_counts_as_expired() -> None:
    result = parse(success_url(), [attempt(created_at=float("nan"))])
    assert failed(result).code == "callback.expired"


def test_expiry_checked_before_redirect_and_error() -> None:
    callback = url("https://evil.example/cb", error="access_denied", state=STATE, iss="x")
    assert failed(parse(callback, now=NOW + PENDING_SIGN_IN_TTL)).code == "callback.expired"


@pytest.mark.parametrize(
    "base",
    [
        "http://app.example.com/callback",
        "https://evil.example.com/callback",
        "https://app.example.com:8443/callback",
        "https://app.example.com/callback/",
        "https://app.example.com/Callback",
        "https://app.example.com/other",
        "https://app.example.com.evil.com/callback",
    ],
)
def test_redirect_mismatch(base: str) -> None:
    error = failed(parse(url(base, code=CODE, state=STATE, iss=ISSUER)))
    assert error.code == "callback.redirect_mismatch"
    assert REDIRECT in str(error)


def test_malformed_stored_redirect_uri_is_mismatch() -> None:
    result = parse(success_url(), [attempt(redirect_uri="not a url")])
    assert failed(result).code == "callback.redirect_mismatch"


def test_redirect_checked_before_iss() -> None:
    callback = url("https://evil.example.com/callback", code=CODE, state=STATE, iss="x")
    assert failed(parse(callback)).code == "callback.redirect_mismatch"


@pytest.mark.parametrize(
    "iss", ["https://evil.example/oidc", "", ISSUER + "/", "https://tenant.logto.app"]
)
def test_iss_mismatch(iss: str) -> None:
    error = failed(parse(url(code=CODE, state=STATE, iss=iss), iss_required=False))
    assert error.code == "callback.iss_mismatch"


def test_iss_missing_when_required() -> None:
    error = failed(parse(url(code=CODE, state=STATE)))
    assert error.code == "callback.iss_missing"


def test_iss_checked_before_error() -> None:
    callback = url(error="access_denied", state=STATE, iss="https://evil.example/oidc")
    assert failed(parse(callback)).code == "callback.iss_mismatch"


def test_oauth_error_with_all_fields() -> None:
    callback = url(
        error="access_denied",
        error_description="The user said no",
        error_uri="https://docs.example/err",
        state=STATE,
        iss=ISSUER,
    )
    error = failed(parse(callback))
    assert isinstance(error, OAuthError)
    assert error.code == "oauth.access_denied"
    assert error.error == "access_denied"
    assert error.error_description == "The user said no"
    assert error.error_uri == "https://docs.example/err"
    assert error.status is None


def test_oauth_error_wins_over_code() -> None:
    callback = url(error="login_required", error_description="", code=CODE, state=STATE, iss=ISSUER)
    error = failed(parse(callback))
    assert isinstance(error, OAuthError)
    assert error.error == "login_required"
    assert error.error_description is None
    assert error.error_uri is None


def test_empty_error_parameter() -> None:
    error = failed(parse(url(error="", code=CODE, state=STATE, iss=ISSUER)))
    assert isinstance(error, CallbackError)
    assert error.code == "callback.malformed"


@pytest.mark.parametrize(
    "callback_url", [url(state=STATE, iss=ISSUER), url(code="", state=STATE, iss=ISSUER)]
)
def test_code_missing(callback_url: str) -> None:
    assert failed(parse(callback_url)).code == "callback.code_missing"


# ---- properties -------------------------------------------------------------------------------


def outcome(
    callback_url: Any, pending: list[PendingSignIn], iss_required: bool
) -> CallbackResult | LogtoError:
    try:
        return parse(callback_url, pending, iss_required=iss_required)
    except LogtoError as error:
        return error


def assert_no_unechoed_secret(callback_url: Any, error: LogtoError) -> None:
    """No code or state in a message, unless the URL put it in a parameter that messages
    quote on purpose (a foreign ``iss``, the provider's ``error`` and its description)."""
    echoed = ""
    if isinstance(callback_url, str):
        try:
            query = urlsplit(callback_url).query
        except ValueError:  # malformed: the message is fixed text anyway
            query = ""
        quoted = ("iss", "error", "error_description")
        echoed = " ".join(v for k, v in parse_qsl(query) if k in quoted)
    for secret in (CODE, STATE, OTHER_STATE):
        if secret not in echoed:
            assert secret not in str(error)
            assert secret not in repr(error)


def check_outcome(callback_url: Any, pending: list[PendingSignIn], iss_required: bool) -> None:
    """parse_callback returns a result or raises a LogtoError, nothing else."""
    result = outcome(callback_url, pending, iss_required)
    error = result if isinstance(result, LogtoError) else result.error
    if error is not None:
        assert_no_unechoed_secret(callback_url, error)
    if isinstance(result, LogtoError):
        assert isinstance(result, CallbackError)
        assert result.code.startswith("callback.")
        return
    assert isinstance(result, CallbackResult)
    assert result.attempt in pending
    if result.error is None:
        assert result.code
        assert result.ok
    else:
        assert result.code is None
        assert isinstance(result.error, (CallbackError, OAuthError))


@settings(max_examples=200)
@given(text=st.text(max_size=200), iss_required=st.booleans())
def test_property_any_text(text: str, iss_required: bool) -> None:
    check_outcome(text, [attempt()], iss_required)


@settings(max_examples=200)
@given(text=st.text(max_size=100), iss_required=st.booleans())
def test_property_any_text_after_redirect_uri(text: str, iss_required: bool) -> None:
    check_outcome(REDIRECT + text, [attempt()], iss_required)


names = st.sampled_from(
    ["state", "code", "iss", "error", "error_description", "error_uri", "tab", "State"]
)
values = st.one_of(
    st.sampled_from([STATE, OTHER_STATE, CODE, ISSUER, "", "access_denied"]), st.text(max_size=15)
)
bases = st.sampled_from(
    [
        REDIRECT,
        "https://app.example.com:443/callback",
        "http://app.example.com/callback",
        "https://evil.example/callback",
        "/callback",
        "ftp://app.example.com/callback",
    ]
)


def mostly(good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` about four times in five (one_of picks its branches evenly)."""
    return st.one_of(good, good, good, good, other)


def mostly_value(good: str) -> st.SearchStrategy[str | None]:
    return mostly(st.just(good), st.one_of(st.none(), values))


@st.composite
def structured_urls(draw: st.DrawFn) -> str:
    """Mostly valid success responses with random defects (a parameter missing or changed,
    an error, repeats, a response in the fragment, a foreign base), so that every branch,
    success included, is reached."""
    base: str = draw(mostly(st.just(REDIRECT), bases))
    fields: dict[str, str | None] = {
        "state": draw(mostly_value(STATE)),
        "code": draw(mostly_value(CODE)),
        "iss": draw(mostly_value(ISSUER)),
        "error": draw(mostly(st.none(), values)),
        "error_description": draw(st.one_of(st.none(), values)),
        "tab": draw(st.one_of(st.none(), values)),
    }
    pairs: list[tuple[str, str]] = [
        (name, value) for name, value in fields.items() if value is not None
    ]
    pairs += draw(mostly(st.just([]), st.lists(st.tuples(names, values), max_size=2)))
    pairs = draw(st.permutations(pairs))
    query = urlencode(pairs)
    fragment = urlencode(draw(mostly(st.just([]), st.lists(st.tuples(names, values), max_size=3))))
    return base + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")


@settings(max_examples=200)
@given(
    callback_url=structured_urls(),
    iss_required=st.booleans(),
    other_tab=st.booleans(),
)
def test_property_structured_urls(callback_url: str, iss_required: bool, other_tab: bool) -> None:
    pending = [attempt()]
    if other_tab:
        pending.append(attempt(OTHER_STATE))
    check_outcome(callback_url, pending, iss_required)


@settings(max_examples=200)
@given(callback_url=structured_urls(), iss_required=st.booleans())
def test_property_success_only_when_every_check_passes(
    callback_url: str, iss_required: bool
) -> None:
    result = outcome(callback_url, [attempt()], iss_required)
    if isinstance(result, CallbackResult) and result.ok:
        query = callback_url.split("#")[0]
        assert query.startswith((REDIRECT + "?", "https://app.example.com:443/callback?"))
        assert f"state={STATE}" in query
        assert "&error=" not in query and "?error=" not in query
        encoded_iss = urlencode({"iss": ISSUER})
        assert encoded_iss in query or (not iss_required and "iss=" not in query)
