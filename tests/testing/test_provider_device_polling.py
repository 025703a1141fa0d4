"""Property tests of the device-code polling rules (slow_down, the growing interval, expiry),
on the provider's clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.config import LogtoConfig
from logto_core.grants import (
    Granted,
    Poll,
    build_device_authorization,
    build_device_token_request,
    on_poll_response,
    parse_device_authorization_response,
    start_polling,
)
from logto_core.http import HttpRequest
from logto_core.protocol.discovery import parse_discovery_response
from logto_core.testing import DEVICE_CODE_TTL, DEVICE_INTERVAL, TestProvider

from .conftest import ENDPOINT, Clock, World, body, seeded_runtime
from .device_support import poll, polled_error, started

INTERVAL = DEVICE_INTERVAL
STEP = 5  # RFC 8628 section 3.5

gaps = st.floats(min_value=0, max_value=25, allow_nan=False)


def fresh_world(ttl: int = DEVICE_CODE_TTL) -> World:
    clock = Clock()
    provider = TestProvider(ENDPOINT, clock=clock, runtime=seeded_runtime(clock))
    provider.add_client("tv", kind="native", device_flow=True)
    provider.add_user("user-1", name="Alice")
    provider.devices.ttl = ttl
    return World(clock, provider)


@settings(max_examples=80, deadline=None)
@given(st.lists(gaps, max_size=12), st.integers(min_value=1, max_value=120))
def test_each_poll_is_answered_by_the_schedule(waits: list[float], ttl: int) -> None:
    """Before the user decides: ``expired_token`` from the expiry on; ``slow_down`` for a poll
    sooner than the interval after the previous poll, which then grows by 5 s; else
    ``authorization_pending``. The first poll is never too soon."""
    world = fresh_world(ttl)
    code = started(world)["device_code"]
    # The same float arithmetic as the provider's, on the same clock readings.
    expires_at, interval, previous = world.clock.now + ttl, INTERVAL, None
    for wait in waits:
        world.clock.advance(wait)
        now = world.clock.now
        status, error = polled_error(world, code)
        assert status == 400
        if now >= expires_at:
            assert error == "expired_token"
            continue
        if previous is not None and now - previous < interval:
            assert error == "slow_down"
            interval += STEP
        else:
            assert error == "authorization_pending"
        previous = now


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=10))
def test_waiting_the_announced_interval_plus_every_step_is_never_too_soon(
    extra: list[float],
) -> None:
    """A client that waits the interval, grown by 5 s after each ``slow_down`` it got, is
    never told to slow down again (before the code expires)."""
    world = fresh_world()
    code = started(world)["device_code"]
    assert polled_error(world, code) == (400, "authorization_pending")
    world.clock.advance(1)  # too soon
    assert polled_error(world, code) == (400, "slow_down")
    interval = INTERVAL + STEP
    for more in extra:
        world.clock.advance(interval + more)
        assert polled_error(world, code) == (400, "authorization_pending")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=6))
def test_the_interval_grows_by_five_seconds_per_slow_down(rushed: int) -> None:
    world = fresh_world()
    code = started(world)["device_code"]
    polled_error(world, code)
    for _ in range(rushed):
        assert polled_error(world, code) == (400, "slow_down")  # no time passed
    expected = INTERVAL + STEP * rushed
    world.clock.advance(expected - 0.001)
    assert polled_error(world, code) == (400, "slow_down")
    world.clock.advance(expected + STEP)
    assert polled_error(world, code) == (400, "authorization_pending")


@settings(max_examples=80, deadline=None)
@given(
    st.floats(min_value=0, max_value=2 * DEVICE_CODE_TTL, allow_nan=False),
    st.sampled_from(["pending", "approved", "denied"]),
)
def test_expiry_depends_only_on_the_age_of_the_device_code(age: float, decision: str) -> None:
    world = fresh_world()
    answer = started(world)
    expires_at = world.clock.now + DEVICE_CODE_TTL
    if decision == "approved":
        world.provider.approve_device(answer["user_code"], "user-1")
    elif decision == "denied":
        world.provider.deny_device(answer["user_code"])
    world.clock.advance(age)
    response = poll(world, answer["device_code"])
    expired = response.status == 400 and body(response)["error"] == "expired_token"
    assert expired == (world.clock.now >= expires_at)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=0, max_value=700, allow_nan=False))
def test_the_sdk_s_polling_never_hears_slow_down(approve_after: float) -> None:
    """The SDK's polling state machine against the provider: never ``slow_down``; granted
    when the user approves in time, expired otherwise."""
    world = fresh_world()
    provider, clock = world.provider, world.clock
    config = LogtoConfig(endpoint=ENDPOINT, appId="tv")
    metadata = parse_discovery_response(
        provider.handle(HttpRequest.get(provider.discovery_url)), config
    )
    response = provider.handle(build_device_authorization(config, metadata))
    authorization = parse_device_authorization_response(response, config, clock())
    state = start_polling(authorization, clock())
    approve_at, approved = clock() + approve_after, False
    while not state.done:
        step = state.step
        assert isinstance(step, Poll)
        clock.now = step.at
        if not approved and clock() >= approve_at:
            provider.approve_device(authorization.user_code, "user-1")
            approved = True
        answer = provider.handle(build_device_token_request(config, metadata, authorization))
        assert b"slow_down" not in answer.body
        state = on_poll_response(state, clock(), answer)
    granted = isinstance(state.outcome, Granted)
    assert granted == approved
    if approve_after < DEVICE_CODE_TTL - INTERVAL:
        assert granted
