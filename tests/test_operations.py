"""The client operations, driven by a fake in-memory interpreter over the in-memory provider.

Concurrency is played by hand: :class:`Stepped` advances one operation an effect at a time, so
a test (or hypothesis) chooses exactly how callers interleave, with no thread or event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core import operations as ops
from logto_core.driver import (
    CLEANUP_EFFECTS,
    MAX_EFFECTS_PER_OPERATION,
    FlowLimitError,
    run_operation,
    run_operation_async,
)
from logto_core.errors import LogtoError, LogtoUsageError, SignInRequiredError, TransportError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.log import LOGGER_NAME
from logto_core.provider_state import ProviderCache
from logto_core.session import SessionState, StorageKey
from logto_core.singleflight import Follow, Lead, Reuse, Shared, SingleFlight
from logto_core.testing import ACCESS_TOKEN_TTL, Fault
from tests.harness import API, HOME, REDIRECT, Harness

T = TypeVar("T")
REFRESH = StorageKey.REFRESH_TOKEN


@dataclass
class Box:
    """A flight handle: the leader's SettleFlight puts the result in it."""

    shared: Shared | None = None


@dataclass
class Fake:
    """An effect interpreter: a dict storage, the harness's provider, a single-flight table
    (shared by the fakes of callers that run "concurrently"). Logs (effect, result) pairs."""

    h: Harness
    flights: SingleFlight[Box] = field(default_factory=SingleFlight)
    storage: dict[str, str] = field(default_factory=dict)
    log: list[tuple[object, object]] = field(default_factory=list)
    fail: dict[type, BaseException] = field(default_factory=dict)

    def perform(self, effect: ops.Effect) -> object:
        failure = self.fail.pop(type(effect), None)
        if failure is not None:
            self.log.append((effect, failure))
            raise failure
        result = self._do(effect)
        self.log.append((effect, result))
        return result

    def _do(self, effect: ops.Effect) -> object:
        now = self.h.clock()
        if isinstance(effect, HttpRequest):
            return self.h.send(effect)
        if isinstance(effect, ops.LoadSession):
            return SessionState.from_values(self.storage)
        if isinstance(effect, ops.SaveSession):
            if not effect.accepts(self.storage.get(REFRESH)):
                return False
            for key, value in effect.writes.items():
                if value is None:
                    self.storage.pop(key, None)
                else:
                    self.storage[key] = value
            return True
        if isinstance(effect, ops.JoinFlight):
            return self.flights.claim(effect.key, Box(), now)
        if isinstance(effect, ops.AwaitFlight):
            box: Box = effect.follow.handle
            if box.shared is None:  # nobody resolves it while this caller waits: time is up
                raise effect.timeout_error()
            return box.shared
        if isinstance(effect, ops.SettleFlight):
            self.flights.settle(effect.key, effect.shared, now)
            effect.lead.handle.shared = effect.shared
            return None
        self.flights.forget(effect.refresh_token)
        return None

    def run(self, operation: ops.Operation[T]) -> T:
        return run_operation(operation, self.perform)

    def effects(self, kind: type) -> list[tuple[Any, object]]:
        return [(effect, result) for effect, result in self.log if isinstance(effect, kind)]

    def twin(self, *, shared_storage: bool = False) -> Fake:
        """Another caller of the same session: same table, same or copied storage."""
        storage = self.storage if shared_storage else dict(self.storage)
        return Fake(self.h, self.flights, storage)


class Stepped(Generic[T]):
    """An operation advanced one effect at a time (a driver played by hand)."""

    def __init__(self, operation: ops.Operation[T], fake: Fake) -> None:
        self.operation = operation
        self.fake = fake
        self.effect: Any = next(operation)
        self.done = False
        self.value: T | None = None
        self.error: LogtoError | None = None

    @property
    def blocked(self) -> bool:
        """Waiting for a leader that has not settled yet."""
        effect = self.effect
        return isinstance(effect, ops.AwaitFlight) and effect.follow.handle.shared is None

    def step(self) -> None:
        assert not self.done
        try:
            try:
                result = self.fake.perform(self.effect)
            except BaseException as error:
                self.effect = self.operation.throw(error)
            else:
                self.effect = self.operation.send(result)
        except StopIteration as stop:
            self.done, self.value = True, stop.value
        except LogtoError as error:
            self.done, self.error = True, error

    def throw(self, error: BaseException) -> None:
        """What a driver does when the effect in progress is interrupted."""
        self.effect = self.operation.throw(error)

    def until(self, stop: Callable[[Any], bool]) -> None:
        while not stop(self.effect):
            self.step()

    def finish(self) -> T | None:
        while not self.done:
            self.step()
        if self.error is not None:
            raise self.error
        return self.value


