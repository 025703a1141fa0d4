"""What the operations do when a coordinator shared by processes fails at each of its
effects (driven by hand, as in tests/test_operations.py): a failed claim or wait fails the
request before anything is saved; a leader lost while a caller waited for it (its process
died) makes a refresh claim again and lead; a failed end leaves the sign-out standing."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from logto_core import operations as ops
from logto_core import shared_fetch
from logto_core.errors import CoordinationError, LeaderLostError
from logto_core.http import HttpRequest
from logto_core.log import LOGGER_NAME
from logto_core.singleflight import Follow, Lead
from tests.harness import REDIRECT
from tests.test_operations import Stepped, is_refresh, presented, signed_in, waiting
from tests.test_shared_fetch import JWKS, OK, POLICY, RUNTIME


def unavailable() -> CoordinationError:
    return CoordinationError("Redis is down", code="coordination.unavailable")


@pytest.mark.parametrize("effect", [ops.Claim, ops.AwaitFlight])
def test_a_failed_claim_or_wait_fails_the_request_and_saves_nothing(effect: type) -> None:
    h, fake = signed_in()
    stored = dict(fake.storage)
    if effect is ops.AwaitFlight:  # another caller leads: this one waits, and the wait fails
        leader = Stepped(ops.get_access_token_op(h.core), fake.twin())
        leader.until(is_refresh)
    fake.fail[effect] = unavailable()
    with pytest.raises(CoordinationError) as caught:
        fake.run(ops.get_access_token_op(h.core))
    assert caught.value.code == "coordination.unavailable"
    assert fake.storage == stored  # the stored session is as it was
    assert not fake.effects(ops.SaveSession)
    if effect is ops.AwaitFlight:
        assert leader.finish() is not None


def test_a_lost_leader_is_taken_over_by_its_follower() -> None:
    """The leader's process died before its request went out: the follower's wait says so,
    and the follower claims again, leads (the lease lapsed), and refreshes once."""
    h, fake = signed_in()
    dead = Stepped(ops.get_access_token_op(h.core), fake.twin())
    dead.until(is_refresh)  # claimed, then died: it never presents the token
    follower = Stepped(ops.get_access_token_op(h.core), fake)
    follower.until(waiting)
    h.clock.advance(61)  # the dead leader's lease lapsed
    fake.fail[ops.AwaitFlight] = LeaderLostError("lost", code="coordination.leader_lost")
    assert follower.finish() is not None
    assert [type(r) for e, r in fake.log if isinstance(e, ops.Claim)] == [Follow, Lead]
    assert len(presented(h)) == 1
    refresh = fake.session.refresh_token
    assert refresh is not None and h.provider.is_refresh_token_active(refresh)


def test_a_lost_leader_fails_a_callback_follower() -> None:
    """A callback cannot be claimed again usefully (its code may be spent): it fails."""
    h, fake = signed_in()
    url = fake.run(ops.sign_in_op(h.core, REDIRECT))
    callback = h.provider.approve(url, user="alice")
    leader = Stepped(ops.callback_op(h.core, callback), fake.twin())
    leader.until(lambda e: isinstance(e, HttpRequest) and e.purpose == "token")
    fake.fail[ops.AwaitFlight] = LeaderLostError("lost", code="coordination.leader_lost")
    with pytest.raises(LeaderLostError):
        fake.run(ops.callback_op(h.core, callback))


def test_a_failed_end_leaves_the_sign_out_standing(caplog: pytest.LogCaptureFixture) -> None:
    h, fake = signed_in()
    token = fake.session.refresh_token
    fake.fail[ops.EndFlight] = unavailable()
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        result = fake.run(ops.sign_out_op(h.core))
    assert result.to_revoke == token  # revoked next, which kills the grant at the provider
    assert not fake.session.is_authenticated
    assert "could not mark a signed-out grant ended" in caplog.text
    assert token is not None and token not in caplog.text


def test_a_shared_fetch_claims_again_when_its_leader_is_lost() -> None:
    operation = shared_fetch.fetch(JWKS, POLICY, RUNTIME)
    claim = next(operation)
    assert isinstance(claim, shared_fetch.FetchClaim)
    wait = operation.send(Follow(object()))
    assert isinstance(wait, shared_fetch.AwaitFetch)
    again = operation.throw(LeaderLostError("lost", code="coordination.leader_lost"))
    assert isinstance(again, shared_fetch.FetchClaim) and again.key == claim.key
    attempt = operation.send(Lead(object()))
    assert isinstance(attempt, HttpRequest) and attempt.url == JWKS.url
    publish = operation.send(OK)
    assert isinstance(publish, ops.Publish)
    with pytest.raises(StopIteration) as stop:
        operation.send(None)
    assert stop.value.value is OK


def test_a_shared_fetch_fetches_alone_after_losing_every_leader() -> None:
    operation = shared_fetch.fetch(JWKS, POLICY, RUNTIME)
    effect: Any = next(operation)
    for _ in range(1 + shared_fetch.MAX_TAKEOVERS):
        assert isinstance(effect, shared_fetch.FetchClaim)
        effect = operation.send(Follow(object()))
        assert isinstance(effect, shared_fetch.AwaitFetch)
        effect = operation.throw(LeaderLostError("lost", code="coordination.leader_lost"))
    assert isinstance(effect, HttpRequest)  # no Publish: nobody follows a lone fetch
    with pytest.raises(StopIteration) as stop:
        operation.send(OK)
    assert stop.value.value is OK


@pytest.mark.parametrize("at", ["claim", "wait"])
def test_a_shared_fetch_fetches_alone_when_the_coordinator_fails(at: str) -> None:
    """Sharing a fetch saves requests; it is never needed: a coordinator out of reach (its
    Redis down) makes the caller fetch alone, and the flow goes on."""
    operation = shared_fetch.fetch(JWKS, POLICY, RUNTIME)
    effect: Any = next(operation)
    if at == "wait":
        effect = operation.send(Follow(object()))
        assert isinstance(effect, shared_fetch.AwaitFetch)
    effect = operation.throw(unavailable())
    assert isinstance(effect, HttpRequest) and effect.url == JWKS.url
    with pytest.raises(StopIteration) as stop:
        operation.send(OK)
    assert stop.value.value is OK
