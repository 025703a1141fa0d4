"""Every request ends within its total timeout, whatever the peer does (both transports).

The peers trickle one byte every 0.2 s, far longer than the timeouts (each trickle is cut
after 20 s by the peer itself, so an unbounded client fails its time bound rather than
hanging): per-read socket timeouts never fire, only the total deadline can end the request.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import trustme

from logto_adapters import socket_deadline
from logto_adapters.transport_requests import RequestsTransport
from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.http import HttpRequest

from . import peers
from .conftest import REDIRECT, Clock, Harness, make_client
from .senders import TRANSPORTS, Sender, trusting

TOTAL = 1.0
SLACK = 3.0  # a busy machine cannot stretch a watchdog's cut this far
USERINFO = "/oidc/me?access=secret-query"


def timed_out(sender: Sender, request: HttpRequest, total: float = TOTAL) -> float:
    """Seconds the request took to fail with ``transport.timeout`` (asserted bounded)."""
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        sender.send(request)
    elapsed = time.monotonic() - started
    assert caught.value.code == policy.TIMEOUT, caught.value
    assert elapsed < total + SLACK
    assert "secret-query" not in str(caught.value)
    return elapsed


@pytest.fixture(params=TRANSPORTS)
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def peer() -> Iterator[peers.Peer]:
    with peers.serve() as served:
        yield served


def sender_for(kind: str, **options: Any) -> Sender:
    return Sender(kind, timeout=(TOTAL, TOTAL), **options)


SCRIPTS: dict[str, Callable[[], peers.Script]] = {
    "status_line": peers.trickled_status_line,
    "headers": peers.trickled_headers,
    "body": peers.trickled_body,
    "endless_chunked_body": peers.endless_chunked_body,
    "silent": peers.Silent,
}


@pytest.mark.parametrize("phase", list(SCRIPTS))
def test_trickling_peer_is_cut_at_the_deadline(
    transport_kind: str, peer: peers.Peer, phase: str
) -> None:
    sender = sender_for(transport_kind)
    request = HttpRequest.get(peer.url + USERINFO, purpose="userinfo")
    try:
        peer.on_request.append(SCRIPTS[phase]())
        timed_out(sender, request)
        # The same transport works at once for the next request.
        assert sender.send(request).body == peers.OK_BODY
        assert peer.connections == 2
    finally:
        sender.close()


def test_kept_alive_connection_is_cut_too(transport_kind: str, peer: peers.Peer) -> None:
    """A pooled connection never connects again: it is watched from its next request on."""
    sender = sender_for(transport_kind)
    request = HttpRequest.get(peer.url + USERINFO, purpose="userinfo")
    try:
        assert sender.send(request).status == 200
        peer.on_request.append(peers.trickled_body())
        timed_out(sender, request)
        ports = peer.ports()
        assert ports[0] == ports[1]  # the trickle came on the kept-alive connection
        assert sender.send(request).status == 200
        assert peer.connections == 2
    finally:
        sender.close()


@pytest.mark.parametrize("script", [peers.trickled_headers, peers.trickled_body])
def test_httpx_cancelled_exchange_leaves_the_pool_usable(
    peer: peers.Peer, script: Callable[[], peers.Script]
) -> None:
    """``asyncio.wait_for`` cancels the exchange mid-headers or mid-body: on a pool of one
    connection, a connection left checked out would make every later request wait."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    sender = sender_for("httpx", client_factory=lambda: httpx.AsyncClient(limits=limits))
    request = HttpRequest.get(peer.url + USERINFO, purpose="userinfo")
    try:
        for _ in range(3):
            peer.on_request.append(script())
            timed_out(sender, request)
            assert sender.send(request).status == 200
            assert sender.send(request).status == 200
        assert peer.connections == 4  # each cut connection was dropped, the others reused
    finally:
        sender.close()


def test_callers_session_gets_the_deadline(peer: peers.Peer) -> None:
    session = requests.Session()
    session.headers["x-caller"] = "kept"
    sender = Sender("requests", session=session, timeout=(TOTAL, TOTAL))
    assert isinstance(sender.transport, RequestsTransport)
    assert sender.transport.unwatched_prefixes == ()
    assert all(isinstance(a, socket_deadline.DeadlineAdapter) for a in session.adapters.values())
    request = HttpRequest.get(peer.url + USERINFO, purpose="userinfo")
    peer.on_request.append(peers.trickled_headers())
    timed_out(sender, request)
    assert sender.send(request).status == 200
    assert all(b"x-caller: kept" in head for _, head in peer.requests)
    session.close()


def test_callers_own_adapter_is_kept_and_listed() -> None:
    class Mine(requests.adapters.HTTPAdapter):
        pass

    session = requests.Session()
    mine = Mine(pool_maxsize=3)
    session.mount("http://", mine)
    stock_https = session.adapters["https://"]
    transport = RequestsTransport(session)
    assert session.adapters["http://"] is mine
    assert transport.unwatched_prefixes == ("http://",)
    replaced = session.adapters["https://"]
    assert isinstance(replaced, socket_deadline.DeadlineAdapter)
    assert replaced is not stock_https
    assert replaced._pool_maxsize == stock_https._pool_maxsize  # type: ignore[attr-defined]
    assert replaced.max_retries is stock_https.max_retries  # type: ignore[attr-defined]
    session.close()


