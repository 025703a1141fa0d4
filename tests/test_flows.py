"""The flows against the in-memory test provider: the happy path and every transition."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from logto_core.context import Context
from logto_core.driver import MAX_REQUESTS_PER_FLOW, FlowLimitError, run_async, run_sync
from logto_core.errors import (
    CallbackError,
    JwksError,
    LogtoUsageError,
    OAuthError,
    ProviderError,
    SignInRequiredError,
    TokenValidationError,
    TransportError,
)
from logto_core.flows import Flow, Outcome
from logto_core.http import HttpRequest, HttpResponse
from logto_core.operations import value_or_none
from logto_core.provider_state import ProviderCache, ProviderState, newest
from logto_core.session import SessionState, TokenKey
from logto_core.sleep import Sleep
from logto_core.testing import Fault
from tests.core_facade import CoreFacade
from tests.harness import API, API2, ENDPOINT, HOME, REDIRECT, Harness


def test_full_sign_in_then_tokens_userinfo_and_sign_out() -> None:
    h = Harness()
    h.sign_in()
    claims = h.core.id_token_claims(h.session())
    assert claims.sub == "alice" and claims.email == "alice@example.com"
    info = h.run("s", h.core.fetch_user_info(h.session())).unwrap()
    assert info.sub == "alice" and info.custom_data == {"n": "Alice"}
    api = h.token(resource=API).unwrap()
    assert h.core.access_token_claims(api).aud == API
    assert h.core.access_token_claims(api).scope == "read write"
    org = h.token(org="o1").unwrap()
    assert h.core.access_token_claims(org).aud == "urn:logto:organization:o1"
    result = h.run("s", h.core.sign_out(h.session(), HOME)).unwrap()
    assert result.revocation_error is None
    assert "id_token_hint=" in result.url and "post_logout_redirect_uri=" in result.url
    assert not h.session().is_authenticated and h.session().refresh_token is None
    assert h.requests_to("revocation") == 1


def test_discovery_and_keys_are_fetched_once_for_many_users() -> None:
    h = Harness()
    for name in ("a", "b", "c"):
        h.sign_in(name, user="alice" if name != "b" else "bob")
    assert h.requests_to("discovery") == 1
    assert h.requests_to("jwks") == 1


def test_cached_token_makes_no_request() -> None:
    h = Harness()
    h.sign_in()
    first = h.token(resource=API).unwrap()
    before = len(h.provider.log)
    assert h.token(resource=API).unwrap() == first
    assert len(h.provider.log) == before
    assert h.core.cached_access_token(h.session(), API) == first
    assert h.core.cached_access_token(h.session(), API2) is None


def test_expired_token_is_refreshed_and_rotation_is_stored() -> None:
    h = Harness(client_id="spa")
    h.sign_in()
    old_refresh = h.session().refresh_token
    first = h.token(resource=API).unwrap()
    assert h.session().refresh_token != old_refresh  # public clients rotate every time
    h.clock.advance(3600)
    second = h.token(resource=API).unwrap()
    assert second != first
    presented = [
        e.params["refresh_token"] for e in h.provider.log if e.grant_type == "refresh_token"
    ]
    assert len(presented) == len(set(presented))


def test_tokens_for_different_keys_never_cross() -> None:
    h = Harness()
    h.sign_in()
    api, api2, org1, org2 = (
        h.token(resource=API).unwrap(),
        h.token(resource=API2).unwrap(),
        h.token(org="o1").unwrap(),
        h.token(org="o2").unwrap(),
    )
    assert len({api, api2, org1, org2}) == 4
    assert h.core.access_token_claims(api2).aud == API2
    scoped = h.run("s", h.core.get_access_token(h.session(), API, scopes=["read"])).unwrap()
    assert h.core.access_token_claims(scoped).scope == "read"
    assert h.token(resource=API).unwrap() == api


def test_invalid_grant_clears_the_session_and_returns_none() -> None:
    h = Harness()
    h.sign_in()
    h.provider.revoke_grants("alice")
    outcome = h.token(resource=API)
    assert isinstance(outcome.error, SignInRequiredError)
    assert isinstance(outcome.error.__cause__, OAuthError)
    assert value_or_none(outcome) is None
    assert not h.session().is_authenticated and h.session().refresh_token is None


@pytest.mark.parametrize(
    "error",
    [TransportError("reset", code="transport.connection"), None],
)
def test_transient_failures_keep_every_token(error: TransportError | None) -> None:
    h = Harness()
    h.sign_in()
    h.token(resource=API2).unwrap()
    h.clock.advance(3600)
    before = h.session()
    if error is None:
        h.provider.faults.add(Fault(endpoint="token", status=503))
    else:
        h.fail_next.append(error)
    h.core.provider  # noqa: B018 - provider state survives too
    outcome = h.token(resource=API)
    assert isinstance(outcome.error, TransportError)
    with pytest.raises(TransportError):
        value_or_none(outcome)
    assert h.session() == before


def test_not_signed_in() -> None:
    h = Harness()
    outcome = h.token(resource=API)
    assert isinstance(outcome.error, SignInRequiredError)
    assert isinstance(h.run("s", h.core.fetch_user_info(h.session())).error, SignInRequiredError)
    with pytest.raises(SignInRequiredError):
        h.core.id_token_claims(h.session())


def test_organization_token_needs_the_organizations_scope() -> None:
    h = Harness(config_overrides={"scopes": ["email"]})
    h.sign_in()
    assert isinstance(h.token(org="o1").error, LogtoUsageError)
    assert isinstance(h.token(resource="urn:logto:organization:o1").error, LogtoUsageError)


def test_not_a_member_is_an_oauth_error_and_keeps_the_session() -> None:
    h = Harness()
    h.sign_in(user="bob")
    outcome = h.token(org="o2")
    assert isinstance(outcome.error, OAuthError) and outcome.error.status == 403
    assert h.session().is_authenticated


def test_replayed_and_foreign_callbacks_fail_before_any_token_request() -> None:
    h = Harness()
    url = h.start()
    callback = h.provider.approve(url, user="alice")
    h.run("s", h.core.handle_sign_in_callback(h.session(), callback)).unwrap()
    token_requests = h.requests_to("token")
    replay = h.run("s", h.core.handle_sign_in_callback(h.session(), callback))
    assert isinstance(replay.error, CallbackError)
    foreign = h.run("other", h.core.handle_sign_in_callback(h.session("other"), callback))
    assert isinstance(foreign.error, CallbackError)
    assert h.requests_to("token") == token_requests
    assert h.session().is_authenticated  # a bad callback does not sign the user out


def test_two_tabs_can_sign_in_independently() -> None:
    h = Harness()
    first, second = h.start(), h.start()
    cb2 = h.provider.approve(second, user="alice")
    cb1 = h.provider.approve(first, user="alice")
    h.run("s", h.core.handle_sign_in_callback(h.session(), cb2)).unwrap()
    assert len(h.session().pending) == 1
    h.run("s", h.core.handle_sign_in_callback(h.session(), cb1)).unwrap()
    assert h.session().pending == ()


def test_denied_sign_in_consumes_the_attempt() -> None:
    h = Harness()
    url = h.start()
    outcome = h.run("s", h.core.handle_sign_in_callback(h.session(), h.provider.deny(url)))
    assert isinstance(outcome.error, OAuthError) and outcome.error.error == "access_denied"
    assert h.session().pending == ()


def test_code_exchange_without_id_token_fails() -> None:
    h = Harness()
    url = h.start()
    callback = h.provider.approve(url, user="alice")
    h.provider.faults.add(
        Fault(endpoint="token", body={"access_token": "x" * 43, "token_type": "Bearer"})
    )
    outcome = h.run("s", h.core.handle_sign_in_callback(h.session(), callback))
    assert (
        isinstance(outcome.error, ProviderError) and outcome.error.code == "token.id_token_missing"
    )
    assert not h.session().is_authenticated


def test_signing_key_rotation_is_followed_after_one_refetch() -> None:
    h = Harness()
    h.sign_in("a")
    h.provider.rotate_signing_key(keep_previous=False)
    h.sign_in("b")
    assert h.requests_to("jwks") == 2
    assert h.core.id_token_claims(h.session("b")).sub == "alice"


def test_unknown_kid_refetch_is_rate_limited() -> None:
    h = Harness()
    h.sign_in("a")
    for i in range(3):
        url = h.start(f"x{i}")
        callback = h.provider.approve(url, user="alice")
        h.provider.faults.add(Fault(endpoint="token", id_token_header={"kid": f"forged-{i}"}))
        outcome = h.run(f"x{i}", h.core.handle_sign_in_callback(h.session(f"x{i}"), callback))
        assert isinstance(outcome.error, JwksError)
    assert h.requests_to("jwks") == 2  # the first fetch plus one forced refetch per cooldown
    h.clock.advance(61)
    url = h.start("y")
    callback = h.provider.approve(url, user="alice")
    h.provider.faults.add(Fault(endpoint="token", id_token_header={"kid": "forged-again"}))
    h.run("y", h.core.handle_sign_in_callback(h.session("y"), callback))
    assert h.requests_to("jwks") == 3


def test_refreshed_id_token_with_another_sub_is_refused_but_rotation_kept() -> None:
    h = Harness(client_id="spa")
    h.sign_in()
    h.clock.advance(10)
    h.provider.faults.add(
        Fault(endpoint="token", grant_type="refresh_token", id_token_claims={"sub": "mallory"})
    )
    outcome = h.token(resource=API)
    assert isinstance(outcome.error, TokenValidationError)
    assert h.core.id_token_claims(h.session()).sub == "alice"
    presented = h.session().refresh_token
    assert presented is not None and h.provider.is_refresh_token_active(presented)
    assert h.token(resource=API).error is None


def test_userinfo_401_refreshes_once_then_retries_once() -> None:
    h = Harness()
    h.sign_in()
    h.provider.faults.add(Fault(endpoint="userinfo", status=401, body={"error": "invalid_token"}))
    assert h.run("s", h.core.fetch_user_info(h.session())).unwrap().sub == "alice"
    assert h.requests_to("userinfo") == 2
    h.provider.faults.add(
        Fault(endpoint="userinfo", status=401, body={"error": "invalid_token"}, times=5)
    )
    outcome = h.run("s", h.core.fetch_user_info(h.session()))
    assert isinstance(outcome.error, OAuthError)
    assert h.requests_to("userinfo") == 4


def test_userinfo_sub_mismatch_is_refused() -> None:
    h = Harness()
    h.sign_in()
    h.provider.faults.add(Fault(endpoint="userinfo", body={"sub": "mallory"}))
    outcome = h.run("s", h.core.fetch_user_info(h.session()))
    assert isinstance(outcome.error, TokenValidationError)


def test_sign_out_succeeds_locally_when_revocation_fails() -> None:
    h = Harness()
    h.sign_in()
    h.fail_next.append(TransportError("refused", code="transport.connection"))
    h.core.cache = ProviderCache()  # force a discovery request, which fails
    result = h.run("s", h.core.sign_out(h.session(), HOME)).unwrap()
    assert isinstance(result.revocation_error, TransportError)
    assert not h.session().is_authenticated
    assert "/oidc/session/end?" in result.url


def test_local_sign_out_makes_no_request_and_hands_the_refresh_token_over() -> None:
    h = Harness()
    h.sign_in()
    session = h.session()
    refresh = session.refresh_token
    assert refresh is not None and session.id_token is not None
    h.core.cache = ProviderCache()  # no metadata: Logto's fixed end-session path
    before = len(h.provider.log)
    outcome = h.core.sign_out_local(session, HOME)
    local = outcome.unwrap()
    assert len(h.provider.log) == before
    assert local.url.startswith(h.provider.issuer + "/session/end?")
    assert "id_token_hint=" in local.url and "post_logout_redirect_uri=" in local.url
    assert local.to_revoke == refresh
    assert refresh not in repr(local) and refresh not in str(local)
    assert not outcome.session.is_authenticated and outcome.session.refresh_token is None
    assert outcome.session.access_tokens == {}
    assert h.provider.is_refresh_token_active(refresh)  # nothing was revoked yet


def test_local_sign_out_keeps_pending_attempts_and_refuses_a_bad_redirect() -> None:
    h = Harness()
    h.sign_in()
    h.start()  # another tab started a sign-in
    session = h.session()
    cleared = h.core.sign_out_local(session).session
    assert cleared.pending == session.pending and len(cleared.pending) == 1
    failed = h.core.sign_out_local(session, "not a url")
    assert isinstance(failed.error, LogtoUsageError)
    assert failed.session == session  # untouched
    empty = h.core.sign_out_local(SessionState()).unwrap()
    assert empty.to_revoke is None and "id_token_hint" not in empty.url


def test_revoke_refresh_token_touches_no_session() -> None:
    h = Harness()
    h.sign_in()
    refresh = h.session().refresh_token
    assert refresh is not None
    h.core.cache = ProviderCache()  # the revocation needs discovery first
    outcome = run_sync(h.core.revoke(refresh), h.send)
    assert outcome.error is None and outcome.value is None
    assert outcome.session == SessionState()
    assert outcome.provider.metadata is not None  # learnt on the way
    assert [e.endpoint for e in h.provider.log[-2:]] == ["discovery", "revocation"]
    assert not h.provider.is_refresh_token_active(refresh)


def test_revoke_refresh_token_reports_failures_as_its_value() -> None:
    h = Harness()
    h.sign_in()
    refresh = h.session().refresh_token
    assert refresh is not None
    h.provider.faults.add(Fault(endpoint="revocation", status=503))
    outcome = run_sync(h.core.revoke(refresh), h.send)
    assert outcome.error is None and isinstance(outcome.value, TransportError)
    assert outcome.value.status == 503
    h.fail_next.append(TransportError("refused", code="transport.connection"))
    h.core.cache = ProviderCache()
    outcome = run_sync(h.core.revoke(refresh), h.send)
    assert isinstance(outcome.value, TransportError) and outcome.provider.metadata is None


def test_sign_out_when_not_signed_in_makes_no_request() -> None:
    h = Harness()
    result = h.run("s", h.core.sign_out(h.session())).unwrap()
    assert result.revocation_error is None and h.provider.log == []


def test_discovery_failure_is_not_cached() -> None:
    h = Harness()
    h.provider.faults.add(Fault(endpoint="discovery", status=500))
    assert isinstance(h.run("s", h.core.sign_in(h.session(), REDIRECT)).error, TransportError)
    assert h.core.provider.metadata is None
    h.start()
    assert h.core.provider.metadata is not None


def test_prompt_login_and_missing_refresh_token() -> None:
    h = Harness()
    h.sign_in(prompt="login")
    assert h.session().refresh_token is None
    outcome = h.token(resource=API)
    assert isinstance(outcome.error, SignInRequiredError)
    assert h.session().is_authenticated  # no grant was killed: the ID token stays


def test_unknown_expiry_uses_jwt_exp_or_a_short_default() -> None:
    h = Harness()
    h.sign_in()
    h.provider.faults.add(
        Fault(endpoint="token", body={"access_token": "opaque-" + "x" * 40, "token_type": "Bearer"})
    )
    h.token(resource=API2).unwrap()
    cached = h.session().access_tokens[TokenKey(API2)]
    assert cached.expires_at == h.clock.now + 60


def test_flow_limit_and_async_driver() -> None:
    def endless() -> object:
        while True:
            yield HttpRequest.get("http://127.0.0.1/x")

    with pytest.raises(FlowLimitError):
        run_sync(endless(), lambda r: HttpResponse.build(200))  # type: ignore[arg-type]

    h = Harness()

    async def send(request: HttpRequest) -> HttpResponse:
        return h.send(request)

    import asyncio

    outcome = asyncio.run(run_async(h.core.sign_in(SessionState(), REDIRECT), send))
    assert outcome.unwrap().startswith("http://127.0.0.1:3001/oidc/auth?")
    with pytest.raises(FlowLimitError):
        asyncio.run(run_async(endless(), send))  # type: ignore[arg-type]
    assert MAX_REQUESTS_PER_FLOW >= 6


def test_provider_state_merge_and_export() -> None:
    h = Harness()
    h.sign_in()
    state = h.core.provider
    restored = ProviderState.from_json(state.to_json())
    assert restored.metadata == state.metadata and restored.keys == state.keys
    assert newest(ProviderState(), state) == state
    assert newest(state, ProviderState()) == state
    assert ProviderState.from_json(ProviderState().to_json()) == ProviderState()
    core = CoreFacade(h.core.config, runtime=h.core.runtime, provider=restored)
    assert core.provider is restored
    with pytest.raises(LogtoUsageError):
        Context({"endpoint": "x"})  # type: ignore[arg-type]


def test_cache_expiry_from_the_jwts_own_lifetime_when_expires_in_is_missing() -> None:
    """Without ``expires_in``, a JWT lives ``exp - iat`` from its receipt: its lifetime in
    the provider's clock, whatever the skew between the two clocks."""
    h = Harness()
    h.sign_in()
    jwt_token = h.token(resource=API).unwrap()
    claims = h.core.access_token_claims(jwt_token)
    h.clock.advance(3600)
    h.provider.faults.add(
        Fault(endpoint="token", body={"access_token": jwt_token, "token_type": "Bearer"})
    )
    h.token(resource=API).unwrap()
    entry = h.session().access_tokens[TokenKey(API)]
    assert entry.expires_at == h.clock.now + (claims.exp - claims.iat)
    assert entry.obtained_at == h.clock.now
    h.provider.faults.add(
        Fault(endpoint="token", body={"access_token": "a.b.c", "token_type": "Bearer"})
    )
    h.token(resource=API2).unwrap()
    assert h.session().access_tokens[TokenKey(API2)].expires_at == h.clock.now + 60


