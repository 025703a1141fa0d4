"""Misbehaving peers on loopback for the transport tests: a raw-socket server that answers
each request (or each new connection) with the next scripted behaviour (trickling bytes,
never answering, closing), or with a plain ``200`` when no script is left; optionally over
TLS. Started and stopped by the test; every trickle is bounded in time."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

OK_BODY = b'{"ok": true}'
MAX_SCRIPT_SECONDS = 20.0
"""Longest a scripted behaviour lasts: a client that is not bounded fails its time bound
instead of hanging the test run."""


def reply(status: str = "200 OK", body: bytes = OK_BODY, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", "content-type: application/json", *headers]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def ok_reply(body: bytes = OK_BODY) -> bytes:
    return reply("200 OK", body)


@dataclass(frozen=True)
class Trickle:
    """Send ``prefix`` at once, then ``data`` one byte every ``interval`` seconds (far past
    any client's timeout unless ``data`` is short), then ``suffix``; then close."""

    data: bytes
    prefix: bytes = b""
    suffix: bytes = b""
    interval: float = 0.2


@dataclass(frozen=True)
class Silent:
    """Accept (and read the request) but never answer; close when the client does."""


@dataclass(frozen=True)
class Reply:
    """Send these bytes, then keep serving the connection (or close it: ``close``)."""

    data: bytes
    close: bool = False


@dataclass(frozen=True)
class Close:
    """Close the connection at once (on connect: before any TLS handshake)."""


Script = Trickle | Silent | Reply | Close


def trickled_status_line() -> Trickle:
    return Trickle(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")


def trickled_headers() -> Trickle:
    return Trickle(b"x-slow: " + b"a" * 400 + b"\r\n\r\n", prefix=b"HTTP/1.1 200 OK\r\n")


def trickled_body() -> Trickle:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n"
    return Trickle(b"[" + b"0," * 249, prefix=head)


def endless_chunked_body() -> Trickle:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    return Trickle(b"1\r\nx\r\n" * 500, prefix=head)


def trickled_tls_handshake() -> Trickle:
    """A TLS record header announcing a 16 KiB handshake record, then its bytes one at a
    time: the client's TLS library waits for the whole record before it can fail."""
    return Trickle(b"\x00" * 16384, prefix=b"\x16\x03\x03\x40\x00")


@dataclass
class Peer:
    url: str
    on_request: list[Script] = field(default_factory=list)
    on_connect: list[Script] = field(default_factory=list)
    connections: int = 0
    requests: list[tuple[int, bytes]] = field(default_factory=list)  # (client port, head)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ports(self) -> list[int]:
        with self.lock:
            return [port for port, _ in self.requests]


def _read_head(conn: socket.socket, stop: threading.Event) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        if stop.is_set() or len(data) > 65536:
            return None
        try:
            piece = conn.recv(4096)
        except TimeoutError:
            continue
        if not piece:
            return None
        data += piece
    return data


def _trickle(conn: socket.socket, script: Trickle, stop: threading.Event) -> None:
    ends = time.monotonic() + MAX_SCRIPT_SECONDS
    conn.sendall(script.prefix)
    for index in range(len(script.data)):
        if stop.wait(script.interval) or time.monotonic() > ends:
            return
        conn.sendall(script.data[index : index + 1])
    conn.sendall(script.suffix)


def _silent(conn: socket.socket, stop: threading.Event) -> None:
    ends = time.monotonic() + MAX_SCRIPT_SECONDS
    while not stop.is_set() and time.monotonic() < ends:
        try:
            if not conn.recv(4096):
                return
        except TimeoutError:
            continue


def _play(conn: socket.socket, script: Script, stop: threading.Event) -> bool:
    """Run one script; whether the connection may serve another request."""
    if isinstance(script, Trickle):
        _trickle(conn, script, stop)
        return False
    if isinstance(script, Silent):
        _silent(conn, stop)
        return False
    if isinstance(script, Reply):
        conn.sendall(script.data)
        return not script.close
    return False


@contextlib.contextmanager
def serve(tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> Iterator[Peer]:
    """A peer on ``host`` (loopback) until the block ends; ``https`` when ``tls`` is given."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(16)
    listener.settimeout(0.1)
    scheme = "https" if tls is not None else "http"
    peer = Peer(f"{scheme}://{host}:{listener.getsockname()[1]}")
    stop = threading.Event()
    workers: list[threading.Thread] = []

    def handle(raw: socket.socket, port: int) -> None:
        conn: socket.socket = raw
        try:
            raw.settimeout(0.1)
            with peer.lock:
                first = peer.on_connect.pop(0) if peer.on_connect else None
            if first is not None:
                _play(raw, first, stop)
                return
            if tls is not None:
                raw.settimeout(5)
                conn = tls.wrap_socket(raw, server_side=True)
                conn.settimeout(0.1)
            while not stop.is_set():
                head = _read_head(conn, stop)
                if head is None:
                    return
                with peer.lock:
                    peer.requests.append((port, head))
                    script = peer.on_request.pop(0) if peer.on_request else Reply(ok_reply())
                if not _play(conn, script, stop):
                    return
        except (OSError, ssl.SSLError):
            pass  # the client went away, or refused our certificate: that is the test
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                raw, address = listener.accept()
            except OSError:
                continue
            with peer.lock:
                peer.connections += 1
            worker = threading.Thread(target=handle, args=(raw, address[1]), daemon=True)
            workers.append(worker)
            worker.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield peer
    finally:
        stop.set()
        acceptor.join(timeout=5)
        for worker in workers:
            worker.join(timeout=5)
        listener.close()
