"""The examples of the docs run: a doc that shows code shows code that works."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from logto_adapters import sync
from logto_adapters.testing import serve_provider
from logto_core.jose.jwt import decode_unverified
from logto_core.testing import TestProvider

ROOT = Path(__file__).resolve().parent.parent
REDIRECT = "http://127.0.0.1:9/callback"
API = "https://api.example.com"


def example(doc: str, name: str) -> str:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- example: {re.escape(name)} .*?-->\n```python\n(.*?)```", text, re.DOTALL
    )
    assert found is not None, f"no example {name!r} in docs/{doc}"
    return found.group(1)


def test_the_custom_transport_example_signs_in_and_gets_a_token() -> None:
    code = example("architecture.md", "custom-transport")
    assert len(code.strip().splitlines()) <= 30  # short enough to read at a glance
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])
        namespace: dict[str, Any] = {
            "ENDPOINT": served.url,
            "APP_ID": "app",
            "APP_SECRET": "s" * 32,
            "REDIRECT_URI": REDIRECT,
            "__name__": "example",
        }
        exec(compile(code, "docs/architecture.md", "exec"), namespace)
        ops, run_operation, perform = (namespace[n] for n in ("ops", "run_operation", "perform"))
        callback = provider.approve(namespace["url"], "ada")
        run_operation(ops.callback_op(namespace["context"], callback), perform)
        assert namespace["stored"].is_authenticated
        token = run_operation(ops.get_access_token_op(namespace["context"]), perform)
        assert isinstance(token, str) and token


def _now() -> float:
    import time

    return time.time()


M2M_SECRET = "m" * 32
MANAGEMENT_API = "https://default.logto.app/api"


def _namespace(served: Any, **values: Any) -> dict[str, Any]:
    return {"ENDPOINT": served.url, "API": API, "__name__": "example", **values}


def test_the_management_api_example_sends_a_cached_machine_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    code = example("machine-to-machine.md", "management-api")
    sent: list[tuple[str, dict[str, str]]] = []

    class Answer:
        def raise_for_status(self) -> None:
            return None

        def json(self) -> list[dict[str, object]]:
            return [{"id": "u1"}]

    def fake_get(url: str, *, headers: dict[str, str], timeout: float) -> Answer:
        sent.append((url, headers))
        return Answer()

    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("m2m", secret=M2M_SECRET, kind="m2m")
        provider.add_resource(MANAGEMENT_API, ["all"])
        provider.grant_permissions("m2m", MANAGEMENT_API, ["all"])
        namespace = _namespace(served, APP_ID="m2m", APP_SECRET=M2M_SECRET)
        exec(compile(code, "docs/machine-to-machine.md", "exec"), namespace)
        monkeypatch.setattr(requests, "get", fake_get)
        assert namespace["list_users"]() == [{"id": "u1"}]
        assert namespace["list_users"]() == [{"id": "u1"}]
        namespace["m2m"].close()
        assert sum(1 for e in provider.log if e.grant_type == "client_credentials") == 1
    (url, headers), _ = sent
    assert url == f"{served.url}/api/users"
    token = headers["Authorization"].removeprefix("Bearer ")
    claims = decode_unverified(token)[1]
    assert claims["aud"] == MANAGEMENT_API and claims["scope"] == "all"


def test_the_role_change_example_sees_new_scopes() -> None:
    code = example("api-tokens.md", "role-change")
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])
        namespace = _namespace(served, APP_ID="app", APP_SECRET="s" * 32)
        exec(compile(code, "docs/api-tokens.md", "exec"), namespace)
        client = namespace["client"]
        client.handleSignInCallback(provider.approve(client.signIn(REDIRECT), "ada"))
        assert namespace["scopes_now"]() == []
        provider.grant_permissions("ada", API, ["read"])  # the role change
        assert (client.getAccessTokenClaims(API).scope or "") == ""  # the cache still answers
        assert namespace["scopes_now"]() == ["read"]
        client.close()


def test_the_personal_access_token_example_exchanges_for_the_api() -> None:
    code = example("token-exchange.md", "personal-access-token")
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])
        provider.grant_permissions("ada", API, ["read"])
        pat = provider.create_personal_access_token("ada")
        namespace = _namespace(served, APP_ID="app", APP_SECRET="s" * 32)
        exec(compile(code, "docs/token-exchange.md", "exec"), namespace)
        token = namespace["api_token_for"](pat)
        assert namespace["api_token_for"](pat) != token  # reusable, and never cached
        namespace["logto"].close()
    claims = decode_unverified(token)[1]
    assert claims["sub"] == "ada" and claims["aud"] == API and claims["scope"] == "read"


def test_the_device_cli_example_signs_in_then_stays_signed_in(tmp_path: Path) -> None:
    code = example("device-sign-in.md", "device-cli")
    lines: list[str] = []
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("cli", kind="native", device_flow=True)
        provider.devices.interval = 1
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])

        def shown(text: str) -> None:
            lines.append(text)
            if " and enter " in text:  # the user does what the tool says, on their phone
                provider.approve_device(text.rsplit(" ", 1)[-1], "ada")

        for _ in range(2):  # the second run finds the stored session
            namespace = _namespace(served, APP_ID="cli", SESSION_DIR=str(tmp_path), print=shown)
            exec(compile(code, "docs/device-sign-in.md", "exec"), namespace)
            assert namespace["main"]() == 0
            namespace["client"].close()
    assert lines[-1] == lines[-2] == "Signed in as ada"
    assert sum(" and enter " in line for line in lines) == 1
    assert any("user_code=" in line for line in lines)


def test_the_cookie_session_example_keeps_the_attempt_in_cookies() -> None:
    from cryptography.fernet import Fernet

    code = example("storage.md", "cookie-session")
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")
        provider.add_user("ada", name="Ada")
        key = Fernet.generate_key()
        namespace = _namespace(served, APP_ID="app", APP_SECRET="s" * 32, COOKIE_KEY=key)
        exec(compile(code, "docs/storage.md", "exec"), namespace)
        url, headers = namespace["handle"]({}, REDIRECT)
        assert url.startswith(served.url) and len(headers) == 2
        first, second = headers
        assert first.startswith("logto_session.0=") and "HttpOnly" in first
        assert second.startswith("logto_session.1=;") and "Max-Age=0" in second
        jar = {"logto_session.0": first.split(";", 1)[0].split("=", 1)[1]}
        callback = provider.approve(url, "ada")
        session = namespace["logto"].session(namespace["cipher"].session(jar))
        session.handleSignInCallback(callback)  # the attempt came back from the cookie
        assert session.getIdTokenClaims().sub == "ada"
        namespace["logto"].close()


def test_the_redis_storage_example_shares_a_session_between_workers(tmp_path: Path) -> None:
    from tests.adapters.redis_server import running_redis

    code = example("storage.md", "redis-storage")
    assert len(code.strip().splitlines()) <= 15
    with (
        running_redis(tmp_path) as redis_server,
        serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served,
    ):
        provider = served.provider
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")
        provider.add_user("ada", name="Ada")
        values = {"APP_ID": "app", "APP_SECRET": "s" * 32, "REDIS_URL": redis_server.url}
        workers = []
        for _ in range(2):  # two worker processes: the module runs in each
            namespace = _namespace(served, **values)
            exec(compile(code, "docs/storage.md", "exec"), namespace)
            workers.append(namespace)
        one, two = (worker["session_of"] for worker in workers)
        session_id, session = one(None)
        url = session.signIn(REDIRECT)
        _, there = two(session_id)  # the callback reaches the other worker
        there.handleSignInCallback(provider.approve(url, "ada"))
        assert one(session_id)[1].getIdTokenClaims().sub == "ada"
        assert one(None)[1].isAuthenticated() is False  # another browser
        for worker in workers:
            worker["logto"].close()


def test_the_guard_example_answers_every_case() -> None:
    code = example("protecting-apis.md", "guard")
    assert len(code.strip().splitlines()) <= 20  # short enough to read at a glance
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("m2m", secret=M2M_SECRET, kind="m2m")
        provider.add_resource(API, ["read", "write"])
        provider.grant_permissions("m2m", API, ["read"])
        namespace = _namespace(served)
        exec(compile(code, "docs/protecting-apis.md", "exec"), namespace)
        guard = namespace["guard"]
        m2m = sync.LogtoM2MClient(
            sync.LogtoConfig(endpoint=served.url, appId="m2m", appSecret=M2M_SECRET)
        )
        token = m2m.getAccessToken(API, scopes=["read"])
        m2m.close()
        assert guard(f"Bearer {token}", ["read"]) == (200, {}, {"sub": "m2m", "scope": "read"})
        assert guard(None, ["read"]) == (
            401,
            {"WWW-Authenticate": 'Bearer realm="orders"'},
            {"error": "unauthorized"},
        )
        status, headers, body = guard(f"Bearer {token}", ["read", "write"])
        assert (status, body) == (403, {"error": "insufficient_scope"})
        assert headers["WWW-Authenticate"].startswith(
            'Bearer realm="orders", error="insufficient_scope", error_description="'
        )
        assert headers["WWW-Authenticate"].endswith('scope="read write"')
        status, headers, body = guard(f"Bearer {token} {token}", ["read"])
        assert (status, body) == (400, {"error": "invalid_request"})
        status, headers, body = guard(f"Bearer {token[:-8]}AAAAAAAA", ["read"])
        assert (status, body) == (401, {"error": "invalid_token"})
        assert token not in headers["WWW-Authenticate"]
        namespace["api"].close()
    # Logto out of reach (nothing listens there any more): 503, not the caller's fault.
    unreachable = _namespace(served)
    exec(compile(code, "docs/protecting-apis.md", "exec"), unreachable)
    status, headers, body = unreachable["guard"](f"Bearer {token}", ["read"])
    assert status == 503 and headers == {"Retry-After": "10"}
    assert str(body["error"]).startswith("transport.")
    unreachable["api"].close()


def test_the_django_examples_sign_in_guard_a_page_protect_an_api_and_log_out() -> None:
    from django.test import Client, override_settings

    from logto_adapters.django import get_logto_app
    from logto_adapters.web import WebRequest
    from logto_core.testing import logout_request

    from .django_support import configure_django

    configure_django()
    site = "https://app.example.com"
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client(
            "app",
            secret="s" * 32,
            redirect_uris=[f"{site}/callback"],
            post_logout_redirect_uris=[f"{site}/"],
            kind="traditional",
        )
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])
        provider.grant_permissions("ada", API, ["read"])
        conf = _namespace(served, APP_ID="app", APP_SECRET="s" * 32)
        exec(compile(example("django.md", "django-settings"), "docs/django.md", "exec"), conf)
        assert "logto_adapters.django" in conf["INSTALLED_APPS"]
        views: dict[str, Any] = {"API": API, "__name__": "example_views"}
        exec(compile(example("django.md", "django-views"), "docs/django.md", "exec"), views)
        urls = type("ExampleUrls", (), {"urlpatterns": views["urlpatterns"]})  # a URLconf
        with override_settings(
            LOGTO=conf["LOGTO"], MIDDLEWARE=conf["MIDDLEWARE"], ROOT_URLCONF=urls
        ):
            browser = Client()
            assert b"Sign in" in browser.get("/").content
            assert browser.get("/profile")["Location"] == "/sign-in?next=%2Fprofile"
            start = browser.get("/sign-in?next=/profile")
            callback = provider.approve(start["Location"], "ada")
            assert callback.startswith(f"{site}/callback?")
            assert browser.get(callback.removeprefix(site))["Location"] == "/profile"
            assert browser.get("/profile").json() == {"name": "Ada", "scope": "read"}
            assert browser.get("/").json() == {"sub": "ada"}

            app = get_logto_app()
            cookies = {name: morsel.value for name, morsel in browser.cookies.items()}
            session = app.logto.session(
                app.sessions.open(WebRequest("GET", site, {}, cookies)).storage
            )
            token = session.getAccessToken(API)
            api = Client()
            assert api.get("/api/hello", headers={"Authorization": f"Bearer {token}"}).json() == {
                "sub": "ada"
            }
            assert api.get("/api/hello").status_code == 401

            sid = session.getIdTokenClaims().sid
            logout = logout_request(
                f"{site}/back-channel-logout", provider.logout_token("app", sid=sid)
            )
            from_logto = Client(enforce_csrf_checks=True).post(
                "/back-channel-logout", logout.body, "application/x-www-form-urlencoded"
            )
            assert from_logto.status_code == 200
            assert browser.get("/profile").status_code == 302  # signed out by Logto
            out = browser.get("/sign-out")
            assert out.status_code == 302 and out["Location"].startswith(served.url)
            assert b"Sign in" in browser.get("/").content


def test_the_flask_example_signs_in_guards_and_answers_the_api() -> None:
    code = example("flask.md", "flask-app")
    base = "http://localhost"  # Flask's test client
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client(
            "app",
            secret="s" * 32,
            redirect_uris=[f"{base}/callback"],
            post_logout_redirect_uris=[f"{base}/"],
            kind="traditional",
        )
        provider.add_client("m2m", secret=M2M_SECRET, kind="m2m")
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])
        provider.grant_permissions("ada", API, ["read"])
        provider.grant_permissions("m2m", API, ["read"])
        namespace = _namespace(served, APP_ID="app", APP_SECRET="s" * 32, BASE_URL=base)
        exec(compile(code, "docs/flask.md", "exec"), namespace)
        browser = namespace["app"].test_client()
        assert "Sign in" in browser.get("/").text
        guarded = browser.get("/orders")
        assert guarded.headers["Location"] == "/sign-in?next=/orders"
        started = browser.get(guarded.headers["Location"])
        callback = provider.approve(started.headers["Location"], "ada")
        back = browser.get(callback.removeprefix(base))
        assert back.status_code == 302 and back.headers["Location"] == "/orders"
        assert browser.get("/").json == {"sub": "ada"}
        assert browser.get("/orders").json == {"scope": "read"}

        m2m = sync.LogtoM2MClient(
            sync.LogtoConfig(endpoint=served.url, appId="m2m", appSecret=M2M_SECRET)
        )
        token = m2m.getAccessToken(API, scopes=["read"])
        m2m.close()
        api = browser.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
        assert api.json == {"caller": "m2m"}
        refused = browser.get("/api/orders")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"

        out = browser.get("/sign-out")
        assert out.headers["Location"].startswith(f"{served.url}/oidc/session/end?")
        assert "Sign in" in browser.get("/").text
        namespace["logto"].logto.close()
        namespace["api"].close()


def test_the_back_channel_logout_receiver_signs_out_the_session_it_is_told_to() -> None:
    from logto_core.testing import logout_request

    code = example("backchannel-logout.md", "receiver")
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")
        for user in ("ada", "bea"):
            provider.add_user(user, name=user.title())
        namespace = _namespace(served, APP_ID="app", APP_SECRET="s" * 32)
        exec(compile(code, "docs/backchannel-logout.md", "exec"), namespace)
        logto, session_for, signed_in = (
            namespace[n] for n in ("logto", "session_for", "signed_in")
        )

        cookies: dict[str, str] = {}
        for user in ("ada", "bea"):  # two browsers
            storage = session_for(None)
            session = logto.session(storage)
            session.handleSignInCallback(provider.approve(session.signIn(REDIRECT), user))
            cookies[user] = signed_in(storage)
        ada = logto.session(session_for(cookies["ada"]))
        sid = ada.getIdTokenClaims().sid

        token = provider.logout_token("app", sid=sid, sub="ada")
        request = logout_request("http://127.0.0.1:9/back-channel-logout", token)
        answer = namespace["back_channel_logout"](request.method, request.headers, request.body)
        assert answer == (200, {"Cache-Control": "no-store"}, b"")
        assert not logto.session(session_for(cookies["ada"])).isAuthenticated()
        assert logto.session(session_for(cookies["bea"])).isAuthenticated()
        replay = namespace["back_channel_logout"](request.method, request.headers, request.body)
        assert replay[0] == 400 and b"invalid_request" in replay[2]
        logto.close()


def test_the_fastapi_example_signs_in_guards_and_protects_its_api() -> None:
    from urllib.parse import urlsplit

    from logto_adapters.web import WebRequest
    from logto_core.testing import logout_request

    from .asgi_client import TestClient

    code = example("fastapi.md", "app")
    base = "http://127.0.0.1:9"
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client(
            "app",
            secret="s" * 32,
            redirect_uris=[REDIRECT],
            post_logout_redirect_uris=[f"{base}/"],
            kind="traditional",
        )
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])
        provider.grant_permissions("ada", API, ["read"])
        namespace = _namespace(served, APP_ID="app", APP_SECRET="s" * 32, BASE_URL=base)
        exec(compile(code, "docs/fastapi.md", "exec"), namespace)
        with TestClient(namespace["app"], base_url=base, follow_redirects=False) as client:
            assert client.get("/").json() == {"signed_in": False, "sign_in": "/sign-in"}
            guarded = client.get("/orders")
            assert guarded.headers["location"] == "/sign-in?next=/orders"
            start = client.get(guarded.headers["location"])
            callback = urlsplit(provider.approve(start.headers["location"], "ada"))
            done = client.get(f"{callback.path}?{callback.query}")
            assert done.headers["location"] == "/orders"
            assert client.get("/orders").json() == {"user": "ada", "scopes": "read"}
            assert client.get("/").json() == {"signed_in": True, "name": "Ada"}

            auth = namespace["auth"]
            opened = auth.sessions.open(WebRequest("GET", base, cookies=dict(client.cookies)))
            token = client.portal.call(auth.logto.session(opened.storage).getAccessToken, API)
            api = client.get("/api/orders", headers={"authorization": f"Bearer {token}"})
            assert api.json() == {"orders": [], "for": "ada"}
            assert client.get("/api/orders").status_code == 401
            assert client.get("/sign-out").status_code == 303
            assert client.get("/").json()["signed_in"] is False

            # Signed in again, then signed out by Logto's back-channel logout.
            start = client.get("/sign-in")
            callback = urlsplit(provider.approve(start.headers["location"], "ada"))
            client.get(f"{callback.path}?{callback.query}")
            held = auth.sessions.open(WebRequest("GET", base, cookies=dict(client.cookies)))
            sid = auth.logto.session(held.storage).getIdTokenClaims().sid
            logout = logout_request(
                f"{base}/back-channel-logout", provider.logout_token("app", sid=sid)
            )
            answer = client.post(logout.url, content=logout.body, headers=dict(logout.headers))
            assert answer.status_code == 200
            assert client.get("/").json()["signed_in"] is False


def test_the_deployment_example_shares_one_refresh_between_workers(tmp_path: Path) -> None:
    """Two "workers" (the example run twice: two Logto objects, two coordinators) on one
    Redis, one session in a store both read: concurrent requests make one refresh."""
    import threading

    from logto_core.storage import MemoryStorage
    from tests.redis_support import running

    code = example("deployment.md", "worker")
    with (
        running(tmp_path / "redis") as redis_server,
        serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served,
    ):
        provider = served.provider
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])
        workers = []
        for _ in range(2):
            namespace = _namespace(
                served, APP_ID="app", APP_SECRET="s" * 32, REDIS_URL=redis_server.url
            )
            exec(compile(code, "docs/deployment.md", "exec"), namespace)
            workers.append(namespace)
        shared = MemoryStorage()  # the session store every worker reads
        session = workers[0]["logto"].session(shared)
        session.handleSignInCallback(provider.approve(session.signIn(REDIRECT), "ada"))
        tokens: list[str | None] = []
        threads = [
            threading.Thread(target=lambda w=w: tokens.append(w["api_token"](shared)))
            for w in workers * 5
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        refreshes = [e for e in provider.log if e.grant_type == "refresh_token"]
        assert len(refreshes) == 1 and len(set(tokens)) == 1 and tokens[0] is not None
        for namespace in workers:
            namespace["shutdown"]()