def is_refresh(effect: object) -> bool:
    return isinstance(effect, HttpRequest) and effect.purpose == "token"


def signed_in(client_id: str = "spa") -> tuple[Harness, Fake]:
    """A signed-in session whose access tokens have expired."""
    h = Harness(client_id=client_id)
    fake = Fake(h)
    url = fake.run(ops.sign_in_op(h.core, REDIRECT))
    fake.run(ops.callback_op(h.core, h.provider.approve(url, user="alice")))
    h.clock.advance(ACCESS_TOKEN_TTL + 1)
    fake.log.clear()
    return h, fake


# ---- the methods, one caller --------------------------------------------------------------


def test_every_method_over_the_fake_interpreter() -> None:
    h, fake = signed_in("web")
    core = h.core
    token = fake.run(ops.get_access_token_op(core, API))
    assert token is not None
    fake.log.clear()
    assert fake.run(ops.get_access_token_op(core, API)) == token  # cached: nothing else
    assert [type(e) for e, _ in fake.log] == [ops.LoadSession]
    assert fake.run(ops.access_token_claims_op(core, API)).aud == API
    org = fake.run(ops.organization_token_op(core, "o1"))
    assert org is not None
    assert fake.run(ops.organization_token_claims_op(core, "o1")).aud == "urn:logto:organization:o1"
    assert fake.run(ops.user_info_op(core)).sub == "alice"
    before = fake.storage[REFRESH]
    fake.log.clear()
    result = fake.run(ops.sign_out_op(core, HOME, wait_for_revocation=True))
    assert "post_logout_redirect_uri=" in result.url
    assert result.to_revoke is None  # revoked inline
    assert [e.purpose for e, _ in fake.effects(HttpRequest)] == ["revocation"]
    assert not h.provider.is_refresh_token_active(before)
    assert [e.refresh_token for e, _ in fake.effects(ops.ForgetFlights)] == [before]
    assert fake.storage == {}
    assert fake.run(ops.get_access_token_op(core, API)) is None
    assert fake.run(ops.organization_token_op(core, "o1")) is None
    with pytest.raises(SignInRequiredError):
        fake.run(ops.access_token_claims_op(core))
    with pytest.raises(SignInRequiredError):
        fake.run(ops.organization_token_claims_op(core, "o1"))


def test_not_signed_in_needs_no_flight_and_no_network() -> None:
    h = Harness()
    fake = Fake(h)
    assert fake.run(ops.get_access_token_op(h.core)) is None
    with pytest.raises(SignInRequiredError) as caught:
        fake.run(ops.user_info_op(h.core))
    assert caught.value.code == "sign_in_required.not_signed_in"
    assert not fake.effects(ops.JoinFlight)
    assert not fake.effects(HttpRequest)
    assert h.provider.log == []
    assert fake.run(ops.sign_out_op(h.core, wait_for_revocation=True)).to_revoke is None
    assert not fake.effects(ops.ForgetFlights)  # nothing to forget without a refresh token


# ---- sign-out and revocation -----------------------------------------------------------------


