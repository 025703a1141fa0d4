"""logto_adapters.starlette in a plain Starlette app on the test provider: the decorator, a
WebSocket's session, an app mounted under a prefix, the middleware missing, the cookies of
a refresh that rotated the refresh token, and a request cancelled during its refresh."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from logto_adapters.aio import Logto, LogtoConfig, LogtoResourceServer
from logto_adapters.cookie_session import CookieCipher
from logto_adapters.starlette import (
    LogtoAuth,
    authenticated,
    logto_session,
    require_sign_in,
    verify_bearer,
)
from logto_adapters.testing import ServedProvider
from logto_adapters.web import (
    CookieSessions,
    ServerSessions,
    SessionBackend,
    WebRequest,
)
from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.session import decode_session

from ..asgi_client import TestClient
from .conftest import API, APP_ID, APP_SECRET, POST_LOGOUT, REDIRECT, USER, Clock

BASE = "http://127.0.0.1:9"
DAY = 24 * 3600.0
SID = "logto_sid"


def make_logto(served: ServedProvider, clock: Clock, **options: Any) -> Logto:
    options.setdefault("timeout", (2.0, 5.0))
    return Logto(
        LogtoConfig(
            endpoint=served.url,
            appId=options.pop("app_id", APP_ID),
            appSecret=APP_SECRET,
            scopes=["email", "read"],
            resources=[API],
        ),
        runtime=Runtime(clock=clock),
        **options,
    )


async def token(request: Request) -> Response:
    value = await logto_session(request).getAccessToken(API)
    return JSONResponse({"token": value})


@authenticated
async def page(request: Request) -> Response:
    claims = logto_session(request).getIdTokenClaims()
    return JSONResponse({"sub": claims.sub})


async def guarded_token(request: Request) -> Response:
    session = await require_sign_in(request)
    return JSONResponse({"token": await session.getAccessToken(API)})


def starlette_app(auth: LogtoAuth) -> Starlette:
    return Starlette(
        routes=[
            *auth.routes(),
            Route("/page", page),
            Route("/token", guarded_token),
            Route("/plain-token", token),
        ],
        middleware=[auth.middleware()],
    )


def sign_in(client: TestClient, served: ServedProvider, path: str = "/sign-in") -> httpx.Response:
    start = client.get(path)
    assert start.status_code == 303, start.text
    done: httpx.Response = client.get(served.provider.approve(start.headers["location"], USER))
    return done


def test_the_decorator_guards_a_starlette_endpoint(served: ServedProvider, clock: Clock) -> None:
    auth = LogtoAuth(
        make_logto(served, clock), sessions=ServerSessions(secure=False), base_url=BASE
    )
    with TestClient(starlette_app(auth), base_url=BASE, follow_redirects=False) as client:
        assert client.get("/page").headers["location"] == "/sign-in?next=/page"
        refused = client.get("/page", headers={"accept": "application/json"})
        assert refused.status_code == 401 and refused.json() == {"detail": "Sign-in required"}
        # require_sign_in raised in a plain endpoint: Starlette's own HTTPException answer.
        assert client.get("/token").status_code == 303
        assert client.get("/token", headers={"accept": "application/json"}).status_code == 401

        done = sign_in(client, served, "/sign-in?next=/page")
        assert done.headers["location"] == "/page"
        assert client.get("/page").json() == {"sub": USER}
        assert client.get("/token").json()["token"]
        out = client.get("/sign-out")
        assert out.status_code == 303 and "post_logout_redirect_uri=" in out.headers["location"]
        assert client.get("/page").status_code == 303


def test_a_websocket_reads_the_session(served: ServedProvider, clock: Clock) -> None:
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(
            {"signed_in": await logto_session(websocket).isAuthenticatedAsync()}
        )
        await websocket.close()

    auth = LogtoAuth(
        make_logto(served, clock), sessions=ServerSessions(secure=False), base_url=BASE
    )
    app = Starlette(
        routes=[*auth.routes(), WebSocketRoute("/ws", ws)], middleware=[auth.middleware()]
    )
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        with client.websocket_connect("/ws") as socket:
            assert socket.receive_json() == {"signed_in": False}
        sign_in(client, served)
        # The test client's WebSocket requests carry no cookies of its jar: given by hand.
        cookie = f"{SID}={client.cookies[SID]}"
        with client.websocket_connect("/ws", headers={"cookie": cookie}) as socket:
            assert socket.receive_json() == {"signed_in": True}


def test_an_app_mounted_under_a_prefix(served: ServedProvider, clock: Clock) -> None:
    served.provider.add_client(
        "mounted-app",
        secret=APP_SECRET,
        redirect_uris=[f"{BASE}/app/callback"],
        post_logout_redirect_uris=[f"{BASE}/app/"],
        kind="traditional",
    )
    logto = make_logto(served, clock, app_id="mounted-app")
    auth = LogtoAuth(logto, sessions=ServerSessions(secure=False), base_url=BASE)
    inner = Starlette(routes=[*auth.routes(), Route("/page", page)])
    app = Starlette(routes=[Mount("/app", app=inner)], middleware=[auth.middleware()])
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        guarded = client.get("/app/page")
        assert guarded.headers["location"] == "/app/sign-in?next=/app/page"
        done = sign_in(client, served, guarded.headers["location"])
        assert done.headers["location"] == "/app/page"
        assert client.get("/app/page").json() == {"sub": USER}
        out = client.get("/app/sign-out")
        assert (
            "post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fapp%2F"
            in (out.headers["location"])
        )


def test_without_the_middleware_the_session_is_a_usage_error(
    served: ServedProvider, clock: Clock
) -> None:
    auth = LogtoAuth(make_logto(served, clock), base_url=BASE)
    app = Starlette(routes=[*auth.routes(), Route("/plain-token", token)])
    with TestClient(app, base_url=BASE) as client:
        with pytest.raises(LogtoUsageError) as caught:
            client.get("/plain-token")
        assert caught.value.code == "usage.web_middleware"


def test_bad_settings_are_refused_at_once(served: ServedProvider, clock: Clock) -> None:
    logto = make_logto(served, clock)
    for path in ("sign-in", "//evil.example/x", "https://evil.example/"):
        with pytest.raises(LogtoUsageError) as caught:
            LogtoAuth(logto, sign_in_path=path)
        assert caught.value.code == "usage.web_path"
    with pytest.raises(LogtoUsageError) as caught:
        LogtoAuth(logto, base_url="app.example.com")
    assert caught.value.code == "usage.base_url"


def test_cookies_the_app_cannot_send_are_logged(
    served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def fails_after_writing(request: Request) -> Response:
        await logto_session(request).signIn(REDIRECT)
        raise RuntimeError("the handler broke")

    async def streams(request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            yield b"started; "
            await logto_session(request).signIn(REDIRECT)  # after the headers went out
            yield b"done"

        return StreamingResponse(body())

    auth = LogtoAuth(make_logto(served, clock), sessions=ServerSessions(secure=False))
    app = Starlette(
        routes=[Route("/fails", fails_after_writing), Route("/streams", streams)],
        middleware=[auth.middleware()],
    )
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        assert client.get("/fails").status_code == 500
        assert "its session cookies were not sent" in caplog.text
        streamed = client.get("/streams")
        assert streamed.text == "started; done" and SID not in streamed.headers.get(
            "set-cookie", ""
        )
        assert "changed after the response headers were sent" in caplog.text


def refresh_grants(served: ServedProvider) -> int:
    return sum(1 for e in served.provider.log if e.grant_type == "refresh_token")


def refresh_token_in(cipher: CookieCipher, cookies: dict[str, str]) -> str | None:
    return decode_session(cipher.read(cookies)["logtoSession"]).refresh_token


def test_a_rotated_refresh_token_reaches_the_cookies(served: ServedProvider, clock: Clock) -> None:
    """The refresh rotates the refresh token (11 days in: a confidential client's token
    rotates past 70 % of its life); the response carries it, so the next refresh presents
    the new one. The old cookies, presented after the reuse window, would end the grant."""
    cipher = CookieCipher(Fernet.generate_key(), secure=False)
    logto = make_logto(served, clock)
    auth = LogtoAuth(logto, sessions=CookieSessions(cipher), base_url=BASE)
    with TestClient(starlette_app(auth), base_url=BASE, follow_redirects=False) as client:
        sign_in(client, served)
        before = dict(client.cookies)
        clock.advance(11 * DAY)
        first = client.get("/token")
        assert first.json()["token"] and refresh_grants(served) == 1
        assert any(h.startswith("logto_session.0=") for h in first.headers.get_list("set-cookie"))
        after = dict(client.cookies)
        assert refresh_token_in(cipher, after) != refresh_token_in(cipher, before)
        clock.advance(3700)  # the access token expired; past the reuse window
        second = client.get("/token")
        assert second.json()["token"] and refresh_grants(served) == 2

    # Without the response's cookies, the browser would present the consumed refresh
    # token; to another process of the app (no shared coordinator) that ends the grant.
    other = LogtoAuth(make_logto(served, clock), sessions=CookieSessions(cipher), base_url=BASE)
    with TestClient(starlette_app(other), base_url=BASE, follow_redirects=False) as client:
        for name, value in before.items():
            client.cookies.set(name, value)
        clock.advance(3700)
        assert client.get("/token").json() == {"token": None}


def in_memory(served: ServedProvider, reached: asyncio.Event) -> Any:
    """The provider in process, with a pause once a refresh reached it (the moment a
    browser that went away gets its request cancelled)."""

    async def send(request: HttpRequest) -> HttpResponse:
        with served.lock:
            response = served.provider.respond(request).response
        if b"grant_type=refresh_token" in (request.body or b""):
            reached.set()
            await asyncio.sleep(0.05)
        return response

    return send


@pytest.mark.parametrize("backend", ["server", "cookie"])
def test_a_request_cancelled_during_its_refresh_loses_no_token(
    served: ServedProvider, clock: Clock, backend: str
) -> None:
    """The browser goes away while its request's refresh is at Logto (which rotates the
    refresh token): the request is cancelled, the refresh is finished and its result kept
    by the app's Logto; the session's next request adopts it (no second refresh, the
    consumed token never presented again) and its response stores the rotated token."""

    async def scenario() -> None:
        reached = asyncio.Event()
        cipher = CookieCipher(Fernet.generate_key(), secure=False)
        sessions: SessionBackend = (
            ServerSessions(secure=False) if backend == "server" else CookieSessions(cipher)
        )
        logto = make_logto(served, clock, transport=in_memory(served, reached))
        auth = LogtoAuth(logto, sessions=sessions, base_url=BASE)
        transport = httpx.ASGITransport(app=starlette_app(auth))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            start = await client.get("/sign-in")
            await client.get(served.provider.approve(start.headers["location"], USER))

            def stored_refresh_token() -> str | None:
                opened = sessions.open(WebRequest("GET", BASE, cookies=dict(client.cookies)))
                return logto.session(opened.storage).getRefreshToken()

            consumed = stored_refresh_token()
            assert consumed is not None
            clock.advance(11 * DAY)  # a confidential client's refresh token rotates now
            request = asyncio.create_task(client.get("/token"))
            await asyncio.wait_for(reached.wait(), 5)
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
            await asyncio.sleep(0.2)  # the refresh goes on without its request

            answer = await client.get("/token")
            assert answer.json()["token"] and refresh_grants(served) == 1
            rotated = stored_refresh_token()
            assert rotated not in (None, consumed)
            assert served.provider.is_refresh_token_active(rotated or "")
            clock.advance(3700)  # past the reuse window: the consumed token would end it all
            assert (await client.get("/token")).json()["token"] and refresh_grants(served) == 2
        await logto.aclose()

    asyncio.run(scenario())


def test_sign_out_comes_back_to_the_registered_page(served: ServedProvider, clock: Clock) -> None:
    auth = LogtoAuth(
        make_logto(served, clock), sessions=ServerSessions(secure=False), base_url=BASE
    )
    with TestClient(starlette_app(auth), base_url=BASE, follow_redirects=False) as client:
        sign_in(client, served)
        out = client.post("/sign-out")
        assert out.status_code == 303
        assert httpx.URL(out.headers["location"]).params["post_logout_redirect_uri"] == POST_LOGOUT


def test_verify_bearer_in_a_starlette_endpoint(served: ServedProvider, clock: Clock) -> None:
    """No middleware needed; a refusal is Starlette's HTTPException answer with the
    challenge, and Logto out of reach is 503 (the caller is not at fault)."""
    reachable = LogtoResourceServer(served.url, API, runtime=Runtime(clock=clock))
    unreachable = LogtoResourceServer(
        "http://127.0.0.1:9", API, runtime=Runtime(clock=clock), timeout=(0.5, 1.0), max_retries=0
    )

    def endpoint(api: LogtoResourceServer) -> Any:
        async def hello(request: Request) -> Response:
            claims = await verify_bearer(request, api, "read")
            return JSONResponse({"sub": claims.sub})

        return hello

    app = Starlette(
        routes=[Route("/hello", endpoint(reachable)), Route("/down", endpoint(unreachable))]
    )
    auth = LogtoAuth(
        make_logto(served, clock), sessions=ServerSessions(secure=False), base_url=BASE
    )
    signed = starlette_app(auth)
    with TestClient(signed, base_url=BASE, follow_redirects=False) as browser:
        sign_in(browser, served)
        token = browser.get("/plain-token").json()["token"]
    with TestClient(app, base_url=BASE) as client:
        ok = client.get("/hello", headers={"authorization": f"Bearer {token}"})
        assert ok.json() == {"sub": USER}
        bare = client.get("/hello")
        assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
        down = client.get("/down", headers={"authorization": f"Bearer {token}"})
        assert down.status_code == 503 and down.headers["retry-after"] == "10"
        assert token not in down.text
