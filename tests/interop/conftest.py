"""Fixtures for the interop suite: a real OpenID provider (``oidc-provider`` configured like
Logto, ``provider/server.mjs``) run by Node.js on a loopback port for the whole session, and
helpers that play the browser with plain HTTP.

Skipped only when ``node`` is missing, and never when ``CI`` is set (then it fails).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import selectors
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

import pytest
import requests

from logto_adapters import aio, sync
from logto_core.runtime import Runtime

from .tenant import ALICE, APP_BASE, BACKCHANNEL_PATH, M2M_APP, M2M_APP_SECRET, REDIRECT

PROVIDER_DIR = Path(__file__).parent / "provider"
START_TIMEOUT = 20.0
HTTP_TIMEOUT = 10.0
KINDS = ["sync", "aio"]


def _unavailable(reason: str) -> None:
    """Skip locally; under CI a missing prerequisite is a failure, not a silent skip."""
    if os.environ.get("CI"):
        pytest.fail(f"interop suite cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def backchannel_logout_uri(port: int) -> str:
    return f"http://127.0.0.1:{port}{BACKCHANNEL_PATH}"


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

    def set_device_interval(self, seconds: float | None) -> None:
        """The ``interval`` device authorization responses name from now on (``None``:
        none, so clients poll every 5 s; the reset between tests restores that). A short
        one keeps a client's real wait between polls short."""
        params = {} if seconds is None else {"seconds": seconds}
        self._admin("POST", "device-interval", **params)

    def rotate_keys(self) -> list[str]:
        kids: list[str] = self._admin("POST", "rotate-keys")["kids"]
        return kids

    def state(self) -> dict[str, Any]:
        return self._admin("GET", "state")

    def requests_to(self, path: str) -> int:
        return int(self.state()["requests"].get(f"/oidc/{path}", 0))

    def backchannel_deliveries(self) -> dict[str, int]:
        """Back-channel logout POSTs since the reset: answered 200 (``success``), or not."""
        counts: dict[str, int] = self.state()["backchannel"]
        return counts

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
def backchannel_port() -> int:
    """The port of the back-channel logout receiver the provider registers for the web app
    (``http://127.0.0.1:<port>/back-channel-logout``); a test starts the receiver on it."""
    return free_port()


