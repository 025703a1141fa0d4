"""The headless walk: a scripted browser going through the tutorial's checkpoint, printed."""

from __future__ import annotations

import json
import re
import time
from html import unescape
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from logto_adapters.testing import ServedProvider

TIMEOUT = 10.0


def _short(value: str, keep: int = 10) -> str:
    """Long credentials are shortened in the printout; the demo shows shapes, not secrets."""
    return value if len(value) <= keep + 3 else value[:keep] + "..."


def _show_url(url: str) -> str:
    parts = urlsplit(url)
    lines = [f"{parts.scheme}://{parts.netloc}{parts.path}"]
    for key, value in parse_qsl(parts.query):
        sensitive = key in {"code", "state", "nonce", "code_challenge", "id_token_hint"}
        lines.append(f"      {key} = {_short(value) if sensitive else value}")
    return "\n".join(lines)


def _show_json(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True)
    except ValueError:
        return text


def _step(number: int, title: str) -> None:
    print(f"\n== {number}. {title}")


class _Browser:
    def __init__(self) -> None:
        self.http = requests.Session()

    def get(self, url: str) -> requests.Response:
        return self.http.get(url, allow_redirects=False, timeout=TIMEOUT)

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(url, data=data, allow_redirects=False, timeout=TIMEOUT)


def _expect(response: requests.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise SystemExit(
            f"demo failed at {what}: HTTP {response.status_code}: {response.text[:300]}"
        )


def walk(app_url: str, served: ServedProvider, *, client: str, user: str) -> int:
    browser = _Browser()
    print(f"Sample app ({client} client) at {app_url}")
    print(f"Embedded Logto-compatible provider at {served.url}")

    _step(1, "A visitor opens the app")
    home = browser.get(app_url + "/")
    _expect(home, 200, "home")
    print(f"   GET / -> {home.status_code}: {home.text}")
    guarded = browser.get(app_url + "/protected")
    _expect(guarded, 302, "protected route before sign-in")
    print(
        f"   GET /protected -> 302 to {guarded.headers['location']} (the @authenticated decorator)"
    )

    _step(2, "Sign-in: the app sends the browser to the provider")
    start = browser.get(app_url + "/sign-in")
    _expect(start, 302, "sign-in")
    auth_url = start.headers["location"]
    print(f"   GET /sign-in -> 302 to\n   {_show_url(auth_url)}")

    _step(3, f"The user signs in on the provider's page as {user!r}")
    page = browser.get(auth_url)
    _expect(page, 200, "sign-in page")
    action = unescape(re.search(r'action="([^"]*)"', page.text).group(1))  # type: ignore[union-attr]
    hidden = unescape(re.search(r'name="request" value="([^"]*)"', page.text).group(1))  # type: ignore[union-attr]
    answer = browser.post(
        urljoin(auth_url, action), {"request": hidden, "username": user, "action": "approve"}
    )
    _expect(answer, 303, "sign-in form")
    callback = answer.headers["location"]
    print(f"   the provider redirects back to\n   {_show_url(callback)}")

    _step(4, "The app handles the callback (state, iss, code exchange, ID-token verification)")
    done = browser.get(callback)
    _expect(done, 302, "callback")
    print(f"   GET /callback -> 302 to {done.headers['location']}")

    _step(5, "Home page: ID-token claims, then userinfo")
    home = browser.get(app_url + "/")
    _expect(home, 200, "signed-in home")
    claims, info, _ = home.text.split("<br>", 2)
    print("   ID-token claims:\n" + _indent(_show_json(claims)))
    print("   userinfo:\n" + _indent(_show_json(info)))
    guarded = browser.get(app_url + "/protected")
    _expect(guarded, 200, "protected route after sign-in")
    print(f"   GET /protected -> 200: {guarded.text}")

    _step(6, "An API resource token")
    api = browser.get(app_url + "/api-token")
    _expect(api, 200, "api token")
    print(_indent(_show_json(api.text)))

    _step(7, "An organization token")
    org = browser.get(app_url + "/organization-token")
    _expect(org, 200, "organization token")
    print(_indent(_show_json(org.text)))

    _step(8, "Sign-out: refresh token revoked, then the provider's end-session endpoint")
    out = browser.get(app_url + "/sign-out")
    _expect(out, 302, "sign-out")
    end_session = out.headers["location"]
    print(f"   GET /sign-out -> 302 to\n   {_show_url(end_session)}")
    back = browser.get(end_session)
    target = back.headers.get("location", "(no redirect)")
    print(f"   the provider answers {back.status_code} to {target}")

    _step(9, "The visitor is signed out")
    home = browser.get(app_url + "/")
    _expect(home, 200, "home after sign-out")
    print(f"   GET / -> {home.status_code}: {home.text}")
    if not home.text.startswith("Not authenticated"):
        raise SystemExit("demo failed: still signed in after sign-out")
    # signOut revokes the refresh token in the background: give it a moment (bounded).
    for _ in range(50):
        if any(entry.endpoint == "revocation" for entry in served.provider.log):
            break
        time.sleep(0.1)
    requests_seen = [entry.endpoint for entry in served.provider.log]
    print(f"\nDone. The provider saw {len(requests_seen)} requests: {', '.join(requests_seen)}")
    return 0


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines())
