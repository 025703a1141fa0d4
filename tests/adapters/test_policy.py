"""The pure parts: retry decisions and single-flight bookkeeping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core import transport_policy as policy
from logto_core.errors import (
    LogtoUsageError,
    TransportError,
)
from logto_core.http import HttpRequest, HttpResponse

DISCOVERY = HttpRequest.get(
    "https://t.example/oidc/.well-known/openid-configuration", purpose="discovery"
)
TOKEN = HttpRequest.post_form("https://t.example/oidc/token", [("a", "b")], purpose="token")
USERINFO = HttpRequest.get("https://t.example/oidc/me?x=secret", purpose="userinfo")
RETRY = policy.RetryPolicy(max_retries=2, base_delay=0.1, max_delay=1.0, max_retry_after=3.0)


def half(n: int) -> bytes:
    return b"\x80" + b"\x00" * (n - 1)


def decide(
    request: HttpRequest,
    attempt: int = 0,
    *,
    response: HttpResponse | None = None,
    failure: TransportError | None = None,
) -> float | None:
    return policy.retry_delay(
        request,
        attempt,
        RETRY,
        entropy=half,
        now=1000.0,
        remaining=10.0,
        response=response,
        failure=failure,
    )


def test_only_idempotent_gets_are_retried() -> None:
    failure = policy.connection_failed(DISCOVERY, "refused")
    assert decide(DISCOVERY, failure=failure) == pytest.approx(0.05, abs=1e-3)
    assert decide(TOKEN, failure=policy.connection_failed(TOKEN, "refused")) is None
    assert decide(USERINFO, response=HttpResponse(503)) is None
    assert decide(DISCOVERY, failure=policy.timed_out(DISCOVERY)) is None
    assert decide(DISCOVERY, response=HttpResponse(200)) is None
    assert decide(DISCOVERY, response=HttpResponse(404)) is None
    assert decide(DISCOVERY, attempt=2, response=HttpResponse(503)) is None
    assert decide(DISCOVERY, attempt=1, response=HttpResponse(500)) == pytest.approx(0.1, abs=1e-3)


def test_retry_after() -> None:
    assert decide(DISCOVERY, response=HttpResponse(429, {"retry-after": "2"})) == 2.0
    assert decide(DISCOVERY, response=HttpResponse(503, {"retry-after": "120"})) == 3.0
    date = "Thu, 01 Jan 1970 00:16:41 GMT"  # 1001 s after the epoch, 1 s after "now"
    assert decide(DISCOVERY, response=HttpResponse(503, {"retry-after": date})) == 1.0
    assert policy.parse_retry_after(None, 0) is None
    assert policy.parse_retry_after("soon", 0) is None
    assert policy.parse_retry_after("Thu, 01 Jan 1970 00:00:00 -0000", 0) is None
    assert policy.parse_retry_after(date, 5000.0) == 0.0
    beyond = policy.retry_delay(
        DISCOVERY,
        0,
        RETRY,
        entropy=half,
        now=0,
        remaining=1.0,
        response=HttpResponse(503, {"retry-after": "2"}),
    )
    assert beyond is None  # waiting would pass the deadline
    assert policy.retry_delay(
        DISCOVERY, 0, RETRY, entropy=half, now=0, remaining=None, response=HttpResponse(503)
    ) == pytest.approx(0.05, abs=1e-3)


@settings(max_examples=100)
@given(attempt=st.integers(0, 40), raw=st.binary(min_size=4, max_size=4))
def test_backoff_is_bounded(attempt: int, raw: bytes) -> None:
    delay = policy.jittered_backoff(attempt, RETRY, lambda n: raw[:n])
    assert 0.0 <= delay <= min(RETRY.max_delay, RETRY.base_delay * 2**attempt) + 1e-9


def test_final_check_and_descriptions() -> None:
    redirect = policy.final_check(TOKEN, HttpResponse(307, {"location": "x"}), 0)
    assert redirect is not None and redirect.code == policy.REDIRECT
    status = policy.final_check(DISCOVERY, HttpResponse(503, {"retry-after": "4"}), 0)
    assert status is not None and (status.status, status.retry_after) == (503, 4.0)
    assert policy.final_check(TOKEN, HttpResponse(503), 0) is None
    assert policy.final_check(DISCOVERY, HttpResponse(200), 0) is None
    assert policy.describe(USERINFO) == "GET https://t.example/oidc/me"
    odd = HttpRequest.get("http://user:pw@[::1]:8080/p?q#f")
    assert policy.describe(odd) == "GET http://[::1]:8080/p"
    assert policy.describe(HttpRequest.get("http://h:bad/p")) == "GET http://h/p"
    assert policy.body_too_large(TOKEN, 10).code == policy.BODY_TOO_LARGE
    assert policy.request_failed(TOKEN, "x").code == policy.FAILED


def test_policy_validation() -> None:
    assert policy.split_timeout(3) == (3.0, 3.0)
    assert policy.split_timeout((10, 2)) == (2.0, 2.0)
    for bad in (0, -1, float("inf"), (1, 0)):
        with pytest.raises(LogtoUsageError):
            policy.split_timeout(bad)
    with pytest.raises(LogtoUsageError):
        policy.RetryPolicy(max_retries=-1)
    with pytest.raises(LogtoUsageError):
        policy.RetryPolicy(base_delay=-1)
