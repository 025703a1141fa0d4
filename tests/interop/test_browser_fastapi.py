"""The FastAPI sample app served as ``python -m logto_adapters.demo --serve --framework
fastapi`` (uvicorn, on APP_BASE_URL's port), driven by a real headless Chromium through the
real provider's pages: sign in with the login form, the claims, the protected page with its
API token, the API refusing the browser (no bearer token), sign out; then the server
stopped by SIGTERM, cleanly.

Needs Debian's ``chromium`` and Playwright for Python, as ``test_browser.py``; skipped
locally when either is missing, fails under ``CI``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import RealProvider, _unavailable
from .tenant import ALICE, API_A, API_B, WEB_APP, WEB_APP_SECRET
from .test_browser import CHROMIUM, CHROMIUM_ARGS, COOKIE_LIMIT, _wait_port

STOP_TIMEOUT = 15.0


@pytest.fixture
def fastapi_app(real_provider: RealProvider, browser_app_port: int) -> Iterator[str]:
    base = f"http://127.0.0.1:{browser_app_port}"
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("LOGTO_", "APP_"))
    }
    env.update(
        LOGTO_ENDPOINT=real_provider.base,
        LOGTO_APP_ID=WEB_APP,
        LOGTO_APP_SECRET=WEB_APP_SECRET,
        LOGTO_RESOURCES=f"{API_A} {API_B}",
        LOGTO_SCOPES="read read:b custom_data profile",
        APP_BASE_URL=base,  # the app listens on its port
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "logto_adapters.demo", "--serve", "--framework", "fastapi"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_port(browser_app_port, process)
        yield base
        process.terminate()  # SIGTERM: uvicorn shut down, the app's Logto closed
        _, errors = process.communicate(timeout=STOP_TIMEOUT)
        assert process.returncode == 0, errors.decode(errors="replace")[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def body_json(text: str) -> dict[str, object]:
    value: dict[str, object] = json.loads(text)
    return value


def test_fastapi_sign_in_and_out_in_a_real_browser(
    fastapi_app: str, real_provider: RealProvider, tmp_path: Path
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
            page.goto(f"{fastapi_app}/protected")  # signed out: to sign-in, then Logto
            page.wait_for_selector("#login")
            assert page.url.startswith(f"{real_provider.base}/interaction/")
            page.fill("#username", ALICE[0])
            page.fill("#password", ALICE[1])
            page.click("#submit")

            page.wait_for_url(f"{fastapi_app}/protected")  # back where the user was going
            protected = body_json(page.inner_text("body"))
            assert protected["sub"] == ALICE[2]
            assert protected["api"]["aud"] == API_A  # type: ignore[index]
            cookies = {c["name"]: c for c in context.cookies(fastapi_app)}
            sid = cookies["logto_sid"]
            assert sid.get("httpOnly") and sid.get("sameSite") == "Lax"
            assert len(sid["name"]) + len(sid["value"]) < COOKIE_LIMIT

            page.goto(f"{fastapi_app}/")
            claims = body_json(page.inner_text("body"))
            assert claims["sub"] == ALICE[2] and claims["name"] == "Alice Liddell"
            answer = page.goto(f"{fastapi_app}/api/hello")  # a browser sends no bearer token
            assert answer is not None and answer.status == 401
            assert answer.headers["www-authenticate"] == "Bearer"

            page.goto(f"{fastapi_app}/sign-out")
            page.wait_for_url(f"{fastapi_app}/")  # through the provider's end-session page
            assert "Not signed in" in page.inner_text("body")
            page.goto(f"{fastapi_app}/protected")
            page.wait_for_selector("#login")  # signed out for good: the login form again
        finally:
            context.close()
