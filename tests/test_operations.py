"""The client operations, driven by a fake in-memory interpreter over the in-memory provider.

Concurrency is played by hand: :class:`Stepped` advances one operation an effect at a time
(shielded work included, as a nested operation the caller only waits for), so a test (or
hypothesis) chooses exactly how callers interleave, with no thread or event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import partial
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
from logto_core.errors import (
    CallbackError,
    LogtoError,
    LogtoUsageError,
    SignInRequiredError,
    StorageError,
    TransportError,
)
from logto_core.http import HttpRequest, HttpResponse
from logto_core.log import LOGGER_NAME
from logto_core.provider_state import ProviderCache
from logto_core.session import SessionState
from logto_core.singleflight import Done, FlightTable, Follow, Lead
from logto_core.testing import ACCESS_TOKEN_TTL, Fault
from tests.harness import API, API2, HOME, REDIRECT, Harness

T = TypeVar("T")


@dataclass
class Box:
    """A flight handle: the leader's Publish puts the result in it."""

    result: Any = None
    resolved: bool = False


@dataclass
class Fake:
    """An effect interpreter: a dict storage, the harness's provider, a flight table (shared
    by the fakes of callers that run "concurrently"). Logs (effect, result) pairs. Shielded
    work is run inline (:class:`Stepped` interleaves it instead)."""

    h: Harness
    flights: FlightTable[Box] = field(default_factory=FlightTable)
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
            return self.session
        if isinstance(effect, ops.SaveSession):
            before = self.session
            after = effect.change(before)
            if after is None or after == before:
                return ops.Saved(before, before)
            for key, value in after.writes().items():
                if value is None:
                    self.storage.pop(key, None)
                else:
                    self.storage[key] = value
            return ops.Saved(before, after)
        if isinstance(effect, ops.Claim):
            return self.flights.claim(effect.key, Box(), now, supersede=effect.supersede)
        if isinstance(effect, ops.AwaitFlight):
            box: Box = effect.follow.handle
            if not box.resolved:  # nobody resolves it while this caller waits: time is up
                raise effect.timeout_error()
            return box.result
        if isinstance(effect, ops.Publish):
            self.flights.publish(
                effect.key, effect.lead.handle, effect.result, now, keep=effect.keep
            )
            effect.lead.handle.result, effect.lead.handle.resolved = effect.result, True
            return None
        if isinstance(effect, ops.EndFlight):
            self.flights.end(effect.key, now)
            return None
        assert isinstance(effect, ops.Shielded)
        return run_operation(effect.operation, self.perform)

    @property
    def session(self) -> SessionState:
        return SessionState.from_values(self.storage)

    def run(self, operation: ops.Operation[T]) -> T:
        return run_operation(operation, self.perform)

    def effects(self, kind: type) -> list[tuple[Any, object]]:
        return [(effect, result) for effect, result in self.log if isinstance(effect, kind)]

    def tickets(self) -> list[type]:
        return [type(result) for _, result in self.effects(ops.Claim)]

    def twin(self, *, shared_storage: bool = False) -> Fake:
        """Another caller of the same session: same table, same or copied storage."""
        storage = self.storage if shared_storage else dict(self.storage)
        return Fake(self.h, self.flights, storage)


