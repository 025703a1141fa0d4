"""The Django integration with the test provider, through Django's test clients (``Client``
for plain views on the sync client, ``AsyncClient`` for ``async def`` views on the async
client): the sample app's sign-in, protected page, API token and sign-out; the guard
(redirect or 401); the return-to; forwarded headers; the session id replaced at sign-in;
the cookie backend's size limits; refused callbacks; /api/hello's answers; back-channel
logout; settings and checks."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from asgiref.sync import iscoroutinefunction
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from logto_adapters.cookie_session import COOKIE_LIMIT, CookieCipher
from logto_adapters.demo import django_app
from logto_adapters.demo.settings import Settings
from logto_adapters.django import (
    LogtoMiddleware,
    LogtoSettings,
    get_logto_app,
    logto_required,
    request_state,
)
from logto_adapters.django.apps import check_logto
from logto_adapters.session_registry import SessionRegistry
from logto_adapters.testing import ServedProvider
from logto_adapters.web import CookieSessions, ServerSessions
from logto_core.runtime import Runtime

from ..django_support import TEST_ORIGIN, Browser, configure_django
from .conftest import API, APP_SECRET, USER, Clock

configure_django()

DJANGO_APP = "django-app"
CALLBACK = f"{TEST_ORIGIN}/callback"
APIS = [API, *(f"https://api{i}.example.com" for i in range(2, 9))]


@pytest.fixture(params=["sync", "aio"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def provider(served: ServedProvider) -> ServedProvider:
    served.provider.add_client(
        DJANGO_APP,
        secret=APP_SECRET,
        redirect_uris=[CALLBACK],
        post_logout_redirect_uris=[f"{TEST_ORIGIN}/"],
        kind="traditional",
    )
    for api in APIS[1:]:
        served.provider.add_resource(api, ["read"])
        served.provider.grant_permissions(USER, api, ["read"])
    return served


def sample_settings(
    served: ServedProvider, clock: Clock, flavour: str, **logto: Any
) -> dict[str, Any]:
    """The sample app's Django settings (``django_app.django_settings``) for the test
    provider and the test client's host, with the tests' clock and ``logto`` changes."""
    env = Settings(
        endpoint=served.url,
        app_id=DJANGO_APP,
        app_secret=APP_SECRET,
        base_url=TEST_ORIGIN,
        secret_key="test",
        resources=[API],
        scopes=["read"],
    )
    made = django_app.django_settings(env, flavour)
    made["LOGTO"].update(OPTIONS={"runtime": Runtime(clock=clock), "timeout": (2.0, 5.0)})
    made["LOGTO"].update(logto)
    made["ALLOWED_HOSTS"] = ["testserver", "127.0.0.1"]
    made.pop("INSTALLED_APPS")  # configured once, see django_support
    return made


@pytest.fixture
def site(provider: ServedProvider, clock: Clock, flavour: str) -> Iterator[dict[str, Any]]:
    """The sample app on the test provider; yields its ``LOGTO`` for tests to vary."""
    made = sample_settings(provider, clock, flavour)
    with override_settings(**made):
        yield made["LOGTO"]


def vary(**logto: Any) -> Any:
    """``override_settings`` of some ``LOGTO`` keys, inside the ``site`` fixture."""
    from django.conf import settings

    return override_settings(LOGTO={**settings.LOGTO, **logto})


def auth_params(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 302, response.content[:300]
    return parse_qs(urlsplit(response["Location"]).query)


def sign_in(browser: Browser, served: ServedProvider, next_path: str | None = None) -> Any:
    """Sign in through the app's routes; the callback's response."""
    start = browser.get("/sign-in" + (f"?next={next_path}" if next_path is not None else ""))
    assert start.status_code == 302
    callback = served.provider.approve(start["Location"], USER)
    assert callback.startswith(CALLBACK + "?")
    return browser.get(callback.removeprefix(TEST_ORIGIN))


# ---- the sample app, end to end -------------------------------------------------------


def test_the_sample_app_signs_in_shows_a_protected_page_with_an_api_token_and_signs_out(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    browser = Browser(flavour)
    home = browser.get("/")
    assert home.status_code == 200 and b"Not authenticated" in home.content
    assert home["Vary"] == "Cookie"

    guarded = browser.get("/protected")
    assert guarded.status_code == 302 and guarded["Location"] == "/sign-in?next=%2Fprotected"

    start = browser.get("/sign-in?next=/protected")
    params = auth_params(start)
    assert params["redirect_uri"] == [CALLBACK] and params["code_challenge_method"] == ["S256"]
    assert params["resource"] == [API]
    before = browser.cookies["logto_sid"]
    cookie = start.cookies["logto_sid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]

    done = browser.get(provider.provider.approve(start["Location"], USER).removeprefix(TEST_ORIGIN))
    assert done.status_code == 302 and done["Location"] == "/protected"
    after = browser.cookies["logto_sid"]
    assert after != before  # replaced at sign-in

    page = browser.get("/protected")
    assert page.status_code == 200, page.content[:300]
    assert page.json() == {"sub": USER, "api": {"resource": API, "scope": "read"}}
    assert browser.get("/").json()["sub"] == USER

    out = browser.get("/sign-out")
    assert out.status_code == 302
    end = urlsplit(out["Location"])
    assert f"{end.scheme}://{end.netloc}{end.path}" == f"{provider.url}/oidc/session/end"
    assert parse_qs(end.query)["post_logout_redirect_uri"] == [f"{TEST_ORIGIN}/"]
    assert b"Not authenticated" in browser.get("/").content
    get_logto_app().logto.waitForRevocations(5)
    assert any(entry.endpoint == "revocation" for entry in provider.provider.log)


def test_the_guard_redirects_pages_and_answers_401_to_scripts_and_api_clients(
    site: dict[str, Any], flavour: str
) -> None:
    browser = Browser(flavour)
    page = browser.get("/protected?tab=2")
    assert page.status_code == 302 and page["Location"] == "/sign-in?next=%2Fprotected%3Ftab%3D2"
    for headers in (
        {"Accept": "application/json"},
        {"X-Requested-With": "XMLHttpRequest"},
        {"Authorization": "Bearer abc"},
    ):
        answer = browser.get("/protected", **headers)
        assert answer.status_code == 401, headers
        assert answer.json()["error"] == "unauthenticated"
    html_too = browser.get("/protected", Accept="text/html,application/json")
    assert html_too.status_code == 302


def test_the_guard_sends_to_the_configured_sign_in_url(site: dict[str, Any], flavour: str) -> None:
    with vary(SIGN_IN_URL="/login?from=guard"):
        page = Browser(flavour).get("/protected")
    assert page["Location"] == "/login?from=guard&next=%2Fprotected"


def test_the_guard_keeps_the_view_sync_or_async() -> None:
    def plain(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    async def coroutine(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert not iscoroutinefunction(logto_required(plain))
    assert iscoroutinefunction(logto_required(coroutine))
    assert logto_required(plain).__name__ == "plain"


# ---- return-to, forwarded headers, session ids -------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/protected?tab=2", "/protected?tab=2"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        (None, "/"),
    ],
)
def test_only_a_relative_path_is_returned_to_after_sign_in(
    site: dict[str, Any], provider: ServedProvider, flavour: str, target: str | None, expected: str
) -> None:
    browser = Browser(flavour)
    done = sign_in(browser, provider, quote(target, safe="") if target is not None else None)
    assert done.status_code == 302 and done["Location"] == expected


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


def test_forwarded_headers_are_ignored_unless_trusted(site: dict[str, Any], flavour: str) -> None:
    with vary(BASE_URL=None):
        ignored = auth_params(Browser(flavour).get("/sign-in", **FORWARDED))
    assert ignored["redirect_uri"] == [CALLBACK]
    with vary(BASE_URL=None, TRUST_FORWARDED=True):
        trusted = auth_params(Browser(flavour).get("/sign-in", **FORWARDED))
    assert trusted["redirect_uri"] == ["https://evil.example/callback"]
    with vary(BASE_URL="https://app.example.com", TRUST_FORWARDED=True):
        configured = auth_params(Browser(flavour).get("/sign-in", **FORWARDED))
    assert configured["redirect_uri"] == ["https://app.example.com/callback"]


def test_a_planted_session_id_never_becomes_a_signed_in_one(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    registry = SessionRegistry()
    with vary(SESSIONS=ServerSessions(registry, secure=False)):
        attacker = Browser(flavour)
        attacker.get("/sign-in")  # a real session id of the attacker's own...
        planted = attacker.cookies["logto_sid"]
        victim = Browser(flavour)
        victim.client.cookies["logto_sid"] = planted  # ...set in the victim's browser
        start = victim.get("/sign-in")
        assert "logto_sid" not in start.cookies  # the sign-in starts in the planted session
        done = victim.get(
            provider.provider.approve(start["Location"], USER).removeprefix(TEST_ORIGIN)
        )
        assert done.status_code == 302
        fresh = victim.cookies["logto_sid"]
        assert fresh != planted  # signed in under a new id only the victim holds
        assert victim.get("/protected").status_code == 200
        assert attacker.get("/protected").status_code == 302  # the planted id is worth nothing
        assert registry.get(planted) is None


def test_an_unknown_session_id_is_replaced_at_the_first_write(
    site: dict[str, Any], flavour: str
) -> None:
    browser = Browser(flavour)
    browser.client.cookies["logto_sid"] = "made-up-by-the-browser"
    start = browser.get("/sign-in")
    assert start.cookies["logto_sid"].value != "made-up-by-the-browser"


# ---- refused callbacks --------------------------------------------------------------------


def test_a_refused_callback_is_a_400_page_naming_the_code_only(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    browser = Browser(flavour)
    browser.get("/sign-in")
    forged = browser.get("/callback?code=secret-code-value&state=unknown-state&iss=x")
    assert forged.status_code == 400
    text = forged.content.decode()
    assert re.search(r"\(callback\.[a-z_]+\)", text), text
    assert "secret-code-value" not in text and "unknown-state" not in text

    start = browser.get("/sign-in")
    denied = browser.get(provider.provider.deny(start["Location"]).removeprefix(TEST_ORIGIN))
    assert denied.status_code == 400 and b"access_denied" in denied.content
    assert b"Not authenticated" in browser.get("/").content


# ---- the cookie backend ------------------------------------------------------------------


def _tokens_view(flavour: str) -> Any:
    """A view getting a token for every API of the session (test-only route)."""
    if flavour == "aio":

        async def tokens_async(request: Any) -> HttpResponse:
            for api in APIS:
                assert await request.logto.getAccessToken(api)
            return HttpResponse("ok")

        return tokens_async

    def tokens(request: Any) -> HttpResponse:
        for api in APIS:
            assert request.logto.getAccessToken(api)
        return HttpResponse("ok")

    return tokens


class TokensUrls:
    """The sample app's routes plus ``/tokens`` (a URLconf object: Django takes any object
    with ``urlpatterns``)."""

    def __init__(self, flavour: str) -> None:
        from django.urls import path

        self.urlpatterns = [*django_app.patterns(flavour), path("tokens", _tokens_view(flavour))]


def test_a_cookie_session_with_many_tokens_is_split_and_never_over_4096_bytes(
    provider: ServedProvider, clock: Clock, flavour: str
) -> None:
    cipher = CookieCipher([Fernet.generate_key()], secure=False)
    made = sample_settings(
        provider, clock, flavour, SESSIONS=CookieSessions(cipher), RESOURCES=APIS
    )
    made["ROOT_URLCONF"] = TokensUrls(flavour)
    with override_settings(**made):
        browser = Browser(flavour)
        done = sign_in(browser, provider)
        assert done.status_code == 302
        tokens = browser.get("/tokens")
        assert tokens.status_code == 200, tokens.content[:300]
        written = [morsel.OutputString() for morsel in tokens.cookies.values()]
        assert written and all(len(header) <= COOKIE_LIMIT for header in written)
        assert "logto_session.1" in browser.cookies  # eight tokens: two cookies
        assert all("expires" not in header.lower() for header in written)
        exchanges = len(provider.provider.log)
        assert browser.get("/tokens").status_code == 200
        assert len(provider.provider.log) == exchanges  # every token came back from the cookies
        assert browser.get("/protected").status_code == 200


def test_a_session_too_large_for_its_cookies_fails_the_sign_in_before_any_cookie(
    provider: ServedProvider, clock: Clock, flavour: str
) -> None:
    provider.provider.add_user("big", name="N" * 5000)  # an ID token over 4 KB on its own
    cipher = CookieCipher([Fernet.generate_key()], max_cookies=1, secure=False)
    made = sample_settings(provider, clock, flavour, SESSIONS=CookieSessions(cipher))
    with override_settings(**made):
        browser = Browser(flavour)
        start = browser.get("/sign-in")
        pending = browser.cookies["logto_session.0"]
        done = browser.get(
            provider.provider.approve(start["Location"], "big").removeprefix(TEST_ORIGIN)
        )
        assert done.status_code == 400 and b"(storage.write)" in done.content
        assert not done.cookies  # nothing set: the browser keeps what it had
        assert browser.cookies["logto_session.0"] == pending
        assert b"Not authenticated" in browser.get("/").content


def test_cookies_are_emitted_as_the_cookie_backend_measured_them(
    site: dict[str, Any], flavour: str
) -> None:
    cipher = CookieCipher([Fernet.generate_key()], domain="testserver")
    with vary(SESSIONS=CookieSessions(cipher)):
        response = Browser(flavour).get("/sign-in")
    morsel = response.cookies["logto_session.0"]
    header = morsel.OutputString()
    assert sorted(header.split("; ")[1:]) == sorted(
        [
            "Path=/",
            f"Max-Age={cipher.max_age}",
            "Domain=testserver",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
        ]
    )
    assert '"' not in header  # never quoted, whatever the value holds


# ---- wiring: middleware modes, settings, checks, imports ---------------------------------


def test_the_middleware_follows_the_stack_it_is_put_in() -> None:
    def plain(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    async def coroutine(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    assert not iscoroutinefunction(LogtoMiddleware(plain))
    assert iscoroutinefunction(LogtoMiddleware(coroutine))


def test_a_view_without_the_middleware_is_told_to_add_it() -> None:
    with pytest.raises(ImproperlyConfigured, match="LogtoMiddleware"):
        request_state(RequestFactory().get("/"))


BASE = {"ENDPOINT": "https://tenant.logto.app", "APP_ID": "app"}


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([], "must be a dict"),
        ({}, "at least ENDPOINT and APP_ID"),
        ({**BASE, "CLIENT": "trio"}, '"sync" or "aio"'),
        ({**BASE, "BASE_URL": "app.example.com"}, "BASE_URL"),
        ({**BASE, "TRUST_FORWARDED": "yes"}, "True or False"),
        ({**BASE, "SESSIONS": "server"}, "session backend"),
        ({**BASE, "OPTIONS": [("timeout", 3)]}, "OPTIONS"),
        ({**BASE, "SIGN_IN_URL": ""}, "URL name"),
        ({**BASE, "ENDPOINT": "https://tenant.logto.app/oidc"}, "issuer"),
        ({**BASE, "APP_SECRET": "caf\u00e9 secret"}, "printable ASCII"),
        ({**BASE, "COLOUR": "blue"}, "unknown keys \\['COLOUR'\\]"),
        ({**BASE, "appId": "camel"}, "unknown keys"),
        ({"CONFIG": "not a config"}, "LogtoConfig"),
    ],
)
def test_wrong_settings_are_refused_with_what_to_fix(values: Any, match: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=match) as info:
        LogtoSettings.from_mapping(values)
    assert "caf\u00e9" not in str(info.value)  # never a secret's value


def test_settings_map_to_the_config_and_the_integration() -> None:
    read = LogtoSettings.from_mapping(
        {**BASE, "APP_SECRET": "s3cret", "SCOPES": ["email"], "CLOCK_TOLERANCE": 5, "CLIENT": "aio"}
    )
    assert read.config.appId == "app" and read.config.scopes == ["email"]
    assert read.config.clockTolerance == 5 and read.client == "aio"
    assert read.sign_in_url == "logto:sign-in" and read.cookie_secure


def test_the_system_check_reports_wrong_settings_and_a_missing_middleware() -> None:
    with override_settings(LOGTO={"APP_ID": "x"}, MIDDLEWARE=[]):
        found = {message.id for message in check_logto()}
    assert found == {"logto.E001", "logto.W001"}
    with override_settings(LOGTO=BASE):
        assert check_logto() == []


def test_the_package_imports_without_django_configured_or_a_client_flavour() -> None:
    code = (
        "import sys\n"
        "import logto_adapters.django, logto_adapters.django.urls, logto_adapters.django.apps\n"
        "import logto_adapters.demo.django_app\n"
        "from django.conf import settings\n"
        "assert not settings.configured\n"
        "assert 'logto_adapters.sync' not in sys.modules and 'logto_adapters.aio' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# ---- /api/hello: access tokens ---------------------------------------------------------


def app_session(browser: Browser) -> Any:
    """The app's own session of ``browser`` (what a view of it gets on ``request.logto``)."""
    from logto_adapters.web import WebRequest

    app = get_logto_app()
    opened = app.sessions.open(WebRequest("GET", TEST_ORIGIN + "/", cookies=browser.cookies))
    return app.logto.session(opened.storage)


