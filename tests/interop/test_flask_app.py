"""The Flask sample app (``logto_adapters.demo.flask_app``) through the real provider
(oidc-provider configured like Logto), a browser played with plain HTTP: the guard, the
provider's login form, the callback back to the page asked for, the protected page with an
access token for each API and an organization token, sign-out through the provider's
end-session page. Both clients (plain views, async views); sessions on the server and in
encrypted cookies (none over 4096 bytes). ``/api/hello`` with the provider's tokens: a user's
and a machine-to-machine app's for the API with ``read``, and the refused ones.
``/back-channel-logout``: a user who signs out in another app of the tenant is signed out of
the Flask app by the provider's logout token, and no one else is.

The app is served in this process on the port the provider registered, and shut down after
each test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
from cryptography.fernet import Fernet
from werkzeug.serving import make_server

from logto_adapters.cookie_session import COOKIE_LIMIT, CookieCipher
from logto_adapters.demo.flask_app import create_app
from logto_adapters.demo.settings import Settings
from logto_adapters.web import CookieSessions, ServerSessions, SessionBackend

from .conftest import (
    HTTP_TIMEOUT,
    Clock,
    HttpBrowser,
    RealProvider,
    make_driver,
    make_m2m_driver,
)
from .tenant import (
    ALICE,
    ALICE_ORG,
    API_A,
    API_B,
    BOB,
    POST_LOGOUT,
    PUBLIC_APP,
    REDIRECT,
    WEB_APP,
    WEB_APP_SECRET,
)
from .test_flows import new_client, sign_in

SESSIONS = ["server", "cookie"]


def settings_for(provider: RealProvider, base: str) -> Settings:
    return Settings(
        endpoint=provider.base,
        app_id=WEB_APP,
        app_secret=WEB_APP_SECRET,
        base_url=base,
        secret_key="unused",
        resources=[API_A, API_B],
        scopes=["read", "read:b", "profile"],
        organization_id=ALICE_ORG,
    )


@pytest.fixture(params=["sync", "aio"])
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=SESSIONS)
def sessions(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def flask_app(
    client: str,
    sessions: str,
    real_provider: RealProvider,
    browser_app_port: int,
    backchannel_port: int,
) -> Iterator[str]:
    """The sample app at the base URL the provider registered; also served on the port of
    the web app's back-channel logout URI (the same app: one session registry)."""
    base = f"http://127.0.0.1:{browser_app_port}"
    backend: SessionBackend = (
        ServerSessions(secure=False)
        if sessions == "server"
        else CookieSessions(CookieCipher(Fernet.generate_key(), secure=False))
    )
    app = create_app(client, settings_for(real_provider, base), sessions=backend)
    servers = [
        make_server("127.0.0.1", port, app, threaded=True)
        for port in (browser_app_port, backchannel_port)
    ]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield base
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=10)


