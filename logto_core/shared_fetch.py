"""Identical provider-metadata fetches (discovery, JWKS) in flight at once share one exchange,
through the coordinator, keyed by URL.

When the cached keys of a busy client go stale, its concurrent users must make one JWKS
request, not one each (and 50 first sign-ins at once, one discovery request). The clients
answer a flow's idempotent request (:attr:`HttpRequest.idempotent`) with :func:`fetch`, a
sub-operation that claims the flight ``fetch:<SHA-256 of the URL>`` (:func:`fetch_key`)
with a short lease (:class:`FetchClaim`):

* *leading*, it runs the exchange (:func:`logto_core.exchange.exchange`: its attempts, as
  :class:`~logto_core.http.HttpRequest` effects the adapter sends as they are, and the waits
  between them), publishes the outcome as text (:func:`encode_response`,
  :func:`encode_failure`; kept 0 seconds: nothing outlives the flight) and returns it;
* *following*, it waits for that text (:class:`AwaitFetch`, bounded like every wait for a
  flight; running out is :func:`gave_up`; a leader whose process died,
  :class:`~logto_core.errors.LeaderLostError`, makes it claim again, at most
  :data:`MAX_TAKEOVERS` times) and decodes its own copy (:func:`decoded`): the
  response, or a fresh :class:`~logto_core.errors.TransportError` rebuilt from data (a TLS
  failure's reason included), never an object another caller raises too. Text that is not a
  result is ``coordination.result_invalid``.

A coordinator that fails (:class:`~logto_core.errors.CoordinationError`: a shared Redis out of
reach) makes the caller exchange alone: sharing a fetch is an economy, never a condition of
it (unlike a refresh, whose single flight keeps a grant alive).

The whole retried exchange is shared, not each attempt: followers share the leader's final
outcome. Coalescing each attempt instead would let every follower run its own retries after
a shared failure (each after its own jittered wait, so no longer at the same moment: one
retry per caller, the burst the sharing is there to prevent). So the clients give the flows
an exchange policy without retries (a flow's request is one step to them) and run the
retries here, with their real policy; non-idempotent requests (token, revocation, userinfo)
are never retried anyway, and never shared: the clients send them as they are.

Pure, like the rest of the core: the adapters perform the effects.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from . import json_strict
from .errors import (
    CoordinationError,
    LeaderLostError,
    TransportError,
    error_from_data,
    error_to_data,
)
from .exchange import exchange
from .http import MAX_BODY_BYTES, HttpRequest, HttpResponse
from .operations import AwaitFlight, Claim, Operation, Publish
from .runtime import Runtime
from .singleflight import LEASE, Done, Follow, Lead, Ticket, digest
from .transport_policy import FAILED, TIMEOUT, ExchangePolicy, TlsFailure, describe

MAX_TAKEOVERS = 3
"""Claims a follower makes when the leaders it waits for are lost (their processes died,
:class:`~logto_core.errors.LeaderLostError`) before it fetches alone."""

LEASE_MARGIN = 5.0
"""Seconds a fetch's lease adds to its exchange's deadline (the leader publishes after it)."""

MAX_SHARED_CHARS = 2 * MAX_BODY_BYTES
"""The longest published text: a body at the transports' cap (1 MiB, base64: 4/3 of it) and
its headers. A response too large to share is published as a failure."""

_MAX_REASON_CHARS = 512
_KIND_RESPONSE = "fetched"
_KIND_FAILURE = "fetch_failed"


def fetch_key(request: HttpRequest) -> str:
    """The flight key of every fetch of ``request``'s URL."""
    return "fetch:" + digest(request.url)


def lease_for(policy: ExchangePolicy) -> float:
    """A fetch's lease: its exchange's deadline and a margin (:data:`LEASE` without one).
    A leader still running after that is taken over by the next claimer."""
    if policy.timeout is None:
        return LEASE
    return policy.timeout[1] + LEASE_MARGIN


@dataclass(frozen=True, slots=True)
class FetchClaim(Claim):
    """A :class:`~logto_core.operations.Claim` for a fetch: leased ``lease`` seconds (a
    fetch takes one exchange; a refresh's lease is the adapter's own)."""

    lease: float = LEASE


@dataclass(frozen=True, slots=True)
class AwaitFetch(AwaitFlight):
    """An :class:`~logto_core.operations.AwaitFlight` for the leader of a fetch of
    ``request``: when the wait runs out, the adapter raises :func:`gave_up`."""

    request: HttpRequest

    # The base's is static (one message for every refresh); this one names the request.
    def timeout_error(self) -> TransportError:  # type: ignore[override]
        return gave_up(self.request)


def gave_up(request: HttpRequest) -> TransportError:
    """A follower's wait for the leader of the same fetch ran out."""
    return TransportError(
        f"{describe(request)}: gave up waiting for the same request made by another caller",
        code=TIMEOUT,
    )


def interrupted(request: HttpRequest) -> TransportError:
    """What a leader whose exchange broke off without an outcome (a cancellation, a crash of
    its transport) publishes."""
    return TransportError(f"{describe(request)}: the shared request was interrupted", code=FAILED)


def too_large(request: HttpRequest) -> TransportError:
    """What followers get for a response too large to publish."""
    return TransportError(
        f"{describe(request)}: the response is too large to share with concurrent callers",
        code="coordination.result_too_large",
    )