def test_background_sign_out_is_local_and_hands_the_token_over() -> None:
    h, fake = signed_in("web")
    refresh = fake.storage[REFRESH]
    result = fake.run(ops.sign_out_op(h.core, HOME, wait_for_revocation=False))
    assert [type(e) for e, _ in fake.log] == [ops.LoadSession, ops.SaveSession, ops.ForgetFlights]
    assert fake.storage == {}
    assert "id_token_hint=" in result.url and result.to_revoke == refresh
    assert refresh not in repr(result)
    assert h.provider.is_refresh_token_active(refresh)  # not revoked yet
    fake.log.clear()
    assert fake.run(ops.revoke_op(h.core, refresh)) is None
    assert [type(e) for e, _ in fake.log] == [HttpRequest]  # no storage: it may run later
    assert not h.provider.is_refresh_token_active(refresh)


def test_background_sign_out_when_not_signed_in() -> None:
    h = Harness()
    fake = Fake(h)
    result = fake.run(ops.sign_out_op(h.core, wait_for_revocation=False))
    assert result.to_revoke is None and not fake.effects(HttpRequest)


def test_sign_out_with_a_bad_redirect_raises_and_keeps_the_session() -> None:
    h, fake = signed_in("web")
    stored = dict(fake.storage)
    for wait in (True, False):
        with pytest.raises(LogtoUsageError):
            fake.run(ops.sign_out_op(h.core, "/relative", wait_for_revocation=wait))
    assert fake.storage == stored and not fake.effects(HttpRequest)


def test_revoke_op_learns_metadata_and_logs_failures_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h, fake = signed_in("web")
    refresh = fake.storage[REFRESH]
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    h.core._cache = ProviderCache()
    fake.fail[HttpRequest] = TransportError("refused", code="transport.connection")
    error = fake.run(ops.revoke_op(h.core, refresh))
    assert isinstance(error, TransportError) and error.code == "transport.connection"
    assert h.core.provider.metadata is None
    assert [r.getMessage() for r in caplog.records] == [
        "refresh token revocation failed (transport.connection); the local sign-out happened anyway"
    ]
    assert refresh not in caplog.text
    caplog.clear()
    assert fake.run(ops.revoke_op(h.core, refresh)) is None  # discovery, then revocation
    assert h.core.provider.metadata is not None  # adopted by the core
    assert caplog.records == []
    assert not h.provider.is_refresh_token_active(refresh)


def test_inline_sign_out_logs_a_failed_revocation(caplog: pytest.LogCaptureFixture) -> None:
    h, fake = signed_in("web")
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    h.provider.faults.add(Fault(endpoint="revocation", status=503))
    result = fake.run(ops.sign_out_op(h.core, wait_for_revocation=True))
    assert result.to_revoke is None and fake.storage == {}
    assert "revocation failed (transport.status)" in caplog.text


def test_sign_in_and_callback_store_and_forget() -> None:
    h, fake = signed_in("web")  # a confidential client keeps its refresh token
    assert fake.run(ops.get_access_token_op(h.core, API)) is not None
    assert len(fake.flights) == 1  # the settled refresh is kept for latecomers
    url = fake.run(ops.sign_in_op(h.core, REDIRECT, "signUp", loginHint="a@b.c"))
    assert "interaction_mode=signUp" in url
    assert StorageKey.SIGN_IN_SESSIONS in fake.storage
    fake.run(ops.callback_op(h.core, h.provider.approve(url, user="alice")))
    assert len(fake.flights) == 0  # a new sign-in ends the old refresh token's story
    assert StorageKey.SIGN_IN_SESSIONS not in fake.storage


def test_callback_failure_is_raised_after_the_attempt_is_consumed() -> None:
    h = Harness()
    fake = Fake(h)
    url = fake.run(ops.sign_in_op(h.core, REDIRECT))
    callback = h.provider.approve(url, user="alice")
    with pytest.raises(LogtoError):
        fake.run(ops.callback_op(h.core, callback.replace("state=", "state=x")))
    fake.run(ops.callback_op(h.core, callback))
    with pytest.raises(LogtoError):
        fake.run(ops.callback_op(h.core, callback))  # single use
    assert fake.storage[StorageKey.ID_TOKEN]


def test_user_info_reports_a_failed_warm_up() -> None:
    h, fake = signed_in()
    h.provider.faults.add(Fault("token", grant_type="refresh_token", status=502))
    with pytest.raises(TransportError):
        fake.run(ops.user_info_op(h.core))
    assert h.requests_to("userinfo") == 0
    assert fake.run(ops.user_info_op(h.core)).sub == "alice"