def test_sign_in_protected_page_tokens_and_sign_out(
    flask_app: str, sessions: str, real_provider: RealProvider
) -> None:
    browser = HttpBrowser()
    http = browser.http
    assert "Sign in" in http.get(f"{flask_app}/", timeout=HTTP_TIMEOUT).text
    guarded = http.get(f"{flask_app}/protected", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert guarded.status_code == 302
    assert guarded.headers["location"] == "/sign-in?next=/protected"
    api = http.get(
        f"{flask_app}/protected", headers={"Accept": "application/json"}, timeout=HTTP_TIMEOUT
    )
    assert api.status_code == 401

    trip = browser.sign_in(
        urljoin(flask_app, guarded.headers["location"]),
        ALICE[0],
        ALICE[1],
        redirect_prefix=f"{flask_app}/callback",
    )
    assert trip.login_form_shown
    done = http.get(trip.callback, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert done.status_code == 302 and done.headers["location"] == "/protected"

    protected = http.get(f"{flask_app}/protected", timeout=HTTP_TIMEOUT)
    assert protected.status_code == 200, protected.text
    body = protected.json()
    assert body["sub"] == ALICE[2]
    assert [token["aud"] for token in body["tokens"]] == [
        API_A,
        API_B,
        f"urn:logto:organization:{ALICE_ORG}",
    ]
    assert body["tokens"][0]["scope"] == "read" and body["tokens"][1]["scope"] == "read:b"
    home = http.get(f"{flask_app}/", timeout=HTTP_TIMEOUT).json()
    assert home["sub"] == ALICE[2] and home["iss"] == real_provider.issuer

    app_cookies = [c for c in http.cookies if c.name.startswith("logto_")]
    assert all(len(c.name) + len(c.value or "") < COOKIE_LIMIT for c in app_cookies)
    if sessions == "cookie":
        # About 3.9 KB here: one cookie (more tokens split it, see test_flask_browser.py).
        assert "logto_session.0" in {c.name for c in app_cookies}
    else:
        assert [c.name for c in app_cookies] == ["logto_sid"]

    out = http.get(f"{flask_app}/sign-out", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert out.status_code == 302 and out.headers["location"].startswith(real_provider.issuer)
    ended = browser.end_session(out.headers["location"])
    assert ended.is_redirect and ended.headers["location"] == f"{flask_app}/"
    assert "Sign in" in http.get(f"{flask_app}/", timeout=HTTP_TIMEOUT).text
    again = http.get(f"{flask_app}/protected", allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert again.status_code == 302


@pytest.mark.parametrize("sessions", ["server"])  # the API keeps no session
def test_the_api_answers_the_providers_tokens(
    flask_app: str, client: str, real_provider: RealProvider, clock: Clock
) -> None:
    user = new_client(client, real_provider, clock, "confidential")
    sign_in(user, HttpBrowser())
    m2m = make_m2m_driver(client, real_provider, clock)
    tokens = {
        "user": user.getAccessToken(API_A),
        "machine": m2m.getAccessToken(resource=API_A, scopes=["read"]),
    }
    http = HttpBrowser().http
    for who, token in tokens.items():
        answer = http.get(
            f"{flask_app}/api/hello",
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT,
        )
        assert answer.status_code == 200, (who, answer.text)
        assert answer.json() == {"sub": ALICE[2] if who == "user" else "m2m-app"}

    def refused(token: str | None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = http.get(f"{flask_app}/api/hello", headers=headers, timeout=HTTP_TIMEOUT)
        return answer.status_code, answer.headers["WWW-Authenticate"]

    assert refused(None) == (401, "Bearer")
    status, challenge = refused(user.getAccessToken(API_B))  # another API's
    assert status == 401 and 'error="invalid_token"' in challenge
    status, challenge = refused(user.getIdToken())  # an ID token is no access token
    assert status == 401 and 'error="invalid_token"' in challenge
    status, challenge = refused(m2m.getAccessToken(resource=API_A, scopes=["write"]))
    assert (
        status == 403 and 'error="insufficient_scope"' in challenge and 'scope="read"' in challenge
    )
    for driver in (user, m2m):
        if client == "sync":
            driver.close()
        else:
            driver.aclose()


def signed_in_browser(base: str, user: tuple[str, str, str]) -> HttpBrowser:
    browser = HttpBrowser()
    trip = browser.sign_in(f"{base}/sign-in", user[0], user[1], redirect_prefix=f"{base}/callback")
    done = browser.http.get(trip.callback, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert done.status_code == 302
    return browser


def protected_status(browser: HttpBrowser, base: str) -> int:
    answer = browser.http.get(f"{base}/protected", allow_redirects=False, timeout=HTTP_TIMEOUT)
    return int(answer.status_code)


@pytest.mark.parametrize("sessions", ["server"])  # cookies are beyond the server's reach
def test_a_sign_out_elsewhere_signs_the_user_out_of_the_flask_app(
    flask_app: str, client: str, real_provider: RealProvider, clock: Clock
) -> None:
    alice = signed_in_browser(flask_app, ALICE)
    bob = signed_in_browser(flask_app, BOB)
    assert protected_status(alice, flask_app) == protected_status(bob, flask_app) == 200

    # Alice uses another app of the tenant in the same browser (one session at the
    # provider), and signs out there: the provider posts a logout token to the Flask app.
    other = make_driver("sync", real_provider, clock, appId=PUBLIC_APP)
    trip = alice.sign_in(other.signIn(REDIRECT), ALICE[0], ALICE[1])
    assert not trip.login_form_shown
    other.handleSignInCallback(trip.callback)
    ended = alice.end_session(other.signOut(POST_LOGOUT))
    assert ended.is_redirect and ended.headers["location"].startswith(POST_LOGOUT)
    other.close()

    assert real_provider.backchannel_deliveries() == {"success": 1, "error": 0}
    assert protected_status(alice, flask_app) == 302  # signed out at the Flask app too
    assert protected_status(bob, flask_app) == 200