class Stepped(Generic[T]):
    """An operation advanced one effect at a time (a driver played by hand). A ``Shielded``
    effect pushes its nested operation, which the steps advance until it returns its value
    to the caller; :meth:`throw` interrupts the caller only: nested work in progress is
    detached (:attr:`detached`) and can be run on, as an adapter's task or thread would."""

    def __init__(self, operation: Generator[Any, Any, T], fake: Fake) -> None:
        self.fake = fake
        self.stack: list[Generator[Any, Any, Any]] = [operation]
        self.detached: list[Stepped[Any]] = []
        self.done = False
        self.value: T | None = None
        self.error: BaseException | None = None
        self.effect: Any = None
        self._advance(next)

    @classmethod
    def resumed(
        cls, stack: list[Generator[Any, Any, Any]], effect: Any, fake: Fake
    ) -> Stepped[Any]:
        run: Stepped[Any] = cls.__new__(cls)
        run.fake, run.stack, run.detached, run.effect = fake, stack, [], effect
        run.done, run.value, run.error = False, None, None
        return run

    @property
    def blocked(self) -> bool:
        """Waiting for a leader that has not published yet."""
        effect = self.effect
        return isinstance(effect, ops.AwaitFlight) and not effect.follow.handle.resolved

    def step(self) -> None:
        assert not self.done
        if isinstance(self.effect, ops.Shielded):
            self.stack.append(self.effect.operation)
            self._advance(next)
            return
        try:
            result = self.fake.perform(self.effect)
        except BaseException as error:
            failure = error
            self._advance(lambda gen: gen.throw(failure))
        else:
            self._advance(lambda gen: gen.send(result))

    def _advance(self, move: Callable[[Generator[Any, Any, Any]], Any]) -> None:
        while True:
            try:
                self.effect = move(self.stack[-1])
                return
            except StopIteration as stop:
                self.stack.pop()
                if not self.stack:
                    self.done, self.value = True, stop.value
                    return
                value = stop.value
                move = partial(_send, value=value)
            except BaseException as error:
                self.stack.pop()
                if not self.stack:
                    self.done, self.error = True, error
                    return
                failure = error
                move = partial(_throw, error=failure)

    def throw(self, error: BaseException) -> None:
        """The caller is interrupted while it waits (on anything, shielded work included)."""
        if len(self.stack) > 1:
            self.detached.append(Stepped.resumed(self.stack[1:], self.effect, self.fake))
            del self.stack[1:]
        self._advance(lambda gen: gen.throw(error))

    def until(self, stop: Callable[[Any], bool]) -> None:
        while not stop(self.effect):
            self.step()

    def finish(self) -> T | None:
        while not self.done:
            self.step()
        if self.error is not None:
            raise self.error
        return self.value


def _send(gen: Generator[Any, Any, Any], value: Any) -> Any:
    return gen.send(value)


def _throw(gen: Generator[Any, Any, Any], error: BaseException) -> Any:
    return gen.throw(error)


def is_refresh(effect: object) -> bool:
    return isinstance(effect, HttpRequest) and effect.purpose == "token"


def is_exchange(effect: object) -> bool:
    return isinstance(effect, HttpRequest) and effect.purpose == "token"


def waiting(effect: object) -> bool:
    return isinstance(effect, ops.AwaitFlight)


def signed_in(client_id: str = "spa", **overrides: Any) -> tuple[Harness, Fake]:
    """A signed-in session whose access tokens have expired."""
    h = Harness(client_id=client_id, config_overrides=overrides)
    fake = Fake(h)
    url = fake.run(ops.sign_in_op(h.core, REDIRECT))
    fake.run(ops.callback_op(h.core, h.provider.approve(url, user="alice")))
    h.clock.advance(ACCESS_TOKEN_TTL + 1)
    fake.log.clear()
    return h, fake


def presented(h: Harness) -> list[str]:
    """Every refresh token presented to the provider, in order."""
    return [e.params["refresh_token"] for e in h.provider.log if e.grant_type == "refresh_token"]


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
    before = fake.session.refresh_token
    assert before is not None
    fake.log.clear()
    result = fake.run(ops.sign_out_op(core, HOME))
    assert "post_logout_redirect_uri=" in result.url
    assert result.to_revoke == before  # the adapter revokes it (bounded, best effort)
    assert not fake.effects(HttpRequest)
    assert fake.storage == {}
    assert fake.run(ops.revoke_op(core, before)) is None
    assert not h.provider.is_refresh_token_active(before)
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
    assert not fake.effects(ops.Claim)
    assert not fake.effects(HttpRequest)
    assert h.provider.log == []
    assert fake.run(ops.sign_out_op(h.core)).to_revoke is None
    assert not fake.effects(ops.EndFlight)  # nothing to end without a refresh token


