"""What happens after a key set answered NEED_KEYS (logto_core.jose.keys): which set to try
next, and whether the JWKS may be refetched (one forced refetch per jwksRefetchCooldown)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.http import HttpRequest
from logto_core.jose.keys import KeyRetry, KeySet, refetch_allowed, retry_unknown_key
from logto_core.provider_state import ProviderState
from tests.factories import config
from tests.harness import Harness
from tests.jwt_factory import NOW, key_set

T0 = int(NOW)
_OFFSETS = st.integers(-1000, 1000)


@settings(max_examples=200, deadline=None)
@given(last=st.one_of(st.none(), _OFFSETS), delta=_OFFSETS, cooldown=st.integers(0, 600))
def test_a_refetch_is_refused_only_within_the_cooldown_after_the_last_one(
    last: int | None, delta: int, cooldown: int
) -> None:
    if last is None:
        assert refetch_allowed(None, T0 + delta, cooldown)
        return
    now = T0 + last + delta
    # Within [last, last + cooldown) refused; after it allowed; a clock that went back
    # (now before the last refetch) must not block refetches for an unknown time.
    assert refetch_allowed(T0 + last, now, cooldown) == (delta >= cooldown or delta < 0)


@settings(max_examples=200, deadline=None)
@given(
    provider_fetched=st.one_of(st.none(), _OFFSETS),
    tried_fetched=_OFFSETS,
    last_forced=st.one_of(st.none(), _OFFSETS),
    fetched=st.booleans(),
)
def test_the_retry_decision(
    provider_fetched: int | None, tried_fetched: int, last_forced: int | None, fetched: bool
) -> None:
    cfg = config(jwksRefetchCooldown=60, jwksMaxAge=3600)
    keys = None if provider_fetched is None else key_set(fetched_at=T0 + provider_fetched)
    provider = ProviderState(
        keys=keys, last_forced_jwks_refetch=None if last_forced is None else T0 + last_forced
    )
    tried = key_set(["rsa"], fetched_at=T0 + tried_fetched)
    retry = retry_unknown_key(provider, cfg, NOW, tried=tried, fetched=fetched)
    assert isinstance(retry, KeyRetry)
    # A set is offered only when it is fresh and was fetched after the one that failed.
    offered = keys is not None and keys.fetched_at <= NOW and keys.fetched_at > tried.fetched_at
    assert retry.newer is (keys if offered else None)
    # Never a second fetch in one flow, never within the cooldown.
    cooldown_over = last_forced is None or last_forced <= -60 or last_forced > 0
    assert retry.refetch == (not fetched and cooldown_over)


@settings(max_examples=100, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 90), min_size=1, max_size=60),
    cooldown=st.sampled_from([60, 120, 300]),
)
def test_a_stream_of_forged_kids_costs_one_refetch_per_cooldown(
    gaps: list[int], cooldown: int
) -> None:
    cfg = config(jwksRefetchCooldown=cooldown)
    state = ProviderState(keys=key_set(fetched_at=NOW))
    now = NOW
    refetches: list[float] = []
    for gap in gaps:  # each flow meets a token with a kid no set will ever hold
        now += gap
        tried = state.keys
        assert tried is not None
        retry = retry_unknown_key(state, cfg, now, tried=tried, fetched=False)
        if retry.refetch:
            refetches.append(now)
            state = state.with_keys(KeySet(tried.keys, now), forced_at=now)
    assert refetches[:1] == [NOW + gaps[0]]  # the first unknown kid is refetched at once
    assert all(b - a >= cooldown for a, b in pairwise(refetches))
    assert len(refetches) <= (now - NOW) // cooldown + 1


def test_a_flow_adopts_the_rotated_set_a_concurrent_flow_refetched() -> None:
    # Two callbacks wait on their code exchanges while the provider rotates its key. The
    # first to verify refetches (forced, so the cooldown starts); the second, still holding
    # the old set, must take the set the first published instead of failing on the cooldown.
    h = Harness()
    h.sign_in("a")
    callbacks = {}
    for name in ("x", "y"):
        callbacks[name] = h.provider.approve(h.start(name), user="alice")
    h.provider.rotate_signing_key(keep_previous=False)
    late = h.core.handle_sign_in_callback(h.session("y"), callbacks["y"])
    exchange = next(late)
    assert isinstance(exchange, HttpRequest) and exchange.purpose == "token"
    response = h.send(exchange)
    h.clock.advance(1)  # (a set fetched at the very instant of the old one is not "newer")
    h.run("x", h.core.handle_sign_in_callback(h.session("x"), callbacks["x"])).unwrap()
    assert h.requests_to("jwks") == 2
    with pytest.raises(StopIteration) as stop:
        late.send(response)
    outcome = stop.value.value
    assert outcome.error is None
    assert outcome.unwrap().sub == "alice"
    assert h.requests_to("jwks") == 2