def test_refresh_without_a_stored_id_token_recovers_the_session() -> None:
    # Storage lost the ID token but kept the refresh token (another SDK wrote it, or the ID
    # token was corrupt): the refreshed ID token repeats a nonce the client no longer has. It
    # is verified in every other respect and stored: the session recovers after one refresh,
    # instead of refreshing and failing on every call.
    h = Harness()
    h.sign_in()
    user = h.core.id_token_claims(h.session()).sub
    h.sessions["s"] = SessionState(refresh_token=h.session().refresh_token)
    h.clock.advance(3600 * 24 * 11)  # confidential rotation is due
    outcome = h.token(resource=API)
    assert outcome.error is None and outcome.value is not None
    rotated = h.session().refresh_token
    assert rotated is not None and h.provider.is_refresh_token_active(rotated)
    assert h.session().is_authenticated
    assert h.core.id_token_claims(h.session()).sub == user
    assert h.token(resource=API).value == outcome.value  # cached: no second refresh
    assert h.requests_to("token", "refresh_token") == 1


def test_refresh_without_a_stored_id_token_still_verifies_the_new_one() -> None:
    h = Harness()
    h.sign_in()
    h.sessions["s"] = SessionState(refresh_token=h.session().refresh_token)
    h.provider.faults.add(Fault("token", id_token_claims={"aud": "someone-else"}))
    outcome = h.token(resource=API)
    assert isinstance(outcome.error, TokenValidationError)
    assert not h.session().is_authenticated


