"""Many worker processes, one Redis: what issue 13 asks of ``RedisCoordinator``.

Eight worker processes (spawned: four blocking, four asyncio, each a ``Logto`` with its own
``RedisCoordinator``) serve the sessions of a store they share (``tests/redis_workers.py``)
against the test provider on loopback, whose clock runs in real time (moved forward by an
offset the workers share), so Logto's 3 s reuse window is real:

* 8 workers x 25 concurrent requests on one session whose access token expired: exactly one
  refresh request, every request served, no grant revoked;
* 1,000 sessions refreshed at once across the workers (each by two of them): one refresh each;
* the worker leading a refresh is SIGKILLed while the provider holds its answer: a waiting
  worker takes the flight over as soon as the dead one's lead lapses (``LIVENESS``, 1.5 s),
  presents the refresh token inside the reuse window, and the session survives;
* the coordinator's Redis stopped mid-run: typed errors, no session lost, and coordination
  back when Redis is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from logto_adapters import sync
from logto_adapters.redis_coordination import LIVENESS
from logto_adapters.testing import ServedProvider, serve_provider
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.testing import ACCESS_TOKEN_TTL, REUSE_WINDOW, Fault, TestProvider
from tests.redis_support import running
from tests.redis_workers import (
    Setup,
    SharedSessionStorage,
    Workers,
    sessions_client,
    started,
    stored_session,
)

from .conftest import API, REDIRECT, USER, setup_provider

WORKERS = 8
REQUESTS_PER_WORKER = 25
SESSIONS = 1000
SCOPES = ["email", "read", "urn:logto:scope:organizations"]


class LiveClock:
    """Real time, plus an offset the test moves (and tells the workers)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def workers() -> Iterator[Workers]:
    with started(WORKERS) as pool:
        yield pool


@pytest.fixture
def clock() -> LiveClock:
    return LiveClock()


@pytest.fixture
def live(clock: LiveClock) -> Iterator[ServedProvider]:
    with serve_provider(lambda url: TestProvider(url, clock=clock), max_delay=30.0) as server:
        setup_provider(server.provider)
        server.provider.add_client("spa", redirect_uris=[REDIRECT], kind="spa")
        yield server


def config(served: ServedProvider) -> dict[str, Any]:
    """A public client: its refresh token rotates on every use."""
    return {
        "endpoint": served.url,
        "appId": "spa",
        "appSecret": None,
        "scopes": SCOPES,
        "resources": [API],
    }


def direct(served: ServedProvider) -> Callable[[HttpRequest], HttpResponse]:
    """The test process talks to the provider in memory (its sign-ins are set-up)."""

    def send(request: HttpRequest) -> HttpResponse:
        with served.lock:
            return served.provider.handle(request)

    return send


def sign_in_sessions(
    served: ServedProvider, clock: LiveClock, sessions_url: str, count: int
) -> tuple[list[str], str]:
    """``count`` signed-in sessions in the shared store; their ids, and the provider cache
    (discovery and keys) for the workers."""
    logto = sync.Logto(
        sync.LogtoConfig(**config(served)), runtime=Runtime(clock=clock), transport=direct(served)
    )
    client = sessions_client(sessions_url)
    ids = [f"user-session-{i}" for i in range(count)]
    try:
        for session_id in ids:
            session = logto.session(SharedSessionStorage(client, session_id))
            url = session.signIn(REDIRECT)
            with served.lock:
                callback = served.provider.approve(url, USER)
            session.handleSignInCallback(callback)
        return ids, logto.exportProviderCache()
    finally:
        client.close()
        logto.close()


def setups(
    workers: Workers,
    served: ServedProvider,
    clock: LiveClock,
    coordinator_url: str,
    sessions_url: str,
    cache: str,
) -> list[Setup]:
    return [
        Setup(kind, config(served), coordinator_url, sessions_url, clock.offset, cache)
        for kind in workers.kinds()
    ]


def refreshes(served: ServedProvider) -> list[Any]:
    with served.lock:
        return [e for e in served.provider.log if e.grant_type == "refresh_token"]


def revoked(served: ServedProvider) -> int:
    with served.lock:
        return sum(1 for grant in served.provider.store.grants.values() if grant.revoked)


def active(served: ServedProvider, refresh_token: str | None) -> bool:
    with served.lock:
        return refresh_token is not None and served.provider.is_refresh_token_active(refresh_token)


def stored_refresh_token(sessions_url: str, session_id: str) -> str | None:
    return stored_session(sessions_url, session_id).refresh_token


def expire(clock: LiveClock, workers: Workers) -> None:
    """Every access token issued so far has expired, for the provider and the workers."""
    clock.offset += ACCESS_TOKEN_TTL + 1
    workers.everywhere("offset", clock.offset)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)
    return time.monotonic()


def test_eight_workers_twenty_five_requests_one_refresh(
    workers: Workers, live: ServedProvider, clock: LiveClock, redis_url: str
) -> None:
    [session_id], cache = sign_in_sessions(live, clock, redis_url, 1)
    workers.setup(setups(workers, live, clock, redis_url, redis_url, cache))
    before = stored_refresh_token(redis_url, session_id)
    expire(clock, workers)
    live.provider.faults.add(Fault("token", grant_type="refresh_token", delay=0.5))

    answers = workers.everywhere(
        "requests", [session_id] * REQUESTS_PER_WORKER, API, REQUESTS_PER_WORKER
    )

    outcomes = [outcome for answer in answers for outcome in answer]
    assert len(outcomes) == WORKERS * REQUESTS_PER_WORKER
    assert {status for status, _ in outcomes} == {"ok"}, outcomes
    assert len({token for _, token in outcomes}) == 1  # every request served, one token
    assert len(refreshes(live)) == 1
    assert revoked(live) == 0
    after = stored_refresh_token(redis_url, session_id)
    assert after != before and active(live, after)