def test_dead_grant_is_kept_and_reused() -> None:
    h, fake = signed_in()
    late = fake.twin()
    h.provider.revoke_grants("alice")
    assert fake.run(ops.get_access_token_op(h.core)) is None
    assert fake.storage == {}
    assert late.run(ops.get_access_token_op(h.core)) is None
    assert isinstance(late.effects(ops.JoinFlight)[0][1], Reuse)
    assert late.storage == {}  # adopted the leader's writes
    assert h.requests_to("token", "refresh_token") == 1


def test_transient_failure_is_shared_but_not_kept() -> None:
    h, fake = signed_in()
    h.provider.faults.add(Fault("token", grant_type="refresh_token", status=503))
    with pytest.raises(TransportError):
        fake.run(ops.get_access_token_op(h.core))
    assert len(fake.flights) == 0
    assert fake.run(ops.get_access_token_op(h.core)) is not None
    assert [type(r) for _, r in fake.effects(ops.JoinFlight)] == [Lead, Lead]


# ---- lead, follow, reuse, adopt or not -----------------------------------------------------


def test_follower_adopts_the_leader_result_into_its_own_storage() -> None:
    h, leader_fake = signed_in()
    old = leader_fake.storage[REFRESH]
    follower_fake = leader_fake.twin()
    late_fake = leader_fake.twin()
    leader = Stepped(ops.get_access_token_op(h.core, API), leader_fake)
    leader.until(is_refresh)
    follower = Stepped(ops.get_access_token_op(h.core, API), follower_fake)
    follower.until(lambda e: isinstance(e, ops.AwaitFlight))
    assert follower.blocked
    assert isinstance(follower_fake.effects(ops.JoinFlight)[0][1], Follow)
    token = leader.finish()
    assert not follower.blocked
    assert follower.finish() == token is not None
    new = leader_fake.storage[REFRESH]
    assert new != old and follower_fake.storage[REFRESH] == new
    assert follower_fake.effects(ops.SaveSession)[-1][1] is True
    assert late_fake.run(ops.get_access_token_op(h.core, API)) == token
    assert isinstance(late_fake.effects(ops.JoinFlight)[0][1], Reuse)
    assert late_fake.storage == leader_fake.storage
    assert h.requests_to("token", "refresh_token") == 1


def test_follower_does_not_adopt_when_its_storage_moved_on() -> None:
    h, leader_fake = signed_in()
    follower_fake = leader_fake.twin(shared_storage=True)
    leader = Stepped(ops.get_access_token_op(h.core, API), leader_fake)
    leader.until(is_refresh)
    follower = Stepped(ops.get_access_token_op(h.core, API), follower_fake)
    follower.until(lambda e: isinstance(e, ops.AwaitFlight))
    token = leader.finish()
    leader_fake.storage.clear()  # signed out meanwhile: adopting would sign the user back in
    assert follower.finish() == token
    save, wrote = follower_fake.effects(ops.SaveSession)[-1]
    assert save.guarded and wrote is False
    assert leader_fake.storage == {}


def test_follower_wait_is_bounded() -> None:
    h, fake = signed_in()
    leader = Stepped(ops.get_access_token_op(h.core), fake)
    leader.until(is_refresh)
    follower = Stepped(ops.get_access_token_op(h.core), fake.twin())
    follower.until(lambda e: isinstance(e, ops.AwaitFlight))
    follower.step()  # the fake's wait runs out at once
    assert isinstance(follower.error, TransportError)
    assert follower.error.code == "transport.timeout"
    assert leader.finish() is not None