def test_sign_out_without_revocation_endpoint() -> None:
    h = Harness()
    h.sign_in()
    metadata = h.core.provider.metadata
    assert metadata is not None
    h.core.cache = ProviderCache(
        ProviderState(metadata.model_copy(update={"revocation_endpoint": None}), h.clock.now)
    )
    refresh = h.session().refresh_token
    assert refresh is not None
    assert run_sync(h.core.revoke(refresh), h.send).value is None
    assert h.run("s", h.core.sign_out(h.session())).unwrap().revocation_error is None
    assert h.requests_to("revocation") == 0


def test_metadata_is_refetched_when_the_clock_goes_backwards() -> None:
    h = Harness()
    h.start()
    h.clock.advance(-10)
    h.start()
    assert h.requests_to("discovery") == 2


def test_token_key_normalises() -> None:
    assert Context.token_key("", "", []) == TokenKey()
    assert Context.token_key(API, "o", ["b", "a", "b"]) == TokenKey(API, "o", ("a", "b"))


def test_async_driver_passes_transport_errors_into_the_flow() -> None:
    import asyncio

    h = Harness()

    async def failing(request: HttpRequest) -> HttpResponse:
        raise TransportError("refused", code="transport.connection")

    outcome = asyncio.run(run_async(h.core.sign_in(SessionState(), REDIRECT), failing))
    assert isinstance(outcome.error, TransportError)


