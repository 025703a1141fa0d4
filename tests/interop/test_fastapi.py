"""The FastAPI sample app (logto_adapters.demo.fastapi_app) through the real provider: the
login form filled in, the protected page with its API token, the app's own API called with
the user's token, sign-out through the provider's end-session page; with tokens kept on the
server and in encrypted cookies (each under 4 KB with two APIs and an organization token);
and the back-channel logout the provider sends when the user signs out in another app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from logto_adapters.cookie_session import COOKIE_LIMIT, CookieCipher
from logto_adapters.demo.fastapi_app import AppServer, create_app
from logto_adapters.demo.settings import Settings
from logto_adapters.fastapi import LogtoAuth
from logto_adapters.web import CookieSessions, ServerSessions, SessionBackend, WebRequest

from ..asgi_client import TestClient
from .conftest import Clock, HttpBrowser, RealProvider, make_driver
from .tenant import (
    ALICE,
    ALICE_ORG,
    API_A,
    API_B,
    APP_BASE,
    BOB,
    POST_LOGOUT,
    PUBLIC_APP,
    REDIRECT,
    WEB_APP,
    WEB_APP_SECRET,
)


def local(url: str) -> str:
    """The path and query of an URL of the app (the test client serves it in process)."""
    assert url.startswith(APP_BASE), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture(params=["server", "cookie"])
def app(request: pytest.FixtureRequest, real_provider: RealProvider) -> FastAPI:
    sessions: SessionBackend = (
        ServerSessions(secure=False)
        if request.param == "server"
        else CookieSessions(CookieCipher(Fernet.generate_key(), secure=False))
    )
    settings = Settings(
        endpoint=real_provider.base,
        app_id=WEB_APP,
        app_secret=WEB_APP_SECRET,
        base_url=APP_BASE,
        secret_key="unused",
        resources=[API_A, API_B],
        scopes=["read", "read:b", "profile"],
    )
    return create_app(settings, sessions=sessions, timeout=(2.0, 10.0))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=APP_BASE, follow_redirects=False) as client:
        yield client


def user_tokens(client: TestClient) -> dict[str, Any]:
    """Tokens of the browser's session, asked of the app's own session (never shown by
    the app): API A's, API B's, the organization token, and the ID token."""
    auth: LogtoAuth = client.app.state.logto_auth  # type: ignore[attr-defined]
    opened = auth.sessions.open(WebRequest("GET", APP_BASE, cookies=dict(client.cookies)))
    session = auth.logto.session(opened.storage)

    async def fetch() -> dict[str, Any]:
        return {
            "a": await session.getAccessToken(API_A),
            "b": await session.getAccessToken(API_B),
            "org": await session.getOrganizationToken(ALICE_ORG),
            "id": session.getIdToken(),
            "refresh": session.getRefreshToken(),
        }

    portal: Any = client.portal
    tokens: dict[str, Any] = portal.call(fetch)
    if isinstance(auth.sessions, CookieSessions):
        # Store what the app's storage now holds, as a response would have (the jar keys
        # a cookie by its host, too).
        host = urlsplit(APP_BASE).hostname or ""
        for cookie in opened.set_cookies():
            assert len(cookie.header()) <= COOKIE_LIMIT
            client.cookies.delete(cookie.name, domain=host)
            if cookie.max_age:
                client.cookies.set(cookie.name, cookie.value, domain=host)
    return tokens


def test_sign_in_protected_page_api_and_sign_out(
    client: TestClient, real_provider: RealProvider
) -> None:
    browser = HttpBrowser()
    assert "Not signed in" in client.get("/").text
    guarded = client.get("/protected")
    assert guarded.status_code == 303
    start = client.get(guarded.headers["location"])
    assert start.headers["location"].startswith(f"{real_provider.issuer}/auth?")

    trip = browser.sign_in(start.headers["location"], ALICE[0], ALICE[1])
    assert trip.login_form_shown
    done = client.get(local(trip.callback))
    assert done.status_code == 303 and done.headers["location"] == "/protected"
    for header in done.headers.get_list("set-cookie"):
        assert len(header) <= COOKIE_LIMIT

    claims = client.get("/").json()
    assert claims["sub"] == ALICE[2] and claims["name"] == "Alice Liddell"
    page = client.get("/protected")
    assert page.status_code == 200
    assert page.json()["api"]["aud"] == API_A and page.json()["api"]["scope"] == "read"

    tokens = user_tokens(client)
    assert all(tokens.values())
    hello = client.get("/api/hello", headers={"authorization": f"Bearer {tokens['a']}"})
    assert hello.status_code == 200 and hello.json() == {"sub": ALICE[2]}
    assert real_provider.introspect(tokens["refresh"])["active"] is True
    for other in ("b", "org", "id"):  # another API's, an organization's, an ID token
        refused = client.get("/api/hello", headers={"authorization": f"Bearer {tokens[other]}"})
        assert refused.status_code == 401, other
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert client.get("/api/hello").headers["www-authenticate"] == "Bearer"
    assert client.get("/protected").status_code == 200  # the session survived it all

    out = client.get("/sign-out")
    assert out.status_code == 303
    back = browser.end_session(out.headers["location"])
    assert back.is_redirect and httpx.URL(back.headers["location"]) == httpx.URL(POST_LOGOUT)
    assert "Not signed in" in client.get(local(back.headers["location"])).text
    assert client.get("/protected", headers={"accept": "application/json"}).status_code == 401
    auth: LogtoAuth = client.app.state.logto_auth  # type: ignore[attr-defined]
    assert auth.logto.waitForRevocations(10)
    assert real_provider.introspect(tokens["refresh"])["active"] is False  # revoked at Logto


def test_a_session_ended_at_the_provider_is_signed_out_in_the_app(
    real_provider: RealProvider, backchannel_port: int, clock: Clock
) -> None:
    """oidc-provider's back-channel logout: Alice signs out in another app of the tenant;
    the provider POSTs a logout token to the sample app's /back-channel-logout (served by
    uvicorn on the port registered for it), which signs her session out; Bob's stays."""
    settings = Settings(
        endpoint=real_provider.base,
        app_id=WEB_APP,
        app_secret=WEB_APP_SECRET,
        base_url=APP_BASE,
        secret_key="unused",
        resources=[API_A],
        scopes=["read"],
    )
    app = create_app(settings, sessions=ServerSessions(secure=False), timeout=(2.0, 10.0))
    receiver = AppServer("127.0.0.1", backchannel_port, app)
    with TestClient(app, base_url=APP_BASE, follow_redirects=False) as client:
        receiver.start()
        try:
            bob_at_app = TestClient(app, base_url=APP_BASE, follow_redirects=False)
            alice, bob = HttpBrowser(), HttpBrowser()
            for browser, user, at_app in ((alice, ALICE, client), (bob, BOB, bob_at_app)):
                start = at_app.get("/sign-in")
                trip = browser.sign_in(start.headers["location"], user[0], user[1])
                assert at_app.get(local(trip.callback)).status_code == 303
            assert client.get("/").json()["sub"] == ALICE[2]

            other = make_driver("sync", real_provider, clock, appId=PUBLIC_APP)
            trip = alice.sign_in(other.signIn(REDIRECT), ALICE[0], ALICE[1])
            assert not trip.login_form_shown  # one session at the provider
            other.handleSignInCallback(trip.callback)
            answer = alice.end_session(other.signOut(POST_LOGOUT))
            assert answer.is_redirect  # the provider waited for the app's answer

            assert real_provider.backchannel_deliveries() == {"success": 1, "error": 0}
            assert "Not signed in" in client.get("/").text
            assert bob_at_app.get("/").json()["sub"] == BOB[2]
        finally:
            receiver.shutdown()