def test_resource_not_configured_is_refused_before_any_request() -> None:
    """Logto rotates the refresh token before it refuses an unknown resource: a public client
    would lose its grant. The SDK refuses locally, saying what to configure."""
    h, fake = signed_in()
    with pytest.raises(LogtoUsageError) as caught:
        fake.run(ops.get_access_token_op(h.core, "https://photos.example/api"))
    assert caught.value.code == "usage.resource_not_configured"
    assert "LogtoConfig.resources" in caught.value.message
    assert fake.log == [] and h.requests_to("token", "refresh_token") == 0


# ---- sign-out and revocation -----------------------------------------------------------------


def test_sign_out_is_local_and_hands_the_token_over() -> None:
    h, fake = signed_in("web")
    refresh = fake.session.refresh_token
    assert refresh is not None
    result = fake.run(ops.sign_out_op(h.core, HOME))
    assert [type(e) for e, _ in fake.log] == [ops.LoadSession, ops.SaveSession, ops.EndFlight]
    assert fake.storage == {}
    assert "id_token_hint=" in result.url and result.to_revoke == refresh
    assert refresh not in repr(result)
    assert h.provider.is_refresh_token_active(refresh)  # not revoked yet
    fake.log.clear()
    assert fake.run(ops.revoke_op(h.core, refresh)) is None
    assert [type(e) for e, _ in fake.log] == [HttpRequest]  # no storage: it may run later
    assert not h.provider.is_refresh_token_active(refresh)


def test_sign_out_with_a_bad_redirect_raises_and_keeps_the_session() -> None:
    h, fake = signed_in("web")
    kept = dict(fake.storage)
    with pytest.raises(LogtoUsageError):
        fake.run(ops.sign_out_op(h.core, "/relative"))
    assert fake.storage == kept and not fake.effects(HttpRequest)
    assert not fake.effects(ops.SaveSession)


def test_a_copy_of_a_signed_out_session_is_signed_out_too() -> None:
    """A request that read the session before the sign-out (another tab, a cookie sent again)
    cannot bring the grant back: the grant ended in this process."""
    h, fake = signed_in()
    stale = fake.twin()
    fake.run(ops.sign_out_op(h.core, HOME))
    outcome = stale.run(ops.access_token_op(h.core, API))
    assert isinstance(outcome.error, SignInRequiredError)
    assert outcome.error.code == "sign_in_required.signed_out"
    assert stale.storage == {} and h.requests_to("token", "refresh_token") == 0


def test_revoke_op_learns_metadata_and_logs_failures_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    h, fake = signed_in("web")
    refresh = fake.session.refresh_token
    assert refresh is not None
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    h.core.cache = ProviderCache()
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


# ---- sign-in and callbacks -----------------------------------------------------------------


def test_sign_in_and_callback_store_and_end_the_replaced_grant() -> None:
    h, fake = signed_in("web")
    old = fake.session.refresh_token
    assert old is not None
    url = fake.run(ops.sign_in_op(h.core, REDIRECT, "signUp", loginHint="a@b.c"))
    assert "interaction_mode=signUp" in url
    assert len(fake.session.pending) == 1
    stale = fake.twin()  # still holds the old grant
    fake.run(ops.callback_op(h.core, h.provider.approve(url, user="bob")))
    after = fake.session
    assert after.pending == () and after.refresh_token != old
    assert h.core.id_token_claims(fake.session).sub == "bob"
    outcome = stale.run(ops.access_token_op(h.core, API))  # the replaced grant is over
    assert isinstance(outcome.error, SignInRequiredError)


def test_callback_failure_is_raised_after_the_attempt_is_consumed() -> None:
    h = Harness()
    fake = Fake(h)
    url = fake.run(ops.sign_in_op(h.core, REDIRECT))
    callback = h.provider.approve(url, user="alice")
    with pytest.raises(CallbackError):
        fake.run(ops.callback_op(h.core, callback.replace("state=", "state=x")))
    h.provider.faults.add(
        Fault("token", grant_type="authorization_code", status=400, body={"error": "invalid_grant"})
    )
    with pytest.raises(LogtoError):
        fake.run(ops.callback_op(h.core, callback))
    assert fake.session.pending == () and not fake.session.is_authenticated
    with pytest.raises(CallbackError) as caught:
        fake.run(ops.callback_op(h.core, callback))  # single use
    assert caught.value.code == "callback.state_unknown"