def test_key_sets_fetched_at_the_same_instant_are_united() -> None:
    from logto_core.jose.keys import KeySet

    h = Harness()
    h.sign_in()
    keys = h.core.provider.keys
    assert keys is not None
    a = KeySet(keys.keys, 5.0)
    other = {**dict(keys.keys[0]), "kid": "other-kid"}
    b = KeySet((other,), 5.0)
    merged = newest(ProviderState(keys=a), ProviderState(keys=b)).keys
    assert merged is not None
    assert {k["kid"] for k in merged.keys} == {"other-kid", keys.keys[0]["kid"]}
    assert newest(ProviderState(keys=a), ProviderState(keys=a)).keys is a
    older = KeySet((other,), 1.0)
    assert newest(ProviderState(keys=a), ProviderState(keys=older)).keys is a
    assert newest(ProviderState(keys=older), ProviderState(keys=a)).keys is a
    no_kid = {k: v for k, v in dict(keys.keys[0]).items() if k != "kid"}
    same = newest(
        ProviderState(keys=KeySet((no_kid,), 5.0)), ProviderState(keys=KeySet((no_kid,), 5.0))
    )
    assert same.keys is not None and len(same.keys.keys) == 1


def test_flows_interleaved_share_keys_fetched_while_they_ran() -> None:
    """Two refreshes start with stale keys; the first fetches the key set and publishes it
    at once, so the second (already running, started from the old snapshot) uses it instead
    of fetching again."""
    h = Harness()
    h.sign_in("a", user="alice")
    h.sign_in("b", user="bob")
    h.clock.advance(3601)  # access tokens and the cached key set are stale
    first = h.core.get_access_token(h.session("a"), API)
    second = h.core.get_access_token(h.session("b"), API)
    request_a = next(first)
    request_b = next(second)  # both started before either learnt anything
    before = h.requests_to("jwks")
    outcome_a = _drive(first, request_a, h)
    outcome_b = _drive(second, request_b, h)
    assert outcome_a.error is None and outcome_b.error is None
    assert h.requests_to("jwks") - before == 1


