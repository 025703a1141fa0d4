"""The wait for a device sign-in (``operations.wait_device_sign_in_op``), driven with an
injected clock that its sleeps move: whatever the provider answers, polls are never sooner
than the interval after the previous one, ``slow_down`` adds 5 s for good, nothing is sent at
or after the expiry, and a timeout or a cancel flag ends the wait with its own code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core import operations as ops
from logto_core.context import Context
from logto_core.driver import run_operation
from logto_core.errors import LogtoError, OAuthError, TransportError
from logto_core.grants import SLOW_DOWN_STEP, DeviceAuthorization, DeviceAuthorizationError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.provider_state import ProviderState
from logto_core.runtime import Runtime
from logto_core.session import SessionState
from logto_core.sleep import MAX_SLEEP, Sleep

from .factories import ISSUER, config, json_response, metadata

START = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Script:
    """The provider's side: answers every poll from ``answers`` (then ``last``), and records
    when each poll was sent and what the interval was then."""

    def __init__(self, clock: Clock, answers: list[str], last: str) -> None:
        self.clock = clock
        self.answers: Iterator[str] = iter(answers)
        self.last = last
        self.polls: list[float] = []
        self.sleeps: list[float] = []
        self.sent: list[str] = []

    def perform(self, effect: Any) -> object:
        if isinstance(effect, Sleep):
            wait = effect.seconds(self.clock.now)
            assert 0 <= wait <= MAX_SLEEP
            self.sleeps.append(wait)
            self.clock.now += wait
            return None
        if isinstance(effect, ops.LoadSession):
            return SessionState()
        if isinstance(effect, ops.Shielded):
            return run_operation(effect.operation, self.perform)
        assert isinstance(effect, HttpRequest), effect
        self.polls.append(self.clock.now)
        answer = next(self.answers, self.last)
        self.sent.append(answer)
        return self.respond(answer)

    @staticmethod
    def respond(answer: str) -> HttpResponse:
        return json_response({"error": answer, "error_description": answer}, 400)


def context(clock: Clock) -> Context:
    provider = ProviderState().with_metadata(
        metadata(device_authorization_endpoint=f"{ISSUER}/device/auth"), START
    )
    return Context(config(appSecret=None), runtime=Runtime(clock=clock), provider=provider)


def authorization(interval: float, expires_in: float) -> DeviceAuthorization:
    return DeviceAuthorization(
        device_code="device-code-0123456789",
        user_code="WDJB-MJHT",
        verification_uri=f"{ISSUER}/device",
        verification_uri_complete=None,
        expires_at=START + expires_in,
        interval=interval,
        obtained_at=START,
    )


def wait(script: Script, started: DeviceAuthorization, **options: Any) -> LogtoError:
    with pytest.raises(LogtoError) as caught:
        run_operation(
            ops.wait_device_sign_in_op(context(script.clock), started, **options),
            script.perform,
            max_effects=ops.DEVICE_WAIT_EFFECTS,
        )
    return caught.value


@settings(max_examples=150, deadline=None)
@given(
    answers=st.lists(st.sampled_from(["authorization_pending", "slow_down"]), max_size=40),
    last=st.sampled_from(["access_denied", "expired_token", "authorization_pending"]),
    interval=st.integers(1, 30),
    expires_in=st.integers(1, 900),
)
def test_the_schedule_whatever_the_provider_answers(
    answers: list[str], last: str, interval: int, expires_in: int
) -> None:
    clock = Clock()
    script = Script(clock, answers, last)
    started = authorization(interval, expires_in)
    error = wait(script, started)

    current = float(interval)
    previous = START
    for at, answer in zip(script.polls, script.sent, strict=True):
        assert at >= previous + current  # never sooner than the interval, slow_down included
        assert at < started.expires_at  # nothing sent at or after the expiry
        previous = at
        if answer == "slow_down":
            current += SLOW_DOWN_STEP
    assert isinstance(error, DeviceAuthorizationError)
    final = script.sent[-1] if script.sent else None
    if final == "access_denied":
        assert error.code == "device.access_denied" and error.refused
    else:  # the provider said so, or the time ran out before another poll
        assert error.code == "device.expired"
        assert (
            not script.polls
            or script.polls[-1] + current >= started.expires_at
            or (final == "expired_token")
        )
    assert error.__cause__ is None or isinstance(error.__cause__, OAuthError)


@settings(max_examples=50, deadline=None)
@given(timeout=st.floats(0, 100), interval=st.integers(1, 10))
def test_a_timeout_ends_the_wait_on_time(timeout: float, interval: int) -> None:
    clock = Clock()
    script = Script(clock, [], "authorization_pending")
    error = wait(script, authorization(interval, 600), timeout=timeout)
    assert isinstance(error, TransportError) and error.code == "device.wait_timeout"
    assert START + timeout <= clock.now <= START + timeout + 1e-6
    assert all(at < START + timeout for at in script.polls)


def test_a_cancel_flag_ends_the_wait_within_half_a_second() -> None:
    clock = Clock()
    script = Script(clock, [], "authorization_pending")
    cancel_at = START + 12.2

    error = wait(script, authorization(5, 600), cancelled=lambda: clock.now >= cancel_at)
    assert isinstance(error, DeviceAuthorizationError) and error.code == "device.cancelled"
    assert cancel_at <= clock.now <= cancel_at + ops.CANCEL_CHECK_SECONDS
    assert len(script.polls) == 2  # at +5 and +10


def test_other_errors_end_the_wait_as_they_are() -> None:
    clock = Clock()
    script = Script(clock, [], "invalid_client")
    error = wait(script, authorization(5, 600))
    assert isinstance(error, OAuthError) and error.code == "oauth.invalid_client"
    assert len(script.polls) == 1


def test_a_refused_device_authorization_has_a_hint() -> None:
    clock = Clock()
    script = Script(clock, [], "unauthorized_client")
    error = wait(script, authorization(5, 600))
    assert isinstance(error, OAuthError) and error.hint is not None
    assert "device flow" in error.hint


class Flaky(Script):
    """Polls that get no answer (``"lost"``) before the provider's answers."""

    def perform(self, effect: Any) -> object:
        if isinstance(effect, HttpRequest):
            self.polls.append(self.clock.now)
            answer = next(self.answers, self.last)
            self.sent.append(answer)
            if answer == "lost":
                raise TransportError("connection reset", code="transport.connection")
            return self.respond(answer)
        return super().perform(effect)


def test_polls_without_an_answer_back_off_then_go_on() -> None:
    clock = Clock()
    script = Flaky(clock, ["lost", "lost", "authorization_pending", "lost"], "access_denied")
    error = wait(script, authorization(5, 600))
    assert isinstance(error, DeviceAuthorizationError) and error.code == "device.access_denied"
    gaps = [b - a for a, b in zip([START, *script.polls], script.polls, strict=False)]
    assert gaps == [5, 10, 20, 5, 10]  # doubled per failure in a row, reset by an answer


def test_no_answer_until_the_expiry_raises_the_transport_error() -> None:
    clock = Clock()
    script = Flaky(clock, [], "lost")
    error = wait(script, authorization(5, 100))
    assert isinstance(error, TransportError) and error.code == "transport.connection"
    assert [at - START for at in script.polls] == [5, 15, 35, 75]  # then 155: past 100
