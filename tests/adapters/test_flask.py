"""The Flask integration (logto_adapters.flask) with Flask's test client against the test
provider on loopback, for both flavours: plain views on the sync client (``LogtoFlask``) and
``async def`` views on the async client (``AsyncLogtoFlask``).

Sign-in, a guarded page, an API token and sign-out; the guard (redirect for pages, 401 for
APIs); the return-to (unsafe targets refused); the callback URL behind a proxy (forwarded
headers only when trusted); the session id replaced at sign-in; the failure pages (no secret);
sessions in encrypted cookies that are split and never pass 4096 bytes, or refused; API views
guarded by access_token_required (both resource servers, plain and async views); the
back-channel logout route ending the server-side session a logout token names.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet
from flask import Flask, request
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from logto_adapters import aio, sync
from logto_adapters.cookie_session import COOKIE_LIMIT, CookieCipher
from logto_adapters.flask import (
    AsyncLogtoFlask,
    LogtoFlask,
    access_token_claims,
    access_token_required,
)
from logto_adapters.session_registry import SessionRegistry
from logto_adapters.testing import ServedProvider
from logto_adapters.web import CookieSessions, ServerSessions, SessionBackend
from logto_core.errors import LogtoUsageError
from logto_core.runtime import Runtime

from .conftest import API, KINDS, ORG, REDIRECT, USER, Clock, make_client, make_config

APP = "flask-app"
APP_SECRET = "flask-app-secret-0123456789"
ORIGINS = ["http://localhost", "https://app.example.com"]
API_EXTRA = [f"https://api{n}.example.com" for n in range(4)]
JSON = {"Accept": "application/json"}


@pytest.fixture(autouse=True)
def _flask_client_app(served: ServedProvider) -> None:
    """The app at the origins the tests use (the test client's, and a proxy's)."""
    served.provider.add_client(
        APP,
        secret=APP_SECRET,
        redirect_uris=[f"{origin}/callback" for origin in ORIGINS],
        post_logout_redirect_uris=[f"{origin}/" for origin in ORIGINS],
        kind="traditional",
    )
    for api in API_EXTRA:
        served.provider.add_resource(api, ["read"])
        served.provider.grant_permissions(USER, api, ["read"])


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(
    kind: str,
    served: ServedProvider,
    clock: Clock,
    *,
    resources: list[str] | None = None,
    sessions: SessionBackend | str | None = "insecure",
    **options: Any,
) -> Flask:
    """An app with ``/`` (signed in or not), ``/protected`` and ``/token`` (guarded): plain
    views with ``LogtoFlask``, ``async def`` views with ``AsyncLogtoFlask``; ``/sync`` and
    ``/async`` guard one view of each kind under either. ``sessions``: by default server
    sessions without ``Secure`` (the test client speaks plain http); ``None``: the
    integration's default."""
    config = make_config(served.url, appId=APP, appSecret=APP_SECRET, resources=resources or [API])
    app = Flask(__name__)
    options["sessions"] = ServerSessions(secure=False) if sessions == "insecure" else sessions
    runtime = Runtime(clock=clock)
    integration: LogtoFlask | AsyncLogtoFlask
    if kind == "sync":
        plain_views = LogtoFlask(
            app, logto=sync.Logto(config, runtime=runtime, timeout=(2.0, 5.0)), **options
        )
        integration = plain_views

        @app.get("/")
        def home() -> Any:
            return "yes" if plain_views.session.isAuthenticated() else "no"

        @app.get("/protected")
        @plain_views.login_required
        def protected() -> Any:
            return {"sub": plain_views.session.getIdTokenClaims().sub}

        @app.get("/token")
        @plain_views.login_required
        def token() -> Any:
            tokens = [plain_views.session.getAccessTokenClaims(r) for r in config.resources]
            tokens.append(plain_views.session.getOrganizationTokenClaims(ORG))
            return {"aud": [claims.aud for claims in tokens]}

    else:
        async_views = AsyncLogtoFlask(
            app, logto=aio.Logto(config, runtime=runtime, timeout=(2.0, 5.0)), **options
        )
        integration = async_views

        @app.get("/")
        async def home() -> Any:
            return "yes" if async_views.session.isAuthenticated() else "no"

        @app.get("/protected")
        @async_views.login_required
        async def protected() -> Any:
            return {"sub": async_views.session.getIdTokenClaims().sub}

        @app.get("/token")
        @async_views.login_required
        async def token() -> Any:
            session = async_views.session
            tokens = [await session.getAccessTokenClaims(r) for r in config.resources]
            tokens.append(await session.getOrganizationTokenClaims(ORG))
            return {"aud": [claims.aud for claims in tokens]}

    @app.get("/sync")
    @integration.login_required
    def plain() -> str:
        return "plain view"

    @app.get("/sid")
    @integration.login_required
    def sid() -> Any:
        return {"sid": integration.session.getIdTokenClaims().sid}

    @app.get("/async")
    @integration.login_required
    async def coroutine() -> str:
        return "async view"

    return app


