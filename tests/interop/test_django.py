"""The Django sample app against the real oidc-provider, over real HTTP: served in this
process by a threaded WSGI server on the loopback port the provider registered, for plain
views on the sync client and ``async def`` views on the async client. The browser is
played with plain HTTP (the login form, the sign-out confirmation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings

from logto_adapters.demo import django_app
from logto_adapters.demo.settings import Settings
from logto_adapters.django import get_logto_app

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


def test_the_django_sample_app_signs_in_calls_a_protected_page_and_signs_out(
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
