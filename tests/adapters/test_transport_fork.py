"""``after_fork_in_child()``: a forked child opens connections of its own and never touches
the parent's, which keep working (both transports, with a real ``os.fork()``)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from logto_adapters.transport_httpx import HttpxTransport
from logto_adapters.transport_requests import RequestsTransport
from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.http import HttpRequest

from . import peers

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CHILD_BOUND = 20.0
T = TypeVar("T")


def in_child(body: Callable[[], int]) -> int:
    """Fork; the child runs ``body`` and exits with its status (1 if it raised), never
    returning into pytest. The parent gets the child's exit status (killed past a bound)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which exits without reporting
        status = 1
        try:
            status = body()
        finally:
            os._exit(status)
    ends = time.monotonic() + CHILD_BOUND
    while time.monotonic() < ends:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the child did not finish: it hung on state inherited from the parent")


def test_requests_child_uses_its_own_connection() -> None:
    with peers.serve() as peer:
        transport = RequestsTransport(timeout=(1, 1))
        request = HttpRequest.get(peer.url + "/oidc/jwks", purpose="jwks")
        assert transport(request).status == 200  # the parent's connection, now pooled
        peer.on_request += [peers.Reply(peers.ok_reply()), peers.trickled_headers()]

        def child() -> int:
            transport.after_fork_in_child()
            if transport(request).status != 200:
                return 2
            started = time.monotonic()
            try:
                transport(request)
            except TransportError as error:
                # The deadline watchdog works in the child too (the parent's thread is gone).
                if error.code == policy.TIMEOUT and time.monotonic() - started < 4:
                    return 0
            return 3

        assert in_child(child) == 0
        assert transport(request).status == 200  # the parent's connection still works
        parent, child_first, child_second, parent_again = peer.ports()
        assert parent == parent_again  # ... and it is the same connection, kept alive
        assert child_first == child_second != parent  # the child opened its own
        transport.close()


def test_httpx_child_forgets_the_parents_clients() -> None:
    with peers.serve() as peer:
        transport = HttpxTransport(timeout=(2, 2))
        request = HttpRequest.get(peer.url + "/oidc/jwks", purpose="jwks")
        # The parent's long-lived loop, in a thread of its own (as in an app server).
        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_forever, daemon=True)
        runner.start()

        def on_parent_loop(coroutine: Coroutine[Any, Any, T]) -> T:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

        try:
            assert on_parent_loop(transport(request)).status == 200
            parent_client = on_parent_loop(transport.client_for_running_loop())

            def child() -> int:
                transport.after_fork_in_child()
                if asyncio.run(transport(request)).status != 200:
                    return 2
                gc.collect()
                return 0 if not parent_client.is_closed else 3

            # Another thread of the parent is making a per-loop client at the fork: the
            # child inherits the lock held; it must not wait for it for ever.
            with transport._lock:
                status = in_child(child)
            assert status == 0
            assert on_parent_loop(transport(request)).status == 200
            parent, child_port, parent_again = peer.ports()
            assert parent == parent_again != child_port
            assert not parent_client.is_closed
        finally:
            on_parent_loop(transport.aclose())
            loop.call_soon_threadsafe(loop.stop)
            runner.join(timeout=5)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
