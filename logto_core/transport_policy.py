"""What a transport does with a failed or unusual exchange: retry, wait, or give up.

Pure decisions, followed by the core's one retry loop (:func:`logto_core.exchange.exchange`);
the adapters only send single attempts and wait out the :class:`~logto_core.sleep.Sleep`
effects it yields:

* Only idempotent provider-metadata fetches (:attr:`HttpRequest.idempotent`: discovery and
  JWKS GETs) are ever retried, and only after a connection failure, a 5xx or a 429. A token,
  revocation or userinfo request is never sent twice: a refresh-token request that reached
  the provider may already have rotated the token.
* Waits grow exponentially with "full jitter" (a uniform draw below the exponential cap) from
  an injected entropy source, so many clients recovering at once do not retry in lockstep.
* ``Retry-After`` (seconds or an HTTP date) is honoured, capped, and never beyond the
  request's total deadline. :func:`parse_retry_after` is the SDK's one reader of it.
* A redirect is never followed; it becomes a :class:`TransportError`, as does a retryable
  status that is still there when the retries are spent.

:class:`ExchangePolicy` bundles the retry bounds and the ``(connect, total)`` timeout of an
exchange; :func:`logto_core.exchange.exchange` is the retry loop that follows these decisions,
in the core, for every adapter (transports only send one attempt at a time).
"""

from __future__ import annotations

import re
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
TLS = "transport.tls"

MAX_RETRY_AFTER = 86400.0
"""A ``Retry-After`` of a day or more is not believed (read as absent)."""

# delay-seconds (RFC 9110 10.2.3) in ASCII digits, with an optional fraction: ``str.isdigit``
# and ``float`` also accept other scripts' digits, "1e9", "1_0", "nan" and "inf".
_DELAY_SECONDS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?")
_MAX_DATE_CHARS = 64


MAX_RETRIES = 10
"""The most ``RetryPolicy.max_retries`` may be."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds of the retry loop. ``max_retries`` counts extra attempts after the first."""

    max_retries: int = 2
    base_delay: float = 0.2
    max_delay: float = 2.0
    max_retry_after: float = 5.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.max_retries > MAX_RETRIES:
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


@dataclass(frozen=True, slots=True)
class ExchangePolicy:
    """How an exchange goes: its retries, and its deadline.

    ``timeout``: ``(connect, total)`` seconds (or one number for both): every attempt of the
    exchange, and every wait between them, ends within ``total`` seconds of its first send;
    ``None``: no deadline (each attempt is the transport's to bound). The default policy
    (:data:`DIRECT`) sends once and has no deadline: what a bare core does, without an
    adapter's settings.
    """

    retry: RetryPolicy = RetryPolicy(max_retries=0)
    timeout: tuple[float, float] | None = None

    def __init__(self, retry: RetryPolicy | None = None, timeout: Timeout | None = None) -> None:
        object.__setattr__(self, "retry", retry if retry is not None else RetryPolicy(0))
        object.__setattr__(self, "timeout", None if timeout is None else split_timeout(timeout))


DIRECT = ExchangePolicy()
"""Send once, no deadline."""


def is_retryable_status(status: int) -> bool:
    """5xx and 429: the provider may answer differently a moment later."""
    return status >= 500 or status == 429


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or ``None`` when absent or unreadable.

    Delay-seconds (ASCII digits, a fraction allowed) are read as they are; an HTTP date only
    when ``now`` (seconds since the epoch) is given, as the time left until it (0 for a date
    in the past; a date without a zone is unreadable). The result is never negative and
    always below :data:`MAX_RETRY_AFTER`. Never raises, whatever the text.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        seconds = float(text)
    elif now is None or len(text) > _MAX_DATE_CHARS:
        return None
    else:
        try:
            when = parsedate_to_datetime(text)
            if when.tzinfo is None:  # RFC 9110 dates are GMT; naive means "no zone given"
                return None
            seconds = max(0.0, float(when.timestamp()) - now)
        except (TypeError, ValueError, IndexError, OverflowError, OSError):
            return None
    return seconds if seconds < MAX_RETRY_AFTER else None


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


class TlsFailure(Exception):
    """Why a TLS handshake failed, as the TLS library said it (an OpenSSL reason such as
    ``"unable to get local issuer certificate"``): the ``__cause__`` of a ``transport.tls``
    error, in place of the library's exception (whose text may hold the full URL)."""

    def __init__(self, reason: str, *, verify_code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.verify_code = verify_code


_REASON_CHARS = 160


def _clean_reason(reason: str) -> str:
    printable = "".join(c if " " <= c <= "~" else "?" for c in reason[: _REASON_CHARS * 2])
    text = " ".join(printable.split())
    return text[:_REASON_CHARS] + ("..." if len(text) > _REASON_CHARS else "")


def tls_failed(
    request: HttpRequest,
    reason: str,
    *,
    verification: bool,
    hostname_mismatch: bool = False,
    verify_code: int | None = None,
    trust_fix: str,
) -> TransportError:
    """The error for a TLS handshake that failed, naming the host and the likely fix.

    ``verification``: the server's certificate was refused (else the TLS connection itself
    failed); ``hostname_mismatch``: refused because it is not valid for the host;
    ``trust_fix`` says how this client is given another CA bundle. The sanitized
    ``reason`` is kept as a :class:`TlsFailure` in ``__cause__``.
    """
    reason = _clean_reason(reason) or "no reason given"
    host = urlsplit(request.url).hostname or "the provider"
    if hostname_mismatch:
        detail = (
            f"the TLS certificate of {host} is not valid for that host name ({reason}); use "
            "the host name the certificate was issued for in the endpoint, or fix the "
            "server's certificate"
        )
    elif verification:
        detail = (
            f"the TLS certificate of {host} could not be verified ({reason}): it is not "
            f"trusted by the CA bundle in use. If the provider uses a private CA, {trust_fix}; "
            "otherwise fix the server's certificate chain"
        )
    else:
        detail = f"the TLS connection to {host} failed ({reason})"
    error = TransportError(f"{describe(request)} failed: {detail}", code=TLS)
    error.__cause__ = TlsFailure(reason, verify_code=verify_code)
    return error


__all__ = [
    "BODY_TOO_LARGE",
    "CONNECTION",
    "DIRECT",
    "FAILED",
    "MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "REDIRECT",
    "RETRYABLE_FAILURES",
    "STATUS",
    "TIMEOUT",
    "TLS",
    "ExchangePolicy",
    "RetryPolicy",
    "Timeout",
    "TlsFailure",
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
    "tls_failed",
]
