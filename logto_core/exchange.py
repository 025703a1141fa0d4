"""One request/response exchange with the provider, retries and their waits included.

:func:`exchange` is the SDK's one retry loop, a generator the flows ``yield from``: it yields
each attempt as an :class:`~logto_core.http.HttpRequest` (numbered, carrying the time left of
the exchange's deadline as its timeout) and each wait before a retry as a
:class:`~logto_core.sleep.Sleep`, and returns the response. A transport only ever sends one
attempt. The decisions are :mod:`logto_core.transport_policy`'s:

* only idempotent provider-metadata fetches (discovery and JWKS GETs) are retried, after a
  connection failure, a 5xx or a 429, at most ``RetryPolicy.max_retries`` times;
* waits are jittered exponential backoff, or ``Retry-After`` (capped);
* all attempts share the exchange's one deadline (``ExchangePolicy.timeout``'s total, from the
  first send): each attempt may take the time left, a wait that would end past the deadline
  is not made (the failure is reported at once);
* a redirect, and a retryable status still there when the retries are spent, become a
  :class:`~logto_core.errors.TransportError` (:func:`transport_policy.final_check`).

A transport failure thrown in at an attempt's ``yield`` is an outcome like a response; any
other exception (a cancellation) leaves the loop as it came.
"""

from __future__ import annotations

from collections.abc import Generator

from .errors import TransportError
from .http import HttpRequest, HttpResponse
from .runtime import Runtime
from .sleep import Sleep
from .transport_policy import DIRECT, ExchangePolicy, final_check, retry_delay, timed_out

Exchange = Generator[HttpRequest | Sleep, HttpResponse | None, HttpResponse]
"""What :func:`exchange` is: yields attempts and waits, returns the response."""


def exchange(
    request: HttpRequest, policy: ExchangePolicy = DIRECT, *, runtime: Runtime
) -> Exchange:
    """Send ``request`` as ``policy`` says; the response, or raises :class:`TransportError`."""
    deadline = None if policy.timeout is None else runtime.now() + policy.timeout[1]
    attempt = 0
    while True:
        outcome = yield from _attempt(request, attempt, policy, runtime, deadline)
        now = runtime.now()
        wait = retry_delay(
            request,
            attempt,
            policy.retry,
            entropy=runtime.entropy,
            now=now,
            remaining=None if deadline is None else deadline - now,
            response=outcome if isinstance(outcome, HttpResponse) else None,
            failure=outcome if isinstance(outcome, TransportError) else None,
        )
        if wait is None:
            break
        attempt += 1
        yield Sleep(now + wait)
    if isinstance(outcome, TransportError):
        raise outcome
    refusal = final_check(request, outcome, runtime.now())
    if refusal is not None:
        raise refusal
    return outcome


def _attempt(
    request: HttpRequest,
    attempt: int,
    policy: ExchangePolicy,
    runtime: Runtime,
    deadline: float | None,
) -> Generator[HttpRequest, HttpResponse | None, HttpResponse | TransportError]:
    connect: float | None = None
    total: float | None = None
    if deadline is not None and policy.timeout is not None:
        total = deadline - runtime.now()
        if total <= 0:  # the clock moved past the deadline while waiting
            return timed_out(request)
        connect = min(policy.timeout[0], total)
    try:
        response = yield request.attempt_of(attempt, connect=connect, total=total)
    except TransportError as failure:
        return failure
    assert response is not None
    return response


__all__ = ["Exchange", "exchange"]