@pytest.mark.parametrize("interruption", [RuntimeError("bug"), asyncio.CancelledError()])
def test_interrupted_leader_releases_followers(interruption: BaseException) -> None:
    h, fake = signed_in()
    leader = Stepped(ops.get_access_token_op(h.core), fake)
    leader.until(is_refresh)
    follower = Stepped(ops.get_access_token_op(h.core), fake.twin())
    follower.until(lambda e: isinstance(e, ops.AwaitFlight))
    leader.throw(interruption)
    settle = leader.effect
    assert isinstance(settle, ops.SettleFlight)
    assert settle.shared.writes == {}
    with pytest.raises(type(interruption)):
        leader.step()  # settles, then the interruption goes on
    assert len(fake.flights) == 0  # a transient end is not kept
    with pytest.raises(TransportError) as caught:
        follower.finish()
    assert caught.value.code == "transport.refresh_interrupted"


def test_leader_whose_storage_fails_still_shares_the_refresh() -> None:
    h, fake = signed_in()
    old = fake.storage[REFRESH]
    follower_fake = fake.twin()
    leader = Stepped(ops.get_access_token_op(h.core), fake)
    leader.until(is_refresh)
    follower = Stepped(ops.get_access_token_op(h.core), follower_fake)
    follower.until(lambda e: isinstance(e, ops.AwaitFlight))
    fake.fail[ops.SaveSession] = OSError("storage down")
    with pytest.raises(OSError, match="storage down"):
        leader.finish()
    assert fake.storage[REFRESH] == old
    assert follower.finish() is not None
    assert follower_fake.storage[REFRESH] != old  # the rotated token is not lost


def test_effect_values() -> None:
    before = SessionState(refresh_token="rt-1", id_token="id")
    plain = ops.SaveSession(before, {REFRESH: "rt-2", StorageKey.ID_TOKEN: None})
    assert plain.accepts("anything") and plain.accepts(None)
    assert plain.after.refresh_token == "rt-2" and plain.after.id_token is None
    guarded = ops.SaveSession(before, {}, guarded=True)
    assert guarded.accepts("rt-1") and not guarded.accepts("rt-0") and not guarded.accepts(None)
    assert ops.SaveSession(SessionState(), {}, guarded=True).accepts("")
    assert ops.AwaitFlight.timeout_error().code == "transport.timeout"
    assert ops.required("t") == "t"
    with pytest.raises(SignInRequiredError):
        ops.required(None)


# ---- any interleaving ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    callers=st.integers(2, 5),
    shared_storage=st.booleans(),
    schedule=st.lists(st.integers(0, 4), max_size=60),
)
def test_any_interleaving_refreshes_once(
    callers: int, shared_storage: bool, schedule: list[int]
) -> None:
    h, first = signed_in()
    old = first.storage[REFRESH]
    fakes = [first] + [first.twin(shared_storage=shared_storage) for _ in range(callers - 1)]
    runs = [Stepped(ops.get_access_token_op(h.core, API), fake) for fake in fakes]
    for pick in [*schedule, *range(10 * MAX_EFFECTS_PER_OPERATION)]:
        ready = [run for run in runs if not run.done and not run.blocked]
        if not ready:
            break
        ready[pick % len(ready)].step()
    assert all(run.done and run.error is None for run in runs)
    assert len({run.value for run in runs}) == 1 and runs[0].value is not None
    assert h.requests_to("token", "refresh_token") == 1
    refreshed = {fake.storage[REFRESH] for fake in fakes}
    assert len(refreshed) == 1 and old not in refreshed
    assert h.provider.is_refresh_token_active(refreshed.pop())


# ---- the drivers ---------------------------------------------------------------------------


def counting(limit: int | None = None) -> Generator[int, object, int]:
    """Yields 0, 1, 2, ... (forever without a limit); returns how many results it got."""
    got = 0
    while limit is None or got < limit:
        yield got
        got += 1
    return got


def releasing(log: list[str]) -> Generator[str, object, None]:
    """Runs away, but releases what it holds when stopped."""
    try:
        while True:
            yield "work"
    except FlowLimitError:
        yield "release"
        log.append("released")
        raise


def stubborn() -> Generator[str, object, None]:
    """Ignores being stopped."""
    while True:
        with contextlib.suppress(FlowLimitError):
            yield "work"