@pytest.fixture(scope="session")
def real_provider(
    browser_app_port: int, backchannel_port: int, tmp_path_factory: pytest.TempPathFactory
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
    command += ["--backchannel-logout-uri", backchannel_logout_uri(backchannel_port)]
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
    """Collects each form's action, method, named inputs (``fields``, what a submit sends) and
    named buttons (``buttons``: a button's value is sent only when it is the one pressed). A
    control belongs to the form it sits in, or to the one its ``form`` attribute names (the
    device-flow and sign-out pages put their buttons after the form)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._open = {**values, "fields": {}, "buttons": {}}
            self.forms.append(self._open)
            return
        name = values.get("name")
        owner = self._owner(values)
        if not name or owner is None:
            return
        if tag == "input":
            owner["fields"][name] = values.get("value", "")
        elif tag == "button" and values.get("value"):
            owner["buttons"][name] = values["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None

    def _owner(self, values: dict[str, str]) -> dict[str, Any] | None:
        if "form" in values:
            return next((form for form in self.forms if form.get("id") == values["form"]), None)
        return self._open


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


# ---- the user's side of the device flow (RFC 8628 section 3.3), with plain HTTP ---------------

DEVICE_HOPS = 16  # code entry, confirmation, login, consent, resume: about ten requests


@dataclass
class DeviceVisit:
    """How a visit to the provider's device pages ended: ``approved`` (the success page), or
    the code-entry page shown again with ``reason`` (oidc-provider's error name:
    ``AbortedError`` after a refusal, ``ExpiredError``, ``NotFoundError``,
    ``AlreadyUsedError``)."""

    approved: bool
    reason: str | None
    login_form_shown: bool
    """Whether the user filled in the login form (not when the browser's session sufficed)."""


_REASON = re.compile(r'id="error" data-reason="([^"]*)"')


def device_visit(
    provider: RealProvider,
    code: str,
    username: str = ALICE[0],
    password: str = ALICE[1],
    *,
    deny: Literal["confirm", "login"] | None = None,
    browser: HttpBrowser | None = None,
) -> DeviceVisit:
    """Play the user at the device pages: ``code`` is the ``user_code`` (typed into the
    page at ``<issuer>/device``) or the ``verification_uri_complete`` (opened, which submits
    the code itself). Then confirm, sign in with the login form (skipped when ``browser``
    already holds a session), consent (the provider approves it), and end on the success
    page. ``deny``: refuse instead, with the confirmation page's Abort button (``"confirm"``)
    or the login page's Cancel (``"login"``, which oidc-provider turns into the device code's
    ``access_denied`` too). Bounded: at most :data:`DEVICE_HOPS` requests of
    ``HTTP_TIMEOUT`` each."""
    http = (browser or HttpBrowser()).http
    typed: str | None = None
    url = code
    if "://" not in code:
        typed, url = code, f"{provider.issuer}/device"
    shown = False
    response = http.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    for _ in range(DEVICE_HOPS):
        if response.is_redirect:
            target = urljoin(response.url, response.headers["location"])
            response = http.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT)
            continue
        html = response.text
        if 'id="device-success"' in html:
            return DeviceVisit(approved=True, reason=None, login_form_shown=shown)
        forms = {form.get("id", ""): form for form in parse_forms(html)}
        reason = _REASON.search(html)
        if reason is not None:  # the code-entry page again, saying why
            return DeviceVisit(approved=False, reason=reason[1], login_form_shown=shown)
        if "op.deviceInputForm" in forms:
            assert typed is not None, "the provider asked for the code a second time"
            form, data = forms["op.deviceInputForm"], {"user_code": typed}
            typed = None
        elif "op.deviceConfirmForm" in forms:
            # Its hidden confirm=yes goes with either button; pressing Abort adds abort=yes,
            # which oidc-provider reads first.
            form = forms["op.deviceConfirmForm"]
            data = {"abort": form["buttons"]["abort"]} if deny == "confirm" else {}
        elif "login" in forms and deny == "login":
            form, data = forms["abort"], {}
        elif "login" in forms:
            if shown:
                raise AssertionError("the provider refused the credentials")
            shown = True
            form, data = forms["login"], {"username": username, "password": password}
        elif len(forms) == 1 and "" in forms:
            # verification_uri_complete: oidc-provider's self-submitting form (xsrf + code).
            form, data = forms[""], {}
        else:
            raise AssertionError(f"unexpected device page: {html[:500]}")
        response = http.post(
            urljoin(response.url, form["action"]),
            data={**form["fields"], **data},
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
    raise AssertionError("too many hops through the device pages")


def approve_device(
    provider: RealProvider,
    code: str,
    username: str = ALICE[0],
    password: str = ALICE[1],
    *,
    browser: HttpBrowser | None = None,
) -> DeviceVisit:
    """The user approves the device sign-in (see :func:`device_visit`); fails otherwise."""
    visit = device_visit(provider, code, username, password, browser=browser)
    assert visit.approved, f"the device sign-in was not approved: {visit.reason}"
    return visit


def deny_device(
    provider: RealProvider,
    code: str,
    *,
    at: Literal["confirm", "login"] = "confirm",
    browser: HttpBrowser | None = None,
) -> DeviceVisit:
    """The user refuses the device sign-in (see :func:`device_visit`): the device code then
    answers ``access_denied``."""
    visit = device_visit(provider, code, deny=at, browser=browser)
    assert not visit.approved and visit.reason == "AbortedError", visit
    return visit


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


def make_m2m_driver(
    kind: str, provider: RealProvider, clock: Clock, secret: str = M2M_APP_SECRET, **config: Any
) -> Driver:
    """A machine-to-machine client (``LogtoM2MClient``) of the tenant's M2M app."""
    module: Any = sync if kind == "sync" else aio
    client = module.LogtoM2MClient(
        module.LogtoConfig(endpoint=provider.base, appId=M2M_APP, appSecret=secret, **config),
        runtime=Runtime(clock=clock),
        timeout=(2.0, 10.0),
    )
    return Driver(kind, client)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# A real redis-server, for the multi-process test (tests/redis_support.py).
from tests.redis_support import redis_server, redis_url  # noqa: E402, F401
