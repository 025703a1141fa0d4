"""The Flask sample app as ``make serve`` runs it (``python -m logto_adapters.demo --serve
--framework flask --client sync|aio``), against the embedded test provider, driven over
loopback HTTP: signed out, the guard, sign-in on the provider's page, the protected page with
its API and organization tokens, sign-out. Sessions on the server and in encrypted cookies.

Each run is a fresh interpreter on free ports, stopped by its pid. ``/api/hello`` is tested
in this process with Flask's test client and tokens of the embedded tenant.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from html import unescape
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from logto_adapters import sync
from logto_adapters.cookie_session import COOKIE_LIMIT
from logto_adapters.demo.flask_app import create_app
from logto_adapters.demo.settings import Settings
from logto_adapters.demo.world import ORGANIZATION_ID, SHOPPING_API, STORE_API, build_tenant
from logto_adapters.testing import serve_provider
from logto_adapters.web import ServerSessions

START_TIMEOUT = 30.0
TIMEOUT = 10.0


def _read_urls(process: subprocess.Popen[bytes]) -> tuple[str, str]:
    """The app's and the provider's URLs, from the lines the demo prints when it is up."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT
    text = ""
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            break
        text += chunk.decode(errors="replace")
        app = re.search(r"^Sample app \(flask, \w+ client\): (\S+)/$", text, re.MULTILINE)
        provider = re.search(r"^Provider: (\S+)$", text, re.MULTILINE)
        if app and provider:
            return app[1], provider[1]
    raise RuntimeError(f"the demo did not start: {text[-2000:]}")


