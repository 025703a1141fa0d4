"""The FastAPI sample app (logto_adapters.demo.fastapi_app) on the test provider: sign-in,
a protected page with an API token, sign-out; the guard (redirect versus 401), the safe
return-to, forwarded headers only when trusted, the session id replaced at sign-in, the
callback's error pages, and the cookie session's size limits."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from logto_adapters.aio import Logto, LogtoConfig
from logto_adapters.cookie_session import COOKIE_LIMIT, CookieCipher
from logto_adapters.demo.fastapi_app import create_app
from logto_adapters.demo.settings import Settings
from logto_adapters.fastapi import (
    LogtoAuth,
    LogtoMiddleware,
    LogtoSessionDep,
    SignedInSession,
    logto_router,
)
from logto_adapters.session_registry import SessionRegistry
from logto_adapters.testing import ServedProvider
from logto_adapters.web import (
    CookieSessions,
    ServerSessions,
    SessionBackend,
    WebRequest,
)
from logto_core.runtime import Runtime

from ..asgi_client import TestClient
from .conftest import API, APP_ID, APP_SECRET, USER, Clock

BASE = "http://127.0.0.1:9"  # the app's origin as registered with the provider; never dialled


def settings_for(served: ServedProvider, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "endpoint": served.url,
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "base_url": BASE,
        "secret_key": "unused",
        "resources": [API],
        "scopes": ["read"],
    }
    values.update(overrides)
    return Settings(**values)


class Browser:
    """A browser on the app (in process) that follows nothing by itself; the provider's
    pages are played by ``provider.approve``."""

    def __init__(self, app: FastAPI, served: ServedProvider) -> None:
        self.client = TestClient(app, base_url=BASE, follow_redirects=False)
        self.served = served

    def __enter__(self) -> Browser:
        self.client.__enter__()  # runs the lifespan: the app's Logto is closed at exit
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(None, None, None)

    def get(self, path: str, **headers: str) -> httpx.Response:
        response: httpx.Response = self.client.get(path, headers=headers)
        return response

    def sign_in(self, path: str = "/sign-in", user: str = USER) -> httpx.Response:
        """Sign-in through the provider; the app's answer to the callback."""
        start = self.get(path)
        assert start.status_code == 303, start.text
        return self.get(self.served.provider.approve(start.headers["location"], user))


@pytest.fixture
def registry() -> SessionRegistry:
    return SessionRegistry()


def make_app(
    served: ServedProvider, clock: Clock, sessions: SessionBackend | None = None, **settings: Any
) -> FastAPI:
    return create_app(
        settings_for(served, **settings),
        sessions=sessions or ServerSessions(secure=False),
        runtime=Runtime(clock=clock),
        timeout=(2.0, 5.0),
    )


@pytest.fixture
def browser(served: ServedProvider, clock: Clock, registry: SessionRegistry) -> Iterator[Browser]:
    with Browser(make_app(served, clock, ServerSessions(registry, secure=False)), served) as b:
        yield b


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """The response's ``Set-Cookie`` headers, by cookie name."""
    found: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0]] = header
    return found


def test_sign_in_protected_page_api_token_sign_out(
    browser: Browser, served: ServedProvider
) -> None:
    home = browser.get("/")
    assert home.status_code == 200 and "href='/sign-in'" in home.text

    guarded = browser.get("/protected")
    assert guarded.status_code == 303
    assert guarded.headers["location"] == "/sign-in?next=/protected"

    start = browser.get(guarded.headers["location"])
    authorize = parse_qs(urlsplit(start.headers["location"]).query)
    assert authorize["redirect_uri"] == [f"{BASE}/callback"]
    done = browser.get(served.provider.approve(start.headers["location"], USER))
    assert done.status_code == 303 and done.headers["location"] == "/protected"

    claims = browser.get("/").json()
    assert claims["sub"] == USER and claims["email"] == "ada@example.com"
    page = browser.get("/protected").json()
    assert page["sub"] == USER
    assert page["api"]["aud"] == API and "read" in page["api"]["scope"].split()

    out = browser.get("/sign-out")
    assert out.status_code == 303
    end = parse_qs(urlsplit(out.headers["location"]).query)
    assert end["post_logout_redirect_uri"] == [f"{BASE}/"]
    assert "id_token_hint" in end
    assert "href='/sign-in'" in browser.get("/").text
    assert browser.get("/protected").status_code == 303


