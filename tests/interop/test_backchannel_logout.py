"""Back-channel logout with the real oidc-provider (its ``backchannelLogout`` feature, as Logto
runs it): a user signed in to the web app (``backchannel_receiver``, a process of its own with
a ``SessionRegistry``) signs out in another app of the tenant; the provider ends her session
and POSTs a logout token to the web app, which verifies it and signs out her session there,
and only hers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import (
    HTTP_TIMEOUT,
    START_TIMEOUT,
    Clock,
    HttpBrowser,
    RealProvider,
    _wait_listening,
    make_driver,
)
from .tenant import ALICE, BOB, POST_LOGOUT, PUBLIC_APP, REDIRECT

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Receiver:
    """The web app's process, driven over its loopback routes."""

    base: str
    process: subprocess.Popen[bytes]
    http: requests.Session = field(default_factory=requests.Session)

    def sign_in(self, browser: HttpBrowser, user: tuple[str, str, str]) -> str:
        """Sign ``user`` in through the provider's login form; the app's session id."""
        started = self.http.post(f"{self.base}/sign-in", timeout=HTTP_TIMEOUT).json()
        trip = browser.sign_in(started["url"], user[0], user[1])
        sent = {"session": started["session"], "url": trip.callback}
        finished = self.http.post(f"{self.base}/callback", json=sent, timeout=HTTP_TIMEOUT)
        finished.raise_for_status()
        session_id: str = finished.json()["session"]
        assert session_id != started["session"]  # rotated at sign-in
        return session_id

    def session(self, session_id: str) -> dict[str, Any]:
        answer = self.http.get(
            f"{self.base}/session", params={"id": session_id}, timeout=HTTP_TIMEOUT
        )
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def received(self) -> list[dict[str, Any]]:
        answer = self.http.get(f"{self.base}/received", timeout=HTTP_TIMEOUT)
        answer.raise_for_status()
        body: list[dict[str, Any]] = answer.json()
        return body


@pytest.fixture
def receiver(
    kind: str,
    real_provider: RealProvider,
    backchannel_port: int,
    tmp_path: Path,
) -> Iterator[Receiver]:
    """The web app on the port the provider registered as its back-channel logout URI,
    started for the test and stopped by its pid."""
    log = (tmp_path / "receiver.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "tests.interop.backchannel_receiver",
        "--client",
        kind,
        "--port",
        str(backchannel_port),
        "--endpoint",
        real_provider.base,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGTO_", "APP_"))}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log)
    try:
        port = _wait_listening(process, time.monotonic() + START_TIMEOUT)
        assert port == backchannel_port
        yield Receiver(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()


def test_a_session_ended_at_the_provider_is_signed_out_at_the_app(
    kind: str, real_provider: RealProvider, receiver: Receiver, clock: Clock
) -> None:
    alice, bob = HttpBrowser(), HttpBrowser()
    alice_at_app = receiver.sign_in(alice, ALICE)
    bob_at_app = receiver.sign_in(bob, BOB)
    seen = receiver.session(alice_at_app)
    assert seen["authenticated"] and seen["sub"] == ALICE[2] and seen["sid"]

    # Alice also uses another app of the tenant, in the same browser (no login form: one
    # session at the provider), and signs out there.
    other = make_driver("sync", real_provider, clock, appId=PUBLIC_APP)
    trip = alice.sign_in(other.signIn(REDIRECT), ALICE[0], ALICE[1])
    assert not trip.login_form_shown
    other.handleSignInCallback(trip.callback)
    answer = alice.end_session(other.signOut(POST_LOGOUT))
    assert answer.is_redirect and answer.headers["location"].startswith(POST_LOGOUT)

    # The provider waited for the web app's answer before it redirected: it is all done.
    assert receiver.received() == [
        {"status": 200, "code": None, "ended": 1, "sid": seen["sid"], "sub": ALICE[2]}
    ]
    assert real_provider.backchannel_deliveries() == {"success": 1, "error": 0}
    assert receiver.session(alice_at_app) == {"authenticated": False, "known": True}
    assert receiver.session(bob_at_app)["authenticated"] is True