def test_callback_accepts_any_object_whose_str_is_the_url() -> None:
    class URL:
        def __init__(self, text: str) -> None:
            self.text = text

        def __str__(self) -> str:
            return self.text

    h = Harness()
    fake = Fake(h)
    url = fake.run(ops.sign_in_op(h.core, REDIRECT))
    fake.run(ops.callback_op(h.core, URL(h.provider.approve(url, user="alice"))))
    assert fake.session.is_authenticated


def test_the_same_callback_twice_at_once_exchanges_the_code_once() -> None:
    """A double click: both requests carry the session with the pending attempt. The second
    waits for the first exchange and stores its result; a second exchange would be a replay
    and make the provider revoke the grant."""
    h = Harness()
    first = Fake(h)
    url = first.run(ops.sign_in_op(h.core, REDIRECT))
    callback = h.provider.approve(url, user="alice")
    second = first.twin()  # the same cookie, sent twice
    leader = Stepped(ops.callback_op(h.core, callback), first)
    leader.until(is_exchange)
    follower = Stepped(ops.callback_op(h.core, callback), second)
    follower.until(waiting)
    leader.finish()
    follower.finish()
    assert h.requests_to("token", "authorization_code") == 1
    assert first.session == second.session and second.session.is_authenticated
    assert second.tickets() == [Follow]


def test_a_callback_interrupted_after_the_exchange_is_adopted_by_the_reload() -> None:
    """The caller of the callback is interrupted (a worker timeout, a cancelled request)
    after the code went to the provider: the exchange finishes and its result is kept, so the
    browser's reload of the callback signs in without presenting the code again."""
    h = Harness()
    fake = Fake(h)
    url = fake.run(ops.sign_in_op(h.core, REDIRECT))
    callback = h.provider.approve(url, user="alice")
    cookie = dict(fake.storage)  # what the browser still holds
    run = Stepped(ops.callback_op(h.core, callback), fake)
    run.until(is_exchange)
    run.throw(KeyboardInterrupt())
    assert isinstance(run.error, KeyboardInterrupt)
    [work] = run.detached
    work.finish()
    reload_ = Fake(h, fake.flights, dict(cookie))
    reload_.run(ops.callback_op(h.core, callback))
    assert reload_.session.is_authenticated and Done in reload_.tickets()
    assert h.requests_to("token", "authorization_code") == 1


# ---- userinfo ------------------------------------------------------------------------------


def test_user_info_reports_a_failed_warm_up() -> None:
    h, fake = signed_in()
    h.provider.faults.add(Fault("token", grant_type="refresh_token", status=502))
    with pytest.raises(TransportError):
        fake.run(ops.user_info_op(h.core))
    assert h.requests_to("userinfo") == 0
    assert fake.run(ops.user_info_op(h.core)).sub == "alice"


def test_user_info_after_the_grant_died_says_so() -> None:
    h, fake = signed_in()
    h.provider.revoke_grants("alice")
    with pytest.raises(SignInRequiredError) as caught:
        fake.run(ops.user_info_op(h.core))
    assert caught.value.code == "sign_in_required.invalid_grant"
    assert "no longer valid" in caught.value.message


def test_user_info_401_refreshes_once_through_the_flight() -> None:
    h, fake = signed_in()
    fake.run(ops.get_access_token_op(h.core))  # a fresh opaque token in the cache
    h.provider.faults.add(
        Fault("userinfo", status=401, body={"error": "invalid_token"}, times=None)
    )
    with pytest.raises(LogtoError):
        fake.run(ops.user_info_op(h.core))
    assert h.requests_to("userinfo") == 2  # once, then once more with a new token
    assert h.requests_to("token", "refresh_token") == 2
    assert fake.tickets().count(Lead) == 2


# ---- single flight per grant -------------------------------------------------------------------