def fetch(
    request: HttpRequest, policy: ExchangePolicy, runtime: Runtime
) -> Operation[HttpResponse]:
    """Send ``request`` as ``policy`` says (retries included), sharing the exchange with the
    concurrent fetches of the same URL; the response, or raises :class:`TransportError`. A
    request that is not idempotent is only exchanged."""
    if not request.idempotent:
        return (yield from exchange(request, policy, runtime=runtime))
    key = fetch_key(request)
    for _ in range(1 + MAX_TAKEOVERS):
        try:
            ticket: Ticket = yield FetchClaim(key, lease=lease_for(policy))
            if not isinstance(ticket, Follow):
                break
            text = yield AwaitFetch(ticket, request)
        except LeaderLostError:  # its leader's process died: claim again
            continue
        except CoordinationError:  # a shared coordinator out of reach: sharing is an economy
            return (yield from exchange(request, policy, runtime=runtime))
        return _outcome(decoded(text))
    else:  # leader after leader lost: fetch alone
        return (yield from exchange(request, policy, runtime=runtime))
    if isinstance(ticket, Done):  # a coordinator that kept it (fetches keep nothing)
        return _outcome(decoded(ticket.result))
    if not isinstance(ticket, Lead):  # Ended: fetch keys are never ended; fetch alone
        return (yield from exchange(request, policy, runtime=runtime))
    return (yield from _lead(key, ticket, request, policy, runtime))


def _lead(
    key: str, lead: Lead[Any], request: HttpRequest, policy: ExchangePolicy, runtime: Runtime
) -> Operation[HttpResponse]:
    """Exchange and publish, whatever happens: a claimed flight is always settled (but by a
    driver that closes the generator, which can yield nothing more: the lease ends it)."""
    text = encode_failure(interrupted(request))
    closed = False
    try:
        response = yield from exchange(request, policy, runtime=runtime)
        text = encode_response(response)
        if len(text) > MAX_SHARED_CHARS:
            text = encode_failure(too_large(request))
    except TransportError as failure:
        text = encode_failure(failure)  # the leader itself raises its live error, cause kept
        raise
    except GeneratorExit:
        closed = True
        raise
    finally:
        if not closed:
            yield Publish(key, lead, text, 0.0)
    return response


def _outcome(result: HttpResponse | TransportError) -> HttpResponse:
    if isinstance(result, TransportError):
        raise result
    return result


# ---- outcomes as text ---------------------------------------------------------------------


def encode_response(response: HttpResponse) -> str:
    """``response`` as the text a coordinator carries: status, headers, body in base64."""
    data = {
        "kind": _KIND_RESPONSE,
        "status": response.status,
        "headers": dict(response.headers),
        "body": base64.b64encode(response.body).decode("ascii"),
    }
    return json.dumps(data, separators=(",", ":"))


def encode_failure(error: TransportError) -> str:
    """``error`` as text: its class, message and plain attributes, and the reason of a TLS
    failure (its ``__cause__``; other causes, library exceptions, stay behind)."""
    cause = error.__cause__
    data: dict[str, Any] = {"kind": _KIND_FAILURE, "error": error_to_data(error)}
    if isinstance(cause, TlsFailure):
        data["tls"] = {"reason": cause.reason, "verifyCode": cause.verify_code}
    return json.dumps(data, separators=(",", ":"))


def decoded(text: object) -> HttpResponse | TransportError:
    """What a leader published: its response, or a new :class:`TransportError` (its failure,
    or ``coordination.result_invalid`` when ``text`` is neither). Never raises."""
    if not isinstance(text, str):
        return _invalid()
    try:
        data = json_strict.loads(text, max_depth=4, max_bytes=MAX_SHARED_CHARS)
    except json_strict.StrictJsonError:
        return _invalid()
    if not isinstance(data, dict):
        return _invalid()
    if data.get("kind") == _KIND_RESPONSE:
        return _response(data)
    if data.get("kind") == _KIND_FAILURE:
        return _failure(data)
    return _invalid()


def _response(data: dict[str, Any]) -> HttpResponse | TransportError:
    status, headers, body = data.get("status"), data.get("headers"), data.get("body")
    if type(status) is not int or not 100 <= status <= 599:
        return _invalid()
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        return _invalid()
    if not isinstance(body, str):
        return _invalid()
    try:
        raw = base64.b64decode(body.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return _invalid()
    return HttpResponse(status, dict(headers), raw)


def _failure(data: dict[str, Any]) -> TransportError:
    error = error_from_data(data.get("error"))
    if not isinstance(error, TransportError) or not _plain_transport_error(error):
        return _invalid()
    tls = data.get("tls")
    if tls is not None:
        reason = tls.get("reason") if isinstance(tls, dict) else None
        code = tls.get("verifyCode") if isinstance(tls, dict) else None
        if not isinstance(reason, str) or not (code is None or type(code) is int):
            return _invalid()
        error.__cause__ = TlsFailure(reason[:_MAX_REASON_CHARS], verify_code=code)
    return error


def _plain_transport_error(error: TransportError) -> bool:
    """The rebuilt error has a text code and the attributes every TransportError has (the
    data may lack them, or give them other types)."""
    attributes = vars(error)
    status = attributes.setdefault("status", None)
    retry_after = attributes.setdefault("retry_after", None)
    return (
        isinstance(error.code, str)
        and (status is None or type(status) is int)
        and (retry_after is None or type(retry_after) in (int, float))
    )


def _invalid() -> TransportError:
    return TransportError(
        "the response a concurrent caller fetched could not be read; try again",
        code="coordination.result_invalid",
    )


__all__ = [
    "LEASE_MARGIN",
    "MAX_SHARED_CHARS",
    "MAX_TAKEOVERS",
    "AwaitFetch",
    "FetchClaim",
    "decoded",
    "encode_failure",
    "encode_response",
    "fetch",
    "fetch_key",
    "gave_up",
    "interrupted",
    "lease_for",
]
