"""Machine-to-machine cache keys and the caching of ``operations.m2m_token_op``, as
properties: a key is (resource, organization, set of scopes) whatever the spelling; flight
keys never collide across apps, endpoints or keys; and over any sequence of calls and clock
moves, the operation asks the provider exactly when no fresh token is cached for that key."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core import operations as ops
from logto_core.context import Context
from logto_core.driver import run_operation
from logto_core.errors import LogtoUsageError, ScopeNotGrantedError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.provider_state import ProviderState
from logto_core.runtime import Runtime
from logto_core.session import SessionState, TokenKey
from logto_core.singleflight import FlightTable, client_credentials_key

from .factories import config, json_response, metadata

START = 1_000_000.0
MARGIN = 30.0

resources = st.sampled_from([None, "", "https://a.example.com", "https://b.example.com"])
orgs = st.sampled_from([None, "", "org-1", "org-2"])
scope_names = st.sampled_from(["read", "write", "admin"])
scope_lists = st.none() | st.lists(scope_names, max_size=4)


@given(resources, orgs, st.lists(scope_names, max_size=5), st.randoms())
def test_a_key_is_the_target_and_the_set_of_scopes(
    resource: str | None, org: str | None, scopes: list[str], rng: Any
) -> None:
    shuffled = scopes + scopes[: rng.randint(0, len(scopes))]
    rng.shuffle(shuffled)
    key = TokenKey.of(resource, org, scopes)
    assert TokenKey.of(resource, org, shuffled) == key
    assert key.resource == (resource or None) and key.organization_id == (org or None)
    assert key.scopes == (tuple(sorted(set(scopes))) or None)
    assert TokenKey.decode(key.encode()) == key


@given(
    st.tuples(st.sampled_from(["https://t1", "https://t2"]), st.sampled_from(["a", "b"])),
    st.tuples(st.sampled_from(["https://t1", "https://t2"]), st.sampled_from(["a", "b"])),
    st.tuples(resources, orgs, scope_lists),
    st.tuples(resources, orgs, scope_lists),
)
def test_flight_keys_differ_exactly_when_app_or_key_differ(
    app1: tuple[str, str], app2: tuple[str, str], key1: Any, key2: Any
) -> None:
    k1, k2 = TokenKey.of(*key1).encode(), TokenKey.of(*key2).encode()
    same = app1 == app2 and k1 == k2
    assert (client_credentials_key(*app1, k1) == client_credentials_key(*app2, k2)) == same


class Provider:
    """A token endpoint that issues opaque tokens living ``lifetime`` seconds, counting."""

    def __init__(self) -> None:
        self.issued = 0
        self.lifetime = 3600

    def answer(self, request: HttpRequest) -> HttpResponse:
        form = dict(parse_qsl((request.body or b"").decode()))
        assert form["grant_type"] == "client_credentials"
        self.issued += 1
        body: dict[str, Any] = {
            "access_token": f"token-{self.issued}",
            "token_type": "Bearer",
            "expires_in": self.lifetime,
        }
        if "scope" in form:
            body["scope"] = form["scope"]
        return json_response(body)


class Machine:
    """Runs the operation with a storage, a flight table and the clock."""

    def __init__(self) -> None:
        self.now = START
        self.session = SessionState()
        self.flights: FlightTable[object] = FlightTable()
        self.provider = Provider()
        self.ctx = Context(
            config(tokenExpiryMargin=MARGIN),
            runtime=Runtime(clock=lambda: self.now),
            provider=ProviderState().with_metadata(metadata(), START),
        )

    def perform(self, effect: Any) -> object:
        if isinstance(effect, ops.LoadSession):
            return self.session
        if isinstance(effect, ops.SaveSession):
            before = self.session
            after = effect.change(before)
            if after is not None:
                self.session = after
            return ops.Saved(before, self.session)
        if isinstance(effect, ops.Shielded):
            return run_operation(effect.operation, self.perform)
        if isinstance(effect, ops.Claim):
            return self.flights.claim(effect.key, object(), self.now, supersede=effect.supersede)
        if isinstance(effect, ops.Publish):
            self.flights.publish(effect.key, effect.lead.handle, effect.result, self.now, keep=0)
            return None
        assert isinstance(effect, HttpRequest), effect
        return self.provider.answer(effect)

    def token(self, key: TokenKey) -> str:
        return run_operation(ops.m2m_token_op(self.ctx, key), self.perform).token


calls = st.lists(
    st.tuples(
        st.tuples(st.sampled_from(["https://a.example.com", None]), orgs, scope_lists),
        st.sampled_from([0.0, 1.0, 1800.0, 3569.0, 3571.0, 7200.0]),
        st.sampled_from([3600, 40, 0]),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(calls)
def test_the_provider_is_asked_exactly_when_no_fresh_token_is_cached(
    sequence: list[tuple[tuple[Any, Any, Any], float, int]],
) -> None:
    machine = Machine()
    model: dict[TokenKey, tuple[str, float, float]] = {}  # key: token, obtained, expires
    for target, advance, lifetime in sequence:
        machine.now += advance
        machine.provider.lifetime = lifetime
        key = TokenKey.of(*target)
        if key.resource is None and key.organization_id is None:
            with pytest.raises(LogtoUsageError):
                machine.token(key)
            continue
        before = machine.provider.issued
        token = machine.token(key)
        cached = model.get(key)
        fresh = cached is not None and machine.now < cached[2] - min(
            MARGIN, (cached[2] - cached[1]) / 2
        )
        if fresh:
            assert cached is not None
            assert token == cached[0] and machine.provider.issued == before
        else:
            assert machine.provider.issued == before + 1 and token == f"token-{before + 1}"
            model[key] = (token, machine.now, machine.now + lifetime)


def test_missing_scopes_are_refused_and_not_cached() -> None:
    machine = Machine()

    def partial(request: HttpRequest) -> HttpResponse:
        machine.provider.issued += 1
        return json_response(
            {"access_token": "t", "token_type": "Bearer", "expires_in": 60, "scope": "read"}
        )

    machine.provider.answer = partial  # type: ignore[method-assign]
    key = TokenKey.of("https://a.example.com", None, ["read", "write"])
    for expected in (1, 2):
        with pytest.raises(ScopeNotGrantedError) as caught:
            machine.token(key)
        assert caught.value.missing == "write" and machine.provider.issued == expected
    assert not machine.session.access_tokens