def test_dead_grant_is_kept_and_adopted() -> None:
    h, fake = signed_in()
    late = fake.twin()
    h.provider.revoke_grants("alice")
    assert fake.run(ops.get_access_token_op(h.core)) is None
    assert fake.storage == {}
    assert late.run(ops.get_access_token_op(h.core)) is None
    assert late.tickets() == [Done]
    assert late.storage == {}  # adopted the leader's verdict
    assert h.requests_to("token", "refresh_token") == 1


def test_transient_failure_is_shared_but_not_kept() -> None:
    h, fake = signed_in()
    kept = len(fake.flights)  # the sign-in's callback
    h.provider.faults.add(Fault("token", grant_type="refresh_token", status=503))
    with pytest.raises(TransportError):
        fake.run(ops.get_access_token_op(h.core))
    assert len(fake.flights) == kept
    assert fake.run(ops.get_access_token_op(h.core)) is not None
    assert fake.tickets() == [Lead, Lead]


def test_follower_adopts_the_leader_result_into_its_own_storage() -> None:
    h, leader_fake = signed_in()
    old = leader_fake.session.refresh_token
    follower_fake = leader_fake.twin()
    late_fake = leader_fake.twin()
    leader = Stepped(ops.get_access_token_op(h.core, API), leader_fake)
    leader.until(is_refresh)
    follower = Stepped(ops.get_access_token_op(h.core, API), follower_fake)
    follower.until(waiting)
    assert follower.blocked and follower_fake.tickets() == [Follow]
    token = leader.finish()
    assert not follower.blocked
    assert follower.finish() == token is not None
    new = leader_fake.session.refresh_token
    assert new != old and follower_fake.session.refresh_token == new
    assert late_fake.run(ops.get_access_token_op(h.core, API)) == token
    assert late_fake.tickets() == [Done]
    assert late_fake.storage == leader_fake.storage
    assert h.requests_to("token", "refresh_token") == 1


def test_two_resources_at_once_share_the_grant_and_never_present_a_token_twice() -> None:
    """A page asks for tokens for two APIs at once: the second waits for the rotation and
    then refreshes with the new refresh token (a public client rotates on every use)."""
    h, first = signed_in(resources=[API, API2])
    second = first.twin(shared_storage=True)
    one = Stepped(ops.get_access_token_op(h.core, API), first)
    one.until(is_refresh)
    two = Stepped(ops.get_access_token_op(h.core, API2), second)
    two.until(waiting)
    token_one, token_two = one.finish(), two.finish()
    assert token_one is not None and token_two is not None and token_one != token_two
    tokens = presented(h)
    assert len(tokens) == 2 and len(set(tokens)) == 2  # the consumed token never again
    refresh = first.session.refresh_token
    assert refresh is not None and h.provider.is_refresh_token_active(refresh)


def test_a_late_result_is_never_stored_after_a_sign_out() -> None:
    h, fake = signed_in()
    other_tab = fake.twin(shared_storage=True)
    refresh = Stepped(ops.get_access_token_op(h.core, API), fake)
    refresh.until(is_refresh)
    other_tab.run(ops.sign_out_op(h.core, HOME))
    assert refresh.finish() is not None  # the caller gets its token...
    assert fake.storage == {}  # ...but the signed-out session stays signed out


def test_a_late_result_never_overwrites_another_users_sign_in() -> None:
    """User A's refresh is in flight when the same browser signs in as B: A's late result
    must not land in B's session."""
    h, fake = signed_in()
    tab = fake.twin(shared_storage=True)
    refresh = Stepped(ops.get_access_token_op(h.core, API), fake)
    refresh.until(is_refresh)
    url = tab.run(ops.sign_in_op(h.core, REDIRECT))
    tab.run(ops.callback_op(h.core, h.provider.approve(url, user="bob")))
    b_session = tab.session
    refresh.finish()
    assert fake.session == b_session
    assert h.core.id_token_claims(fake.session).sub == "bob"