@pytest.fixture
def client_of(served: ServedProvider, clock: Clock) -> Iterator[Any]:
    """``client_of(kind, **options)``: a test client of :func:`make_app`'s app."""
    apps: list[Flask] = []

    def make(kind: str, **options: Any) -> FlaskClient:
        app = make_app(kind, served, clock, **options)
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        integration = app.extensions["logto"]
        logto = integration.logto
        if isinstance(logto, sync.Logto):
            logto.close()
        else:
            logto.waitForRevocations(5.0)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sign_in(
    client: FlaskClient, served: ServedProvider, start: str = "/sign-in", **headers: str
) -> TestResponse:
    """Start at ``start``, approve at the provider, and come back: the callback's answer."""
    started = client.get(start, headers=headers)
    assert started.status_code == 302, started.text
    authorization = started.headers["Location"]
    assert authorization.startswith(served.url)
    callback = served.provider.approve(authorization, USER)
    return client.get(path_of(callback), headers=headers)


def redirect_uri_of(authorization: str) -> str:
    return parse_qs(urlsplit(authorization).query)["redirect_uri"][0]


# ---- the whole round ---------------------------------------------------------------------


def test_sign_in_protected_page_api_token_and_sign_out(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    client = client_of(kind)
    assert client.get("/").text == "no"
    guarded = client.get("/protected?tab=2")
    assert guarded.status_code == 302
    assert path_of(guarded.headers["Location"]) == "/sign-in?next=/protected?tab%3D2"

    done = sign_in(client, served, guarded.headers["Location"])
    assert done.status_code == 302 and done.headers["Location"] == "/protected?tab=2"
    assert done.headers["Cache-Control"] == "no-store"
    assert client.get("/").text == "yes"
    assert client.get("/protected").json == {"sub": USER}
    assert client.get("/token").json == {"aud": [API, f"urn:logto:organization:{ORG}"]}

    out = client.get("/sign-out")
    assert out.status_code == 302
    end_session = urlsplit(out.headers["Location"])
    assert end_session.path.endswith("/session/end")
    assert parse_qs(end_session.query)["post_logout_redirect_uri"] == ["http://localhost/"]
    assert client.get("/").text == "no"
    assert client.get("/protected").status_code == 302


# ---- the guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [JSON, {"X-Requested-With": "XMLHttpRequest"}, {"Authorization": "Bearer not-a-session"}],
)
@pytest.mark.parametrize("view", ["/protected", "/sync", "/async"])
def test_the_guard_answers_apis_401_and_pages_a_redirect(
    kind: str, client_of: Any, served: ServedProvider, headers: dict[str, str], view: str
) -> None:
    client = client_of(kind)
    api = client.get(view, headers=headers)
    assert api.status_code == 401 and api.json == {
        "error": "unauthenticated",
        "error_description": "sign in first",
    }
    page = client.get(view, headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 302 and "/sign-in?next=" in page.headers["Location"]
    sign_in(client, served)
    assert client.get(view, headers=headers).status_code == 200  # views of either kind


def test_a_grant_ended_at_the_provider_sends_back_to_sign_in(
    kind: str, client_of: Any, served: ServedProvider, clock: Clock
) -> None:
    client = client_of(kind)
    sign_in(client, served)
    served.provider.revoke_grants(USER)
    clock.advance(7200)  # the cached tokens have expired: the refresh is refused
    assert client.get("/token", headers=JSON).status_code == 401  # SignInRequiredError
    again = client.get("/token")
    assert again.status_code == 302 and "/sign-in?next=/token" in again.headers["Location"]


# ---- the return-to -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_an_unsafe_next_is_refused(
    kind: str, client_of: Any, served: ServedProvider, target: str
) -> None:
    client = client_of(kind)
    done = client.get("/sign-in", query_string={"next": target})
    callback = served.provider.approve(done.headers["Location"], USER)
    back = client.get(path_of(callback))
    assert back.status_code == 302 and back.headers["Location"] == "/"


