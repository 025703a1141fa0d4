"""Property tests of the rotation rules over arbitrary timings."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.testing import REFRESH_TOKEN_TTL, REUSE_WINDOW, ROTATION_THRESHOLD, TestProvider

from .conftest import ENDPOINT, REDIRECT, Clock, World, body, seeded_runtime


def fresh_world() -> World:
    clock = Clock()
    provider = TestProvider(ENDPOINT, clock=clock, runtime=seeded_runtime(clock))
    provider.add_client("spa", kind="spa", redirect_uris=[REDIRECT])
    provider.add_client("web", kind="traditional", secret="web-secret", redirect_uris=[REDIRECT])
    provider.add_user("user-1", name="Alice")
    return World(clock, provider)


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0, max_value=30, allow_nan=False))
def test_reuse_of_rotated_token_depends_only_on_the_window(delay: float) -> None:
    world = fresh_world()
    old = world.tokens()["refresh_token"]
    new = body(world.refresh(old))["refresh_token"]
    world.clock.advance(delay)
    reused = world.refresh(old)
    if delay <= REUSE_WINDOW:
        assert reused.status == 200
        assert world.provider.is_refresh_token_active(new)
    else:
        assert body(reused)["error"] == "invalid_grant"
        assert body(world.refresh(new))["error"] == "invalid_grant"


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0, max_value=0.99, allow_nan=False))
def test_confidential_rotation_threshold(share: float) -> None:
    world = fresh_world()
    token = world.tokens("web")["refresh_token"]
    world.clock.advance(share * REFRESH_TOKEN_TTL)
    returned = body(world.refresh(token, client_id="web"))["refresh_token"]
    assert (returned != token) == (share >= ROTATION_THRESHOLD)