def test_follower_wait_is_bounded() -> None:
    h, fake = signed_in()
    leader = Stepped(ops.get_access_token_op(h.core), fake)
    leader.until(is_refresh)
    follower = Stepped(ops.get_access_token_op(h.core), fake.twin())
    follower.until(waiting)
    follower.step()  # the fake's wait runs out at once
    assert isinstance(follower.error, TransportError)
    assert follower.error.code == "transport.timeout"
    assert leader.finish() is not None


@pytest.mark.parametrize("interruption", [KeyboardInterrupt(), asyncio.CancelledError()])
def test_an_interrupted_caller_loses_nothing(interruption: BaseException) -> None:
    """The caller is interrupted after the refresh request went out (a worker timeout raised
    by a signal handler, a cancelled task): the refresh finishes where the caller cannot stop
    it, followers get its result, and the next request of the session, which still holds the
    consumed refresh token, adopts the successor instead of presenting the consumed one."""
    h, fake = signed_in()  # a public client: every refresh rotates
    cookie = dict(fake.storage)  # what the browser keeps: the response never went out
    leader = Stepped(ops.get_access_token_op(h.core, API), fake)
    leader.until(is_refresh)
    follower_fake = fake.twin()
    follower = Stepped(ops.get_access_token_op(h.core, API), follower_fake)
    follower.until(waiting)
    leader.throw(interruption)
    assert leader.error is interruption
    [work] = leader.detached
    work.finish()
    assert follower.finish() is not None
    h.clock.advance(3600 * 5)  # hours later, the stale cookie comes back
    later = Fake(h, fake.flights, dict(cookie))
    assert later.run(ops.get_access_token_op(h.core, API)) is not None
    assert later.tickets() == [Done, Lead]
    tokens = presented(h)
    assert len(tokens) == len(set(tokens)) == 2  # never the consumed one again
    refresh = later.session.refresh_token
    assert refresh is not None and h.provider.is_refresh_token_active(refresh)


def test_a_storage_that_fails_loses_no_rotated_token() -> None:
    h, fake = signed_in()
    old = fake.session.refresh_token
    follower_fake = fake.twin()
    leader = Stepped(ops.get_access_token_op(h.core), fake)
    leader.until(is_refresh)
    follower = Stepped(ops.get_access_token_op(h.core), follower_fake)
    follower.until(waiting)
    leader.until(lambda e: isinstance(e, ops.SaveSession))
    fake.fail[ops.SaveSession] = StorageError("storage down", code="storage.write")
    with pytest.raises(StorageError):
        leader.finish()
    assert fake.session.refresh_token == old  # the session is as it was
    assert follower.finish() is not None
    assert follower_fake.session.refresh_token != old  # shared with the follower
    # The same storage, working again: the rotated token is found, not the consumed one.
    assert fake.run(ops.get_access_token_op(h.core)) is not None
    assert fake.session.refresh_token == follower_fake.session.refresh_token
    assert len(presented(h)) == len(set(presented(h))) == 1


def test_a_refresh_token_without_id_token_recovers_once() -> None:
    """An official-SDK session holding a refresh token but no ID token: one refresh brings
    a verified ID token, the session is rewritten as one value and signed in again."""
    h, full = signed_in("web")
    legacy = Fake(h, full.flights, {"refreshToken": str(full.session.refresh_token)})
    assert not legacy.session.is_authenticated
    assert legacy.run(ops.get_access_token_op(h.core, API)) is not None
    assert legacy.session.is_authenticated
    assert "refreshToken" not in legacy.storage  # rewritten as one value
    assert legacy.run(ops.get_access_token_op(h.core, API)) is not None
    assert h.requests_to("token", "refresh_token") == 1


def test_a_kept_result_whose_token_went_stale_is_not_handed_out() -> None:
    """A latecomer adopting a kept result later must not get a token that is inside the
    expiry margin by now: it adopts the rotated refresh token and refreshes with it."""
    h, leader = signed_in()
    late = leader.twin()  # will still hold the refresh token the leader consumes
    token = leader.run(ops.get_access_token_op(h.core, API))
    h.clock.advance(ACCESS_TOKEN_TTL - 20)  # inside the 30 s margin
    fresh = late.run(ops.get_access_token_op(h.core, API))
    assert late.tickets() == [Done, Lead]
    assert fresh is not None and fresh != token
    assert len(presented(h)) == len(set(presented(h))) == 2