@pytest.fixture
def tls_peer(tmp_path: Path) -> Iterator[tuple[peers.Peer, trustme.CA, str]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    with peers.serve(tls=context) as served:
        yield served, ca, str(path)


def test_slow_tls_handshake_is_cut(
    transport_kind: str, tls_peer: tuple[peers.Peer, trustme.CA, str]
) -> None:
    peer, ca, path = tls_peer
    sender = sender_for(transport_kind, **trusting(transport_kind, ca, path))
    request = HttpRequest.get(peer.url + USERINFO, purpose="userinfo")
    try:
        peer.on_connect.append(peers.trickled_tls_handshake())
        timed_out(sender, request)
        assert sender.send(request).body == peers.OK_BODY  # a real handshake, trusted
        peer.on_request.append(peers.trickled_body())
        timed_out(sender, request)  # and a trickle inside a kept-alive TLS connection
        assert sender.send(request).status == 200
    finally:
        sender.close()


SLOW_503 = peers.Trickle(
    b"x-pad: " + b"a" * 10,  # 17 bytes, one every 0.2 s: the answer completes after 3.4 s
    prefix=b"HTTP/1.1 503 Service Unavailable\r\n",
    suffix=b"\r\nretry-after: 0\r\ncontent-length: 0\r\n\r\n",
)


def test_retries_share_the_deadline(transport_kind: str, peer: peers.Peer) -> None:
    """Discovery is retried after a 503; the retry gets what is left of the one deadline
    (4 s in all), not a deadline of its own (which would end it after 3.4 + 4 s)."""
    total = 4.0
    sender = Sender(transport_kind, timeout=(total, total))
    request = HttpRequest.get(
        peer.url + "/oidc/.well-known/openid-configuration", purpose="discovery"
    )
    try:
        peer.on_request += [SLOW_503, peers.trickled_body()]
        elapsed = timed_out(sender, request, total)
        assert len(peer.requests) == 2  # the 503 was retried
        # timed_out asserted elapsed < total + 3 s: with a deadline of its own, the retry
        # would have ended 3.4 + 4 s after the start at the earliest, however fast the machine.
        assert elapsed >= 3.4
    finally:
        sender.close()


def test_retried_key_set_fetch_stays_in_the_deadline(transport_kind: str, peer: peers.Peer) -> None:
    """JWKS: a broken connection is retried, then a trickle; the deadline still holds."""
    sender = sender_for(transport_kind)
    request = HttpRequest.get(peer.url + "/oidc/jwks", purpose="jwks")
    try:
        peer.on_request += [peers.Close(), peers.trickled_headers()]
        timed_out(sender, request)
        assert len(peer.requests) >= 2
        assert sender.send(request).status == 200
    finally:
        sender.close()


def test_client_sign_in_against_a_trickling_provider(
    transport_kind: str, peer: peers.Peer, clock: Clock
) -> None:
    client_kind = "sync" if transport_kind == "requests" else "aio"
    client = make_client(client_kind, peer.url, clock, timeout=(TOTAL, TOTAL))
    harness = Harness(client_kind, client, None)  # type: ignore[arg-type]
    peer.on_request.append(peers.trickled_headers())
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        harness.signIn(REDIRECT)
    assert caught.value.code == policy.TIMEOUT
    assert time.monotonic() - started < TOTAL + SLACK


def test_watchdog_never_cuts_a_connection_back_in_its_pool() -> None:
    """An exchange past its deadline after its connection went back to the pool (and maybe
    to another request) must not shut that connection down."""
    watchdog = socket_deadline.Watchdog()
    left, right = socket.socketpair()
    conn = socket_deadline.WatchedHTTPConnection("127.0.0.1", 1)
    try:
        exchange = watchdog.begin(time.monotonic() + 0.3)
        watchdog.watch(exchange, conn, left, fresh=True)
        watchdog.disown(conn)  # returned to the pool
        time.sleep(0.6)
        assert exchange.expired
        left.sendall(b"x")  # still open both ways
        assert right.recv(1) == b"x"
        assert watchdog.end(exchange) is True

        other = watchdog.begin(time.monotonic() + 0.3)
        watchdog.watch(other, conn, left, fresh=False)
        done = threading.Event()

        def read_to_eof() -> None:
            if right.recv(1) == b"":
                done.set()

        threading.Thread(target=read_to_eof, daemon=True).start()
        assert done.wait(3)  # cut: the blocked reader at the other end sees EOF
        assert watchdog.end(other) is True
    finally:
        left.close()
        right.close()


def test_watchdog_heap_stays_bounded() -> None:
    watchdog = socket_deadline.Watchdog()
    for _ in range(5000):
        watchdog.end(watchdog.begin(time.monotonic() + 60))
    assert len(watchdog._heap) <= 2 * 1024 + 2