def test_the_guard_answers_pages_with_a_redirect_and_apis_with_401(browser: Browser) -> None:
    page = browser.get("/protected?tab=2&x=a%20b")
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in?next=/protected%3Ftab%3D2%26x%3Da%2520b"
    for headers in (
        {"accept": "application/json"},
        {"x-requested-with": "XMLHttpRequest"},
        {"authorization": "Bearer some.api.token"},
    ):
        api = browser.get("/protected", **headers)
        assert api.status_code == 401, headers
        assert api.json() == {"detail": "Sign-in required"}
        assert "location" not in api.headers
    # A browser's Accept lists HTML too: a page.
    assert browser.get("/protected", accept="text/html,application/json").status_code == 303


def test_the_page_asked_for_is_where_sign_in_returns(browser: Browser) -> None:
    guarded = browser.get("/protected?tab=2")
    done = browser.sign_in(guarded.headers["location"])
    assert done.headers["location"] == "/protected?tab=2"


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)", ""],
)
def test_an_unsafe_return_to_is_refused(browser: Browser, target: str) -> None:
    done = browser.sign_in(f"/sign-in?next={target}")
    assert done.status_code == 303 and done.headers["location"] == "/"


def redirect_uri_of(response: httpx.Response) -> str:
    return parse_qs(urlsplit(response.headers["location"]).query)["redirect_uri"][0]


def test_forwarded_headers_are_read_only_when_trusted(served: ServedProvider, clock: Clock) -> None:
    forged = {"x-forwarded-host": "evil.example", "x-forwarded-proto": "https"}
    for trust, expected in ((False, "http://app.internal:8000"), (True, "https://evil.example")):
        logto = Logto(LogtoConfig(endpoint=served.url, appId=APP_ID, appSecret=APP_SECRET))
        auth = LogtoAuth(logto, sessions=ServerSessions(secure=False), trust_forwarded=trust)
        app = FastAPI()
        app.add_middleware(LogtoMiddleware, auth=auth)
        app.include_router(logto_router(auth))
        with TestClient(app, base_url="http://app.internal:8000", follow_redirects=False) as c:
            start = c.get("/sign-in", headers=forged)
            assert redirect_uri_of(start) == f"{expected}/callback"
            bad = c.get("/sign-in", headers={"x-forwarded-host": "evil.example/x"})
            if trust:  # a malformed forwarded host is refused, not put in a callback URL
                assert bad.status_code == 400 and "usage.forwarded" in bad.text
            else:
                assert redirect_uri_of(bad) == "http://app.internal:8000/callback"
    # The configured base URL wins over everything.
    with Browser(make_app(served, clock), served) as browser:
        start = browser.get("/sign-in", **forged)
        assert redirect_uri_of(start) == f"{BASE}/callback"


SID = "logto_sid"


def cookie_value(response: httpx.Response, name: str = SID) -> str:
    return SimpleCookie(set_cookies(response)[name])[name].value


