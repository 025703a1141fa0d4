"""Immutable descriptions of HTTP requests and responses exchanged with the provider.

The core never sends anything: it builds :class:`HttpRequest` values and consumes
:class:`HttpResponse` values. Adapters (requests, httpx, or anything else) turn one into the
other. ``repr()`` of both redacts credentials and bodies, since they carry codes, verifiers,
client secrets and tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlencode

Method = Literal["GET", "POST"]

# What a request is for. Adapters use it to decide retries (only idempotent provider metadata
# fetches are retried) and for log records; the test provider ignores it.
Purpose = Literal[
    "discovery",
    "jwks",
    "token",
    "userinfo",
    "revocation",
    "introspection",
    "device_authorization",
    "other",
]

RETRYABLE_PURPOSES: frozenset[str] = frozenset({"discovery", "jwks"})

MAX_BODY_BYTES = 1024 * 1024
"""Default cap on a provider response body (1 MiB). Adapters enforce it while reading."""

_SENSITIVE_HEADERS = frozenset({"authorization", "cookie", "set-cookie", "dpop"})


def _normalise_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return tuple((str(k).lower(), str(v)) for k, v in items)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request the core wants sent. Header names are lower-case."""

    method: Method
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    purpose: Purpose = "other"
    timeout: float | None = None
    """Seconds this attempt may take, connect to last byte (the time left of its exchange's
    deadline, set by :func:`logto_core.exchange.exchange`); ``None``: the transport's own."""
    connect_timeout: float | None = None
    """Seconds connecting may take (never more than :attr:`timeout`); ``None``: the
    transport's own."""
    attempt: int = 0
    """0 for the first send of a request, ``n`` for its ``n``-th retry."""

    @classmethod
    def get(
        cls, url: str, *, headers: Mapping[str, str] | None = None, purpose: Purpose = "other"
    ) -> HttpRequest:
        merged = {"accept": "application/json", **(headers or {})}
        return cls("GET", url, _normalise_headers(merged), None, purpose)

    @classmethod
    def post_form(
        cls,
        url: str,
        form: Iterable[tuple[str, str]],
        *,
        headers: Mapping[str, str] | None = None,
        purpose: Purpose = "other",
    ) -> HttpRequest:
        merged = {
            "accept": "application/json",
            "content-type": "application/x-www-form-urlencoded",
            **(headers or {}),
        }
        body = urlencode(list(form)).encode("ascii")
        return cls("POST", url, _normalise_headers(merged), body, purpose)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def attempt_of(
        self, attempt: int, *, connect: float | None, total: float | None
    ) -> HttpRequest:
        """This request as attempt number ``attempt``, with that attempt's timeouts."""
        if (attempt, total, connect) == (self.attempt, self.timeout, self.connect_timeout):
            return self  # a first attempt without a deadline: nothing to change
        return replace(self, attempt=attempt, timeout=total, connect_timeout=connect)

    @property
    def idempotent(self) -> bool:
        """True for requests safe to retry on transient failures (discovery, JWKS)."""
        return self.method == "GET" and self.purpose in RETRYABLE_PURPOSES

    def __repr__(self) -> str:
        headers = {k: ("<redacted>" if k in _SENSITIVE_HEADERS else v) for k, v in self.headers}
        body = "None" if self.body is None else f"<{len(self.body)} bytes redacted>"
        return (
            f"HttpRequest(method={self.method!r}, url={_redact_query(self.url)!r}, "
            f"headers={headers!r}, body={body}, purpose={self.purpose!r})"
        )

    __str__ = __repr__


def _redact_query(url: str) -> str:
    # Request URLs built by the core carry no secrets in the query, but a caller-supplied one
    # might; the path is enough to identify the request in logs.
    base, sep, _ = url.partition("?")
    return base + ("?<query redacted>" if sep else "")


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A response received from the provider. Header names are lower-case."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def build(
        cls,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> HttpResponse:
        return cls(status, dict(_normalise_headers(headers or {})), body)

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        merged = {"content-type": "application/json", **(headers or {})}
        return cls.build(status, merged, json.dumps(payload, separators=(",", ":")).encode())

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, body=<{len(self.body)} bytes redacted>)"

    __str__ = __repr__
