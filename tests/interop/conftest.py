"""Fixtures for the interop suite: a real OpenID provider (``oidc-provider`` configured like
Logto, ``provider/server.mjs``) run by Node.js on a loopback port for the whole session, and
helpers that play the browser with plain HTTP.

Skipped only when ``node`` is missing, and never when ``CI`` is set (then it fails).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import selectors
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from logto_adapters import aio, sync
from logto_core.runtime import Runtime

from .tenant import APP_BASE, M2M_APP, M2M_APP_SECRET, REDIRECT

PROVIDER_DIR = Path(__file__).parent / "provider"
START_TIMEOUT = 20.0
HTTP_TIMEOUT = 10.0
KINDS = ["sync", "aio"]


def _unavailable(reason: str) -> None:
    """Skip locally; under CI a missing prerequisite is a failure, not a silent skip."""
    if os.environ.get("CI"):
        pytest.fail(f"interop suite cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A port free right now on 127.0.0.1 (for a server that has to be named before it binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RealProvider:
    """The running Node.js provider and its test-only admin routes."""

    base: str
    process: subprocess.Popen[bytes]
    http: requests.Session = field(default_factory=requests.Session)

    @property
    def issuer(self) -> str:
        return f"{self.base}/oidc"

    def _admin(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.request(
            method, f"{self.base}/__test/{path}", params=params, timeout=HTTP_TIMEOUT
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def reset(self) -> None:
        self._admin("POST", "reset")

    def advance(self, seconds: float) -> None:
        self._admin("POST", "advance", seconds=seconds)

    def rotate_keys(self) -> list[str]:
        kids: list[str] = self._admin("POST", "rotate-keys")["kids"]
        return kids

    def state(self) -> dict[str, Any]:
        return self._admin("GET", "state")

    def requests_to(self, path: str) -> int:
        return int(self.state()["requests"].get(f"/oidc/{path}", 0))

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 introspection, as the machine-to-machine app."""
        response = self.http.post(
            f"{self.issuer}/token/introspection",
            data={"token": token},
            auth=(M2M_APP, M2M_APP_SECRET),
            timeout=HTTP_TIMEOUT,
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


def _wait_listening(process: subprocess.Popen[bytes], deadline: float) -> int:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer = b""
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            break
        buffer += chunk
        for line in buffer.decode(errors="replace").splitlines():
            if line.startswith("LISTENING "):
                return int(line.split()[1])
    raise RuntimeError(f"provider did not start: {buffer.decode(errors='replace')[-2000:]}")


def _wait_discovery(url: str, deadline: float) -> None:
    while True:
        try:
            if requests.get(url, timeout=2.0).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"discovery did not answer at {url}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def browser_app_port() -> int:
    """The port the browser test's sample app will bind (registered with the provider)."""
    return free_port()


@pytest.fixture(scope="session")
def real_provider(
    browser_app_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealProvider]:
    node = shutil.which("node")
    if node is None:
        _unavailable("Node.js (`node`) is not installed; the interop suite needs it")
    assert node is not None
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(
            "oidc-provider is not installed: run `npm ci --prefix tests/interop/provider`",
            pytrace=False,
        )
    log = (tmp_path_factory.mktemp("provider") / "provider.log").open("wb")
    apps = [APP_BASE, f"http://127.0.0.1:{browser_app_port}"]
    command = [node, "server.mjs", "--port", "0"]
    for app in apps:
        command += ["--app", app]
    process = subprocess.Popen(command, cwd=PROVIDER_DIR, stdout=subprocess.PIPE, stderr=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        port = _wait_listening(process, deadline)
        provider = RealProvider(f"http://127.0.0.1:{port}", process)
        _wait_discovery(f"{provider.issuer}/.well-known/openid-configuration", deadline)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


@pytest.fixture(autouse=True)
def _fresh_provider_clock(real_provider: RealProvider) -> None:
    """Each test starts at real time with zeroed request counts."""
    real_provider.reset()


class Clock:
    """The client's clock: real time plus the offset the provider's clock was moved by."""

    def __init__(self, provider: RealProvider) -> None:
        self.provider = provider
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.provider.advance(seconds)
        self.offset += seconds


@pytest.fixture
def clock(real_provider: RealProvider) -> Clock:
    return Clock(real_provider)


# ---- a browser played with plain HTTP ---------------------------------------------------------


class _Forms(HTMLParser):
    """Collects each form's action, method and named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({**values, "fields": {}})
        elif self._is_field(tag, values) and self.forms:
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")

    @staticmethod
    def _is_field(tag: str, values: dict[str, str]) -> bool:
        """A named input, or a named button carrying a value."""
        named = bool(values.get("name"))
        return named and (tag == "input" or (tag == "button" and bool(values.get("value"))))


def parse_forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@dataclass
class SignInTrip:
    callback: str
    login_form_shown: bool


class HttpBrowser:
    """Follows redirects by hand and fills the provider's login form."""

    def __init__(self) -> None:
        self.http = requests.Session()

    def sign_in(
        self, url: str, username: str, password: str, *, redirect_prefix: str = REDIRECT
    ) -> SignInTrip:
        shown = False
        response = self.http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        for _ in range(12):
            if response.is_redirect:
                target = urljoin(response.url, response.headers["location"])
                if target.startswith(redirect_prefix):
                    return SignInTrip(target, shown)
                response = self.http.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT)
                continue
            forms = parse_forms(response.text)
            login = [form for form in forms if form.get("id") == "login"]
            assert response.status_code == 200 and login, response.text[:500]
            if shown and "error" in response.text:
                raise AssertionError("the provider refused the credentials")
            shown = True
            response = self.http.post(
                urljoin(response.url, login[0]["action"]),
                data={"username": username, "password": password},
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
        raise AssertionError("too many hops during sign-in")

    def end_session(self, url: str) -> requests.Response:
        """Visit the end-session URL, submitting its confirmation form; returns the last answer
        (a redirect to the post-logout URI, or the provider's signed-out page)."""
        response = self.http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        for _ in range(6):
            if response.is_redirect:
                target = urljoin(response.url, response.headers["location"])
                if not target.startswith(self.provider_prefix(response.url)):
                    return response
                response = self.http.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT)
                continue
            forms = parse_forms(response.text)
            if not forms:
                return response
            form = forms[0]
            response = self.http.post(
                urljoin(response.url, form["action"]),
                data={**form["fields"], "logout": "yes"},
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
        raise AssertionError("too many hops during sign-out")

    @staticmethod
    def provider_prefix(url: str) -> str:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}/"


# ---- both clients through one interface ------------------------------------------------------


@dataclass
class Driver:
    """Calls a client's methods the same way for both kinds (coroutines run to completion, each
    in a fresh ``asyncio.run`` loop, as Flask's async views do)."""

    kind: str
    client: Any

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.iscoroutine(result):
                return asyncio.run(result)
            return result

        return call


def make_driver(kind: str, provider: RealProvider, clock: Clock, **config: Any) -> Driver:
    module: Any = sync if kind == "sync" else aio
    client = module.LogtoClient(
        module.LogtoConfig(endpoint=provider.base, **config),
        runtime=Runtime(clock=clock),
        timeout=(2.0, 10.0),
    )
    return Driver(kind, client)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)
