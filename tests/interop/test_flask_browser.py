"""The Flask integration in a real headless Chromium, through the real provider's pages.

* The sample app as ``make serve`` runs it (``python -m logto_adapters.demo --serve
  --framework flask --client sync|aio``, configured from the environment): signed out, the
  guard sends the browser to the login form, back to the page asked for with its tokens,
  sign-out through the provider, signed out again.
* Sessions in encrypted cookies past 4 KB: Chromium drops a cookie over 4096 bytes without a
  word (shown first with a server of the test's own), and the integration's cookies, split,
  all arrive: the session is read back whole.

Needs Debian's ``chromium`` and Playwright for Python, like ``test_browser.py``: skipped
locally when either is missing; fails under ``CI``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from werkzeug.serving import make_server

from logto_adapters import sync
from logto_adapters.cookie_session import COOKIE_LIMIT, CookieCipher
from logto_adapters.flask import LogtoFlask
from logto_adapters.web import CookieSessions

from .conftest import RealProvider, _unavailable
from .tenant import ALICE, ALICE_ORG, API_A, API_B, WEB_APP, WEB_APP_SECRET
from .test_browser import CHROMIUM, CHROMIUM_ARGS, _wait_port

TIMEOUT_MS = 15_000


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium profile (Playwright's ``BrowserContext``)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield context
        finally:
            context.close()


def sign_in_on_the_login_form(page: Any, provider: RealProvider) -> None:
    page.wait_for_selector("#login")
    assert page.url.startswith(f"{provider.base}/interaction/")
    page.fill("#username", ALICE[0])
    page.fill("#password", ALICE[1])
    page.click("#submit")


# ---- the sample app --------------------------------------------------------------------


@pytest.fixture(params=["sync", "aio"])
def sample_app(
    request: pytest.FixtureRequest, real_provider: RealProvider, browser_app_port: int
) -> Iterator[str]:
    """``python -m logto_adapters.demo --serve --framework flask``, on the port the provider
    registered (from ``APP_BASE_URL``), against the real provider."""
    base = f"http://127.0.0.1:{browser_app_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGTO_", "APP_"))}
    env.update(
        LOGTO_ENDPOINT=real_provider.base,
        LOGTO_APP_ID=WEB_APP,
        LOGTO_APP_SECRET=WEB_APP_SECRET,
        LOGTO_RESOURCES=f"{API_A} {API_B}",
        LOGTO_SCOPES="read read:b profile",
        LOGTO_ORGANIZATION_ID=ALICE_ORG,
        APP_BASE_URL=base,
    )
    command = [sys.executable, "-m", "logto_adapters.demo", "--serve", "--framework", "flask"]
    process = subprocess.Popen(
        [*command, "--client", str(request.param)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(browser_app_port, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_sample_app_in_chromium(
    sample_app: str, real_provider: RealProvider, chromium: Any
) -> None:
    page = chromium.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{sample_app}/")
    assert "Not signed in" in page.inner_text("body")

    page.goto(f"{sample_app}/protected")  # the guard: to the sign-in, then the login form
    sign_in_on_the_login_form(page, real_provider)
    page.wait_for_url(f"{sample_app}/protected")  # back where the user was going
    body = page.inner_text("body")
    assert '"sub":"u_alice"' in body, body
    for audience in (API_A, API_B, f"urn:logto:organization:{ALICE_ORG}"):
        assert f'"aud":"{audience}"' in body

    (sid,) = [c for c in chromium.cookies(sample_app) if c["name"].startswith("logto_")]
    assert sid["name"] == "logto_sid" and sid["httpOnly"] and sid["sameSite"] == "Lax"
    page.goto(f"{sample_app}/")
    assert '"name":"Alice Liddell"' in page.inner_text("body")

    page.goto(f"{sample_app}/sign-out")
    page.wait_for_url(f"{sample_app}/")  # through the provider's end-session page
    assert "Not signed in" in page.inner_text("body")
    page.goto(f"{sample_app}/protected")
    page.wait_for_selector("#login")  # signed out at the provider too: the form again


# ---- sessions in cookies past 4 KB -------------------------------------------------------


class _OversizedCookie(BaseHTTPRequestHandler):
    """Sets one cookie of 4,100 bytes and one small one."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Set-Cookie", "big=" + "x" * 4096 + "; Path=/")
        self.send_header("Set-Cookie", "small=kept; Path=/")
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def oversized_cookie_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _OversizedCookie)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def cookie_session_app(real_provider: RealProvider, browser_app_port: int) -> Iterator[str]:
    """An app keeping sessions in encrypted cookies; ``/tokens`` gets five access tokens
    (two APIs, the organization, the two APIs within the organization)."""
    base = f"http://127.0.0.1:{browser_app_port}"
    config = sync.LogtoConfig(
        endpoint=real_provider.base,
        appId=WEB_APP,
        appSecret=WEB_APP_SECRET,
        scopes=["read", "read:b", "profile", sync.UserInfoScope.organizations],
        resources=[API_A, API_B],
    )
    app = Flask(__name__)
    cipher = CookieCipher(Fernet.generate_key(), secure=False)
    logto = LogtoFlask(app, config, sessions=CookieSessions(cipher), base_url=base)

    @app.get("/tokens")
    @logto.login_required
    def tokens() -> Any:
        session = logto.session
        got = [session.getAccessTokenClaims(API_A), session.getAccessTokenClaims(API_B)]
        got.append(session.getOrganizationTokenClaims(ALICE_ORG))
        got += [
            session.getAccessTokenClaims(api, organizationId=ALICE_ORG) for api in (API_A, API_B)
        ]
        return {"tokens": len(got)}

    @app.get("/whoami")
    @logto.login_required
    def whoami() -> Any:
        return {"sub": logto.session.getIdTokenClaims().sub}

    server = make_server("127.0.0.1", browser_app_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        logto.logto.close()


def test_chromium_drops_a_cookie_over_4096_bytes_and_keeps_split_ones(
    oversized_cookie_server: str,
    cookie_session_app: str,
    real_provider: RealProvider,
    chromium: Any,
) -> None:
    page = chromium.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    # The browser's rule: the cookie over 4096 bytes is gone, nothing said.
    page.goto(f"{oversized_cookie_server}/")
    names = {c["name"] for c in chromium.cookies(oversized_cookie_server)}
    assert "small" in names and "big" not in names

    page.goto(f"{cookie_session_app}/tokens")
    sign_in_on_the_login_form(page, real_provider)
    page.wait_for_url(f"{cookie_session_app}/tokens")
    assert '"tokens":5' in page.inner_text("body").replace(" ", "")
    chunks = {
        c["name"]: c for c in chromium.cookies(cookie_session_app) if c["name"].startswith("logto_")
    }
    assert set(chunks) == {"logto_session.0", "logto_session.1"}  # one cookie would be dropped
    assert sum(len(c["value"]) for c in chunks.values()) > COOKIE_LIMIT
    assert all(len(c["name"]) + len(c["value"]) <= COOKIE_LIMIT for c in chunks.values())
    assert all(c["httpOnly"] for c in chunks.values())

    page.goto(f"{cookie_session_app}/whoami")  # the session, read back from both cookies
    assert '"sub":"u_alice"' in page.inner_text("body").replace(" ", "")
    asked = real_provider.requests_to("token")
    assert asked >= 5  # the code exchange and the refreshes that got the tokens
    page.goto(f"{cookie_session_app}/tokens")  # and its tokens, kept: no token request
    assert '"tokens":5' in page.inner_text("body").replace(" ", "")
    assert real_provider.requests_to("token") == asked
