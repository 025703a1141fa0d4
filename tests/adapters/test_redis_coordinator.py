"""The coordinator contract, for the in-process coordinators and ``RedisCoordinator`` (both
flavours) alike: lead, follow, done, ended, supersede, leases, waits; then what only a
coordinator shared by processes has: keys and their lifetimes in Redis, a lead renewed while
its process lives and lost when it stops (``LeaderLostError``), blocking and asyncio workers
on one Redis, typed errors for every Redis failure, TLS and passwords from the URL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import trustme

from logto_adapters import aio, sync
from logto_adapters.coordination import AsyncMemoryCoordinator, MemoryCoordinator
from logto_adapters.redis_coordination import AsyncRedisCoordinator, RedisCoordinator
from logto_core.errors import CoordinationError, LeaderLostError, LogtoUsageError
from logto_core.singleflight import ENDED_KEEP, Done, Ended, Follow, Lead, Ticket, grant_key
from tests.redis_support import running

KEY = grant_key("rt-1")
FLAVOURS = ["memory-sync", "memory-aio", "redis-sync", "redis-aio"]


class Loop:
    """An event loop in a thread of its own, for driving asyncio coordinators from a test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        async def shutdown() -> None:
            await self.loop.shutdown_asyncgens()

        self.submit(shutdown()).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Driver:
    """One coordinator, called the same way whatever its flavour: plain calls answer at
    once, :meth:`waiting` starts a wait and answers its future."""

    def __init__(self, coordinator: Any, loop: Loop | None) -> None:
        self.coordinator = coordinator
        self.loop = loop
        self._threads = concurrent.futures.ThreadPoolExecutor(4)

    def _do(self, call: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        if self.loop is None:
            return self._threads.submit(call)
        return self.loop.submit(call())

    def claim(self, key: str = KEY, *, lease: float = 10.0, supersede: bool = False) -> Ticket:
        ticket: Ticket = self._do(
            lambda: self.coordinator.claim(key, lease=lease, supersede=supersede)
        ).result(10)
        return ticket

    def publish(self, lead: Lead[Any], result: str, *, keep: float, key: str = KEY) -> None:
        self._do(lambda: self.coordinator.publish(key, lead, result, keep=keep)).result(10)

    def end(self, key: str = KEY) -> None:
        self._do(lambda: self.coordinator.end(key)).result(10)

    def waiting(self, follow: Follow[Any], timeout: float = 10.0) -> concurrent.futures.Future[Any]:
        return self._do(lambda: self.coordinator.wait(follow, timeout))

    def wait(self, follow: Follow[Any], timeout: float = 10.0) -> str | None:
        result: str | None = self.waiting(follow, timeout).result(timeout + 10)
        return result

    def close(self) -> None:
        close = getattr(self.coordinator, "close", None) or getattr(
            self.coordinator, "aclose", None
        )
        if close is not None:
            self._do(close).result(10)
        self._threads.shutdown(wait=False)


@pytest.fixture
def loop() -> Iterator[Loop]:
    running_loop = Loop()
    yield running_loop
    running_loop.close()


def make(flavour: str, url: str, loop: Loop, **options: Any) -> Driver:
    if flavour == "memory-sync":
        return Driver(MemoryCoordinator(), None)
    if flavour == "memory-aio":
        return Driver(AsyncMemoryCoordinator(), loop)
    if flavour == "redis-sync":
        return Driver(RedisCoordinator(url, **options), None)
    return Driver(AsyncRedisCoordinator(url, **options), loop)


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pair(flavour: str, redis_url: str, loop: Loop) -> Iterator[tuple[Driver, Driver]]:
    """Two callers' coordinators: one object in-process; two (as two processes) on Redis."""
    first = make(flavour, redis_url, loop)
    second = first if flavour.startswith("memory") else make(flavour, redis_url, loop)
    yield first, second
    first.close()
    if second is not first:
        second.close()


# ---- the contract -------------------------------------------------------------------------


def test_one_leads_the_others_follow_and_get_its_result(pair: tuple[Driver, Driver]) -> None:
    one, other = pair
    lead = one.claim()
    assert isinstance(lead, Lead)
    follow = other.claim()
    assert isinstance(follow, Follow)
    waits = [other.waiting(follow) for _ in range(3)]
    time.sleep(0.05)
    assert not any(w.done() for w in waits)
    one.publish(lead, '{"r":1}', keep=0)
    assert [w.result(5) for w in waits] == ['{"r":1}'] * 3
    assert isinstance(other.claim(), Lead)  # kept 0 s: the next claimer leads
    assert isinstance(one.claim(grant_key("rt-2")), Lead)  # another key is its own flight


def test_a_kept_result_is_done_until_superseded(pair: tuple[Driver, Driver]) -> None:
    one, other = pair
    lead = one.claim()
    assert isinstance(lead, Lead)
    one.publish(lead, "kept", keep=30)
    assert other.claim() == Done("kept")
    assert one.claim() == Done("kept")
    again = other.claim(supersede=True)  # adopted and not enough: a new flight
    assert isinstance(again, Lead)
    follow = one.claim(supersede=True)  # a running flight is followed, superseding or not
    assert isinstance(follow, Follow)
    other.publish(again, "newer", keep=0)
    assert one.wait(follow) == "newer"
    assert isinstance(one.claim(), Lead)  # the superseded result is gone too


def test_a_kept_result_lapses(pair: tuple[Driver, Driver]) -> None:
    one, other = pair
    lead = one.claim()
    assert isinstance(lead, Lead)
    one.publish(lead, "short", keep=0.2)
    assert other.claim() == Done("short")
    time.sleep(0.3)
    assert isinstance(other.claim(), Lead)


def test_an_ended_key_stays_ended_and_a_running_flight_is_not_kept(
    pair: tuple[Driver, Driver],
) -> None:
    one, other = pair
    lead = one.claim()
    assert isinstance(lead, Lead)
    other.end()  # signed out while the refresh runs
    follow = other.claim()
    assert isinstance(follow, Follow)  # the flight still resolves its followers
    waiting = other.waiting(follow)
    one.publish(lead, "late", keep=1000)
    assert waiting.result(5) == "late"
    assert other.claim() == Ended()  # never the late result
    assert one.claim(supersede=True) == Ended()
    kept = one.claim(grant_key("rt-3"))
    assert isinstance(kept, Lead)
    one.publish(kept, "kept", keep=1000, key=grant_key("rt-3"))
    other.end(grant_key("rt-3"))
    assert one.claim(grant_key("rt-3")) == Ended()  # ending drops a kept result


def test_a_lapsed_lease_is_taken_over_and_its_leader_publishes_nothing(
    pair: tuple[Driver, Driver],
) -> None:
    one, other = pair
    stale = one.claim(lease=0.2)
    assert isinstance(stale, Lead)
    time.sleep(0.35)
    fresh = other.claim(lease=10)
    assert isinstance(fresh, Lead)
    one.publish(stale, "stale", keep=1000)  # taken over: recorded for nobody
    follow = one.claim()
    assert isinstance(follow, Follow)
    other.publish(fresh, "fresh", keep=1000)
    assert one.wait(follow) == "fresh"
    assert one.claim() == Done("fresh")


def test_a_wait_is_bounded(pair: tuple[Driver, Driver]) -> None:
    one, other = pair
    lead = one.claim()
    assert isinstance(lead, Lead)
    follow = other.claim()
    assert isinstance(follow, Follow)
    started = time.monotonic()
    assert other.wait(follow, timeout=0.15) is None
    assert 0.1 <= time.monotonic() - started < 2.0
    one.publish(lead, "late", keep=0)


# ---- Redis only -----------------------------------------------------------------------------

REDIS_FLAVOURS = ["redis-sync", "redis-aio"]


@pytest.fixture(params=REDIS_FLAVOURS)
def redis_flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_keys_are_prefixed_digests_with_lifetimes(
    redis_flavour: str, redis_url: str, loop: Loop
) -> None:
    coordinator = make(redis_flavour, redis_url, loop, prefix="app1:")
    inspect = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        lead = coordinator.claim(lease=30)
        assert isinstance(lead, Lead)
        [lead_key] = inspect.keys("*")
        assert lead_key == f"app1:{{{KEY}}}:lead" and "rt-1" not in lead_key
        assert 0 < inspect.pttl(lead_key) <= 1500  # the liveness, not the 30 s lease
        coordinator.publish(lead, "result", keep=120)
        assert inspect.get(f"app1:{{{KEY}}}:done") == "result"
        assert 119_000 < inspect.pttl(f"app1:{{{KEY}}}:done") <= 120_000
        [out] = inspect.keys("app1:*:out:*")
        assert 9_000 < inspect.pttl(out) <= 10_000  # the grace, for waiting followers
        assert not inspect.exists(lead_key)
        coordinator.end()
        ended = f"app1:{{{KEY}}}:ended"
        assert inspect.pttl(ended) > (ENDED_KEEP - 60) * 1000
        assert not inspect.exists(f"app1:{{{KEY}}}:done")
        elsewhere = make(redis_flavour, redis_url, loop, prefix="app2:")
        try:
            assert isinstance(elsewhere.claim(), Lead)  # another prefix, another key space
        finally:
            elsewhere.close()
    finally:
        inspect.close()
        coordinator.close()


def test_blocking_and_asyncio_workers_share_one_redis(redis_url: str, loop: Loop) -> None:
    blocking = make("redis-sync", redis_url, loop)
    asynchronous = make("redis-aio", redis_url, loop)
    try:
        lead = blocking.claim()
        assert isinstance(lead, Lead)
        follow = asynchronous.claim()
        assert isinstance(follow, Follow)
        waiting = asynchronous.waiting(follow)
        blocking.publish(lead, "shared", keep=60)
        assert waiting.result(5) == "shared"
        assert asynchronous.claim() == Done("shared")
    finally:
        blocking.close()
        asynchronous.close()


def test_a_live_leader_keeps_its_lead_past_the_liveness(
    redis_flavour: str, redis_url: str, loop: Loop
) -> None:
    leader = make(redis_flavour, redis_url, loop, liveness=0.3)
    other = make(redis_flavour, redis_url, loop, liveness=0.3)
    try:
        lead = leader.claim(lease=0.9)
        assert isinstance(lead, Lead)
        time.sleep(0.6)  # renewed meanwhile
        assert isinstance(other.claim(), Follow)
        time.sleep(0.7)  # the lease the client asked for is over: no more renewals
        assert isinstance(other.claim(), Lead)
    finally:
        leader.close()
        other.close()


def test_a_leader_whose_process_stopped_is_lost_to_its_followers(
    redis_flavour: str, redis_url: str, loop: Loop
) -> None:
    leader = make(redis_flavour, redis_url, loop, liveness=0.3)
    follower = make(redis_flavour, redis_url, loop, liveness=0.3)
    try:
        lead = leader.claim(lease=60)
        assert isinstance(lead, Lead)
        follow = follower.claim()
        assert isinstance(follow, Follow)
        waiting = follower.waiting(follow, timeout=30)
        started = time.monotonic()
        leader.close()  # no more renewals: as if its process had died
        with pytest.raises(LeaderLostError) as lost:
            waiting.result(10)
        assert time.monotonic() - started < 1.5  # the liveness and a poll, not the lease
        assert lost.value.code == "coordination.leader_lost"
        assert isinstance(lost.value, CoordinationError)
        assert isinstance(follower.claim(), Lead)  # the next claimer takes it over
    finally:
        follower.close()


def test_a_retried_claim_finds_its_own_lead(redis_url: str) -> None:
    from logto_adapters import redis_coordination as rc

    coordinator = RedisCoordinator(redis_url)
    try:
        keys = coordinator._shared.settings.keys(KEY)
        script = coordinator._shared.script(rc._CLAIM)
        first = script(keys=[keys.lead, keys.done, keys.ended], args=["t1", 1000, 0])
        again = script(keys=[keys.lead, keys.done, keys.ended], args=["t1", 1000, 0])
        other = script(keys=[keys.lead, keys.done, keys.ended], args=["t2", 1000, 0])
        assert first == again == ["lead"] and other == ["follow", "t1"]
    finally:
        coordinator.close()


# ---- failures: typed, bounded, nothing raw ----------------------------------------------------


def test_redis_down_is_a_typed_error_and_publishing_never_raises(
    redis_flavour: str, tmp_path: Path, loop: Loop
) -> None:
    with running(tmp_path / "redis", password="s3cret-pass") as server:
        url = server.url
        coordinator = make(redis_flavour, url, loop)
        follower = make(redis_flavour, url, loop)
        lead = coordinator.claim()
        assert isinstance(lead, Lead)
        follow = follower.claim()
        assert isinstance(follow, Follow)
        waiting = follower.waiting(follow, timeout=30)
        server.kill()
        with pytest.raises(CoordinationError) as in_wait:
            waiting.result(10)
        started = time.monotonic()
        for call in (coordinator.claim, coordinator.end):
            with pytest.raises(CoordinationError) as caught:
                call()
            error = caught.value
            assert error.code == "coordination.unavailable"
            assert f"127.0.0.1:{server.port}" in error.message
            assert "s3cret" not in error.message and "s3cret" not in repr(error)
            assert isinstance(error.__cause__, redis.exceptions.RedisError)
        assert in_wait.value.code == "coordination.unavailable"
        coordinator.publish(lead, "lost", keep=60)  # logged, never raised
        assert time.monotonic() - started < 6.0  # bounded: timeouts and two quick retries
        server.start()  # back: coordination resumes (what Redis held is gone)
        assert isinstance(coordinator.claim(), Lead)
        coordinator.close()
        follower.close()


def test_credentials_come_from_the_url(redis_flavour: str, tmp_path: Path, loop: Loop) -> None:
    with running(tmp_path / "redis", password="right-pass") as server:
        good = make(redis_flavour, server.url, loop)
        assert isinstance(good.claim(), Lead)
        good.close()
        for url in (
            f"redis://127.0.0.1:{server.port}/0",
            f"redis://:wrong-pass@127.0.0.1:{server.port}/0",
        ):
            bad = make(redis_flavour, url, loop)
            with pytest.raises(CoordinationError) as caught:
                bad.claim()
            assert caught.value.code == "coordination.auth"
            assert "pass" not in caught.value.message.replace("password", "")
            bad.close()


def test_tls_from_a_rediss_url(redis_flavour: str, tmp_path: Path, loop: Loop) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for blob in cert.cert_chain_pems[1:]:
        blob.write_to_path(str(cert_file), append=True)
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    with running(tmp_path / "redis", tls=(cert_file, key_file)) as server:
        assert server.url.startswith("rediss://")
        trusted = make(redis_flavour, server.url, loop, ssl_ca_certs=str(ca_file))
        assert isinstance(trusted.claim(), Lead)
        trusted.close()
        via_query = make(redis_flavour, f"{server.url}?ssl_ca_certs={ca_file}", loop)
        assert isinstance(via_query.claim(grant_key("rt-q")), Lead)
        via_query.close()
        untrusted = make(redis_flavour, server.url, loop)
        with pytest.raises(CoordinationError) as caught:
            untrusted.claim()
        assert caught.value.code == "coordination.tls"
        assert "ssl_ca_certs" in caught.value.message
        untrusted.close()


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://127.0.0.1:6379", {}),
        (b"redis://127.0.0.1", {}),
        ("redis://127.0.0.1:notaport", {}),
        ("redis://127.0.0.1", {"prefix": ""}),
        ("redis://127.0.0.1", {"liveness": 0}),
        ("redis://127.0.0.1", {"grace": float("inf")}),
        ("redis://127.0.0.1", {"liveness": True}),
    ],
)
def test_bad_settings_are_refused_at_construction(url: Any, options: dict[str, Any]) -> None:
    for cls in (RedisCoordinator, AsyncRedisCoordinator):
        with pytest.raises(LogtoUsageError) as caught:
            cls(url, **options)
        assert caught.value.code == "usage.coordinator"