@pytest.fixture(params=["sync", "aio"])
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=["server", "cookie"])
def sessions(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served_demo(client: str, sessions: str) -> Iterator[tuple[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGTO_", "APP_"))}
    env.update(PYTHONUNBUFFERED="1", APP_SESSIONS=sessions)
    command = [sys.executable, "-m", "logto_adapters.demo", "--serve", "--framework", "flask"]
    command += ["--client", client, "--app-port", "0", "--provider-port", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield _read_urls(process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        assert process.stderr is not None
        errors = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        assert process.stdout is not None
        process.stdout.close()
        assert "Traceback" not in errors, errors[-2000:]


def _sign_in_at_the_provider(browser: requests.Session, authorization: str) -> str:
    """Fill in the embedded provider's sign-in page as alice; the callback URL."""
    page = browser.get(authorization, timeout=TIMEOUT)
    assert page.status_code == 200
    action = unescape(re.search(r'action="([^"]*)"', page.text)[1])  # type: ignore[index]
    hidden = unescape(re.search(r'name="request" value="([^"]*)"', page.text)[1])  # type: ignore[index]
    answer = browser.post(
        urljoin(authorization, action),
        data={"request": hidden, "username": "alice", "action": "approve"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 303
    return str(answer.headers["location"])


def test_the_sample_app_signs_in_gets_tokens_and_signs_out(
    served_demo: tuple[str, str], sessions: str
) -> None:
    app, provider = served_demo
    browser = requests.Session()

    def get(path: str) -> requests.Response:
        return browser.get(urljoin(app, path), allow_redirects=False, timeout=TIMEOUT)

    assert "Sign in" in get("/").text
    guarded = get("/protected")
    assert guarded.status_code == 302 and guarded.headers["location"] == "/sign-in?next=/protected"
    assert get("/protected").status_code == 302
    api = browser.get(urljoin(app, "/protected"), headers={"Accept": "application/json"})
    assert api.status_code == 401

    started = get(guarded.headers["location"])
    assert started.status_code == 302 and started.headers["location"].startswith(provider)
    callback = _sign_in_at_the_provider(browser, started.headers["location"])
    assert callback.startswith(f"{app}/callback?")
    done = get(callback)
    assert done.status_code == 302 and done.headers["location"] == "/protected"

    protected = get("/protected")
    assert protected.status_code == 200
    body = protected.json()
    assert body["sub"] == "u_alice"
    assert [token["aud"] for token in body["tokens"]] == [
        SHOPPING_API,
        STORE_API,
        f"urn:logto:organization:{ORGANIZATION_ID}",
    ]
    assert body["tokens"][0]["scope"] == "read write"
    home = get("/").json()
    assert home["sub"] == "u_alice" and home["name"] == "Alice Liddell"
    if sessions == "cookie":
        chunks = [c for c in browser.cookies if c.name.startswith("logto_session.")]
        assert chunks and all(len(c.name) + len(c.value or "") < COOKIE_LIMIT for c in chunks)
    else:
        assert [c.name for c in browser.cookies if c.domain.startswith("127.0.0.1")] == [
            "logto_sid"
        ]

    api = get("/api/hello")  # a session is no bearer token
    assert api.status_code == 401 and api.headers["WWW-Authenticate"] == "Bearer"

    out = get("/sign-out")
    assert out.status_code == 302 and out.headers["location"].startswith(provider)
    ended = browser.get(out.headers["location"], allow_redirects=False, timeout=TIMEOUT)
    assert ended.headers["location"] == f"{app}/"
    assert "Sign in" in get("/").text
    assert get("/protected").status_code == 302


# ---- /api/hello, in this process ---------------------------------------------------------

APP_BASE = "http://localhost"  # Flask's test client


@pytest.fixture
def tenant() -> Iterator[Any]:
    box: list[Any] = []

    def factory(url: str) -> Any:
        box.append(build_tenant(url, APP_BASE))
        return box[0].provider

    with serve_provider(factory, max_delay=5.0) as served:
        yield served, box[0]


def token_of(served: Any, tenant: Any, resource: str, scopes: list[str]) -> str:
    """A user's access token for ``resource``, from a client of the sample app's own."""
    client = sync.LogtoClient(
        sync.LogtoConfig(
            endpoint=served.url,
            appId=tenant.app_id,
            appSecret=tenant.app_secret,
            scopes=scopes,
            resources=[resource],
        )
    )
    client.handleSignInCallback(
        served.provider.approve(client.signIn(f"{APP_BASE}/callback"), "u_alice")
    )
    token = client.getAccessToken(resource)
    client.close()
    assert token is not None
    return str(token)


def test_the_sample_api_answers_a_token_granting_read(client: str, tenant: Any) -> None:
    served, world = tenant
    settings = Settings(
        endpoint=served.url,
        app_id=world.app_id,
        app_secret=world.app_secret,
        base_url=APP_BASE,
        secret_key="unused",
        resources=list(world.resources),
        scopes=list(world.scopes),
    )
    api = create_app(client, settings).test_client()
    good = token_of(served, world, SHOPPING_API, ["read"])
    assert api.get("/api/hello", headers={"Authorization": f"Bearer {good}"}).json == {
        "sub": "u_alice"
    }
    missing = api.get("/api/hello")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    other_api = token_of(served, world, STORE_API, ["read"])
    wrong = api.get("/api/hello", headers={"Authorization": f"Bearer {other_api}"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    write_only = token_of(served, world, SHOPPING_API, ["write"])
    refused = api.get("/api/hello", headers={"Authorization": f"Bearer {write_only}"})
    assert refused.status_code == 403
    assert 'scope="read"' in refused.headers["WWW-Authenticate"]


def test_the_sample_api_without_resources_says_so(client: str) -> None:
    settings = Settings(
        endpoint="http://127.0.0.1:9", app_id="a", app_secret=None, base_url=APP_BASE, secret_key=""
    )
    answer = create_app(client, settings).test_client().get("/api/hello")
    assert answer.status_code == 404 and "LOGTO_RESOURCES" in (answer.json or {})["error"]


def test_the_sample_back_channel_logout_signs_the_user_out(client: str, tenant: Any) -> None:
    served, world = tenant
    settings = Settings(
        endpoint=served.url,
        app_id=world.app_id,
        app_secret=world.app_secret,
        base_url=APP_BASE,
        secret_key="unused",
    )
    browser = create_app(client, settings, sessions=ServerSessions(secure=False)).test_client()
    started = browser.get("/sign-in")
    callback = served.provider.approve(started.headers["Location"], "u_alice")
    assert browser.get(callback.removeprefix(APP_BASE)).status_code == 302
    assert browser.get("/protected").status_code == 200
    token = served.provider.logout_token(world.app_id, sub="u_alice")
    answer = browser.application.test_client().post(
        "/back-channel-logout", data={"logout_token": token}
    )
    assert answer.status_code == 200
    assert browser.get("/protected").status_code == 302
