"""The interactive sign-in page of the test provider."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

from logto_core.http import HttpRequest
from logto_core.protocol.signin_url import SignInOptions, build_sign_in
from logto_core.runtime import Runtime
from logto_core.session import SessionState
from logto_core.testing import TestProvider
from tests.harness import REDIRECT, FakeClock, make_config, make_provider


def _auth_url(provider: TestProvider, clock: FakeClock) -> str:
    url, _ = build_sign_in(
        make_config(),
        provider.authorization_endpoint,
        SignInOptions(redirect_uri=REDIRECT),
        Runtime(clock=clock),
    )
    return url


def _submit(provider: TestProvider, page: bytes, **fields: str) -> tuple[int, str, str]:
    html = page.decode()
    hidden = unescape(re.search(r'name="request" value="([^"]*)"', html).group(1))  # type: ignore[union-attr]
    action = unescape(re.search(r'action="([^"]*)"', html).group(1))  # type: ignore[union-attr]
    body = urlencode({"request": hidden, **fields}).encode()
    response = provider.handle(
        HttpRequest("POST", action, (("content-type", "application/x-www-form-urlencoded"),), body)
    )
    return response.status, response.header("location") or "", response.body.decode()


def test_page_then_form_approves_as_the_named_user() -> None:
    clock = FakeClock()
    provider = make_provider(clock)
    page = provider.handle(HttpRequest.get(_auth_url(provider, clock)))
    assert page.status == 200 and b'id="username"' in page.body and b"alice" in page.body
    status, location, _ = _submit(provider, page.body, username="alice", action="approve")
    assert status == 303
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT) and "code" in query and query["iss"] == [provider.issuer]


def test_unknown_user_shows_the_form_again_and_cancel_denies() -> None:
    clock = FakeClock()
    provider = make_provider(clock)
    page = provider.handle(HttpRequest.get(_auth_url(provider, clock)))
    status, _, body = _submit(provider, page.body, username="nobody", action="approve")
    assert status == 200 and 'id="error"' in body
    status, location, _ = _submit(provider, page.body, action="deny")
    assert status == 303 and parse_qs(urlsplit(location).query)["error"] == ["access_denied"]


def test_a_tampered_request_is_refused_without_redirect() -> None:
    clock = FakeClock()
    provider = make_provider(clock)
    body = urlencode(
        {"request": "client_id=unknown&redirect_uri=https://evil/", "username": "alice"}
    )
    response = provider.handle(
        HttpRequest("POST", provider.authorization_endpoint + "/interaction", (), body.encode())
    )
    assert response.status == 400 and response.header("location") is None


def test_flow_through_the_page_signs_in() -> None:
    clock = FakeClock()
    provider = make_provider(clock)
    from logto_core.driver import run_sync
    from tests.core_facade import CoreFacade

    core = CoreFacade(make_config(), runtime=Runtime(clock=clock))
    outcome = run_sync(core.sign_in(SessionState(), REDIRECT), provider.handle)
    page = provider.handle(HttpRequest.get(outcome.unwrap()))
    _, location, _ = _submit(provider, page.body, username="bob", action="approve")
    done = run_sync(core.handle_sign_in_callback(outcome.session, location), provider.handle)
    assert done.unwrap().sub == "bob"


def test_end_session_without_state_redirects_to_the_exact_uri() -> None:
    from logto_core.testing.authorize import redirect_with

    assert redirect_with("http://127.0.0.1:5000/", {"state": None}) == "http://127.0.0.1:5000/"
    assert redirect_with("http://h/?a=1", {"state": "s"}) == "http://h/?a=1&state=s"
