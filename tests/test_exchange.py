"""The SDK's one retry loop (:func:`logto_core.exchange.exchange`) as a state machine.

Hypothesis drives one exchange at a time under an arbitrary policy: every attempt it asks
for is answered with an arbitrary status (with or without a ``Retry-After``, readable or
not) or fails with an arbitrary transport error, after the clock moved on by an arbitrary
amount; every wait is woken once the clock reached (or passed) its end. After every step:

* never more than ``max_retries + 1`` sends, and a request that is not an idempotent
  provider-metadata GET is never sent twice;
* a retry only ever follows a retryable outcome (a connection failure, a 5xx, a 429);
* every wait ends before the exchange's deadline, is at most what the policy allows, and
  ``Sleep.until`` never goes back;
* every attempt carries the time left of the one deadline as its timeout (connecting within
  it), so that all attempts share it;
* what the exchange ends with is the last outcome, never a redirect nor a retryable status
  of an idempotent request (those become ``TransportError``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.exchange import Exchange, exchange
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.sleep import Sleep

BASE = "https://tenant.example/oidc"
REQUESTS = {
    "discovery": HttpRequest.get(BASE + "/.well-known/openid-configuration", purpose="discovery"),
    "jwks": HttpRequest.get(BASE + "/jwks", purpose="jwks"),
    "userinfo": HttpRequest.get(BASE + "/me", purpose="userinfo"),
    "token": HttpRequest.post_form(BASE + "/token", [("grant_type", "x")], purpose="token"),
    "revocation": HttpRequest.post_form(BASE + "/token/revocation", [], purpose="revocation"),
    "jwks_post": HttpRequest.post_form(BASE + "/jwks", [], purpose="jwks"),
}
STATUSES = (200, 201, 204, 301, 302, 307, 400, 401, 404, 418, 429, 500, 502, 503, 504)
RETRY_AFTER = st.one_of(
    st.none(),
    st.sampled_from(["0", "1", "2.5", "30", "86400", "-1", "soon", "\u00b2", ""]),
    st.floats(0, 20).map(lambda s: f"{s:.3f}"),
    st.integers(-5, 40).map(lambda s: f"__DATE__{s}"),  # an HTTP date s seconds from now
)
FAILURES = st.sampled_from(
    [policy.CONNECTION, policy.TIMEOUT, policy.TLS, policy.FAILED, policy.BODY_TOO_LARGE]
)
ADVANCE = st.one_of(st.just(0.0), st.floats(0, 30, allow_nan=False))


def _http_date(when: float) -> str:
    from email.utils import formatdate

    return formatdate(when, usegmt=True)


@dataclass(frozen=True)
class Exchanged:
    """One exchange to run: which request, under which policy, with which jitter draws."""

    kind: str
    max_retries: int
    base: float
    cap: float
    retry_after_cap: float
    connect: float
    total: float
    jitter: list[int]


EXCHANGES = st.builds(
    Exchanged,
    kind=st.sampled_from(sorted(REQUESTS)),
    max_retries=st.integers(0, policy.MAX_RETRIES),
    base=st.floats(0, 3),
    cap=st.floats(0, 5),
    retry_after_cap=st.floats(0, 10),
    connect=st.floats(0.01, 30),
    total=st.floats(0.01, 60),
    jitter=st.lists(st.integers(0, 0xFFFFFFFF), max_size=12),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _entropy(draw: list[int]) -> Callable[[int], bytes]:
    def entropy(n: int) -> bytes:
        value = draw.pop(0) if draw else 0x80000000
        return value.to_bytes(4, "big")[:n].rjust(n, b"\0")

    return entropy


class OneExchange(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.jitter: list[int] = []
        self.runtime = Runtime(clock=self.clock, entropy=_entropy(self.jitter))
        self.steps: Exchange | None = None
        self.pending: HttpRequest | Sleep | None = None
        self.request = REQUESTS["discovery"]
        self.retry = policy.RetryPolicy()
        self.connect, self.total = 1.0, 1.0
        self.deadline = 0.0
        self.sends = 0
        self.last: HttpResponse | TransportError | None = None
        self.last_until: float | None = None
        self.finished = False
        self.result: HttpResponse | TransportError | None = None

    @initialize(drawn=EXCHANGES)
    def start(self, drawn: Exchanged) -> None:
        self.sends, self.last, self.last_until = 0, None, None
        self.finished, self.result = False, None
        self.request = REQUESTS[drawn.kind]
        self.retry = policy.RetryPolicy(
            drawn.max_retries, drawn.base, drawn.cap, drawn.retry_after_cap
        )
        connect, total = drawn.connect, drawn.total
        self.connect, self.total = min(connect, total), total
        self.jitter[:] = drawn.jitter
        self.deadline = self.clock.now + total
        self.steps = exchange(
            self.request, policy.ExchangePolicy(self.retry, (connect, total)), runtime=self.runtime
        )
        self._step(lambda: next(self.steps))

    @precondition(lambda self: self.finished)
    @rule(drawn=EXCHANGES)
    def again(self, drawn: Exchanged) -> None:
        """The next exchange, on the clock as the last one left it."""
        self.start(drawn)

    def _step(self, step: object) -> None:
        try:
            effect = step()  # type: ignore[operator]
        except StopIteration as stop:
            self.finished, self.result, self.pending = True, stop.value, None
            return
        except TransportError as error:
            self.finished, self.result, self.pending = True, error, None
            return
        self.pending = effect
        if isinstance(effect, HttpRequest):
            self._check_attempt(effect)
        else:
            self._check_sleep(effect)

    def _check_attempt(self, attempt: HttpRequest) -> None:
        assert (attempt.method, attempt.url, attempt.body) == (
            self.request.method,
            self.request.url,
            self.request.body,
        )
        assert attempt.attempt == self.sends
        self.sends += 1
        assert self.sends <= self.retry.max_retries + 1
        if not self.request.idempotent:
            assert self.sends == 1
        if self.sends > 1:  # a retry follows a retryable outcome only
            assert self.request.idempotent and self._retryable(self.last)
        left = self.deadline - self.clock.now
        eps = 1e-6  # the clock's seconds since the epoch leave ~1e-7 of rounding
        assert attempt.timeout is not None and 0 < attempt.timeout <= self.total + eps
        assert abs(attempt.timeout - left) < 1e-6  # the time left of the one deadline
        assert attempt.connect_timeout is not None
        assert 0 < attempt.connect_timeout <= min(self.connect + eps, attempt.timeout)

    def _check_sleep(self, sleep: Sleep) -> None:
        now = self.clock.now
        assert self.request.idempotent and self._retryable(self.last)
        assert now <= sleep.until < self.deadline  # never past the deadline
        longest = max(self.retry.max_delay, self.retry.max_retry_after)
        assert sleep.until - now <= longest + 1e-6  # rounding at 1.7e9 seconds
        if self.last_until is not None:
            assert sleep.until >= self.last_until  # monotone
        self.last_until = sleep.until

    @staticmethod
    def _retryable(outcome: HttpResponse | TransportError | None) -> bool:
        if isinstance(outcome, TransportError):
            return outcome.code in policy.RETRYABLE_FAILURES
        return outcome is not None and policy.is_retryable_status(outcome.status)

    @precondition(lambda self: isinstance(self.pending, HttpRequest))
    @rule(status=st.sampled_from(STATUSES), retry_after=RETRY_AFTER, took=ADVANCE)
    def answer(self, status: int, retry_after: str | None, took: float) -> None:
        self.clock.now += took
        headers = {}
        if retry_after is not None:
            if retry_after.startswith("__DATE__"):
                retry_after = _http_date(self.clock.now + int(retry_after[8:]))
            headers["retry-after"] = retry_after
        response = HttpResponse.build(status, headers)
        self.last = response
        assert self.steps is not None
        self._step(lambda: self.steps.send(response))

    @precondition(lambda self: isinstance(self.pending, HttpRequest))
    @rule(code=FAILURES, took=ADVANCE)
    def fail(self, code: str, took: float) -> None:
        self.clock.now += took
        failure = TransportError("GET https://tenant.example/oidc: failed", code=code)
        self.last = failure
        assert self.steps is not None
        self._step(lambda: self.steps.throw(failure))

    @precondition(lambda self: isinstance(self.pending, Sleep))
    @rule(late=ADVANCE)
    def wake(self, late: float) -> None:
        assert isinstance(self.pending, Sleep)
        self.clock.now += self.pending.seconds(self.clock.now) + late  # a wait never ends early
        assert self.steps is not None
        self._step(lambda: self.steps.send(None))

    @invariant()
    def ended_well(self) -> None:
        if not self.finished:
            return
        result = self.result
        if isinstance(result, HttpResponse):
            assert result is self.last
            assert not 300 <= result.status < 400
            assert not (self.request.idempotent and policy.is_retryable_status(result.status))
        else:
            assert isinstance(result, TransportError)
            if isinstance(self.last, TransportError):
                # the last failure, or the deadline passed while waiting for the next attempt
                assert result is self.last or result.code == policy.TIMEOUT
            else:
                assert self.last is not None
                assert result.code in (policy.REDIRECT, policy.STATUS, policy.TIMEOUT)
                if result.code == policy.STATUS:
                    assert result.status == self.last.status


OneExchange.TestCase.settings = settings(max_examples=200, stateful_step_count=25, deadline=None)
TestOneExchange = OneExchange.TestCase


def test_a_bare_exchange_sends_once_without_a_deadline() -> None:
    runtime = Runtime(clock=Clock())
    steps = exchange(REQUESTS["discovery"], runtime=runtime)
    first = next(steps)
    assert isinstance(first, HttpRequest) and first.timeout is None and first.attempt == 0
    with pytest.raises(TransportError) as caught:  # a 503 on discovery is no response
        steps.send(HttpResponse.build(503))
    assert (caught.value.code, caught.value.status) == (policy.STATUS, 503)