def test_home_is_where_sign_in_and_sign_out_end(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    client = client_of(kind, home="/welcome")
    assert sign_in(client, served).headers["Location"] == "/welcome"
    out = client.get("/sign-out")
    assert "post_logout_redirect_uri=http%3A%2F%2Flocalhost%2Fwelcome" in out.headers["Location"]


# ---- behind a proxy ----------------------------------------------------------------------

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.com"}


def test_forwarded_headers_are_ignored_unless_trusted(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    untrusting = client_of(kind)
    started = untrusting.get("/sign-in", headers=FORWARDED)
    assert redirect_uri_of(started.headers["Location"]) == "http://localhost/callback"

    trusting = client_of(kind, trust_forwarded=True)
    started = trusting.get("/sign-in", headers=FORWARDED)
    assert redirect_uri_of(started.headers["Location"]) == "https://app.example.com/callback"
    # The browser comes back through the proxy: the request's own URL is the internal one,
    # yet it matches the redirect URI sent.
    callback = served.provider.approve(started.headers["Location"], USER)
    done = trusting.get(path_of(callback), headers=FORWARDED)
    assert done.status_code == 302 and done.headers["Location"] == "/"
    out = trusting.get("/sign-out", headers=FORWARDED)
    assert "post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F" in out.headers["Location"]


def test_the_configured_base_url_wins_over_any_header(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    client = client_of(kind, base_url="https://app.example.com", trust_forwarded=True)
    forged = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"}
    started = client.get("/sign-in", headers=forged)
    assert redirect_uri_of(started.headers["Location"]) == "https://app.example.com/callback"


# ---- the session id ----------------------------------------------------------------------


def sid(response: TestResponse) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == "logto_sid":
            return rest.split(";")[0]
    return None


def test_the_session_id_is_replaced_at_sign_in(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    client = client_of(kind)
    started = client.get("/sign-in")
    before = sid(started)
    assert before is not None  # made at the first write (the pending sign-in)
    callback = served.provider.approve(started.headers["Location"], USER)
    done = client.get(path_of(callback))
    after = sid(done)
    assert after is not None and after != before
    assert "HttpOnly" in done.headers["Set-Cookie"] and "SameSite=Lax" in done.headers["Set-Cookie"]
    assert client.get("/protected").status_code == 200

    planted = client_of(kind)  # another browser holding the id from before the sign-in
    planted.set_cookie("logto_sid", before)
    assert planted.get("/protected").status_code == 302  # the old id opens nothing


def test_a_plain_http_app_with_secure_cookies_is_told(
    kind: str, client_of: Any, served: ServedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_of(kind, sessions=None)  # the default: ServerSessions, Secure cookies
    with caplog.at_level(logging.WARNING, logger="logto.flask"):
        first = client.get("/sign-in")
        client_of(kind, sessions=None)  # another integration warns for itself
        client.delete_cookie("logto_sid")
        client.get("/sign-in")
    warned = [r for r in caplog.records if "Secure" in r.getMessage()]
    assert len(warned) == 1  # once
    assert "Secure" in first.headers["Set-Cookie"]
    development = client_of(kind, sessions=None, base_url="http://localhost")
    assert "Secure" not in development.get("/sign-in").headers["Set-Cookie"]


# ---- failures ----------------------------------------------------------------------------


def test_a_bad_callback_gets_a_400_page_without_secrets(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    client = client_of(kind)
    forged = client.get("/callback?code=SECRET-CODE-123&state=SECRET-STATE-456")
    assert forged.status_code == 400
    assert "callback." in forged.text
    assert "SECRET" not in forged.text and forged.headers["Cache-Control"] == "no-store"

    started = client.get("/sign-in")
    denied = served.provider.deny(started.headers["Location"])
    refused = client.get(path_of(denied))
    assert refused.status_code == 400 and "oauth.access_denied" in refused.text
    assert client.get("/").text == "no"


def test_a_replayed_callback_of_a_signed_in_session_goes_home(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    client = client_of(kind)
    started = client.get("/sign-in")
    callback = path_of(served.provider.approve(started.headers["Location"], USER))
    assert client.get(callback).status_code == 302
    again = client.get(callback)  # the back button
    assert again.status_code == 302 and again.headers["Location"] == "/"
    assert client.get("/").text == "yes"


def test_an_app_may_answer_a_failed_callback_itself(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    seen: list[str] = []

    def answer(error: Exception) -> Any:
        seen.append(getattr(error, "code", ""))
        return "try later", 409

    client = client_of(kind, on_callback_error=answer)
    assert client.get("/callback?code=x&state=y").status_code == 409
    assert seen and seen[0].startswith("callback.")


def test_a_provider_that_cannot_be_reached_gives_a_503_page(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    module: Any = sync if kind == "sync" else aio
    config = make_config("http://127.0.0.1:9", appId=APP, appSecret=APP_SECRET)
    app = Flask(__name__)
    cls: Any = LogtoFlask if kind == "sync" else AsyncLogtoFlask
    cls(app, logto=module.Logto(config, timeout=(1.0, 2.0), max_retries=0))
    failed = app.test_client().get("/sign-in")
    assert failed.status_code == 503 and "transport" in failed.text


def test_set_up_mistakes_are_usage_errors() -> None:
    config = make_config("http://127.0.0.1:9")
    with pytest.raises(LogtoUsageError) as caught:
        LogtoFlask(Flask(__name__))
    assert caught.value.code == "usage.flask_setup"
    with pytest.raises(LogtoUsageError):
        LogtoFlask(Flask(__name__), config, logto=sync.Logto(config))
    app = Flask(__name__)
    LogtoFlask(app, config)
    with pytest.raises(LogtoUsageError):
        AsyncLogtoFlask(app, config)  # one per app
    with pytest.raises(LogtoUsageError) as caught:
        LogtoFlask(config=config, base_url="app.example.com")
    assert caught.value.code == "usage.base_url"
    late = LogtoFlask(config=config)  # the application-factory pattern
    factory_app = Flask(__name__)
    late.init_app(factory_app)
    assert factory_app.extensions["logto"] is late
    assert "logto.sign_in" in factory_app.view_functions


def test_the_routes_may_live_under_a_prefix(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    client = client_of(kind, url_prefix="/auth")
    guarded = client.get("/protected")
    assert path_of(guarded.headers["Location"]) == "/auth/sign-in?next=/protected"
    started = client.get(guarded.headers["Location"])
    assert redirect_uri_of(started.headers["Location"]) == "http://localhost/auth/callback"


# ---- sessions in cookies -----------------------------------------------------------------


def set_cookie_headers(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_a_large_cookie_session_is_split_and_never_over_4096_bytes(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    cipher = CookieCipher(Fernet.generate_key(), secure=False)
    client = client_of(kind, sessions=CookieSessions(cipher), resources=[API, *API_EXTRA])
    started = client.get("/sign-in")
    callback = served.provider.approve(started.headers["Location"], USER)
    headers = set_cookie_headers(started) + set_cookie_headers(client.get(path_of(callback)))
    tokens = client.get("/token")
    assert tokens.status_code == 200 and len((tokens.json or {})["aud"]) == 6
    headers += set_cookie_headers(tokens)
    assert headers and all(len(header) <= COOKIE_LIMIT for header in headers)
    kept = {name: client.get_cookie(name) for name in ("logto_session.0", "logto_session.1")}
    assert all(kept.values())  # split in two
    assert sum(len(c.value) for c in kept.values() if c) > COOKIE_LIMIT
    assert client.get("/protected").json == {"sub": USER}  # read back from both
    client.get("/sign-out")
    assert client.get_cookie("logto_session.0") is None  # nothing left: deleted


def test_a_session_too_large_for_its_cookies_is_refused_not_dropped(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    served.provider.add_user("u_long", name="N" * 3000)  # an ID token of 4 KB alone
    cipher = CookieCipher(Fernet.generate_key(), secure=False, max_cookies=1)
    client = client_of(kind, sessions=CookieSessions(cipher))
    started = client.get("/sign-in")
    callback = served.provider.approve(started.headers["Location"], "u_long")
    refused = client.get(path_of(callback))
    assert refused.status_code == 500
    assert "storage.write (storage.cookie_too_large)" in refused.text
    assert all(len(header) < COOKIE_LIMIT for header in set_cookie_headers(refused))
    assert client.get("/").text == "no"


# ---- protecting an API -------------------------------------------------------------------


@pytest.fixture
def user_token(served: ServedProvider, clock: Clock) -> str:
    """An access token of the user for ``API`` (scope ``read``)."""
    client = make_client("sync", served.url, clock)
    client.handleSignInCallback(served.provider.approve(client.signIn(REDIRECT), USER))
    token = client.getAccessToken(API)
    client.close()
    assert token is not None
    return str(token)


def api_client(
    server_kind: str, view_kind: str, endpoint: str, clock: Clock, **requirements: Any
) -> FlaskClient:
    """An API app with ``/hello`` (and ``/orgs/<org>/hello``) guarded for ``API``."""
    module: Any = sync if server_kind == "sync" else aio
    api = module.LogtoResourceServer(
        endpoint, API, realm="api", runtime=Runtime(clock=clock), timeout=(1.0, 2.0), max_retries=0
    )
    app = Flask(__name__)
    scopes = requirements.pop("scopes", ["read"])
    guard = access_token_required(api, scopes, **requirements)
    if view_kind == "plain":

        @app.get("/hello")
        @app.get("/orgs/<org>/hello")
        @guard
        def hello(org: str | None = None) -> Any:
            claims = access_token_claims()
            return {"sub": claims.sub, "scope": claims.scope}

    else:

        @app.get("/hello")
        @app.get("/orgs/<org>/hello")
        @guard
        async def hello(org: str | None = None) -> Any:
            claims = access_token_claims()
            return {"sub": claims.sub, "scope": claims.scope}

    return app.test_client()


@pytest.fixture(params=[("sync", "plain"), ("sync", "async"), ("aio", "plain"), ("aio", "async")])
def api_kinds(request: pytest.FixtureRequest) -> tuple[str, str]:
    server_kind, view_kind = request.param
    return str(server_kind), str(view_kind)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_api_view_answers_a_valid_token_and_challenges_the_others(
    api_kinds: tuple[str, str], served: ServedProvider, clock: Clock, user_token: str
) -> None:
    api = api_client(*api_kinds, served.url, clock)
    ok = api.get("/hello", headers=bearer(user_token))
    assert ok.status_code == 200 and ok.json == {"sub": USER, "scope": "read"}

    missing = api.get("/hello")
    assert missing.status_code == 401 and missing.json == {"error": "unauthorized"}
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert api.get("/hello", headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code == 401

    malformed = api.get("/hello", headers={"Authorization": "Bearer two tokens"})
    assert malformed.status_code == 400 and (malformed.json or {})["error"] == "invalid_request"

    forged = api.get("/hello", headers=bearer(user_token[:-4] + "AAAA"))
    assert forged.status_code == 401 and (forged.json or {})["error"] == "invalid_token"
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]
    assert user_token not in forged.text and user_token not in forged.headers["WWW-Authenticate"]

    clock.advance(7200)  # expired
    assert api.get("/hello", headers=bearer(user_token)).status_code == 401


def test_an_api_view_refuses_a_token_without_the_scope_or_organization(
    api_kinds: tuple[str, str], served: ServedProvider, clock: Clock, user_token: str
) -> None:
    needs_write = api_client(*api_kinds, served.url, clock, scopes=["read", "write"])
    refused = needs_write.get("/hello", headers=bearer(user_token))
    assert refused.status_code == 403 and (refused.json or {})["error"] == "insufficient_scope"
    challenge = refused.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read write"' in challenge

    per_org = api_client(
        *api_kinds, served.url, clock, organization_id=lambda: (request.view_args or {})["org"]
    )
    other = per_org.get(f"/orgs/{ORG}/hello", headers=bearer(user_token))
    assert other.status_code == 403  # a token for the API, not for the organization


def test_an_api_that_cannot_reach_logto_answers_503(
    api_kinds: tuple[str, str], clock: Clock, user_token: str
) -> None:
    api = api_client(*api_kinds, "http://127.0.0.1:9", clock)
    answer = api.get("/hello", headers=bearer(user_token))
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "10"
    assert answer.json == {"error": "temporarily_unavailable"}


def test_the_claims_are_only_for_guarded_views() -> None:
    app = Flask(__name__)

    @app.get("/")
    def unguarded() -> Any:
        return {"sub": access_token_claims().sub}

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(LogtoUsageError) as caught:
        app.test_client().get("/")
    assert caught.value.code == "usage.flask_setup"


# ---- back-channel logout -----------------------------------------------------------------


def test_a_back_channel_logout_signs_out_the_session_it_names(
    kind: str, client_of: Any, served: ServedProvider
) -> None:
    first = client_of(kind)
    sign_in(first, served)
    sid = (first.get("/sid").json or {})["sid"]
    assert sid
    # Another browser of the same app and user: another session at the provider.
    second = first.application.test_client()
    sign_in(second, served)
    assert (second.get("/sid").json or {})["sid"] != sid

    logto = served.provider  # Logto's server, posting to the app (no cookie, no CSRF token)
    token = logto.logout_token(APP, sid=sid, sub=USER)
    answer = first.application.test_client().post(
        "/back-channel-logout", data={"logout_token": token}
    )
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert answer.data == b""
    assert first.get("/protected").status_code == 302  # signed out at the app
    assert second.get("/protected").status_code == 200  # the other session stays

    replayed = first.application.test_client().post(
        "/back-channel-logout", data={"logout_token": token}
    )
    assert replayed.status_code == 400 and (replayed.json or {})["error"] == "invalid_request"
    everyone = logto.logout_token(APP, sub=USER)  # no sid: every session of the user
    poster = first.application.test_client()
    assert poster.post("/back-channel-logout", data={"logout_token": everyone}).status_code == 200
    assert second.get("/protected").status_code == 302


@pytest.mark.parametrize(
    "body",
    [{"logout_token": "not-a-jwt"}, {"other": "x"}, {"logout_token": "x" * (70 * 1024)}],
)
def test_a_bad_back_channel_logout_is_answered_400(
    kind: str, client_of: Any, served: ServedProvider, body: dict[str, str]
) -> None:
    client = client_of(kind)
    answer = client.post("/back-channel-logout", data=body)
    assert answer.status_code == 400 and answer.headers["Cache-Control"] == "no-store"
    assert (answer.json or {})["error"] == "invalid_request"
    assert client.get("/back-channel-logout").status_code == 405


def test_a_back_channel_logout_cannot_end_cookie_sessions_and_says_so(
    kind: str, client_of: Any, served: ServedProvider, caplog: pytest.LogCaptureFixture
) -> None:
    cipher = CookieCipher(Fernet.generate_key(), secure=False)
    client = client_of(kind, sessions=CookieSessions(cipher))
    sign_in(client, served)
    token = served.provider.logout_token(APP, sub=USER)
    with caplog.at_level(logging.WARNING, logger="logto.flask"):
        poster = client.application.test_client()
        answer = poster.post("/back-channel-logout", data={"logout_token": token})
    assert answer.status_code == 200  # verified; nothing the server holds to end
    assert any("kept in cookies" in record.getMessage() for record in caplog.records)
    assert client.get("/protected").status_code == 200


def test_back_channel_logout_looks_in_the_server_sessions_unless_told() -> None:
    config = make_config("http://127.0.0.1:9")
    backend = ServerSessions(secure=False)
    assert LogtoFlask(config=config, sessions=backend).logout_sessions is backend.registry
    cipher = CookieCipher(Fernet.generate_key())
    assert LogtoFlask(config=config, sessions=CookieSessions(cipher)).logout_sessions is None
    own = SessionRegistry()
    chosen = AsyncLogtoFlask(config=config, sessions=CookieSessions(cipher), logout_sessions=own)
    assert chosen.logout_sessions is own
