"""A real ``redis-server`` for the tests: Debian's (``make unit`` installs it), started on a
free 127.0.0.1 port with no persistence in a directory of its own, and stopped by its pid.

:func:`redis_server` is the session-wide fixture the conftests that need it import; a test
that stops Redis mid-run makes its own :class:`RedisServer` (``stop``, ``kill``, ``start``
again on the same port). Skipped only when ``redis-server`` is missing and ``CI`` is unset;
under CI that is a failure, as for the interop suite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def unavailable(reason: str) -> None:
    """Skip locally; under CI a missing prerequisite is a failure, not a silent skip."""
    if os.environ.get("CI"):
        pytest.fail(f"the Redis tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ping(port: int, password: str | None = None) -> bool:
    """Whether a Redis answers on ``port`` (``+PONG``, or ``-NOAUTH`` when it wants a
    password): raw RESP, so this needs no client library."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            answer = conn.recv(64)
    except OSError:
        return False
    return answer.startswith((b"+PONG", b"-NOAUTH"))


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``; :meth:`stop` and :meth:`start`
    can be called again (the outage tests), always on the same port."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        password: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            unavailable("redis-server is not installed (make redis-server installs Debian's)")
        assert binary is not None
        self.binary = binary
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.password = password
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls is not None else "redis"
        auth = f":{self.password}@" if self.password is not None else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def command(self) -> list[str]:
        command = [self.binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.directory), "--daemonize", "no"]
        command += ["--logfile", str(self.directory / "redis.log"), "--loglevel", "warning"]
        command += ["--maxmemory-policy", "noeviction"]
        if self.tls is not None:
            cert, key = self.tls
            command += ["--port", "0", "--tls-port", str(self.port)]
            command += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
            command += ["--tls-auth-clients", "no"]
        else:
            command += ["--port", str(self.port)]
        if self.password is not None:
            command += ["--requirepass", self.password]
        return command

    def start(self) -> None:
        """Start it and wait until it answers (bounded)."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.directory / "redis.log"
                text = log.read_text()[-2000:] if log.exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server did not start on {self.port}: {text}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        if self.tls is not None:  # a TLS port: accepting connections is enough
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        return _ping(self.port, self.password)

    def stop(self) -> None:
        """Stop it by its pid (SIGTERM, then SIGKILL), waiting until it has exited."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        """Kill it at once (SIGKILL), as a crash would."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def flush(self) -> None:
        """Forget every key (between tests sharing the server)."""
        import redis  # the test extra

        client = redis.Redis.from_url(self.url)
        try:
            client.flushall()
        finally:
            client.close()


@contextlib.contextmanager
def running(
    directory: Path, *, password: str | None = None, tls: tuple[Path, Path] | None = None
) -> Iterator[RedisServer]:
    server = RedisServer(directory, password=password, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the whole session (tests use keys of their own, or flush it)."""
    with running(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied before the test."""
    redis_server.flush()
    return redis_server.url