def test_operations_send_real_responses() -> None:
    # An unexpected provider answer ends up as the method's error, not a crash.
    h, fake = signed_in()

    def perform(effect: ops.Effect) -> object:
        if is_refresh(effect):
            return HttpResponse(500, {}, b"")
        if isinstance(effect, ops.Shielded):
            return run_operation(effect.operation, perform)
        return fake.perform(effect)

    kept = len(fake.flights)
    with pytest.raises(LogtoError):
        run_operation(ops.get_access_token_op(h.core), perform)
    assert len(fake.flights) == kept


def test_effect_values() -> None:
    assert ops.AwaitFlight.timeout_error().code == "transport.timeout"
    assert ops.required("t") == "t"
    with pytest.raises(SignInRequiredError):
        ops.required(None)
    assert repr(ops.SaveSession(lambda s: s, "rt-secret")) == "SaveSession()"
    saved = ops.Saved(SessionState(), SessionState(refresh_token="r"))
    assert saved.written and not ops.Saved(SessionState(), SessionState()).written
    error = TransportError("x", code="transport.y", status=503)
    copy = ops.copied(error)
    assert copy is not error and isinstance(copy, TransportError)
    assert (copy.code, copy.status, copy.message) == ("transport.y", 503, "x")


# ---- any interleaving ----------------------------------------------------------------------


@settings(max_examples=int(os.environ.get("OPS_EXAMPLES", "60")), deadline=None)
@given(
    callers=st.integers(2, 5),
    shared_storage=st.booleans(),
    resources=st.lists(st.sampled_from([API, API2, None]), min_size=5, max_size=5),
    interrupt=st.sets(st.integers(0, 4), max_size=2),
    schedule=st.lists(st.integers(0, 9), max_size=80),
)
def test_any_interleaving_presents_no_refresh_token_twice(
    callers: int,
    shared_storage: bool,
    resources: list[str | None],
    interrupt: set[int],
    schedule: list[int],
) -> None:
    """Callers of one session, for any mix of tokens, interleaved in any order, some of them
    interrupted at any point: no refresh token is ever presented twice, every caller that was
    not interrupted gets a token, and the grant ends alive in every storage."""
    h, first = signed_in(resources=[API, API2])
    fakes = [first] + [first.twin(shared_storage=shared_storage) for _ in range(callers - 1)]
    runs: list[Stepped[str | None]] = [
        Stepped(ops.get_access_token_op(h.core, resources[n] or ""), fake)
        for n, fake in enumerate(fakes)
    ]
    detached: list[Stepped[Any]] = []
    picks = iter([*schedule, *range(20 * MAX_EFFECTS_PER_OPERATION)])
    for pick in picks:
        if pick in interrupt and pick < len(runs) and not runs[pick].done:
            runs[pick].throw(KeyboardInterrupt())
            detached.extend(runs[pick].detached)
            runs[pick].detached.clear()
            interrupt.discard(pick)
            continue
        ready = [r for r in [*runs, *detached] if not r.done and not r.blocked]
        if not ready:
            break
        ready[pick % len(ready)].step()
    assert all(r.done for r in [*runs, *detached])
    tokens = presented(h)
    assert len(tokens) == len(set(tokens))
    for run in runs:
        if not isinstance(run.error, KeyboardInterrupt):
            assert run.error is None and run.value is not None
    # Each storage, at its next refresh, adopts what it missed (or refreshes): it ends with
    # the live grant, and still no token is presented twice.
    h.clock.advance(ACCESS_TOKEN_TTL)
    for fake in fakes:
        fake.run(ops.get_access_token_op(h.core, API))
        refresh = fake.session.refresh_token
        assert refresh is not None and h.provider.is_refresh_token_active(refresh)
    tokens = presented(h)
    assert len(tokens) == len(set(tokens))


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