def test_a_foreign_ticket_is_refused(redis_url: str) -> None:
    coordinator = RedisCoordinator(redis_url)
    try:
        with pytest.raises(LogtoUsageError):
            coordinator.wait(Follow(object()), 1.0)
    finally:
        coordinator.close()


def test_both_client_modules_export_it() -> None:
    assert sync.RedisCoordinator is RedisCoordinator
    assert aio.RedisCoordinator is AsyncRedisCoordinator
    assert "RedisCoordinator" not in sync.__all__  # an extra: never imported by a star
    with pytest.raises(AttributeError):
        _ = getattr(sync, "NoSuchThing")  # noqa: B009


def test_a_forked_child_starts_clean(redis_url: str) -> None:
    """gunicorn --preload: the parent used the coordinator, then forked. The child holds none
    of the parent's leads (it does not renew them) and talks to Redis on connections of its
    own."""
    import os

    parent = RedisCoordinator(redis_url, liveness=0.3)
    try:
        lead = parent.claim(KEY, lease=60)
        assert isinstance(lead, Lead)
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            code = 1
            try:
                held = dict(parent._shared.leads._held)  # the parent's lead is not the child's
                ticket = parent.claim(grant_key("child"), lease=5)
                code = 0 if isinstance(ticket, Lead) and not held else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        time.sleep(0.6)  # past the liveness: only the parent's renewals kept its lead
        other = RedisCoordinator(redis_url)
        assert isinstance(other.claim(KEY, lease=1), Follow)
        other.close()
    finally:
        parent.close()