def test_the_session_id_is_replaced_at_sign_in(browser: Browser, registry: SessionRegistry) -> None:
    """Session fixation: an attacker plants a session id of their own (a real one, made by
    starting a sign-in) in the victim's browser; the victim's sign-in gets a new id, and the
    planted one then names nothing. An id the server never made is not even looked up."""
    attacker = TestClient(browser.client.app, base_url=BASE, follow_redirects=False)
    planted = cookie_value(attacker.get("/sign-in"))
    browser.client.cookies.set(SID, planted)
    start = browser.get("/sign-in")
    assert SID not in set_cookies(start)  # the planted session holds the pending sign-in
    done = browser.get(browser.served.provider.approve(start.headers["location"], USER))
    new = cookie_value(done)
    assert new != planted
    assert registry.get(planted) is None  # the planted id knows nothing now
    assert registry.get(new) is not None
    attacker.cookies.set(SID, planted)
    assert "href='/sign-in'" in attacker.get("/").text
    assert browser.get("/").json()["sub"] == USER

    made_up = TestClient(browser.client.app, base_url=BASE, follow_redirects=False)
    made_up.cookies.set(SID, "made-up-by-an-attacker-0123456789abcdefghijklmno")
    assert cookie_value(made_up.get("/sign-in")) != "made-up-by-an-attacker"


def test_a_first_visit_sets_the_cookie_only_when_it_writes(browser: Browser) -> None:
    assert set_cookies(browser.get("/")) == {}
    assert set_cookies(browser.get("/protected")) == {}
    cookie = set_cookies(browser.get("/sign-in"))[SID]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_callback_errors_are_a_400_page_without_secrets(
    browser: Browser, served: ServedProvider
) -> None:
    start = browser.get("/sign-in")
    callback = served.provider.approve(start.headers["location"], USER)
    query = parse_qs(urlsplit(callback).query)
    code, state = query["code"][0], query["state"][0]

    forged = browser.get(f"/callback?code={code}&state=not-the-state&iss=x")
    assert forged.status_code == 400
    assert "callback." in forged.text and code not in forged.text and state not in forged.text

    iss = quote(f"{served.url}/oidc", safe="")
    denied = browser.get(f"/callback?error=access_denied&state={state}&iss={iss}")
    assert denied.status_code == 400 and "oauth.access_denied" in denied.text

    assert browser.get("/callback").status_code == 400  # no parameters at all
    assert browser.get("/").status_code == 200  # still signed out, nothing broken


def test_logto_unreachable_is_a_502_page(clock: Clock) -> None:
    settings = Settings(
        endpoint="http://127.0.0.1:9",  # the discard port: nothing listens
        app_id=APP_ID,
        app_secret=APP_SECRET,
        base_url=BASE,
        secret_key="unused",
    )
    app = create_app(settings, runtime=Runtime(clock=clock), timeout=(0.5, 1.0), max_retries=0)
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        failed = client.get("/sign-in")
        assert failed.status_code == 502 and "transport." in failed.text


def token_app(
    served: ServedProvider, clock: Clock, sessions: SessionBackend, resources: list[str]
) -> FastAPI:
    """An app of the library's own pieces whose ``/tokens`` asks for a token of every API
    (the sample app's pages ask for one)."""
    logto = Logto(
        LogtoConfig(
            endpoint=served.url,
            appId=APP_ID,
            appSecret=APP_SECRET,
            scopes=["email", "read", "write"],
            resources=resources,
        ),
        runtime=Runtime(clock=clock),
        timeout=(2.0, 5.0),
    )
    auth = LogtoAuth(logto, sessions=sessions, base_url=BASE)
    app = FastAPI()
    app.add_middleware(LogtoMiddleware, auth=auth)
    app.include_router(logto_router(auth))

    @app.get("/tokens")
    async def tokens(session: SignedInSession) -> dict[str, int]:
        return {api: len(await session.getAccessToken(api) or "") for api in resources}

    @app.get("/")
    async def home(session: LogtoSessionDep) -> dict[str, bool]:
        return {"signed_in": await session.isAuthenticatedAsync()}

    return app


def add_apis(served: ServedProvider, count: int) -> list[str]:
    apis = [API]
    for index in range(count):
        api = f"https://api{index}.example.com/with/a/rather/long/path/to/grow/tokens"
        served.provider.add_resource(api, ["read", "write"])
        served.provider.grant_permissions(USER, api, ["read", "write"])
        apis.append(api)
    return apis


