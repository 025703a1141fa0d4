"""A hypothesis state machine driving every client flow against the in-memory provider.

Random interleavings of sign-ins in several sessions (and several tabs of one session),
valid, replayed, foreign and denied callbacks, token requests for several resources and
organizations, userinfo, sign-outs, clock jumps and provider faults, for a confidential and a
public client. After every step the real sessions are compared with a model of the expected
state, and the security invariants are checked (see ``ClientFlows`` below).

Run longer with ``LOGTO_STATEFUL_EXAMPLES=2000 LOGTO_STATEFUL_STEPS=60``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from logto_core.context import Context
from logto_core.enums import ORGANIZATION_URN_PREFIX
from logto_core.errors import (
    CallbackError,
    JwksError,
    LogtoError,
    OAuthError,
    SignInRequiredError,
    TransportError,
)
from logto_core.flows import Flow, Outcome, T
from logto_core.session import SessionState, TokenKey
from logto_core.testing import Fault
from tests.harness import API, API2, HOME, REDIRECT, Harness
from tests.state_machine_support import (
    Attempt,
    Cached,
    Callback,
    Exchange,
    ProviderKnowledge,
    RecordingHarness,
    SessionModel,
    code_expired,
    query_value,
)

EXAMPLES = int(os.environ.get("LOGTO_STATEFUL_EXAMPLES", "100"))
STEPS = int(os.environ.get("LOGTO_STATEFUL_STEPS", "40"))

SESSIONS = ("s1", "s2", "s3")
USERS = ("alice", "bob")
KEYS = (
    TokenKey(),
    TokenKey(API),
    TokenKey(API2),
    TokenKey(None, "o1"),
    TokenKey(None, "o2"),  # bob is not a member of o2
    TokenKey(API, "o1"),
)
TOKEN_FAULTS = ("none", "gateway_503", "transport", "provider_503", "invalid_grant")
SMALL_STEPS = (1.0, 3.0, 4.0, 59.0, 61.0, 1800.0)
PAST_EXPIRY = (3571.0, 3601.0, 7200.0)
DAYS = 24 * 3600.0
MAX_ELAPSED = 120 * DAYS  # stay well inside the provider's 180-day grant lifetime
SECRET_PARAMS = ("code", "code_verifier", "refresh_token", "client_secret", "token")
SECRET_FIELDS = ("access_token", "refresh_token", "id_token")
FRAGMENT = 24  # characters of a secret that must not appear in an error message


@dataclass(frozen=True)
class Expected:
    """What a flow should end with: ``ok`` (with ``value``), or an error kind and code."""

    kind: str
    code: str | None = None
    value: str | None = None


def _error_texts(error: BaseException) -> Iterator[str]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        current = current.__cause__ or current.__context__


def _fragments(secret: str) -> Iterator[str]:
    """The secret and the ends of each of its segments, so that a truncated copy (an
    excerpt of a body) is caught too."""
    yield secret
    for part in secret.split("."):
        if len(part) >= FRAGMENT:
            yield part[:FRAGMENT]
            yield part[-FRAGMENT:]


class ClientFlows(RuleBasedStateMachine):
    """The expected state lives in ``self.models`` (one per session), ``self.knowledge``
    (discovery and keys) and ``self.epoch`` (administrator revocations per user)."""

    attempts = Bundle("attempts")
    callbacks = Bundle("callbacks")

    def __init__(self) -> None:
        super().__init__()
        self.h = RecordingHarness()
        self.confidential = True
        self.models = {name: SessionModel() for name in SESSIONS}
        self.knowledge = ProviderKnowledge()
        self.epoch = dict.fromkeys(USERS, 0)
        self.secrets: set[str] = {"web-secret"}
        self.owner: dict[str, str] = {}
        self.superseded: set[str] = set()
        self.answered: dict[str, int] = {}  # refresh token -> successful (200) answers to it
        self.presented: list[str] = []
        self.start_time = self.h.clock.now

    # ---- plumbing --------------------------------------------------------------------------

    @initialize(client=st.sampled_from(["web", "spa"]), user=st.sampled_from(USERS))
    def choose_client(self, client: str, user: str) -> None:
        """One client kind per run; one session starts signed in, to reach deep states."""
        self.h = RecordingHarness(client_id=client)
        self.confidential = client == "web"
        self.start_time = self.h.clock.now
        self._deliver(self._approve(self._start("s1"), user), None, "none")

    @property
    def now(self) -> float:
        return self.h.clock.now

    def run(self, name: str, flow: Flow[T]) -> Outcome[T]:
        """Run a flow (its faults already queued) and check what holds for every outcome."""
        outcome = self.h.run(name, flow)
        self.h.reset_faults()
        self._learn_secrets()
        self._check_refresh_presentations()
        if outcome.error is not None:
            self._check_error(outcome.error)
        return outcome

    def _learn_secrets(self) -> None:
        for exchange in self.h.exchanges:
            self.secrets.update(v for k, v in exchange.params.items() if k in SECRET_PARAMS and v)
            self.secrets.update(
                v for k, v in exchange.body.items() if k in SECRET_FIELDS and isinstance(v, str)
            )
        for session in self.h.sessions.values():
            for attempt in session.pending:
                self.secrets.update((attempt.state, attempt.nonce, attempt.code_verifier))

    def _check_error(self, error: object) -> None:
        assert isinstance(error, LogtoError), f"not a LogtoError: {error!r}"
        fragments = {f for secret in self.secrets for f in _fragments(secret)}
        for text in _error_texts(error):
            leaked = [f for f in fragments if f in text]
            assert not leaked, f"{type(error).__name__} message leaks a secret value"

    def _check_refresh_presentations(self) -> None:
        """No refresh token is presented again once an answer rotating it away reached the
        client. For a public client every refresh rotates, so its presented tokens are all
        distinct except after an answer that never arrived (5xx): Logto revokes the grant on
        a reuse after 3 s, so this is what keeps users signed in."""
        for exchange in self.h.exchanges:
            if not exchange.is_refresh:
                continue
            presented = exchange.presented
            assert presented is not None
            assert presented not in self.superseded, "a rotated-away refresh token was reused"
            if not self.confidential:
                assert self.answered.get(presented, 0) == 0, "public client reused a token"
            if exchange.status == 200:
                self.answered[presented] = self.answered.get(presented, 0) + 1
                if exchange.body.get("refresh_token") != presented:
                    self.superseded.add(presented)
        # Every refresh the provider saw went through the recording transport, in order.
        self.presented += [e.presented or "" for e in self.h.exchanges if e.is_refresh]
        log = self.h.provider.log
        in_log = [e.params.get("refresh_token", "") for e in log if e.grant_type == "refresh_token"]
        assert self.presented == in_log

    def _begin(self) -> None:
        self.h.exchanges.clear()

    def _check(self, outcome: Outcome[Any], expected: Expected, before: SessionState) -> None:
        error = outcome.error
        event(f"{expected.kind} {expected.code or ''}".strip())
        kinds: dict[str, type[LogtoError]] = {
            "transient": TransportError,
            "sign_in_required": SignInRequiredError,
            "oauth": OAuthError,
            "jwks": JwksError,
            "callback": CallbackError,
        }
        if expected.kind == "ok":
            assert error is None, f"expected success, got {error!r}"
            if expected.value is not None:
                assert outcome.value == expected.value
            return
        assert isinstance(error, kinds[expected.kind]), f"expected {expected}, got {error!r}"
        if expected.code is not None:
            assert error.code == expected.code, f"expected {expected}, got {error!r}"
        if expected.kind == "transient":
            # A transient failure keeps every token of the session.
            assert outcome.session.id_token == before.id_token
            assert outcome.session.refresh_token == before.refresh_token
            assert outcome.session.access_tokens == before.access_tokens

    # ---- the expected outcome of a token request ------------------------------------------

    def _expect_access(
        self,
        model: SessionModel,
        key: TokenKey,
        fault: str,
        answers: Iterator[Exchange],
        *,
        force: bool = False,
    ) -> Expected:
        """Predict ``get_access_token`` (and the token step of userinfo) and move the model;
        ``answers`` are the token-endpoint exchanges this flow made, in order."""
        now = self.now
        cached = model.access.get(key)
        if not force and cached is not None and cached.fresh(now):
            return Expected("ok", value=cached.token)
        if model.refresh_token is None:
            return Expected("sign_in_required", "sign_in_required.no_refresh_token")
        if fault == "transport":
            return Expected("transient")  # at discovery or at the token endpoint
        self.knowledge.learn_metadata(now)
        if fault == "gateway_503":
            return Expected("transient")
        answer = next(answers, None)
        assert answer is not None and answer.is_refresh, "expected a refresh request"
        assert answer.presented == model.refresh_token, "presented another refresh token"
        assert answer.params.get("resource") == key.resource
        assert answer.params.get("organization_id") == key.organization_id
        assert model.sub is not None
        reused_late = model.reused_late(now)
        dead = model.grant_dead(now, self.epoch[model.sub])
        denied = not dead and key.organization_id == "o2" and model.sub == "bob"
        rotated = not (dead or denied) and model.rotation_due(now, self.confidential)
        event(f"refresh: {'dead' if dead else 'denied' if denied else 'live'}, {fault}")
        if rotated and self.confidential:
            event("refresh: confidential rotation")
        if reused_late:
            event("refresh: reuse after the window")
        if reused_late and not model.grant_revoked(self.epoch[model.sub]):
            model.revoked_by_reuse = True  # the provider just revoked the whole grant
        if fault == "provider_503":
            # Processed, then answered 5xx: a rotation happened that the client never saw.
            assert ("refresh_token" in answer.body) == (not (dead or denied))
            if rotated and model.rt_consumed_at is None:
                model.rt_consumed_at = now
            return Expected("transient")
        if fault == "invalid_grant" or dead:
            model.clear()
            return Expected("sign_in_required", "sign_in_required.invalid_grant")
        if denied:
            return Expected("oauth", "oauth.access_denied")
        new_refresh = answer.body["refresh_token"]
        if rotated:
            assert new_refresh != model.refresh_token
            model.refresh_token, model.rt_issued_at, model.rt_consumed_at = new_refresh, now, None
        else:
            assert new_refresh == model.refresh_token
        if not self.knowledge.verify(now):
            return Expected("jwks")
        model.id_token = answer.body["id_token"]
        token = answer.body["access_token"]
        model.access[key] = Cached(token, now)
        return Expected("ok", value=token)

    def _check_access_token(self, key: TokenKey, token: str, sub: str | None) -> None:
        """A token is for the key it was requested for (never another key's cached token)."""
        if key.resource is None and key.organization_id is None:
            assert token.count(".") != 2, "the opaque (no resource) token is a JWT"
            return
        claims = Context.access_token_claims(token)
        audience = key.resource or ORGANIZATION_URN_PREFIX + str(key.organization_id)
        assert claims.aud == audience, f"token for {key} has aud {claims.aud!r}"
        assert claims.sub == sub
        assert claims.client_id == self.h.client_id
        assert claims.organization_id == (key.organization_id if key.resource else None)

    # ---- rules: sign-in ----------------------------------------------------------------

    @rule(target=attempts, name=st.sampled_from(SESSIONS))
    def start_sign_in(self, name: str) -> Attempt:
        return self._start(name)

    def _start(self, name: str) -> Attempt:
        self._begin()
        before = self.h.session(name)
        url = self.run(name, self.h.core.sign_in(before, REDIRECT)).unwrap()
        self.knowledge.learn_metadata(self.now)
        state = query_value(url, "state")
        assert state is not None
        attempt = Attempt(name, url, state, self.now)
        self.models[name].start(attempt, self.now)
        return attempt

    @rule(target=callbacks, name=st.sampled_from(SESSIONS), user=st.sampled_from(USERS))
    def sign_in(self, name: str, user: str) -> Callback:
        """The common path in one step (start, approve, deliver); the callback stays
        available for replays and foreign deliveries."""
        callback = self._approve(self._start(name), user)
        self._deliver(callback, None, "none")
        return callback

    @rule(target=callbacks, attempt=attempts, user=st.sampled_from(USERS))
    def approve(self, attempt: Attempt, user: str) -> Callback:
        return self._approve(attempt, user)

    def _approve(self, attempt: Attempt, user: str) -> Callback:
        url = self.h.provider.approve(attempt.url, user=user)
        callback = Callback(attempt, url, user, self.now, self.epoch[user])
        assert callback.code is not None
        self.secrets.add(callback.code)
        return callback

    @rule(target=callbacks, attempt=attempts)
    def deny(self, attempt: Attempt) -> Callback:
        return Callback(attempt, self.h.provider.deny(attempt.url), None, self.now, 0)

    @rule(
        callback=callbacks,
        to=st.sampled_from((None, *SESSIONS)),
        fault=st.sampled_from(("none", "transport")),
    )
    def deliver(self, callback: Callback, to: str | None, fault: str) -> None:
        """``to=None`` delivers to the session that started the sign-in; a callback
        delivered twice is a replay, one delivered elsewhere is foreign."""
        self._deliver(callback, to, fault)

    def _deliver(self, callback: Callback, to: str | None, fault: str) -> None:
        name = to or callback.attempt.session
        model = self.models[name]
        self._begin()
        before = self.h.session(name)
        if fault == "transport":
            self.h.fail_next.append(TransportError("injected reset", code="transport.connection"))
        metadata_fresh = self.knowledge.metadata_fresh(self.now)
        outcome = self.run(name, self.h.core.handle_sign_in_callback(before, callback.url))
        expected = self._expect_callback(model, callback, fault, metadata_fresh)
        self._check(outcome, expected, before)
        if expected.kind == "callback" and expected.code == "callback.state_unknown":
            assert outcome.session == before
            assert not self.h.token_exchanges(), "an unmatched callback reached the token endpoint"
        if expected.kind == "ok":
            assert outcome.value is not None and outcome.value.sub == callback.user

    def _expect_callback(
        self, model: SessionModel, callback: Callback, fault: str, metadata_fresh: bool
    ) -> Expected:
        now = self.now
        if fault == "transport" and not metadata_fresh:
            return Expected("transient")  # discovery failed: nothing consumed
        self.knowledge.learn_metadata(now)
        attempt = model.take(callback.state)
        if attempt is None:
            return Expected("callback", "callback.state_unknown")
        if now - attempt.created_at >= 3600:
            return Expected("callback", "callback.expired")
        if callback.user is None:
            return Expected("oauth", "oauth.access_denied")
        if fault == "transport":
            return Expected("transient")
        if code_expired(callback, now) or callback.epoch != self.epoch[callback.user]:
            event("callback: dead code")
            return Expected("oauth", "oauth.invalid_grant")
        if not self.knowledge.verify(now):
            return Expected("jwks")
        answers = self.h.token_exchanges()
        assert len(answers) == 1 and answers[0].status == 200
        model.sign_in(callback, answers[0].body, now)
        return Expected("ok")

    # ---- rules: tokens, userinfo, sign-out ----------------------------------------------

    def _live(self, name: str, live: bool) -> str:
        """``name``, or with ``live`` a signed-in session if ``name`` is not (deeper states)."""
        if not live or self.models[name].sub is not None:
            return name
        return next((n for n in SESSIONS if self.models[n].sub is not None), name)

    @rule(
        name=st.sampled_from(SESSIONS),
        live=st.booleans(),
        key=st.sampled_from(KEYS),
        fault=st.sampled_from(TOKEN_FAULTS),
    )
    def get_token(self, name: str, live: bool, key: TokenKey, fault: str) -> None:
        name = self._live(name, live)
        model = self.models[name]
        self._begin()
        before = self.h.session(name)
        self._queue_fault(fault)
        flow = self.h.core.get_access_token(before, key.resource, key.organization_id)
        outcome = self.run(name, flow)
        sub = model.sub
        expected = self._expect_access(model, key, fault, iter(self.h.token_exchanges()))
        self._check(outcome, expected, before)
        if expected.kind == "transient":
            assert outcome.session == before
        if outcome.value is not None:
            self._check_access_token(key, outcome.value, sub)

    def _queue_fault(self, fault: str) -> None:
        if fault == "gateway_503":
            self.h.gateway_503 = True
        elif fault == "transport":
            self.h.fail_next.append(TransportError("injected timeout", code="transport.timeout"))
        elif fault == "provider_503":
            self.h.provider.faults.add(Fault("token", grant_type="refresh_token", status=503))
        elif fault == "invalid_grant":
            body = {"error": "invalid_grant", "error_description": "grant request is invalid"}
            self.h.provider.faults.add(
                Fault("token", grant_type="refresh_token", status=400, body=body)
            )

    @rule(name=st.sampled_from(SESSIONS), live=st.booleans())
    def fetch_user_info(self, name: str, live: bool) -> None:
        name = self._live(name, live)
        model = self.models[name]
        self._begin()
        before = self.h.session(name)
        outcome = self.run(name, self.h.core.fetch_user_info(before))
        sub = model.sub
        expected = self._expect_user_info(model)
        self._check(outcome, expected, before)
        if expected.kind == "ok":
            assert outcome.value is not None and outcome.value.sub == sub

    def _expect_user_info(self, model: SessionModel) -> Expected:
        if model.id_token is None or model.sub is None:
            return Expected("sign_in_required", "sign_in_required.not_signed_in")
        self.knowledge.learn_metadata(self.now)
        answers = iter(self.h.token_exchanges())
        first = self._expect_access(model, TokenKey(), "none", answers)
        if first.kind != "ok":
            return first
        if not model.grant_revoked(self.epoch[model.sub]):
            return Expected("ok")
        # The opaque token is refused (401): one forced refresh, which must fail.
        second = self._expect_access(model, TokenKey(), "none", answers, force=True)
        assert second.kind != "ok", "a refresh on a revoked grant succeeded"
        return second

    @rule(name=st.sampled_from(SESSIONS), fault=st.sampled_from(("none", "transport")))
    def sign_out(self, name: str, fault: str) -> None:
        model = self.models[name]
        self._begin()
        before = self.h.session(name)
        if fault == "transport":
            self.h.fail_next.append(TransportError("injected reset", code="transport.connection"))
        result = self.run(name, self.h.core.sign_out(before, HOME)).unwrap()
        had_refresh = model.refresh_token is not None
        assert ("id_token_hint=" in result.url) == (model.id_token is not None)
        if had_refresh and fault == "transport":
            assert isinstance(result.revocation_error, TransportError)
            self._check_error(result.revocation_error)
        else:
            assert result.revocation_error is None, repr(result.revocation_error)
            if had_refresh:
                self.knowledge.learn_metadata(self.now)
                assert [e.endpoint for e in self.h.exchanges][-1] == "revocation"
        model.clear()

    # ---- rules: the world moves -----------------------------------------------------------

    @rule(seconds=st.sampled_from(SMALL_STEPS + PAST_EXPIRY))
    def advance(self, seconds: float) -> None:
        self.h.clock.advance(seconds)

    @precondition(lambda self: self.now - self.start_time < MAX_ELAPSED)
    @rule()
    def advance_ten_days(self) -> None:
        """Past the confidential client's rotation threshold (70 % of 14 days)."""
        self.h.clock.advance(10 * DAYS)

    @rule(user=st.sampled_from(USERS))
    def revoke_grants(self, user: str) -> None:
        self.h.provider.revoke_grants(user)
        self.epoch[user] += 1

    @rule(keep_previous=st.booleans())
    def rotate_signing_key(self, keep_previous: bool) -> None:
        self.h.provider.rotate_signing_key(keep_previous=keep_previous)
        self.knowledge.provider_key_gen += 1

    # ---- invariants ------------------------------------------------------------------------

    @invariant()
    def sessions_match_the_model(self) -> None:
        for name, model in self.models.items():
            session = self.h.session(name)
            assert [p.state for p in session.pending] == [a.state for a in model.pending]
            assert session.id_token == model.id_token
            assert session.refresh_token == model.refresh_token
            assert {k: v.token for k, v in session.access_tokens.items()} == {
                k: v.token for k, v in model.access.items()
            }
            if session.id_token is not None:
                # The signed-in user changes only through a successful callback.
                assert Context.id_token_claims(session).sub == model.sub
            for key, cached in session.access_tokens.items():
                self._check_access_token(key, cached.token, model.sub)

    @invariant()
    def sessions_never_share_tokens(self) -> None:
        for name in SESSIONS:
            session = self.h.session(name)
            values = [session.id_token, session.refresh_token]
            values += [c.token for c in session.access_tokens.values()]
            for value in values:
                if value is not None:
                    assert self.owner.setdefault(value, name) == name, "a token crossed sessions"


ClientFlows.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestClientFlows = ClientFlows.TestCase


def test_keys_refetched_at_the_same_instant_are_kept() -> None:
    """Found by the state machine: after a key rotation, the forced refetch is made at the
    instant of the previous fetch (a coarse or fake clock), and the merge keeps the old set."""
    h = Harness()
    h.sign_in("a")
    h.provider.rotate_signing_key(keep_previous=False)
    h.sign_in("b")  # unknown kid: one forced refetch, at the instant of the first fetch
    h.sign_in("c")  # must be verified with the refetched keys
    assert h.requests_to("jwks") == 2