def test_run_operation_and_its_bound() -> None:
    assert run_operation(counting(3), lambda n: n) == 3
    with pytest.raises(FlowLimitError):
        run_operation(counting(), lambda n: n, max_effects=5)
    log: list[str] = []
    performed: list[str] = []
    with pytest.raises(FlowLimitError):
        run_operation(releasing(log), performed.append, max_effects=5)
    assert log == ["released"] and performed[-1] == "release"
    performed.clear()
    with pytest.raises(FlowLimitError):
        run_operation(stubborn(), performed.append, max_effects=5)
    assert len(performed) == 5 + CLEANUP_EFFECTS


def test_failures_are_thrown_into_the_operation() -> None:
    def recovering() -> Generator[str, object, str]:
        try:
            yield "fails"
        except TransportError as error:
            return f"recovered {error.code}"
        return "not reached"

    def fail(_: str) -> object:
        raise TransportError("down", code="transport.x")

    assert run_operation(recovering(), fail) == "recovered transport.x"

    async def afail(_: str) -> object:
        raise TransportError("down", code="transport.y")

    assert asyncio.run(run_operation_async(recovering(), afail)) == "recovered transport.y"


def test_run_operation_async_and_its_bound() -> None:
    async def echo(n: int) -> object:
        return n

    assert asyncio.run(run_operation_async(counting(4), echo)) == 4
    with pytest.raises(FlowLimitError):
        asyncio.run(run_operation_async(counting(), echo, max_effects=3))


def test_async_cancelled_leader_settles_its_flight() -> None:
    h, fake = signed_in()
    follower = Stepped(ops.get_access_token_op(h.core), fake.twin())

    async def perform(effect: ops.Effect) -> object:
        if is_refresh(effect):
            await asyncio.Event().wait()  # a refresh that never answers
        return fake.perform(effect)

    async def scenario() -> None:
        leader = asyncio.ensure_future(
            run_operation_async(ops.get_access_token_op(h.core), perform)
        )
        await asyncio.sleep(0.01)
        follower.until(lambda e: isinstance(e, ops.AwaitFlight))
        assert follower.blocked
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader

    asyncio.run(scenario())
    assert not follower.blocked
    with pytest.raises(TransportError) as caught:
        follower.finish()
    assert caught.value.code == "transport.refresh_interrupted"
    assert isinstance(fake.effects(ops.SettleFlight)[0][0], ops.SettleFlight)


def test_operations_send_real_responses() -> None:
    # An unexpected provider answer ends up as the method's error, not a crash.
    h, fake = signed_in()

    def perform(effect: ops.Effect) -> object:
        if is_refresh(effect):
            return HttpResponse(500, {}, b"")
        return fake.perform(effect)

    with pytest.raises(LogtoError):
        run_operation(ops.get_access_token_op(h.core), perform)
    assert len(fake.flights) == 0


def test_a_kept_result_whose_token_went_stale_is_not_handed_out() -> None:
    """A latecomer reusing a kept result seconds later must not get a token that is inside
    the expiry margin by now: it adopts the rotated refresh token and asks again, once."""
    # Tokens count as stale 3,595 s before they expire: 5 s after a refresh, within the
    # 10 s a settled result is kept for latecomers.
    h = Harness(client_id="spa", config_overrides={"tokenExpiryMargin": ACCESS_TOKEN_TTL - 5})
    leader_fake = Fake(h)
    url = leader_fake.run(ops.sign_in_op(h.core, REDIRECT))
    leader_fake.run(ops.callback_op(h.core, h.provider.approve(url, user="alice")))
    late_fake = leader_fake.twin()  # will still hold the refresh token the leader consumes
    token = leader_fake.run(ops.get_access_token_op(h.core, API))
    h.clock.advance(6)
    fresh = late_fake.run(ops.get_access_token_op(h.core, API))
    tickets = [type(r) for _, r in late_fake.effects(ops.JoinFlight)]
    assert tickets == [Reuse, Lead]
    assert fresh is not None and fresh != token
    assert h.requests_to("token", "refresh_token") == 2
    presented = [
        e.params["refresh_token"] for e in h.provider.log if e.grant_type == "refresh_token"
    ]
    assert len(set(presented)) == 2  # the consumed token was never presented again
