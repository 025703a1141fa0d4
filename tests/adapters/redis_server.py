"""A real ``redis-server`` for the tests (Debian's package), on a free loopback port: started
by the test, waited for within a bound, stopped by its pid. Nothing is persisted unless a test
asks (``stop(save=True)`` then ``start()`` again: Redis restarted with its data, as one with
persistence would come back).

Small and local to the Redis tests for now; to be unified with the coordinator's fixture."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (Debian's redis-server package)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return found


class RedisServer:
    """One redis-server process; ``url`` reaches it (with ``password`` when it has one)."""

    def __init__(
        self,
        directory: Path,
        *,
        password: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.tls = tls
        """(CA certificate, server certificate, server key): TLS only, on ``port``."""
        self.extra = list(extra)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def _connect(self, timeout: float) -> socket.socket:
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        if self.tls is None:
            return conn
        context = ssl.create_default_context(cafile=str(self.tls[0]))
        return context.wrap_socket(conn, server_hostname="127.0.0.1")

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            _, cert, key = self.tls
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(cert)]
            ports += ["--tls-key-file", str(key), "--tls-auth-clients", "no"]
        args = [
            self.binary,
            *ports,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--dbfilename",
            "dump.rdb",
            *(["--requirepass", self.password] if self.password else []),
            *self.extra,
        ]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not start within {START_TIMEOUT} s")

    def _answers_ping(self) -> bool:
        try:
            with self._connect(0.5) as conn:
                if self.password:
                    conn.sendall(f"AUTH {self.password}\r\n".encode())
                    conn.recv(64)
                conn.sendall(b"PING\r\n")
                return conn.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        """One inline command, its raw answer (for SHUTDOWN, FLUSHALL, DEBUG...)."""
        with self._connect(5.0) as conn:
            if self.password:
                conn.sendall(f"AUTH {self.password}\r\n".encode())
                conn.recv(64)
            conn.sendall((" ".join(words) + "\r\n").encode())
            try:
                return conn.recv(4096)
            except OSError:
                return b""

    def stop(self, *, save: bool = False) -> None:
        """Stop it (by its pid), within a bound; ``save``: write its data first, so that
        ``start()`` brings it back."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        if save:
            self.command("SHUTDOWN", "SAVE")
        else:
            process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait(STOP_TIMEOUT)

    def log_tail(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


@contextlib.contextmanager
def running_redis(
    directory: Path,
    *,
    password: str | None = None,
    tls: tuple[Path, Path, Path] | None = None,
    extra: Sequence[str] = (),
) -> Iterator[RedisServer]:
    server = RedisServer(directory, password=password, tls=tls, extra=extra)
    server.start()
    try:
        yield server
    finally:
        server.kill()
