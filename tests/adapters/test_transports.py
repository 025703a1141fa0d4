"""Transport details: caller-provided clients, per-loop httpx clients, streamed body caps,
async storages, and the loopback server helper."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import requests

from logto_adapters import aio
from logto_adapters.testing import ServedProvider, serve_provider, start_provider
from logto_adapters.transport_httpx import HttpxTransport
from logto_adapters.transport_requests import RequestsTransport
from logto_core import transport_policy as policy
from logto_core.errors import LogtoUsageError, SignInRequiredError, TransportError
from logto_core.http import HttpRequest
from logto_core.testing import Fault, TestProvider
from tests.factories import stored

from .conftest import API, REDIRECT, USER, Clock, Harness, make_client, setup_provider


@pytest.fixture
def raw_server() -> Iterator[tuple[str, list[bytes | list[bytes]]]]:
    """A loopback socket server answering each connection with the next canned reply (a list
    of pieces is sent 0.15 s apart: a trickling provider)."""
    replies: list[bytes | list[bytes]] = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    reply = replies.pop(0) if replies else b""
                    for piece in reply if isinstance(reply, list) else [reply]:
                        conn.sendall(piece)
                        if isinstance(reply, list):
                            stop.wait(0.15)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", replies
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


# The server answers one request per connection and closes it: "connection: close" keeps the
# clients from sending the next request on a connection whose close has not arrived yet
# (which, on a busy machine, made it take the next canned reply out of turn).
def chunked(total: int) -> bytes:
    chunk = b"x" * 1000
    parts = [
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    ]
    for _ in range(total // 1000):
        parts.append(b"3e8\r\n" + chunk + b"\r\n")
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


BROKEN = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 100\r\n\r\nshort"


def test_requests_stream_cap_and_broken_body(
    raw_server: tuple[str, list[bytes | list[bytes]]],
) -> None:
    url, replies = raw_server
    head, body = chunked(3000).split(b"\r\n\r\n", 1)
    replies += [
        chunked(5000),
        chunked(3000),
        BROKEN,
        [head + b"\r\n\r\n", *(body[i : i + 1100] for i in range(0, len(body), 1100))],
    ]
    transport = RequestsTransport(timeout=(2, 0.35), max_body=4000)
    request = HttpRequest.get(url + "/oidc/me?token=secret", purpose="userinfo")
    with pytest.raises(TransportError) as caught:
        transport(request)
    assert caught.value.code == policy.BODY_TOO_LARGE
    assert transport(request).body == b"x" * 3000
    with pytest.raises(TransportError) as broken:
        transport(request)
    assert "secret" not in str(broken.value)
    assert broken.value.__context__ is None
    with pytest.raises(TransportError) as slow:
        transport(request)
    assert slow.value.code == policy.TIMEOUT
    transport.close()


def test_httpx_stream_cap_and_broken_body(
    raw_server: tuple[str, list[bytes | list[bytes]]],
) -> None:
    url, replies = raw_server
    replies += [chunked(5000), chunked(3000), BROKEN]
    request = HttpRequest.get(url + "/oidc/me?token=secret", purpose="userinfo")

    async def run() -> None:
        transport = HttpxTransport(timeout=2, max_body=4000)
        with pytest.raises(TransportError) as caught:
            await transport(request)
        assert caught.value.code == policy.BODY_TOO_LARGE
        assert (await transport(request)).body == b"x" * 3000
        with pytest.raises(TransportError) as broken:
            await transport(request)
        assert "secret" not in str(broken.value)
        await transport.aclose()

    asyncio.run(run())


def test_httpx_client_per_loop() -> None:
    transport = HttpxTransport()

    async def grab() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return (
            await transport.client_for_running_loop(),
            await transport.client_for_running_loop(),
        )

    first = asyncio.run(grab())
    second = asyncio.run(grab())
    assert first[0] is first[1]
    assert first[0] is not second[0]
    assert first[0].is_closed  # closed when its loop shut down

    loop = asyncio.new_event_loop()
    manual = loop.run_until_complete(grab())[0]
    loop.close()  # closed without shutting generators down: forgotten on next use
    asyncio.run(grab())
    assert loop not in transport._per_loop
    assert not manual.is_closed or manual.is_closed  # whatever httpx did, no crash


def test_caller_clients_are_used(served: ServedProvider, clock: Clock) -> None:
    session = requests.Session()
    sent: list[str] = []
    session.hooks["response"].append(lambda r, *a, **k: sent.append(r.request.method))
    client = make_client("sync", served.url, clock, session=session)
    client.signIn(REDIRECT)
    assert sent == ["GET"]
    client.close()  # not ours: still usable
    assert session.get(served.url + "/oidc/jwks").status_code == 200
    session.close()

    async def with_own_client() -> None:
        async with httpx.AsyncClient() as http:
            own = make_client("aio", served.url, clock, http_client=http)
            await own.signIn(REDIRECT)
            await own.aclose()
            assert not http.is_closed

        made: list[httpx.AsyncClient] = []

        def factory() -> httpx.AsyncClient:
            made.append(httpx.AsyncClient())
            return made[-1]

        async with make_client("aio", served.url, clock, client_factory=factory) as built:
            await built.signIn(REDIRECT)
        assert len(made) == 1 and made[0].is_closed

    asyncio.run(with_own_client())
    with make_client("sync", served.url, clock) as owned:
        owned.signIn(REDIRECT)


class AsyncDictStorage:
    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        await asyncio.sleep(0)
        return self.data.get(key)

    async def set(self, key: str, value: str | None) -> None:
        await asyncio.sleep(0)
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)


def test_async_storage(served: ServedProvider, clock: Clock) -> None:
    storage = AsyncDictStorage()
    client = make_client("aio", served.url, clock, storage)
    assert isinstance(client, aio.LogtoClient)
    harness = Harness("aio", client, served)

    async def fresh_context() -> None:
        with pytest.raises(LogtoUsageError):
            client.isAuthenticated()
        assert await client.isAuthenticatedAsync() is True
        assert client.isAuthenticated() is True  # the twin left a snapshot
        assert (await client.getIdTokenClaimsAsync()).sub == USER
        assert await client.getIdTokenAsync() == stored(storage.data).id_token
        assert await client.getRefreshTokenAsync() == stored(storage.data).refresh_token

    async def request_handler() -> None:
        token = await client.getAccessToken(API)
        assert token is not None
        assert client.getIdTokenClaims().sub == USER
        assert client.getRefreshToken() == stored(storage.data).refresh_token
        assert client.getIdToken() is not None
        await client.signOut()
        assert client.isAuthenticated() is False
        with pytest.raises(SignInRequiredError):
            client.getIdTokenClaims()

    harness.sign_in_user()
    assert stored(storage.data).id_token
    contextvars.Context().run(asyncio.run, fresh_context())
    contextvars.Context().run(asyncio.run, request_handler())
    assert storage.data == {}


def test_async_leader_cancelled_still_serves_followers(
    served: ServedProvider, clock: Clock
) -> None:
    """The cancelled leader stops waiting; its refresh goes on and the follower gets it."""
    client = make_client("aio", served.url, clock)
    harness = Harness("aio", client, served)
    harness.sign_in_user()
    clock.advance(3601)
    served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=1.0))

    async def run() -> None:
        leader = asyncio.ensure_future(client.getAccessToken())
        await asyncio.sleep(0.1)
        follower = asyncio.ensure_future(client.getAccessToken())
        await asyncio.sleep(0.05)
        leader.cancel()
        assert await asyncio.wait_for(follower, 5) is not None
        assert leader.cancelled()

    asyncio.run(run())
    assert harness.requests_to("token", "refresh_token") == 1


def test_follower_wait_is_bounded(served: ServedProvider, clock: Clock) -> None:
    for kind in ("sync", "aio"):
        client = make_client(kind, served.url, clock, refresh_wait=0.2)
        harness = Harness(kind, client, served)
        harness.sign_in_user()
        clock.advance(3601)
        served.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.8))
        outcomes: list[object] = []

        def call(h: Harness = harness, out: list[object] = outcomes) -> None:
            try:
                out.append(h.getAccessToken())
            except TransportError as error:
                out.append(error.code)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        assert "transport.timeout" in outcomes, kind
        tokens = [o for o in outcomes if isinstance(o, str) and o != "transport.timeout"]
        assert len(tokens) == 1, kind


def test_serve_provider_guards(clock: Clock) -> None:
    with pytest.raises(LogtoUsageError):
        serve_provider(lambda url: TestProvider(url, clock=clock), host="0.0.0.0")
    with pytest.raises(LogtoUsageError):
        start_provider(TestProvider("http://127.0.0.1:1", clock=clock))
    served = start_provider(lambda url: TestProvider(url, clock=clock), host="localhost")
    setup_provider(served.provider)
    assert served.url == f"http://127.0.0.1:{served.port}"
    with served.lock:
        pass
    response = requests.post(served.url + "/oidc/token", data=b"x" * (1024 * 1024 + 1), timeout=5)
    assert response.status_code == 413
    served.stop()
    served.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(served.url + "/oidc/jwks", timeout=2)


def test_environment_proxies_are_read_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    from logto_adapters.transport_requests import RequestsTransport

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    transport = RequestsTransport()
    assert transport.session.trust_env is False
    settings = transport._environment("https://tenant.example/oidc/token")
    assert settings["proxies"].get("https") == "http://proxy.example:3128"
    assert transport._environment("https://internal.example/oidc/token")["proxies"] == {}
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:1")
    assert transport._environment("https://tenant.example/oidc/jwks") is settings  # cached
    import requests

    own = requests.Session()
    assert RequestsTransport(own)._environment("https://tenant.example/x") == {}
    assert own.trust_env is True  # a caller's session is used as configured


def test_the_loopback_server_keeps_connections_alive(served: ServedProvider, clock: Clock) -> None:
    """Ten sequential refreshes of one client over one kept-alive connection (the server
    counts what it accepts, for the benchmarks)."""
    client = make_client("sync", served.url, clock)
    harness = Harness("sync", client, served)
    harness.sign_in_user()
    before = served.connections_accepted
    for _ in range(10):
        clock.advance(3601)
        assert harness.getAccessToken() is not None
    assert served.connections_accepted - before <= 1
    client.close()
