"""The back-channel logout flow and operation, against the test provider in memory: keys from
the shared provider cache (one refetch per cooldown for an unknown kid), the replay check as
one effect, sessions ended through an effect, every failure answered 400."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core import operations as ops
from logto_core.driver import run_operation
from logto_core.errors import StorageError, TransportError
from logto_core.http import HttpRequest
from logto_core.protocol.backchannel import BackchannelLogoutResult
from logto_core.protocol.logout_token import LogoutToken
from logto_core.replay_cache import EMPTY_REPLAY_CACHE, ReplayCache
from logto_core.testing import logout_request
from tests.harness import Harness

RECEIVER = "http://127.0.0.1:5000/back-channel-logout"


@dataclass
class App:
    """What an adapter keeps: the replay cache, and the sessions it can end."""

    harness: Harness = field(default_factory=Harness)
    replay: ReplayCache = EMPTY_REPLAY_CACHE
    ended: list[LogoutToken] = field(default_factory=list)
    fail_ending: Exception | None = None
    effects: list[str] = field(default_factory=list)

    def perform(self, effect: object) -> object:
        self.effects.append(type(effect).__name__)
        now = self.harness.clock()
        if isinstance(effect, HttpRequest):
            return self.harness.send(effect)
        if isinstance(effect, ops.RecordLogout):
            if self.replay.seen(effect.key, now):
                return False
            self.replay = self.replay.with_entry(effect.key, effect.until, now)
            return True
        if isinstance(effect, ops.ForgetLogout):
            self.replay = self.replay.without(effect.key)
            return None
        if isinstance(effect, ops.EndSessions):
            if self.fail_ending is not None:
                raise self.fail_ending
            self.ended.append(effect.logout)
            return 1
        raise AssertionError(f"unexpected effect {effect!r}")

    def receive(self, token: str) -> BackchannelLogoutResult:
        request = logout_request(RECEIVER, token)
        assert request.body is not None
        return self.post(request.method, request.headers, request.body)

    def post(self, method: str, headers: Any, body: bytes) -> BackchannelLogoutResult:
        operation = ops.backchannel_logout_op(self.harness.core, method, headers, body)
        return run_operation(operation, self.perform)

    def token(self, **kwargs: Any) -> str:
        kwargs.setdefault("sub", "alice")
        return self.harness.provider.logout_token("web", **kwargs)

    def requests(self, endpoint: str) -> int:
        return self.harness.requests_to(endpoint)


def code(result: BackchannelLogoutResult) -> str | None:
    return result.error.code if result.error is not None else None


def test_a_logout_token_ends_the_sessions_it_names() -> None:
    app = App()
    app.harness.sign_in("s")
    sid = app.harness.core.id_token_claims(app.harness.session("s")).sid
    result = app.receive(app.token(sid=sid))
    assert (result.status, result.ended, code(result)) == (200, 1, None)
    assert result.headers == {"Cache-Control": "no-store"} and result.body == b""
    assert [(lo.sid, lo.sub) for lo in app.ended] == [(sid, "alice")]
    # The sign-in fetched the keys: the logout used the app's provider cache.
    assert app.requests("jwks") == 1 and app.requests("discovery") == 1
    assert app.effects == ["RecordLogout", "EndSessions"]


def test_without_any_cache_discovery_and_keys_are_fetched_once() -> None:
    app = App()
    assert app.receive(app.token(sid="s-1")).ok
    assert app.receive(app.token(sid="s-2")).ok
    assert app.requests("discovery") == 1 and app.requests("jwks") == 1


def test_a_replay_is_refused_and_ends_nothing() -> None:
    app = App()
    token = app.token(sid="s-1")
    assert app.receive(token).ok
    app.harness.clock.advance(5)
    again = app.receive(token)
    assert (again.status, code(again)) == (400, "logout_token.replayed")
    assert json.loads(again.body)["error"] == "invalid_request"
    assert len(app.ended) == 1


def test_a_rotated_key_is_fetched_once_and_a_forged_kid_costs_one_fetch_per_cooldown() -> None:
    app = App()
    assert app.receive(app.token(sid="s-0")).ok  # keys cached
    app.harness.provider.rotate_signing_key()
    assert app.receive(app.token(sid="s-1")).ok  # the new kid: one forced refetch
    assert app.requests("jwks") == 2
    forged = [app.token(sid=f"f-{i}", header={"kid": f"forged-{i}"}) for i in range(5)]
    for token in forged:
        result = app.receive(token)
        assert (result.status, code(result)) == (400, "logout_token.kid_unknown")
    assert app.requests("jwks") == 2  # within the cooldown: no refetch for any of them
    app.harness.clock.advance(app.harness.core.config.jwksRefetchCooldown + 1)
    assert code(app.receive(app.token(sid="f", header={"kid": "forged-late"}))) == (
        "logout_token.kid_unknown"
    )
    assert app.requests("jwks") == 3  # one more after the cooldown


def test_when_ending_fails_the_jti_is_forgotten_so_the_provider_may_retry() -> None:
    app = App(fail_ending=StorageError("the registry failed", code="storage.end_sessions"))
    token = app.token(sid="s-1")
    failed = app.receive(token)
    assert (failed.status, code(failed)) == (400, "storage.end_sessions")
    assert "could not be completed" in json.loads(failed.body)["error_description"]
    assert app.effects[-1] == "ForgetLogout" and len(app.replay) == 0
    app.fail_ending = None
    assert app.receive(token).ok  # the retry is not a replay


def test_a_request_that_is_not_one_makes_no_request_at_all() -> None:
    app = App()
    result = app.post("GET", {}, b"")
    assert (result.status, code(result)) == (400, "logout_request.method")
    result = app.post("POST", {"content-type": "application/json"}, b"{}")
    assert code(result) == "logout_request.content_type"
    assert app.effects == []


def test_unreachable_keys_are_a_400_that_records_nothing() -> None:
    app = App()
    app.harness.fail_next.append(TransportError("down", code="transport.connection"))
    result = app.receive(app.token(sid="s-1"))
    assert (result.status, code(result)) == (400, "transport.connection")
    assert "down" not in result.body.decode()
    assert len(app.replay) == 0 and app.ended == []
    assert app.receive(app.token(sid="s-1")).ok  # the next delivery works


def test_refused_tokens_carry_the_check_that_refused_them() -> None:
    app = App()
    cases = {
        "logout_token.nonce_present": app.token(sid="s", claims={"nonce": "n"}),
        "logout_token.aud_mismatch": app.harness.provider.logout_token("spa", sid="s"),
        "logout_token.typ_not_allowed": app.token(sid="s", header={"typ": None}),
        "logout_token.subject_missing": app.token(sid="s", claims={"sid": None, "sub": None}),
        "logout_token.events_invalid": app.token(sid="s", claims={"events": {"x": {}}}),
        "logout_token.iat_future": app.token(sid="s", claims={"iat": 1_800_000_000}),
    }
    for expected, token in cases.items():
        result = app.receive(token)
        assert (result.status, code(result)) == (400, expected)
        assert token.encode() not in result.body
    assert app.ended == [] and len(app.replay) == 0


def test_a_token_too_old_is_refused() -> None:
    app = App()
    token = app.token(sid="s")
    app.harness.clock.advance(181)  # two minutes and the minute of tolerance
    assert code(app.receive(token)) == "logout_token.too_old"


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["POST", "GET"]))
def test_the_operation_always_answers_and_only_a_200_records(body: bytes, method: str) -> None:
    app = App()
    token = app.token(sid="s")
    for candidate in (body, body + b"&logout_token=" + token.encode()):
        before = len(app.replay)
        result = app.post(method, {"Content-Type": "application/x-www-form-urlencoded"}, candidate)
        assert result.status in (200, 400)
        assert len(app.replay) == before + (1 if result.ok else 0)
        assert len(app.ended) == len(app.replay)
