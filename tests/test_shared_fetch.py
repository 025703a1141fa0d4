"""The shared fetch of discovery and JWKS (:mod:`logto_core.shared_fetch`), driven by hand: the
effects it yields as leader and as follower, and its outcomes as text (every response and
every transport failure survives the trip; any other text is a typed failure, never a raw
exception)."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logto_core import shared_fetch
from logto_core.errors import OAuthError, TransportError, error_to_data
from logto_core.http import HttpRequest, HttpResponse
from logto_core.operations import AwaitFlight, Publish
from logto_core.runtime import Runtime
from logto_core.singleflight import Done, Ended, Follow, Lead, digest
from logto_core.sleep import Sleep
from logto_core.transport_policy import ExchangePolicy, RetryPolicy, TlsFailure, tls_failed

JWKS = HttpRequest.get("https://tenant.example/oidc/jwks", purpose="jwks")
TOKEN = HttpRequest.post_form("https://tenant.example/oidc/token", [("a", "b")], purpose="token")
POLICY = ExchangePolicy(RetryPolicy(max_retries=2, base_delay=0.1), (2.0, 5.0))
RUNTIME = Runtime(clock=lambda: 1_700_000_000.0, entropy=lambda n: b"\x80" * n)
OK = HttpResponse.json(200, {"keys": []})


def _start(request: HttpRequest = JWKS) -> tuple[Generator[Any, Any, HttpResponse], Any]:
    operation = shared_fetch.fetch(request, POLICY, RUNTIME)
    return operation, next(operation)


def _finish(operation: Generator[Any, Any, HttpResponse], answer: object) -> HttpResponse:
    with pytest.raises(StopIteration) as stop:
        operation.send(answer)
    response: HttpResponse = stop.value.value
    return response


def _raised(operation: Generator[Any, Any, Any], answer: object) -> TransportError:
    with pytest.raises(TransportError) as raised:
        operation.send(answer)
    return raised.value


# ---- the sub-operation --------------------------------------------------------------------


def test_a_leader_fetches_and_publishes_the_response_keeping_nothing() -> None:
    operation, claim = _start()
    assert isinstance(claim, shared_fetch.FetchClaim)
    assert claim.key == "fetch:" + digest(JWKS.url) and not claim.supersede
    assert claim.lease == 5.0 + shared_fetch.LEASE_MARGIN  # the exchange's deadline, and some
    lead = Lead(object())
    attempt = operation.send(lead)
    assert isinstance(attempt, HttpRequest) and attempt.url == JWKS.url
    assert attempt.attempt == 0 and attempt.timeout == 5.0
    publish = operation.send(OK)
    assert isinstance(publish, Publish)
    assert publish.key == claim.key and publish.lead is lead and publish.keep == 0.0
    assert shared_fetch.decoded(publish.result) == OK
    assert _finish(operation, None) is OK


def test_a_leader_retries_and_publishes_only_the_final_outcome() -> None:
    operation, _ = _start()
    first = operation.send(Lead(object()))
    assert isinstance(first, HttpRequest) and first.attempt == 0
    wait = operation.send(HttpResponse(503))
    assert isinstance(wait, Sleep)
    second = operation.send(None)
    assert isinstance(second, HttpRequest) and second.attempt == 1
    publish = operation.send(OK)
    assert isinstance(publish, Publish) and shared_fetch.decoded(publish.result) == OK
    assert _finish(operation, None) is OK


def test_a_leaders_failure_is_published_and_raised_as_it_is() -> None:
    operation, _ = _start()
    operation.send(Lead(object()))
    failure = tls_failed(
        JWKS,
        "unable to get local issuer certificate",
        verification=True,
        verify_code=20,
        trust_fix="pass a CA bundle",
    )
    publish = operation.throw(failure)
    assert isinstance(publish, Publish)
    shared = shared_fetch.decoded(publish.result)
    assert isinstance(shared, TransportError) and shared is not failure
    assert (shared.code, shared.message) == (failure.code, failure.message)
    assert isinstance(shared.__cause__, TlsFailure) and shared.__cause__ is not failure.__cause__
    assert shared.__cause__.reason == "unable to get local issuer certificate"
    assert shared.__cause__.verify_code == 20
    assert _raised(operation, None) is failure  # the leader keeps its live error


def test_an_interrupted_leader_publishes_a_transient_failure() -> None:
    operation, _ = _start()
    operation.send(Lead(object()))
    publish = operation.throw(KeyboardInterrupt())
    assert isinstance(publish, Publish)
    shared = shared_fetch.decoded(publish.result)
    assert isinstance(shared, TransportError) and shared.code == "transport.failed"
    assert "interrupted" in shared.message
    with pytest.raises(KeyboardInterrupt):
        operation.send(None)


def test_a_closed_leader_yields_nothing_more() -> None:
    operation, _ = _start()
    operation.send(Lead(object()))
    operation.close()  # the lease settles its flight


def test_a_response_too_large_to_share_is_published_as_a_failure() -> None:
    big = HttpResponse(200, {}, b"x" * shared_fetch.MAX_SHARED_CHARS)
    operation, _ = _start()
    operation.send(Lead(object()))
    publish = operation.send(big)
    assert isinstance(publish, Publish)
    shared = shared_fetch.decoded(publish.result)
    assert isinstance(shared, TransportError) and shared.code == "coordination.result_too_large"
    assert _finish(operation, None) is big  # the leader has it


def test_a_follower_waits_and_decodes_its_own_copy() -> None:
    published = shared_fetch.encode_response(OK)
    for _ in range(2):
        operation, _ = _start()
        follow = Follow(object())
        wait = operation.send(follow)
        assert isinstance(wait, shared_fetch.AwaitFetch) and isinstance(wait, AwaitFlight)
        assert wait.follow is follow
        response = _finish(operation, published)
        assert response == OK and response is not OK


def test_a_followers_wait_running_out_names_the_request() -> None:
    operation, _ = _start()
    wait = operation.send(Follow(object()))
    error = wait.timeout_error()
    assert isinstance(error, TransportError) and error.code == "transport.timeout"
    assert error.message == (
        "GET https://tenant.example/oidc/jwks: gave up waiting for the same request made by "
        "another caller"
    )
    assert wait.timeout_error() is not error


def test_each_follower_raises_a_fresh_error() -> None:
    published = shared_fetch.encode_failure(TransportError("down", code="transport.connection"))
    errors = []
    for _ in range(3):
        operation, _ = _start()
        operation.send(Follow(object()))
        errors.append(_raised(operation, published))
    assert len({id(e) for e in errors}) == 3
    assert {(e.code, e.message) for e in errors} == {("transport.connection", "down")}
    assert all(e.__context__ is None and e.__cause__ is None for e in errors)


def test_a_follower_given_damaged_text_fails_as_result_invalid() -> None:
    operation, _ = _start()
    operation.send(Follow(object()))
    assert _raised(operation, '{"kind":"fetched"').code == "coordination.result_invalid"


def test_a_result_a_coordinator_kept_is_adopted() -> None:
    operation, _ = _start()
    assert _finish(operation, Done(shared_fetch.encode_response(OK))) == OK


def test_an_ended_key_fetches_alone() -> None:
    operation, _ = _start()
    attempt = operation.send(Ended())
    assert isinstance(attempt, HttpRequest)
    assert _finish(operation, OK) is OK  # nothing to publish


def test_a_request_that_is_not_idempotent_is_only_exchanged() -> None:
    operation, first = _start(TOKEN)
    assert isinstance(first, HttpRequest) and first.purpose == "token"  # no claim
    response = HttpResponse(500)
    assert _finish(operation, response) is response  # and never retried


# ---- outcomes as text -----------------------------------------------------------------------

header_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)
responses = st.builds(
    HttpResponse,
    st.integers(100, 599),
    st.dictionaries(header_names, st.text(max_size=40), max_size=6),
    st.binary(max_size=300),
)
failures = st.builds(
    lambda message, code, status, retry_after: TransportError(
        message, code=code, status=status, retry_after=retry_after
    ),
    st.text(max_size=80),
    st.sampled_from(["transport.connection", "transport.timeout", "transport.status"]),
    st.none() | st.integers(100, 599),
    st.none() | st.floats(0, 86400),
)


@given(responses)
def test_a_response_survives_the_trip(response: HttpResponse) -> None:
    text = shared_fetch.encode_response(response)
    assert isinstance(text, str)
    back = shared_fetch.decoded(text)
    assert back == response and back is not response


@given(failures, st.none() | st.text(max_size=60), st.none() | st.integers(0, 100))
def test_a_failure_survives_the_trip(
    failure: TransportError, reason: str | None, verify_code: int | None
) -> None:
    if reason is not None:
        failure.__cause__ = TlsFailure(reason, verify_code=verify_code)
    back = shared_fetch.decoded(shared_fetch.encode_failure(failure))
    assert isinstance(back, TransportError) and back is not failure
    assert (back.code, back.message, back.status, back.retry_after) == (
        failure.code,
        failure.message,
        failure.status,
        failure.retry_after,
    )
    if reason is None:
        assert back.__cause__ is None
    else:
        assert isinstance(back.__cause__, TlsFailure)
        assert (back.__cause__.reason, back.__cause__.verify_code) == (reason, verify_code)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_near_misses = st.fixed_dictionaries(
    {"kind": st.sampled_from(["fetched", "fetch_failed", "refreshed"])},
    optional={
        "status": _json_values,
        "headers": _json_values,
        "body": _json_values,
        "error": _json_values,
        "tls": _json_values,
    },
)


@given(st.one_of(st.text(max_size=300), st.binary(max_size=50), st.integers(), st.none()))
def test_arbitrary_text_never_raises(garbage: Any) -> None:
    back = shared_fetch.decoded(garbage)
    assert isinstance(back, HttpResponse | TransportError)
    if isinstance(back, TransportError):
        assert back.code == "coordination.result_invalid"


@given(_near_misses)
def test_text_that_almost_is_a_result_never_raises(data: dict[str, Any]) -> None:
    back = shared_fetch.decoded(json.dumps(data))
    assert isinstance(back, HttpResponse | TransportError)
    if isinstance(back, TransportError):
        assert isinstance(back.code, str) and isinstance(back.message, str)
        assert back.status is None or type(back.status) is int
        assert back.retry_after is None or isinstance(back.retry_after, int | float)
        assert back.__cause__ is None or isinstance(back.__cause__, TlsFailure)


def test_an_error_of_another_class_is_not_a_transport_failure() -> None:
    oauth = OAuthError("invalid_grant", status=400)
    text = json.dumps({"kind": "fetch_failed", "error": error_to_data(oauth)})
    back = shared_fetch.decoded(text)
    assert isinstance(back, TransportError) and back.code == "coordination.result_invalid"


def test_a_rebuilt_failure_has_every_attribute_of_a_transport_error() -> None:
    text = json.dumps(
        {"kind": "fetch_failed", "error": {"class": "TransportError", "message": "m"}}
    )
    back = shared_fetch.decoded(text)
    assert isinstance(back, TransportError)
    assert (back.code, back.status, back.retry_after) == ("transport", None, None)
