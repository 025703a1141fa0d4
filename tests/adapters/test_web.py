"""The framework-free web pieces: the app's origin (forwarded headers only when trusted),
the safe "return to" across the sign-in, pages versus APIs, and server-side sessions (live
reads, ids made at the first write and replaced at sign-in, bounded, idle expiry)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logto_adapters import sync
from logto_adapters.cookie_session import CookieCipher
from logto_adapters.testing import ServedProvider
from logto_adapters.web import (
    RETURN_TO_KEY,
    CookieSessions,
    ServerSessions,
    WebRequest,
    external_origin,
    remember_return_to,
    take_return_to,
    wants_json,
)
from logto_core.errors import LogtoUsageError
from logto_core.runtime import Runtime
from logto_core.storage import MemoryStorage

from .conftest import API, REDIRECT, USER, Clock, make_config

ORIGIN = re.compile(r"https?://[a-z0-9.\-:\[\]]+")


def request(url: str = "http://app.internal:8000/x", **headers: str) -> WebRequest:
    return WebRequest("GET", url, {k.lower().replace("_", "-"): v for k, v in headers.items()})


def test_the_configured_base_url_wins() -> None:
    forged = request(X_Forwarded_Host="evil.example", X_Forwarded_Proto="http")
    assert external_origin(forged, base_url="https://App.Example.com/base") == (
        "https://app.example.com"
    )
    with pytest.raises(LogtoUsageError) as caught:
        external_origin(forged, base_url="ftp://app.example.com")
    assert caught.value.code == "usage.base_url"


def test_forwarded_headers_only_when_trusted() -> None:
    behind = request(X_Forwarded_Host="app.example.com, proxy.internal", X_Forwarded_Proto="https")
    assert external_origin(behind) == "http://app.internal:8000"  # anyone can send them
    assert external_origin(behind, trust_forwarded=True) == "https://app.example.com"
    for host in ("evil.example/path", "user@evil.example", "a b", "évil.example"):
        with pytest.raises(LogtoUsageError) as caught:
            external_origin(request(X_Forwarded_Host=host), trust_forwarded=True)
        assert caught.value.code == "usage.forwarded"


@given(st.text(max_size=60), st.text(max_size=20))
def test_any_forwarded_value_gives_an_origin_or_a_usage_error(host: str, proto: str) -> None:
    forged = WebRequest(
        "GET", "http://app/x", {"x-forwarded-host": host, "x-forwarded-proto": proto}
    )
    try:
        origin = external_origin(forged, trust_forwarded=True)
    except LogtoUsageError:
        return
    assert ORIGIN.fullmatch(origin)


def test_the_return_to_survives_the_round_trip_when_safe() -> None:
    storage = MemoryStorage()
    remember_return_to(storage, "/orders?id=3#top")
    assert take_return_to(storage) == "/orders?id=3#top"
    assert take_return_to(storage) == "/"  # taken once
    for unsafe in ("https://evil.example", "//evil.example", "/\\evil.example", "/" + "a" * 3000):
        remember_return_to(storage, "/kept")
        remember_return_to(storage, unsafe)  # replaces an earlier one by nothing
        assert storage.get(RETURN_TO_KEY) is None
        assert take_return_to(storage, "/home") == "/home"


@given(st.text(max_size=80))
def test_what_is_taken_is_always_a_path_on_this_origin(target: str) -> None:
    storage = MemoryStorage()
    storage.set(RETURN_TO_KEY, target)  # even a value someone else wrote
    taken = take_return_to(storage)
    assert taken.startswith("/") and not taken.startswith(("//", "/\\")) and "\\" not in taken


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Accept": "application/json"}, True),
        ({"Accept": "text/html,application/xhtml+xml,application/json;q=0.9"}, False),
        ({"X_Requested_With": "XMLHttpRequest"}, True),
        ({"Authorization": "Bearer abc"}, True),
        ({}, False),
    ],
)
def test_pages_or_apis(headers: dict[str, str], expected: bool) -> None:
    assert wants_json(request(**headers)) is expected


def browse(
    backend: Any, jar: dict[str, str], call: Any, *, rotate: bool = False
) -> tuple[Any, dict[str, str]]:
    opened = backend.open(WebRequest("GET", "http://app/", {}, dict(jar)))
    result = call(opened.storage)
    if rotate:
        opened.rotate()
    kept = dict(jar)
    for cookie in opened.set_cookies():
        if cookie.max_age == 0:
            kept.pop(cookie.name, None)
        else:
            kept[cookie.name] = cookie.value
    return result, kept


@pytest.mark.parametrize("kind", ["server", "cookie"])
def test_a_sign_in_across_requests(kind: str, served: ServedProvider, clock: Clock) -> None:
    from cryptography.fernet import Fernet

    backend: Any = (
        ServerSessions(secure=False)
        if kind == "server"
        else CookieSessions(CookieCipher(Fernet.generate_key(), secure=False))
    )
    logto = sync.Logto(make_config(served.url), runtime=Runtime(clock=clock))
    url, jar = browse(backend, {}, lambda s: logto.session(s).signIn(REDIRECT))
    callback = served.provider.approve(url, USER)
    before = dict(jar)
    _, jar = browse(
        backend, jar, lambda s: logto.session(s).handleSignInCallback(callback), rotate=True
    )
    if kind == "server":
        assert jar["logto_sid"] != before["logto_sid"]  # a new id at sign-in
        assert (
            backend.open(WebRequest("GET", "http://app/", {}, before)).storage.get("logtoSession")
            is None
        )  # the old id no longer opens the session
    token, jar = browse(backend, jar, lambda s: logto.session(s).getAccessToken(API))
    assert token is not None
    claims, _ = browse(backend, jar, lambda s: logto.session(s).getIdTokenClaims())
    assert claims.sub == USER
    logto.close()


def test_server_sessions_read_live_and_ignore_foreign_ids() -> None:
    backend = ServerSessions()
    first = backend.open(WebRequest("GET", "http://app/"))
    first.storage.set("k", "v")
    (cookie,) = first.set_cookies()
    assert cookie.name == "logto_sid" and len(cookie.value) >= 43 and "HttpOnly" in cookie.header()
    jar = {"logto_sid": cookie.value}
    one = backend.open(WebRequest("GET", "http://app/", {}, jar))
    two = backend.open(WebRequest("GET", "http://app/", {}, jar))
    one.storage.set("k", "w")
    assert two.storage.get("k") == "w"  # a concurrent request sees it at once
    assert one.set_cookies() == []  # the id did not change
    for forged in ("../../etc", "a" * 100, "id with spaces"):
        assert (
            backend.open(WebRequest("GET", "/", {}, {"logto_sid": forged})).storage.get("k") is None
        )


def test_back_channel_logout_finds_server_sessions(served: ServedProvider, clock: Clock) -> None:
    """ServerSessions keep their sessions in a SessionRegistry, indexed by the ID token's
    sid and sub: a logout token for the user signs that browser's session out."""
    backend = ServerSessions(secure=False)
    logto = sync.Logto(make_config(served.url), runtime=Runtime(clock=clock))
    url, jar = browse(backend, {}, lambda s: logto.session(s).signIn(REDIRECT))
    callback = served.provider.approve(url, USER)
    _, jar = browse(
        backend, jar, lambda s: logto.session(s).handleSignInCallback(callback), rotate=True
    )
    assert backend.registry.matching(iss=served.provider.issuer, sub=USER)
    assert backend.registry.end(iss=served.provider.issuer, sub=USER) == 1
    signed_in, _ = browse(backend, jar, lambda s: logto.session(s).isAuthenticated())
    assert signed_in is False
    logto.close()


def test_server_sessions_check_their_cookie_settings() -> None:
    with pytest.raises(LogtoUsageError):
        ServerSessions(same_site="None", secure=False)


def test_a_request_shows_no_credential() -> None:
    shown = repr(
        WebRequest("GET", "http://app/", {"authorization": "Bearer t0ken"}, {"logto_sid": "s1d"})
    )
    assert "t0ken" not in shown and "s1d" not in shown and "http://app/" in shown
