"""What a transport does with a failed or unusual exchange: retry, wait, or give up.

Pure decisions shared by every adapter (the adapters only sleep and send):

* Only idempotent provider-metadata fetches (:attr:`HttpRequest.idempotent`: discovery and
  JWKS GETs) are ever retried, and only after a connection failure, a 5xx or a 429. A token,
  revocation or userinfo request is never sent twice: a refresh-token request that reached
  the provider may already have rotated the token.
* Waits grow exponentially with "full jitter" (a uniform draw below the exponential cap) from
  an injected entropy source, so many clients recovering at once do not retry in lockstep.
* ``Retry-After`` (seconds or an HTTP date) is honoured, capped, and never beyond the
  request's total deadline.
* A redirect is never followed; it becomes a :class:`TransportError`, as does a retryable
  status that is still there when the retries are spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from .errors import LogtoUsageError, TransportError
from .http import HttpRequest, HttpResponse
from .runtime import Entropy

RETRYABLE_FAILURES: frozenset[str] = frozenset({"transport.connection"})
"""Codes of transport failures worth another attempt (the request never got an answer)."""

# Stable codes of the errors adapters raise.
CONNECTION = "transport.connection"
TIMEOUT = "transport.timeout"
BODY_TOO_LARGE = "transport.body_too_large"
REDIRECT = "transport.redirect"
STATUS = "transport.status"
FAILED = "transport.failed"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of the retry loop. ``max_retries`` counts extra attempts after the first."""

    max_retries: int = 2
    base_delay: float = 0.2
    max_delay: float = 2.0
    max_retry_after: float = 5.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.max_retries > 10:
            raise LogtoUsageError("max_retries must be between 0 and 10")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise LogtoUsageError("retry delays cannot be negative")


Timeout = float | tuple[float, float]
"""Seconds: one number for both, or ``(connect, total)``."""


def split_timeout(timeout: Timeout) -> tuple[float, float]:
    """``(connect, total)`` from a number or a pair; both must be positive and finite, and
    connecting cannot take longer than the whole request."""
    connect, total = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    connect, total = float(connect), float(total)
    if not (0 < connect < float("inf") and 0 < total < float("inf")):
        raise LogtoUsageError("timeouts must be positive, finite numbers of seconds")
    return min(connect, total), total


def is_retryable_status(status: int) -> bool:
    """5xx and 429: the provider may answer differently a moment later."""
    return status >= 500 or status == 429


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date), or
    ``None`` when absent or unreadable. Never negative."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "no zone given"
        return None
    return max(0.0, float(when.timestamp()) - now)


def jittered_backoff(attempt: int, policy: RetryPolicy, entropy: Entropy) -> float:
    """A uniform draw in ``[0, min(max_delay, base_delay * 2**attempt)]`` ("full jitter")."""
    cap = min(policy.max_delay, policy.base_delay * (2.0 ** min(attempt, 30)))
    fraction = int.from_bytes(entropy(4), "big") / 0xFFFFFFFF
    return cap * fraction


def retry_delay(
    request: HttpRequest,
    attempt: int,
    policy: RetryPolicy,
    *,
    entropy: Entropy,
    now: float,
    remaining: float | None,
    response: HttpResponse | None = None,
    failure: TransportError | None = None,
) -> float | None:
    """Seconds to wait before sending ``request`` again, or ``None`` to stop.

    ``attempt`` is the number of attempts already made minus one (0 after the first);
    ``remaining`` the seconds left before the total deadline (``None``: no deadline). Pass
    either the ``response`` received or the ``failure`` raised.
    """
    if not request.idempotent or attempt >= policy.max_retries:
        return None
    if failure is not None:
        if failure.code not in RETRYABLE_FAILURES:
            return None
        wait = jittered_backoff(attempt, policy, entropy)
    elif response is not None and is_retryable_status(response.status):
        advised = parse_retry_after(response.header("retry-after"), now)
        if advised is not None:
            wait = min(advised, policy.max_retry_after)
        else:
            wait = jittered_backoff(attempt, policy, entropy)
    else:
        return None
    if remaining is not None and wait >= remaining:
        return None  # the deadline would pass while waiting: report the failure now
    return wait


def final_check(request: HttpRequest, response: HttpResponse, now: float) -> TransportError | None:
    """The error for a response that must not reach the core, or ``None``.

    A redirect is never followed (the SDK only talks to endpoints it was told about); a
    retryable status on an idempotent request is still failing after the retries.
    """
    if 300 <= response.status < 400:
        return TransportError(
            f"{describe(request)} answered with a redirect (HTTP {response.status}), "
            "which is not followed",
            code=REDIRECT,
            status=response.status,
        )
    if request.idempotent and is_retryable_status(response.status):
        return TransportError(
            f"{describe(request)} answered HTTP {response.status}",
            code=STATUS,
            status=response.status,
            retry_after=parse_retry_after(response.header("retry-after"), now),
        )
    return None


def describe(request: HttpRequest) -> str:
    """``METHOD scheme://host/path``: enough to identify a request in an error, and never the
    query, a fragment, user info or the body (which may carry credentials)."""
    parts = urlsplit(request.url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    where = f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}{parts.path}"
    return f"{request.method} {where}"


def body_too_large(request: HttpRequest, limit: int) -> TransportError:
    return TransportError(
        f"{describe(request)} sent a body larger than {limit} bytes", code=BODY_TOO_LARGE
    )


def timed_out(request: HttpRequest) -> TransportError:
    return TransportError(f"{describe(request)} timed out", code=TIMEOUT)


def connection_failed(request: HttpRequest, reason: str) -> TransportError:
    return TransportError(f"{describe(request)} failed: {reason}", code=CONNECTION)


def request_failed(request: HttpRequest, reason: str) -> TransportError:
    return TransportError(f"{describe(request)} failed: {reason}", code=FAILED)


__all__ = [
    "BODY_TOO_LARGE",
    "CONNECTION",
    "FAILED",
    "REDIRECT",
    "RETRYABLE_FAILURES",
    "STATUS",
    "TIMEOUT",
    "RetryPolicy",
    "Timeout",
    "body_too_large",
    "connection_failed",
    "describe",
    "final_check",
    "is_retryable_status",
    "jittered_backoff",
    "parse_retry_after",
    "request_failed",
    "retry_delay",
    "split_timeout",
    "timed_out",
]