def app_session_token(browser: Browser, resource: str) -> str:
    """An access token obtained by the app's session of ``browser``, as a view would."""
    import asyncio
    import inspect

    token = app_session(browser).getAccessToken(resource)
    found = asyncio.run(token) if inspect.iscoroutine(token) else token
    assert isinstance(found, str)
    return found


def test_the_api_answers_a_valid_token_and_refuses_others_as_rfc_6750_says(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    with vary(RESOURCES=[API, APIS[1]]):
        browser = Browser(flavour)
        assert sign_in(browser, provider).status_code == 302
        token = app_session_token(browser, API)
        api = Browser(flavour)  # an API client: no cookies
        hello = api.get("/api/hello", Authorization=f"Bearer {token}")
        assert hello.status_code == 200, hello.content[:300]
        assert hello.json() == {"sub": USER}

        missing = api.get("/api/hello")
        assert missing.status_code == 401 and missing["WWW-Authenticate"] == "Bearer"
        garbage = api.get("/api/hello", Authorization="Bearer not-a-jwt")
        assert garbage.status_code == 401
        assert 'error="invalid_token"' in garbage["WWW-Authenticate"]
        assert garbage.json()["error"] == "invalid_token"
        other_api = app_session_token(browser, APIS[1])
        assert api.get("/api/hello", Authorization=f"Bearer {other_api}").status_code == 401
        id_token = app_session(browser).getIdToken()  # an ID token is no access token
        assert api.get("/api/hello", Authorization=f"Bearer {id_token}").status_code == 401
        malformed = api.get("/api/hello", Authorization="Bearer a b")
        assert malformed.status_code == 400
        assert 'error="invalid_request"' in malformed["WWW-Authenticate"]


def test_a_token_without_the_scope_is_403_naming_the_scope(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    provider.provider.add_user("reader-not", name="No Read")  # no permission on the API
    browser = Browser(flavour)
    start = browser.get("/sign-in")
    browser.get(
        provider.provider.approve(start["Location"], "reader-not").removeprefix(TEST_ORIGIN)
    )
    token = app_session_token(browser, API)
    refused = Browser(flavour).get("/api/hello", Authorization=f"Bearer {token}")
    assert refused.status_code == 403
    challenge = refused["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read"' in challenge


def test_the_api_needs_no_csrf_token_and_no_session(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    from django.test import Client

    browser = Browser(flavour)
    sign_in(browser, provider)
    token = app_session_token(browser, API)
    middleware = ["django.middleware.csrf.CsrfViewMiddleware"]  # and no LogtoMiddleware
    with override_settings(MIDDLEWARE=middleware):
        strict = Client(enforce_csrf_checks=True)
        posted = strict.post("/api/hello", headers={"Authorization": f"Bearer {token}"})
        assert posted.status_code == 200, posted.content[:300]
        assert strict.post("/api/hello").status_code == 401


def test_an_api_that_cannot_reach_logto_answers_503(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    browser = Browser(flavour)
    sign_in(browser, provider)
    token = app_session_token(browser, API)  # well formed: verifying it needs Logto's keys
    unreachable = {"ENDPOINT": "http://127.0.0.1:9", "OPTIONS": {"timeout": (0.5, 1.0)}}
    with vary(**unreachable):
        answer = Browser(flavour).get("/api/hello", Authorization=f"Bearer {token}")
    assert answer.status_code == 503 and answer["Retry-After"] == "10"
    assert answer.json() == {"error": "temporarily_unavailable"}


def test_an_api_view_needs_an_audience(site: dict[str, Any], flavour: str) -> None:
    with vary(API_AUDIENCE=None), pytest.raises(ImproperlyConfigured, match="API_AUDIENCE"):
        Browser(flavour).get("/api/hello", Authorization="Bearer x")


# ---- /back-channel-logout ------------------------------------------------------------------


def post_logout(flavour: str, token: str, *, enforce_csrf: bool = False) -> Any:
    """Logto's POST of ``token``, as its server sends it (no cookie, no CSRF token)."""
    import asyncio

    from django.test import AsyncClient, Client

    from logto_core.testing import logout_request

    sent = logout_request(f"{TEST_ORIGIN}/back-channel-logout", token)
    client: Any = (
        AsyncClient(enforce_csrf_checks=enforce_csrf)
        if flavour == "aio"
        else Client(enforce_csrf_checks=enforce_csrf)
    )
    answer = client.post(
        "/back-channel-logout", data=sent.body, content_type="application/x-www-form-urlencoded"
    )
    return asyncio.run(answer) if flavour == "aio" else answer


def test_a_back_channel_logout_signs_out_the_session_it_names_and_no_other(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    provider.provider.add_user("other", name="Other")
    alice, other = Browser(flavour), Browser(flavour)
    sign_in(alice, provider)
    start = other.get("/sign-in")
    other.get(provider.provider.approve(start["Location"], "other").removeprefix(TEST_ORIGIN))
    sid = app_session(alice).getIdTokenClaims().sid
    assert sid

    middleware = [
        "django.middleware.csrf.CsrfViewMiddleware",
        "logto_adapters.django.LogtoMiddleware",
    ]
    with override_settings(MIDDLEWARE=middleware):
        token = provider.provider.logout_token(DJANGO_APP, sid=sid, sub=USER)
        answer = post_logout(flavour, token, enforce_csrf=True)
        assert answer.status_code == 200, answer.content[:300]
        assert answer["Cache-Control"] == "no-store" and answer.content == b""
        replayed = post_logout(flavour, token)
        assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_request"

    assert alice.get("/protected").status_code == 302  # signed out, though she never came by
    assert b"Not authenticated" in alice.get("/").content
    assert other.get("/protected").status_code == 200


def test_a_back_channel_logout_refuses_bad_tokens_and_requests(
    site: dict[str, Any], provider: ServedProvider, flavour: str
) -> None:
    browser = Browser(flavour)
    sign_in(browser, provider)
    sid = app_session(browser).getIdTokenClaims().sid
    wrong_audience = provider.provider.logout_token(DJANGO_APP, sid=sid, claims={"aud": "x"})
    with_nonce = provider.provider.logout_token(DJANGO_APP, sid=sid, claims={"nonce": "n"})
    for token in (wrong_audience, with_nonce, "not-a-jwt"):
        assert post_logout(flavour, token).status_code == 400
    as_get = browser.get("/back-channel-logout")
    assert as_get.status_code == 400
    assert browser.get("/protected").status_code == 200  # still signed in