def cookie_sizes(response: httpx.Response) -> list[int]:
    return [len(header) for header in response.headers.get_list("set-cookie")]


@pytest.mark.parametrize("max_cookies", [4, 2])
def test_many_tokens_in_cookies_are_split_never_over_4096_bytes(
    served: ServedProvider, clock: Clock, max_cookies: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten API tokens (about 12 KB encrypted): split over four cookies, or with two (the
    default) the cached access tokens dropped (they come back by refresh) rather than a
    cookie over 4 KB."""
    caplog.set_level(logging.INFO, logger="logto")
    apis = add_apis(served, 9)
    cipher = CookieCipher(Fernet.generate_key(), secure=False, max_cookies=max_cookies)
    with Browser(token_app(served, clock, CookieSessions(cipher), apis), served) as browser:
        done = browser.sign_in()
        assert done.status_code == 303
        sizes = cookie_sizes(done)
        for _ in range(2):  # the second time from the cache, or refreshed when dropped
            tokens = browser.get("/tokens")
            assert tokens.status_code == 200 and all(tokens.json().values())
            sizes += cookie_sizes(tokens)
        assert sizes and max(sizes) <= COOKIE_LIMIT
        held = sorted(name for name in browser.client.cookies if name.startswith("logto_session"))
        # Split in four; with two, the last write (all tokens dropped) fits in one.
        assert len(held) == (3 if max_cookies == 4 else 1), held
        assert browser.get("/").json() == {"signed_in": True}
    dropped = "access tokens" in caplog.text
    assert dropped == (max_cookies == 2)


def test_a_session_too_large_for_its_cookies_fails_the_sign_in_loudly(
    served: ServedProvider, clock: Clock
) -> None:
    """An ID token that cannot fit (a huge profile) refuses the sign-in with the storage
    error's code, instead of a cookie the browser would silently drop."""
    served.provider.add_user("user-big", name="N" * 9000, email="big@example.com")
    cipher = CookieCipher(Fernet.generate_key(), secure=False)
    with Browser(token_app(served, clock, CookieSessions(cipher), [API]), served) as browser:
        done = browser.sign_in(user="user-big")
        assert done.status_code == 500 and "storage.write" in done.text
        assert max(cookie_sizes(done), default=0) <= COOKIE_LIMIT
        assert browser.get("/").json() == {"signed_in": False}


def tokens_of(browser: Browser, cookies: httpx.Cookies) -> tuple[str | None, str | None]:
    """The access token for the API and the ID token of the session ``cookies`` name, read
    as the app would: its session backend opened on them (the app never shows a token)."""
    auth: LogtoAuth = browser.client.app.state.logto_auth  # type: ignore[attr-defined]
    opened = auth.sessions.open(WebRequest("GET", BASE, cookies=dict(cookies)))
    session = auth.logto.session(opened.storage)
    portal: Any = browser.client.portal  # the app's event loop
    return portal.call(session.getAccessToken, API), session.getIdToken()


def test_the_api_answers_a_valid_bearer_token_and_refuses_the_rest(
    served: ServedProvider, browser: Browser
) -> None:
    served.provider.add_user("user-2", name="Bea")  # no permission for the API: no scope
    browser.sign_in()
    token, id_token = tokens_of(browser, browser.client.cookies)
    assert token is not None and id_token is not None
    hello = browser.get("/api/hello", authorization=f"Bearer {token}")
    assert hello.status_code == 200 and hello.json() == {"sub": USER}

    bare = browser.get("/api/hello")
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    malformed = browser.get("/api/hello", authorization="Bearer two tokens")
    assert malformed.status_code == 400
    assert 'error="invalid_request"' in malformed.headers["www-authenticate"]
    forged = browser.get("/api/hello", authorization=f"Bearer {id_token}")
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]
    assert id_token not in forged.text + forged.headers["www-authenticate"]

    other = TestClient(browser.client.app, base_url=BASE, follow_redirects=False)
    start = other.get("/sign-in")
    other.get(served.provider.approve(start.headers["location"], "user-2"))
    weak, _ = tokens_of(browser, other.cookies)
    assert weak is not None
    refused = browser.get("/api/hello", authorization=f"Bearer {weak}")
    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read"' in challenge