def test_a_thousand_sessions_refreshed_at_once_one_refresh_each(
    workers: Workers, live: ServedProvider, clock: LiveClock, redis_url: str
) -> None:
    ids, cache = sign_in_sessions(live, clock, redis_url, SESSIONS)
    workers.setup(setups(workers, live, clock, redis_url, redis_url, cache))
    expire(clock, workers)
    groups = WORKERS // 2  # workers 2g and 2g+1 (one blocking, one asyncio) share group g
    for index in range(WORKERS):
        workers[index].send("requests", ids[index // 2 :: groups], API, 32)
    answers = [workers[index].answer(120) for index in range(WORKERS)]

    served: dict[str, set[str]] = {}
    for index, answer in enumerate(answers):
        for session_id, (status, token) in zip(ids[index // 2 :: groups], answer, strict=True):
            assert status == "ok", (status, token)
            served.setdefault(session_id, set()).add(token)
    assert len(served) == SESSIONS
    assert all(len(tokens) == 1 for tokens in served.values())  # both workers, one token
    presented = [entry.params["refresh_token"] for entry in refreshes(live)]
    assert len(presented) == len(set(presented)) == SESSIONS  # one refresh each
    assert revoked(live) == 0


def test_a_worker_killed_while_it_leads_is_taken_over_inside_the_reuse_window(
    workers: Workers, live: ServedProvider, clock: LiveClock, redis_url: str
) -> None:
    [session_id], cache = sign_in_sessions(live, clock, redis_url, 1)
    workers.setup(setups(workers, live, clock, redis_url, redis_url, cache))
    expire(clock, workers)
    # The provider rotates the token at once and holds its answer: the leader stalls with
    # the successor on its way, and dies before it arrives (the successor dies with it).
    live.provider.faults.add(Fault("token", grant_type="refresh_token", delay=20.0))
    try:
        workers[0].send("requests", [session_id], API, 1)
        consumed_at = wait_for(lambda: len(refreshes(live)) == 1)
        for index in range(1, WORKERS):
            workers[index].send("requests", [session_id] * REQUESTS_PER_WORKER, API, 25)
        workers[0].kill()
        killed_at = time.monotonic()
        taken_over_at = wait_for(lambda: len(refreshes(live)) == 2, timeout=15.0)
        answers = [workers[index].answer() for index in range(1, WORKERS)]
    finally:
        replacement = workers.replace(0)
    replacement.call("setup", setups(workers, live, clock, redis_url, redis_url, cache)[0])

    outcomes = [outcome for answer in answers for outcome in answer]
    assert {status for status, _ in outcomes} == {"ok"}, outcomes
    assert len({token for _, token in outcomes}) == 1
    first, second = refreshes(live)
    # The takeover presented the token the dead leader had presented, inside the window:
    assert first.params["refresh_token"] == second.params["refresh_token"]
    assert taken_over_at - killed_at < LIVENESS + 1.0
    assert taken_over_at - consumed_at < REUSE_WINDOW
    assert revoked(live) == 0
    assert active(live, stored_refresh_token(redis_url, session_id))  # the session survives


def test_redis_stopped_mid_run_typed_errors_no_session_lost_then_recovery(
    workers: Workers,
    live: ServedProvider,
    clock: LiveClock,
    redis_url: str,
    tmp_path: Path,
) -> None:
    with running(tmp_path / "coordinator") as coordinator:
        [session_id], cache = sign_in_sessions(live, clock, redis_url, 1)
        workers.setup(setups(workers, live, clock, coordinator.url, redis_url, cache))
        expire(clock, workers)
        live.provider.faults.add(Fault("token", grant_type="refresh_token", delay=1.0))
        for worker in workers.workers:
            worker.send("requests", [session_id] * 5, API, 5)
        wait_for(lambda: len(refreshes(live)) == 1)
        time.sleep(0.3)  # the other workers' requests are waiting for the leader
        coordinator.kill()
        outcomes = [o for worker in workers.workers for o in worker.answer()]
        served = [token for status, token in outcomes if status == "ok"]
        failed = [(status, code) for status, code in outcomes if status != "ok"]
        assert served and failed  # the leader saved and answered; its waiters could not
        assert set(failed) == {("CoordinationError", "coordination.unavailable")}, failed
        assert len(refreshes(live)) == 1 and revoked(live) == 0
        saved = stored_refresh_token(redis_url, session_id)
        assert active(live, saved)  # no session lost

        # Redis still down: cached tokens are served; a refresh cannot be coordinated.
        cached = workers.everywhere("requests", [session_id], API, 1)
        assert {o[0] for answer in cached for o in answer} == {"ok"}
        expire(clock, workers)
        down = workers.everywhere("requests", [session_id] * 2, API, 2)
        assert {o for answer in down for o in answer} == {
            ("CoordinationError", "coordination.unavailable")
        }
        assert len(refreshes(live)) == 1 and stored_refresh_token(redis_url, session_id) == saved

        coordinator.start()  # back (empty: nothing was persisted)
        back = workers.everywhere("requests", [session_id] * 10, API, 10)
        outcomes = [o for answer in back for o in answer]
        assert {status for status, _ in outcomes} == {"ok"}
        assert len({token for _, token in outcomes}) == 1
        assert len(refreshes(live)) == 2 and revoked(live) == 0
        assert active(live, stored_refresh_token(redis_url, session_id))


def test_the_pool_is_loopback_and_stopped_by_pid(workers: Workers) -> None:
    pids = {worker.pid for worker in workers.workers}
    assert len(pids) == WORKERS
    assert all(worker.process.is_alive() for worker in workers.workers)
