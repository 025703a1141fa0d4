"""Reading provider responses: JSON bodies with a size cap, and OAuth error answers."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from . import excerpts, json_strict
from .errors import (
    OAuthError,
    ProviderError,
    ProviderResponseError,
    TransportError,
    describe_error_body,
)
from .http import MAX_BODY_BYTES, HttpResponse

EXCERPT_CHARS = excerpts.BODY_CHARS
"""How much of an unexpected body an error keeps for diagnostics."""

ModelT = TypeVar("ModelT", bound=BaseModel)


def body_excerpt(body: bytes) -> str:
    """A short, printable prefix of a body (control characters replaced). Errors that can
    take the whole body (``ProviderResponseError(body=...)``) should: they are then scrubbed
    of echoed secrets before the cut."""
    return excerpts.body_excerpt(body, EXCERPT_CHARS)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in its delay-seconds form (dates are ignored,
    since reading them needs the wall clock): :func:`.transport_policy.parse_retry_after`
    without a clock."""
    from .transport_policy import parse_retry_after as parse

    return parse(value)


def decode_json(response: HttpResponse, *, what: str) -> Any:
    """The body decoded by the strict decoder (:mod:`logto_core.json_strict`: no NaN or
    Infinity, no repeated member names, bounded nesting), or a :class:`ProviderResponseError`."""
    if len(response.body) > MAX_BODY_BYTES:
        raise ProviderResponseError(
            f"{what} response body exceeds {MAX_BODY_BYTES} bytes",
            status=response.status,
            code="provider_response.too_large",
        )
    try:
        return json_strict.loads(response.body, max_bytes=MAX_BODY_BYTES)
    except json_strict.StrictJsonError as exc:
        raise ProviderResponseError(
            f"{what} response is not valid JSON ({exc})",
            status=response.status,
            body_excerpt=body_excerpt(response.body),
            code="provider_response.not_json",
        ) from None


def raise_for_status(response: HttpResponse, *, what: str) -> None:
    """Turn a non-2xx response into an :class:`OAuthError` (when the body is an OAuth error)
    or a :class:`ProviderResponseError` with the status and a truncated body."""
    if response.ok:
        return
    if response.status >= 500 or response.status == 429:
        # Transient on the provider's side: callers keep every token and may retry later.
        raise TransportError(
            f"{what} failed with HTTP {response.status} (transient)",
            code="transport.status",
            status=response.status,
            retry_after=parse_retry_after(response.header("retry-after")),
        )
    payload: Any = None
    try:
        if len(response.body) <= MAX_BODY_BYTES:
            payload = json_strict.loads(response.body, max_bytes=MAX_BODY_BYTES)
    except json_strict.StrictJsonError:
        payload = None
    fields = describe_error_body(payload)
    if fields is not None:
        raise OAuthError(
            fields["error"],
            error_description=fields.get("error_description"),
            error_uri=fields.get("error_uri"),
            logto_code=fields.get("code"),
            logto_message=fields.get("message"),
            status=response.status,
        )
    if isinstance(payload, dict) and "error" in payload:
        # RFC 6749 5.2: ``error`` is a short ASCII code. Anything else is not an OAuth error
        # answer; it must not become part of a stable ``code``.
        raise ProviderResponseError(
            f"{what} failed with HTTP {response.status}, and its body's 'error' is not an "
            "OAuth error code (RFC 6749 section 5.2)",
            status=response.status,
            body=response.body,
            code="provider_response.invalid_error",
        )
    raise ProviderResponseError(
        f"{what} failed with HTTP {response.status}",
        status=response.status,
        body=response.body,
        code="provider_response.status",
    )


def read_object(response: HttpResponse, *, what: str) -> dict[str, Any]:
    """A successful response's body as a JSON object."""
    raise_for_status(response, what=what)
    payload = decode_json(response, what=what)
    if not isinstance(payload, dict):
        raise ProviderResponseError(
            f"{what} response is not a JSON object",
            status=response.status,
            body=response.body,
            code="provider_response.not_object",
        )
    return payload


def validate_model(
    model: type[ModelT],
    payload: dict[str, Any],
    *,
    what: str,
    error: type[ProviderError] = ProviderError,
) -> ModelT:
    """Validate a payload into a model; failures name the offending fields, never the values."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "<root>" for e in exc.errors()})
        raise error(f"{what} is invalid: bad or missing {', '.join(fields)}") from None
