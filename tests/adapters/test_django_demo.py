"""``python -m logto_adapters.demo --serve --framework django --client sync|aio``: the sample
app listens on APP_BASE_URL's host and port beside the embedded provider, signs a user in
over real loopback HTTP, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from html import unescape
from urllib.parse import urljoin

import pytest
import requests

TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Output:
    """The demo's standard output, read line by line without blocking past a deadline (a
    buffered reader would hold lines the selector no longer sees)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        self.fd = process.stdout.fileno()
        self.selector = selectors.DefaultSelector()
        self.selector.register(process.stdout, selectors.EVENT_READ)
        self.buffer = b""

    def line_after(self, prefix: str, deadline: float) -> str:
        """The rest of the first line starting with ``prefix``."""
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith(prefix):
                    return text.removeprefix(prefix).strip()
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(timeout=left):
                raise AssertionError(f"the demo did not print {prefix!r} in time")
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise AssertionError(f"the demo ended before printing {prefix!r}")
            self.buffer += chunk


def _approve(http: requests.Session, auth_url: str, user: str) -> str:
    """The embedded provider's sign-in page, filled in as ``user``: the callback URL."""
    page = http.get(auth_url, timeout=TIMEOUT)
    assert page.status_code == 200, page.text[:300]
    action = unescape(re.search(r'action="([^"]*)"', page.text).group(1))  # type: ignore[union-attr]
    hidden = unescape(re.search(r'name="request" value="([^"]*)"', page.text).group(1))  # type: ignore[union-attr]
    answer = http.post(
        urljoin(auth_url, action),
        data={"request": hidden, "username": user, "action": "approve"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 303, answer.text[:300]
    return answer.headers["location"]


@pytest.mark.parametrize("client", ["sync", "aio"])
def test_the_django_demo_serves_the_sample_app_and_stops_on_ctrl_c(client: str) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGTO_", "APP_"))}
    env.update(APP_BASE_URL=base, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "logto_adapters.demo", "--serve", "--framework", "django"]
    process = subprocess.Popen(
        [*command, "--client", client, "--provider-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    output = _Output(process)
    try:
        deadline = time.monotonic() + 30
        assert output.line_after("Sample app (django, ", deadline).endswith(f"{base}/")
        output.line_after("Provider: ", deadline)
        http = requests.Session()
        assert "Not authenticated" in http.get(f"{base}/", timeout=TIMEOUT).text
        start = http.get(f"{base}/sign-in?next=/protected", allow_redirects=False, timeout=TIMEOUT)
        assert start.status_code == 302
        callback = _approve(http, start.headers["location"], "alice")
        assert callback.startswith(f"{base}/callback?")
        done = http.get(callback, allow_redirects=False, timeout=TIMEOUT)
        assert done.status_code == 302 and done.headers["location"] == "/protected"
        page = http.get(f"{base}/protected", allow_redirects=False, timeout=TIMEOUT)
        assert page.status_code == 200, page.text[:300]
        assert page.json()["sub"] == "u_alice"
        assert page.json()["api"]["scope"] == "read write"
        assert http.get(f"{base}/", timeout=TIMEOUT).json()["name"] == "Alice Liddell"
        out = http.get(f"{base}/sign-out", allow_redirects=False, timeout=TIMEOUT)
        assert out.status_code == 302 and "post_logout_redirect_uri" in out.headers["location"]
        assert "Not authenticated" in http.get(f"{base}/", timeout=TIMEOUT).text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, errors = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate(timeout=10)
            raise
    assert process.returncode == 0, errors[-2000:]
    assert b"Traceback" not in errors
