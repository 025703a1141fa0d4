"""The tutorial, end to end, over real loopback HTTP, for both clients.

The tutorial's Flask application lives in ``logto_adapters/demo/tutorial_async.py`` (async
views, async client) and ``tutorial_sync.py`` (sync views, sync client), so that ``make demo``
ships it; each differs from the tutorial only in its import lines (and the configuration it
reads from the environment). Each run starts the embedded test provider and the app on free
loopback ports in a fresh interpreter (the apps read their configuration at import time) and
walks the tutorial's checkpoint: not authenticated, protected route redirects, sign in, ID-token
claims and userinfo, an API resource token, an organization token, sign out, not authenticated.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

EXPECTED = [
    "GET / -> 200: Not authenticated",
    "GET /protected -> 302 to /sign-in",
    "code_challenge_method = S256",
    "GET /callback -> 302 to /",
    '"sub": "u_alice"',
    '"custom_data": {',
    "GET /protected -> 200: Protected page",
    '"aud": "https://shopping.example.com/api"',
    '"scope": "read write"',
    '"aud": "urn:logto:organization:acme"',
    "post_logout_redirect_uri = http://127.0.0.1:",
    "revocation",
]


@pytest.mark.parametrize("client", ["async", "sync"])
def test_tutorial_walk(client: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOGTO_", "APP_"))}
    result = subprocess.run(
        [sys.executable, "-m", "logto_adapters.demo", "--client", client],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for marker in EXPECTED:
        assert marker in result.stdout, marker
    assert result.stdout.rstrip().splitlines()[-1].startswith("Done.")
    last_home = [line for line in result.stdout.splitlines() if line.startswith("   GET / -> ")][-1]
    assert "Not authenticated" in last_home
    assert "Traceback" not in result.stderr
