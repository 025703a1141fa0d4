"""The tutorial's sample app, driven by a real headless Chromium through the real provider's
pages: sign in with the login form, see the claims, sign out, "Not authenticated".

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and Playwright for Python (its browser
download is never used). Skipped locally when either is missing; fails under ``CI``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RealProvider, _unavailable
from .tenant import ALICE, API_A, API_B, WEB_APP, WEB_APP_SECRET

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COOKIE_LIMIT = 4096  # what browsers keep of one cookie (name + value)
APP_SERVER = (
    "import importlib, sys\n"
    "from werkzeug.serving import run_simple\n"
    "app = importlib.import_module('logto_adapters.demo.tutorial_' + sys.argv[1]).app\n"
    "run_simple('127.0.0.1', int(sys.argv[2]), app, threaded=True)\n"
)


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the sample app exited during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the sample app did not start")


@pytest.fixture(params=["async", "sync"])
def sample_app(
    request: pytest.FixtureRequest, real_provider: RealProvider, browser_app_port: int
) -> Iterator[str]:
    """The tutorial app (``tutorial_async`` or ``tutorial_sync``) on the port the provider
    registered, configured through its environment variables."""
    base = f"http://127.0.0.1:{browser_app_port}"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("LOGTO_", "APP_"))
    }
    env.update(
        LOGTO_ENDPOINT=real_provider.base,
        LOGTO_APP_ID=WEB_APP,
        LOGTO_APP_SECRET=WEB_APP_SECRET,
        # The tutorial keeps every token in Flask's (zlib-compressed, signed) cookie session:
        # with two APIs and an organization token it stays near 2 KB, checked below.
        LOGTO_RESOURCES=f"{API_A} {API_B}",
        LOGTO_SCOPES="read read:b custom_data profile",
        APP_BASE_URL=base,
        APP_SECRET_KEY="interop-browser-test-secret-key",
    )
    process = subprocess.Popen(
        [sys.executable, "-c", APP_SERVER, str(request.param), str(browser_app_port)],
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


def test_sign_in_and_out_in_a_real_browser(
    sample_app: str, real_provider: RealProvider, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
        )
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{sample_app}/")
            assert page.content().count("Not authenticated") == 1

            page.click("text=Sign in")
            page.wait_for_selector("#login")
            assert page.url.startswith(f"{real_provider.base}/interaction/")
            page.fill("#username", ALICE[0])
            page.fill("#password", ALICE[1])
            page.click("#submit")

            page.wait_for_url(f"{sample_app}/")
            body = page.inner_text("body")
            assert '"sub":"u_alice"' in body, body
            assert '"name":"Alice Liddell"' in body
            assert '"custom_data":{"plan":"pro"}' in body  # from userinfo
            session = [c for c in context.cookies(sample_app) if c["name"] == "session"]
            assert session, "the app's session cookie was dropped by the browser"
            assert len(session[0]["name"]) + len(session[0]["value"]) < COOKIE_LIMIT

            page.goto(f"{sample_app}/api-token")
            assert f'"aud":"{API_A}"' in page.inner_text("body")
            page.goto(f"{sample_app}/api-token?resource={API_B}")
            assert f'"aud":"{API_B}"' in page.inner_text("body")
            page.goto(f"{sample_app}/organization-token")
            assert '"aud":"urn:logto:organization:acme"' in page.inner_text("body")
            session = [c for c in context.cookies(sample_app) if c["name"] == "session"]
            assert session and len(session[0]["value"]) < COOKIE_LIMIT

            page.goto(f"{sample_app}/")
            page.click("text=Sign out")
            page.wait_for_url(f"{sample_app}/")  # through the provider's end-session page
            assert "Not authenticated" in page.inner_text("body")
        finally:
            context.close()