def test_the_api_shows_as_a_bearer_scheme_in_openapi(browser: Browser) -> None:
    schema: Any = browser.client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["LogtoAccessToken"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert schema["paths"]["/api/hello"]["get"]["security"] == [{"LogtoAccessToken": []}]
    assert "/sign-in" not in schema["paths"]  # the routes of the sign-in stay out


def test_the_demo_serves_the_sample_app_on_the_embedded_provider() -> None:
    """``python -m logto_adapters.demo --serve --framework fastapi``: uvicorn on the port
    asked for, the embedded provider's sign-in page, then a clean stop on SIGTERM."""
    import os
    import re
    import select
    import subprocess
    import sys
    from html import unescape
    from urllib.parse import urljoin

    import requests

    from tests.interop.conftest import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGTO_", "APP_"))}
    env["APP_BASE_URL"] = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "logto_adapters.demo", "--serve", "--framework", "fastapi"]
    process = subprocess.Popen(
        [*command, "--provider-port", "0"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        # The first line is printed once the app is served; waited for 20 s at most.
        ready, _, _ = select.select([process.stdout], [], [], 20.0)
        first = process.stdout.readline() if ready else ""
        assert f"http://127.0.0.1:{port}/" in first, first
        base, http = f"http://127.0.0.1:{port}", requests.Session()
        start = http.get(f"{base}/sign-in?next=/protected", allow_redirects=False, timeout=10)
        login = http.get(start.headers["location"], timeout=10)
        action = unescape(re.search(r'action="([^"]*)"', login.text)[1])  # type: ignore[index]
        hidden = unescape(re.search(r'name="request" value="([^"]*)"', login.text)[1])  # type: ignore[index]
        form = {"request": hidden, "username": "alice", "action": "approve"}
        page = http.post(urljoin(login.url, action), data=form, timeout=10)
        assert page.url == f"{base}/protected" and page.json()["sub"] == "u_alice"
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def test_back_channel_logout_signs_out_the_session_it_names(
    served: ServedProvider, browser: Browser, registry: SessionRegistry
) -> None:
    from logto_core.testing import logout_request

    served.provider.add_user("user-2", name="Bea")
    browser.sign_in()
    other = TestClient(browser.client.app, base_url=BASE, follow_redirects=False)
    start = other.get("/sign-in")
    other.get(served.provider.approve(start.headers["location"], "user-2"))
    app: Any = browser.client.app
    held = registry.get(browser.client.cookies[SID])
    assert held is not None
    sid = app.state.logto_auth.logto.session(held).getIdTokenClaims().sid
    assert sid

    def deliver(token: str) -> httpx.Response:
        request = logout_request(f"{BASE}/back-channel-logout", token)
        answer: httpx.Response = TestClient(browser.client.app, base_url=BASE).post(
            "/back-channel-logout", content=request.body, headers=dict(request.headers)
        )
        return answer

    token = served.provider.logout_token(APP_ID, sid=sid, sub=USER)
    done = deliver(token)
    assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
    assert "href='/sign-in'" in browser.get("/").text  # this browser never came by
    assert other.get("/").json()["sub"] == "user-2"  # another user's session is kept

    replayed = deliver(token)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_request"
    forged = deliver(served.provider.logout_token(APP_ID, sid=sid, claims={"nonce": "n"}))
    assert forged.status_code == 400
    assert browser.client.get("/back-channel-logout").status_code == 405  # POST only
    huge = TestClient(browser.client.app, base_url=BASE).post(
        "/back-channel-logout",
        content=b"logout_token=" + b"a" * 200_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 400
