"""The Django sample app against the real oidc-provider, over real HTTP: served in this
process by a threaded WSGI server on the loopback port the provider registered, for plain
views on the sync client and ``async def`` views on the async client: sign-in through the
login form, a protected page, an API token of the app's session presented to ``/api/hello``
(and an ID token refused there), sign-out through the confirmation page. The browser is
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
from .conftest import HTTP_TIMEOUT, HttpBrowser, RealProvider
from .tenant import ALICE, API_A, WEB_APP, WEB_APP_SECRET

configure_django()


@pytest.fixture(params=["sync", "aio"])
def app_url(
    request: pytest.FixtureRequest, real_provider: RealProvider, browser_app_port: int
) -> Iterator[str]:
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
    with override_settings(**made), live_server(browser_app_port):
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
