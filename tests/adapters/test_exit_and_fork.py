"""Processes that end right after a sign-out, and processes forked after the client was used.

A script or worker that signs out and exits must not leave the refresh token alive (Logto
keeps the grant for 14 days), and a stalled provider must not hold the exit either. A worker
forked from a master that already used the client (gunicorn ``--preload``) must start clean.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest

from logto_adapters.testing import ServedProvider
from logto_core.storage import MemoryStorage
from logto_core.testing import ACCESS_TOKEN_TTL, Fault

from .conftest import API, APP_ID, APP_SECRET, Clock, Harness, make_client

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from logto_adapters import aio, sync
    from logto_core.storage import MemoryStorage

    kind, endpoint, mode, timeout, sessions = sys.argv[1:]
    module = sync if kind == "sync" else aio
    client = module.LogtoClient(
        module.LogtoConfig(endpoint=endpoint, appId="{app_id}", appSecret="{secret}"),
        revocation=mode,
        revocation_timeout=float(timeout),
    )
    for values in json.loads(sessions):
        storage = MemoryStorage()
        for key, value in values.items():
            storage.set(key, value)
        client.storage = storage
        url = client.signOut()
        if asyncio.iscoroutine(url):
            asyncio.run(url)
    print(time.monotonic(), flush=True)  # then the interpreter exits at once
    """
).format(app_id=APP_ID, secret=APP_SECRET)


def signed_in_sessions(kind: str, served: ServedProvider, clock: Clock, count: int) -> list[Any]:
    sessions = []
    for _ in range(count):
        storage = MemoryStorage()
        Harness(kind, make_client(kind, served.url, clock, storage), served).sign_in_user()
        sessions.append(dict(storage._data))
    return sessions


def run_child(kind: str, served: ServedProvider, mode: str, timeout: float, sessions: Any) -> float:
    """Run the child to its end; answer the seconds between its last sign-out and its exit."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, served.url, mode, str(timeout), json.dumps(sessions)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    ended = time.monotonic()
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    last_sign_out = float(done.stdout.strip().splitlines()[-1])
    assert started <= last_sign_out <= ended
    return ended - last_sign_out


def refresh_tokens(sessions: Any) -> list[str]:
    from logto_core.session import SessionState

    tokens = [SessionState.from_values(values).refresh_token for values in sessions]
    assert all(tokens)
    return [str(token) for token in tokens]


@pytest.mark.parametrize("mode", ["inline", "background"])
def test_a_process_that_exits_right_after_sign_out_revokes(
    kind: str, served: ServedProvider, clock: Clock, mode: str
) -> None:
    sessions = signed_in_sessions(kind, served, clock, 3)
    served.provider.faults.add(Fault("revocation", delay=0.1, times=None))  # a real provider
    run_child(kind, served, mode, 5.0, sessions)
    for token in refresh_tokens(sessions):
        assert not served.provider.is_refresh_token_active(token)


def test_a_stalled_provider_cannot_hold_the_exit(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    """20 revocations that never answer (within the client's 15 s total timeout) hold the
    exit at most ``revocation_timeout`` (plus the interpreter's own shutdown)."""
    sessions = signed_in_sessions(kind, served, clock, 20)
    served.provider.faults.add(Fault("revocation", delay=30.0, times=None))  # capped at 5 s
    held = run_child(kind, served, "background", 0.5, sessions)
    assert held < 0.5 + 3.0, held


def test_a_forked_child_starts_clean(kind: str, served: ServedProvider, clock: Clock) -> None:
    """The master used the client (a kept-alive connection, provider knowledge); forked
    children and the master then use it at the same time: every call of every process works."""
    client = make_client(kind, served.url, clock)
    storages = []
    for _ in range(4):
        storage = MemoryStorage()
        client.storage = storage
        Harness(kind, client, served).sign_in_user()
        storages.append(storage)
    clock.advance(ACCESS_TOKEN_TTL + 1)

    def work(storage: MemoryStorage) -> bool:
        client.storage = storage
        results = []
        for _ in range(15):
            token = client.getAccessToken(API)
            if asyncio.iscoroutine(token):
                token = asyncio.run(token)
            results.append(token)
            info = client.fetchUserInfo()
            if asyncio.iscoroutine(info):
                info = asyncio.run(info)
            results.append(info.sub)
        return all(results)

    children = []
    for storage in storages[1:]:
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            try:
                os._exit(0 if work(storage) else 1)
            except BaseException:
                os._exit(2)
        children.append(pid)
    assert work(storages[0])
    statuses = [os.waitpid(pid, 0)[1] for pid in children]
    assert all(os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses), statuses
