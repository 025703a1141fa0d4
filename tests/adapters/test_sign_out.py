"""Sign-out never waits on the provider: the refresh token is revoked in the background (or
inline on request), for both clients, and the clients wait for those revocations on close."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from logto_adapters import aio, sync
from logto_adapters._background import BackgroundJobs
from logto_adapters.testing import ServedProvider
from logto_core.errors import LogtoUsageError, TransportError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.log import LOGGER_NAME
from logto_core.session import StorageKey
from logto_core.storage import MemoryStorage
from logto_core.testing import Fault

from .conftest import POST_LOGOUT, REDIRECT, USER, Clock, Harness, make_client


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _signed_in(kind: str, served: ServedProvider, clock: Clock, **options: Any) -> Harness:
    harness = Harness(
        kind, make_client(kind, served.url, clock, MemoryStorage(), **options), served
    )
    harness.sign_in_user()
    return harness


def _cleared(harness: Harness) -> bool:
    storage = harness.client.storage
    return all(storage.get(key) is None for key in StorageKey.ALL)


def _timed_sign_out(harness: Harness) -> tuple[str, float]:
    started = time.monotonic()
    url = harness.signOut(POST_LOGOUT)
    return url, time.monotonic() - started


def test_background_sign_out_with_a_closed_port(
    kind: str, served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The storage holds a session, the provider is not even listening: the URL comes back at
    once (Logto's fixed end-session path), the revocation fails quietly in the background."""
    signed_in = _signed_in(kind, served, clock)
    dead = f"http://127.0.0.1:{_closed_port()}"
    client = make_client(kind, dead, clock, signed_in.client.storage, timeout=(2.0, 3.0))
    harness = Harness(kind, client, served)
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    url, elapsed = _timed_sign_out(harness)
    assert elapsed < 1.0, elapsed
    assert url.startswith(dead + "/oidc/session/end?") and "id_token_hint=" in url
    assert _cleared(harness)
    assert harness.waitForRevocations(10.0) is True
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "revocation failed (transport." in record.getMessage()