def _drive(flow: Flow[str], request: HttpRequest | Sleep, h: Harness) -> Outcome[str]:
    try:
        while True:
            assert isinstance(request, HttpRequest)  # a bare core sends once, never waits
            request = flow.send(h.send(request))
    except StopIteration as stop:
        outcome: Outcome[str] = stop.value
        return outcome


def test_drivers_of_bare_flows_do_their_waits() -> None:
    """A core given a retry policy retries discovery after a 503 with a wait: run_sync and
    run_async hand each Sleep to the ``sleep`` they were given (or end it at once)."""
    import asyncio

    from logto_core.transport_policy import ExchangePolicy, RetryPolicy

    h = Harness()
    h.core.exchange = ExchangePolicy(RetryPolicy(max_retries=1), (5, 10))
    waits: list[float] = []

    def sleep(effect: Sleep) -> None:
        waits.append(effect.until - h.clock.now)

    async def asleep(effect: Sleep) -> None:
        sleep(effect)

    async def send(request: HttpRequest) -> HttpResponse:
        return h.send(request)

    def runs() -> list[Callable[[Flow[str]], Outcome[str]]]:
        return [
            lambda flow: run_sync(flow, h.send, sleep=sleep),
            lambda flow: asyncio.run(run_async(flow, send, sleep=asleep)),
            lambda flow: run_sync(flow, h.send),
            lambda flow: asyncio.run(run_async(flow, send)),
        ]

    for run in runs():
        h.core.cache = ProviderCache()
        h.provider.faults.add(
            Fault(endpoint="discovery", status=503, headers={"retry-after": "2"}, times=1)
        )
        assert run(h.core.sign_in(SessionState(), REDIRECT)).unwrap().startswith(ENDPOINT)
    assert waits == [2.0, 2.0]
    assert h.requests_to("discovery") == 8
