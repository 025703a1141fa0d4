"""The Django sample app against the real oidc-provider, over real HTTP: served in this
process by a threaded WSGI server on the loopback port the provider registered, for plain
views on the sync client and ``async def`` views on the async client: sign-in through the
login form, a protected page, an API token of the app's session presented to ``/api/hello``
(and an ID token refused there), sign-out through the confirmation page; and back-channel
logout: a user signing out in another app of the tenant is signed out at the Django app
(oidc-provider POSTs its logout token to the app's route), and no one else. The browser is
played with plain HTTP."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import override_settings

from logto_adapters.demo import django_app
from logto_adapters.demo.settings import Settings
from logto_adapters.django import get_logto_app
from logto_adapters.web import WebRequest

from ..django_support import configure_django, live_server
from .conftest import HTTP_TIMEOUT, Clock, HttpBrowser, RealProvider, make_driver
from .tenant import ALICE, API_A, BOB, POST_LOGOUT, PUBLIC_APP, REDIRECT, WEB_APP, WEB_APP_SECRET

configure_django()


@pytest.fixture(params=["sync", "aio"])
def app_url(
    request: pytest.FixtureRequest,
    real_provider: RealProvider,
    browser_app_port: int,
    backchannel_port: int,
) -> Iterator[str]:
    """The sample app on the port the provider registered for browsers, and (the same app)
    on the port of its back-channel logout URI."""
    base = f"http://127.0.0.1:{browser_app_port}"
    env = Settings(
        endpoint=real_provider.base,
        app_id=WEB_APP,
        app_secret=WEB_APP_SECRET,
        base_url=base,
        secret_key="interop",
        resources=[API_A],
        scopes=["read"],
    )
    made: dict[str, Any] = django_app.django_settings(env, str(request.param))
    made.pop("INSTALLED_APPS")  # configured once for the process
    made["LOGTO"]["OPTIONS"] = {"timeout": (2.0, 10.0)}
    with override_settings(**made), live_server(browser_app_port), live_server(backchannel_port):
        yield base
        get_logto_app().logto.waitForRevocations(5)


def _session(cookies: dict[str, str]) -> Any:
    """The app's session of the browser holding ``cookies``, as a view of the app gets it."""
    app = get_logto_app()
    opened = app.sessions.open(WebRequest("GET", "http://127.0.0.1/", cookies=cookies))
    return app.logto.session(opened.storage)


def _session_token(cookies: dict[str, str], resource: str) -> str:
    token = _session(cookies).getAccessToken(resource)
    found = asyncio.run(token) if inspect.iscoroutine(token) else token
    assert isinstance(found, str)
    return found


def test_the_django_sample_app_signs_in_calls_a_protected_page_and_the_api_and_signs_out(
    app_url: str, real_provider: RealProvider
) -> None:
    browser = HttpBrowser()
    http = browser.http
    guarded = http.get(f"{app_url}/protected", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert guarded.status_code == 302
    assert guarded.headers["location"] == "/sign-in?next=%2Fprotected"

    trip = browser.sign_in(
        f"{app_url}/sign-in?next=/protected", *ALICE[:2], redirect_prefix=f"{app_url}/callback"
    )
    assert trip.login_form_shown
    before = http.cookies["logto_sid"]
    done = http.get(trip.callback, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert done.status_code == 302 and done.headers["location"] == "/protected"
    assert http.cookies["logto_sid"] != before  # a new session id at sign-in

    page = http.get(f"{app_url}/protected", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert page.status_code == 200, page.text[:300]
    assert page.json() == {"sub": ALICE[2], "api": {"resource": API_A, "scope": "read"}}
    home = http.get(f"{app_url}/", timeout=HTTP_TIMEOUT).json()
    assert home["sub"] == ALICE[2] and home["email"] == "alice@example.com"
    json_page = http.get(f"{app_url}/protected", headers={"Accept": "application/json"})
    assert json_page.status_code == 200

    # The app's session gets an API token (as its views do); an API client presents it.
    token = _session_token(http.cookies.get_dict(), API_A)
    hello = requests.get(
        f"{app_url}/api/hello", headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT
    )
    assert hello.status_code == 200, hello.text[:300]
    assert hello.json() == {"sub": ALICE[2]}
    bare = requests.get(f"{app_url}/api/hello", timeout=HTTP_TIMEOUT)
    assert bare.status_code == 401 and bare.headers["WWW-Authenticate"] == "Bearer"
    id_token = requests.get(
        f"{app_url}/api/hello",
        headers={"Authorization": f"Bearer {_session(http.cookies.get_dict()).getIdToken()}"},
        timeout=HTTP_TIMEOUT,
    )
    assert id_token.status_code == 401
    assert 'error="invalid_token"' in id_token.headers["WWW-Authenticate"]

    out = http.get(f"{app_url}/sign-out", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert out.status_code == 302
    end = urlsplit(out.headers["location"])
    assert parse_qs(end.query)["post_logout_redirect_uri"] == [f"{app_url}/"]
    back = browser.end_session(out.headers["location"])
    assert back.is_redirect and back.headers["location"] == f"{app_url}/"
    assert "Not authenticated" in http.get(f"{app_url}/", timeout=HTTP_TIMEOUT).text
    signed_out = http.get(f"{app_url}/protected", headers={"Accept": "application/json"})
    assert signed_out.status_code == 401
    get_logto_app().logto.waitForRevocations(5)
    assert real_provider.requests_to("token/revocation") == 1


def _sign_in(browser: HttpBrowser, app_url: str, user: tuple[str, str, str]) -> None:
    trip = browser.sign_in(
        f"{app_url}/sign-in", user[0], user[1], redirect_prefix=f"{app_url}/callback"
    )
    done = browser.http.get(trip.callback, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert done.status_code == 302, done.text[:300]


def _status(browser: HttpBrowser, url: str) -> int:
    return browser.http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT).status_code


def test_a_session_ended_at_the_provider_is_signed_out_at_the_django_app(
    app_url: str, real_provider: RealProvider, clock: Clock
) -> None:
    alice, bob = HttpBrowser(), HttpBrowser()
    _sign_in(alice, app_url, ALICE)
    _sign_in(bob, app_url, BOB)
    assert _status(alice, f"{app_url}/protected") == 200

    # Alice signs out in another app of the tenant, in the same browser.
    other = make_driver("sync", real_provider, clock, appId=PUBLIC_APP)
    trip = alice.sign_in(other.signIn(REDIRECT), ALICE[0], ALICE[1])
    assert not trip.login_form_shown  # one session at the provider
    other.handleSignInCallback(trip.callback)
    answer = alice.end_session(other.signOut(POST_LOGOUT))
    assert answer.is_redirect and answer.headers["location"].startswith(POST_LOGOUT)

    # The provider POSTed its logout token to the app and waited for the answer.
    assert real_provider.backchannel_deliveries() == {"success": 1, "error": 0}
    assert _status(alice, f"{app_url}/protected") == 302  # signed out at the app too
    assert _status(bob, f"{app_url}/protected") == 200  # and only her
