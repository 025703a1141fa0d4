"""Fault injection: make the provider misbehave on purpose, a bounded number of times.

A :class:`Fault` names the endpoint it applies to (and optionally a ``grant_type``), how many
matching requests it affects, and what to change: the status, the body, the headers, a delay,
the ID token (claims, header, signature), or an answer that echoes the request received (as
some proxies and gateways do, secrets included). Faults wait in a :class:`FaultQueue`; each request
consumes the first queued fault that matches it, so faults queued for the same endpoint apply
one after the other.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest, HttpResponse

ENDPOINTS: frozenset[str] = frozenset(
    {
        "discovery",
        "jwks",
        "token",
        "device_authorization",
        "userinfo",
        "revocation",
        "introspection",
        "end_session",
        "not_found",
    }
)
"""Endpoint names a fault (and a :attr:`TestProvider.log` entry) can carry."""

JsonBody = Mapping[str, Any] | list[Any] | str | int | float | bool | None

Echo = Literal["oauth", "text"]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the provider.

    Only the fields you set change anything; a ``Fault(endpoint="token")`` with nothing else
    matches and is consumed, but leaves the answer untouched.
    """

    endpoint: str
    """Endpoint name: ``discovery``, ``jwks``, ``token``, ``device_authorization``,
    ``userinfo``, ``revocation``, ``introspection``, ``end_session`` (or ``not_found`` for
    unknown routes)."""
    grant_type: str | None = None
    """Only token requests with this ``grant_type`` match."""
    times: int | None = 1
    """How many matching requests it affects; ``None`` means until :meth:`FaultQueue.clear`."""
    status: int | None = None
    """Replace the HTTP status."""
    body: bytes | JsonBody = None
    """Replace the body: ``bytes`` are sent as they are, anything else is sent as JSON.
    Leave unset (``None``) to keep the real body; to send JSON ``null`` use ``b"null"``."""
    headers: Mapping[str, str | None] | None = None
    """Set response headers; a ``None`` value removes the header."""
    delay: float = 0.0
    """Seconds the answer should be delayed, returned in :class:`ProviderReply`; never slept."""
    id_token_claims: Mapping[str, Any] | None = None
    """Set ID-token claims (token endpoint); a ``None`` value removes the claim."""
    id_token_header: Mapping[str, Any] | None = None
    """Set ID-token header members; a ``None`` value removes the member. The token is still
    signed with the current key unless ``unsigned`` or ``bad_signature`` says otherwise."""
    unsigned: bool = False
    """Send the ID token with an empty signature."""
    bad_signature: bool = False
    """Send the ID token with a corrupted signature."""
    echo: Echo | None = None
    """Answer (HTTP 400 unless ``status`` says otherwise) with the request received: its
    headers and body, as they are, percent-encoded and base64-encoded. ``"oauth"`` puts that
    text into an OAuth error body (``error_description``, Logto's ``message``, the query of
    ``error_uri``), ``"text"`` sends it as a plain-text body."""

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise LogtoUsageError(
                f"unknown fault endpoint {self.endpoint!r}; use one of {sorted(ENDPOINTS)}",
                code="testing.fault",
            )
        if self.times is not None and self.times < 1:
            raise LogtoUsageError("a fault applies at least once", code="testing.fault")
        if self.delay < 0:
            raise LogtoUsageError("a fault delay cannot be negative", code="testing.fault")
        if self.echo is not None and self.body is not None:
            raise LogtoUsageError(
                "a fault echoes the request or sets a body, not both", code="testing.fault"
            )

    def matches(self, endpoint: str, grant_type: str | None) -> bool:
        """True when this fault applies to a request to ``endpoint`` with ``grant_type``."""
        if endpoint != self.endpoint:
            return False
        return self.grant_type is None or self.grant_type == grant_type

    @property
    def touches_id_token(self) -> bool:
        """True when the fault changes how the ID token is built."""
        return bool(
            self.id_token_claims or self.id_token_header or self.unsigned or self.bad_signature
        )

    def apply(self, response: HttpResponse, request: HttpRequest | None = None) -> HttpResponse:
        """The response with this fault's status, body and header changes applied (an echo
        needs the ``request`` it answers)."""
        status = response.status if self.status is None else self.status
        headers = dict(response.headers)
        body = response.body
        if self.echo is not None and request is not None:
            status = 400 if self.status is None else self.status
            body, content_type = _echo(request, self.echo)
            headers["content-type"] = content_type
        elif isinstance(self.body, bytes):
            body = self.body
        elif self.body is not None:
            body = json.dumps(self.body).encode("utf-8")
            headers["content-type"] = "application/json"
        for name, value in (self.headers or {}).items():
            if value is None:
                headers.pop(name.lower(), None)
            else:
                headers[name.lower()] = value
        return HttpResponse(status, headers, body)


def _echo(request: HttpRequest, kind: Echo) -> tuple[bytes, str]:
    """What an echoing gateway answers: the request, raw, percent-encoded and in base64."""
    lines = [f"{request.method} {request.url}"]
    lines += [f"{name}: {value}" for name, value in request.headers]
    raw = "\n".join(lines) + "\n\n" + (request.body or b"").decode("utf-8", errors="replace")
    text = (
        f"rejected request: {raw} | percent-encoded: {quote(raw, safe='')} | "
        f"base64: {base64.b64encode(raw.encode()).decode('ascii')}"
    )
    if kind == "text":
        return text.encode(), "text/plain; charset=utf-8"
    payload = {
        "error": "invalid_request",
        "error_description": text,
        "error_uri": "https://gateway.example/rejected?request=" + quote(raw, safe=""),
        "code": "gateway.rejected",
        "message": text,
    }
    return json.dumps(payload).encode(), "application/json"


class FaultQueue:
    """Queued faults, consumed in order by matching requests."""

    def __init__(self) -> None:
        self._queue: list[tuple[Fault, int | None]] = []

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` behind the ones already waiting."""
        self._queue.append((fault, fault.times))

    def clear(self) -> None:
        """Drop every queued fault."""
        self._queue.clear()

    @property
    def pending(self) -> list[Fault]:
        """Faults still waiting, in order."""
        return [fault for fault, _ in self._queue]

    def __len__(self) -> int:
        return len(self._queue)

    def take(self, endpoint: str, grant_type: str | None) -> Fault | None:
        """Consume one use of the first fault matching the request, if any."""
        for index, (fault, remaining) in enumerate(self._queue):
            if not fault.matches(endpoint, grant_type):
                continue
            if remaining is not None:
                if remaining <= 1:
                    del self._queue[index]
                else:
                    self._queue[index] = (fault, remaining - 1)
            return fault
        return None