def test_background_sign_out_with_a_provider_slower_than_the_timeout(
    kind: str, served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    harness = _signed_in(kind, served, clock, timeout=(1.0, 1.0), revocation="background")
    refresh = harness.getRefreshToken()
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    harness.provider.faults.add(Fault("revocation", delay=3.0))
    url, elapsed = _timed_sign_out(harness)
    assert elapsed < 0.5, elapsed  # well under the 1 s timeout
    assert "post_logout_redirect_uri=" in url and _cleared(harness)
    assert harness.waitForRevocations(0) is False  # still waiting for the provider
    assert harness.waitForRevocations(5.0) is True
    [entry] = [e for e in harness.provider.log if e.endpoint == "revocation"]
    assert entry.params["token"] == refresh
    assert "revocation failed (transport.timeout)" in caplog.text


def test_background_revocation_succeeds(
    kind: str, served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    harness = _signed_in(kind, served, clock, revocation="background")
    refresh = harness.getRefreshToken()
    assert refresh is not None
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    harness.provider.faults.add(Fault("revocation", delay=1.0))
    _, elapsed = _timed_sign_out(harness)
    assert elapsed < 0.5, elapsed  # the answer was not waited for
    assert harness.waitForRevocations(0) is False
    assert harness.waitForRevocations() is True
    assert not harness.provider.is_refresh_token_active(refresh)
    assert caplog.records == []


def test_inline_sign_out_revokes_before_returning(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    harness = _signed_in(kind, served, clock, revocation="inline")
    refresh = harness.getRefreshToken()
    assert refresh is not None
    harness.provider.faults.add(Fault("revocation", delay=0.3))
    url, elapsed = _timed_sign_out(harness)
    assert elapsed >= 0.3 and "id_token_hint=" in url and _cleared(harness)
    assert not harness.provider.is_refresh_token_active(refresh)
    assert harness.waitForRevocations(0) is True


def test_a_sign_out_without_refresh_token_starts_nothing(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    harness = Harness(kind, make_client(kind, served.url, clock), served)
    harness.signOut()
    assert harness.client.logto._revocations.pending == 0
    assert harness.provider.log == []


def test_unknown_revocation_mode_is_refused(kind: str, clock: Clock) -> None:
    with pytest.raises(LogtoUsageError) as caught:
        make_client(kind, "http://127.0.0.1:9", clock, revocation="later")
    assert caught.value.code == "usage.revocation_mode"


def test_async_client_revokes_from_successive_loops(
    served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Each call in its own ``asyncio.run`` loop (Flask async views): the loop that signed out
    is closed before the revocation's answer arrives; the revocation has a loop of its own."""
    harness = Harness("aio", make_client("aio", served.url, clock), served)
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    revoked: list[str] = []
    for _ in range(3):
        harness.sign_in_user()
        refresh = harness.getRefreshToken()
        assert refresh is not None
        harness.provider.faults.add(Fault("revocation", delay=0.2))
        harness.signOut()  # its loop is closed when this returns
        revoked.append(refresh)
    assert harness.waitForRevocations(5.0) is True
    assert not any(harness.provider.is_refresh_token_active(r) for r in revoked)
    assert harness.requests_to("revocation") == 3
    assert caplog.records == []


def test_close_waits_for_pending_revocations(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    harness = _signed_in(kind, served, clock)
    refresh = harness.getRefreshToken()
    assert refresh is not None
    harness.provider.faults.add(Fault("revocation", delay=0.3))
    harness.signOut()
    if kind == "sync":
        harness.client.close()
    else:
        asyncio.run(harness.client.aclose())
    assert harness.waitForRevocations(0) is True
    assert not harness.provider.is_refresh_token_active(refresh)


def test_context_managers_wait_for_pending_revocations(
    served: ServedProvider, clock: Clock
) -> None:
    sync_harness = _signed_in("sync", served, clock, revocation="background")
    async_harness = _signed_in("aio", served, clock, revocation="background")
    tokens = [h.getRefreshToken() for h in (sync_harness, async_harness)]
    served.provider.faults.add(Fault("revocation", delay=0.3, times=2))
    with sync_harness.client as client:
        client.signOut()

    async def sign_out() -> None:
        async with async_harness.client as client:
            await client.signOut()
            assert client.waitForRevocations(0) is False

    asyncio.run(sign_out())
    assert not any(served.provider.is_refresh_token_active(str(t)) for t in tokens)


def test_close_is_bounded(served: ServedProvider, clock: Clock) -> None:
    """A transport that never answers cannot hold ``close()`` longer than the revocation
    timeout."""
    release = threading.Event()
    real = sync.LogtoClient(sync.LogtoConfig(endpoint=served.url, appId="x"))
    send = real.logto._sending.send

    def hanging(request: HttpRequest) -> HttpResponse:
        if request.purpose == "revocation":
            release.wait(10.0)
            raise TransportError("released", code="transport.failed")
        response: HttpResponse = send(request)
        return response

    harness = _signed_in(
        "sync",
        served,
        clock,
        transport=hanging,
        timeout=(0.2, 0.2),
        revocation="background",
        revocation_timeout=0.3,
    )
    harness.signOut()
    started = time.monotonic()
    harness.client.close()
    assert time.monotonic() - started < 2.0
    assert harness.waitForRevocations(0) is False
    release.set()
    assert harness.waitForRevocations(5.0) is True
    real.close()


def test_async_client_with_its_own_http_client_revokes_on_that_loop(
    served: ServedProvider, clock: Clock
) -> None:
    """An ``http_client`` belongs to one loop: the background revocation sends through it on
    that loop, which keeps running meanwhile."""

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            client = make_client("aio", served.url, clock, http_client=http)
            url = await client.signIn(REDIRECT)
            await client.handleSignInCallback(served.provider.approve(url, USER))
            refresh = await client.getRefreshTokenAsync()
            await client.signOut()
            assert await asyncio.to_thread(client.waitForRevocations, 5.0) is True
            assert not served.provider.is_refresh_token_active(refresh)
            await client.aclose()
            assert not http.is_closed

    asyncio.run(main())


def test_async_client_with_a_custom_transport_on_a_closed_loop(
    served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller's transport may belong to the loop that signed out; once that loop is closed
    the revocation fails, quietly: a warning, never a crash or a printed traceback."""
    loops: list[asyncio.AbstractEventLoop] = []

    async def transport(request: HttpRequest) -> HttpResponse:
        loops.append(asyncio.get_running_loop())
        return served.provider.respond(request).response

    harness = _signed_in("aio", served, clock, transport=transport)
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    served.provider.log.clear()
    harness.signOut()
    assert harness.waitForRevocations(5.0) is True
    revoked = harness.requests_to("revocation") == 1
    failed = "revocation failed (transport.failed)" in caplog.text
    assert revoked != failed  # exactly one of the two, depending on the race with the close
    assert all(loop.is_closed() for loop in loops)  # every request ran on a caller's loop


def test_async_client_gives_up_on_a_transport_that_never_answers(
    served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    stopped = threading.Event()

    async def transport(request: HttpRequest) -> HttpResponse:
        if request.purpose == "revocation":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                stopped.set()
                raise
        return served.provider.respond(request).response

    async def main() -> None:
        client = make_client(
            "aio",
            served.url,
            clock,
            transport=transport,
            refresh_wait=0.3,
            revocation="background",
        )
        url = await client.signIn(REDIRECT)
        await client.handleSignInCallback(served.provider.approve(url, USER))
        started = time.monotonic()
        await client.signOut()
        assert time.monotonic() - started < 0.2
        assert await asyncio.to_thread(client.waitForRevocations, 5.0) is True
        await asyncio.to_thread(stopped.wait, 2.0)  # the abandoned exchange was cancelled

    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    asyncio.run(main())
    assert stopped.is_set()
    assert "revocation failed (transport.timeout)" in caplog.text


def test_async_client_sending_on_a_closed_loop(served: ServedProvider, clock: Clock) -> None:
    async def transport(request: HttpRequest) -> HttpResponse:
        raise AssertionError("never reached: its loop is closed")

    client = make_client("aio", served.url, clock, transport=transport)
    request = HttpRequest.get(served.url + "/oidc/.well-known/openid-configuration")
    closed = asyncio.new_event_loop()
    closed.close()
    idle = asyncio.new_event_loop()  # never runs, closed while our exchange is queued
    threading.Timer(0.2, idle.close).start()
    for loop in (closed, idle):
        with pytest.raises(TransportError) as caught:
            asyncio.run(client.logto._sending.send_on(loop, request))
        assert caught.value.code == "transport.failed"

    impatient = make_client("aio", served.url, clock, transport=transport, refresh_wait=0.2)
    stalled = asyncio.new_event_loop()  # open, but not running: no answer in time
    with pytest.raises(TransportError) as caught:
        asyncio.run(impatient.logto._sending.send_on(stalled, request))
    assert caught.value.code == "transport.timeout"
    stalled.run_until_complete(asyncio.sleep(0.01))  # the late start sees it was given up
    assert asyncio.all_tasks(stalled) == set()
    stalled.close()


def test_async_client_custom_transport_failure_is_logged(
    served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async def transport(request: HttpRequest) -> HttpResponse:
        if request.purpose == "revocation":
            raise TransportError("refused", code="transport.connection")
        return served.provider.respond(request).response

    async def main() -> None:
        client = make_client("aio", served.url, clock, transport=transport)
        url = await client.signIn(REDIRECT)
        await client.handleSignInCallback(served.provider.approve(url, USER))
        await client.signOut()
        await client.aclose()  # waits without blocking this loop, which sends for it
        assert client.waitForRevocations(0) is True

    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    asyncio.run(main())
    assert "revocation failed (transport.connection)" in caplog.text


def test_background_jobs_log_what_escapes(caplog: pytest.LogCaptureFixture) -> None:
    jobs = BackgroundJobs("logto-test-job", exit_wait=1.0)
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    gate = threading.Event()

    def crash() -> None:
        gate.wait(5.0)
        raise RuntimeError("boom with a secret")

    jobs.start(crash)
    assert jobs.pending == 1 and jobs.wait(0.01) is False
    gate.set()
    assert jobs.wait() is True and jobs.pending == 0
    assert [r.getMessage() for r in caplog.records] == ["logto-test-job ended with RuntimeError"]

    inner: list[bool] = []
    jobs.start(lambda: inner.append(jobs.wait(1.0)))  # a job waiting for the jobs: not itself
    assert jobs.wait(5.0) is True and inner == [True]


def test_sign_out_survives_a_process_out_of_threads(
    kind: str,
    served: ServedProvider,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = _signed_in(kind, served, clock)

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    url = harness.signOut(POST_LOGOUT)
    monkeypatch.undo()
    assert "id_token_hint=" in url and _cleared(harness)
    assert harness.waitForRevocations(0) is True
    assert [r.getMessage() for r in caplog.records] == [
        "logto-revocation could not start (RuntimeError)"
    ]


def test_async_module_exports_the_same_waiting_api() -> None:
    assert aio.LogtoClient.wait_for_revocations is aio.LogtoClient.waitForRevocations
    assert sync.LogtoClient.wait_for_revocations is sync.LogtoClient.waitForRevocations


def test_background_jobs_reuse_their_threads_and_loop_and_let_them_go() -> None:
    jobs = BackgroundJobs("logto-test-reuse", exit_wait=1.0)
    threads: list[str] = []
    for _ in range(3):
        jobs.start(lambda: threads.append(threading.current_thread().name))
        assert jobs.wait(5.0)
    assert len(set(threads)) == 1  # one reused worker for sequential jobs

    loops: list[int] = []

    async def note() -> None:
        loops.append(id(asyncio.get_running_loop()))

    for _ in range(3):
        assert jobs.start_async(note)
        assert jobs.wait(5.0)
    assert len(set(loops)) == 1  # one background loop, kept
    jobs.shutdown()
    assert jobs.start_async(note) and jobs.wait(5.0)  # a new loop after shutdown
    assert len(loops) == 4
    jobs.shutdown()


def test_inline_sign_out_is_bounded_by_the_revocation_timeout(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    """The default (inline) sign-out waits for the revocation at most ``revocation_timeout``;
    a slower provider's revocation goes on in the background and is not lost."""
    harness = _signed_in(kind, served, clock, revocation_timeout=0.5)
    refresh = harness.getRefreshToken()
    assert refresh is not None
    harness.provider.faults.add(Fault("revocation", delay=2.0))
    url, elapsed = _timed_sign_out(harness)
    assert 0.4 <= elapsed < 0.5 + 2.0, elapsed
    assert "id_token_hint=" in url and _cleared(harness)
    assert harness.waitForRevocations(10.0) is True
    assert not harness.provider.is_refresh_token_active(refresh)


def test_revocation_timeout_is_checked(kind: str, clock: Clock) -> None:
    for bad in (-1, float("inf"), float("nan"), "3", True):
        with pytest.raises(LogtoUsageError) as caught:
            make_client(kind, "http://127.0.0.1:9", clock, revocation_timeout=bad)
        assert caught.value.code == "usage.revocation_timeout"
