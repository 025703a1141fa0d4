"""Errors leaving a flow: scrubbed of every secret of the run, with the likely fix named.

The provider is made to echo the request it received (as some gateways do), so that the
client secret, the code, the verifier or the refresh token come back inside the error text.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Generator
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import pytest

from logto_core import transport_policy as policy
from logto_core.driver import MAX_EFFECTS_PER_OPERATION, run_operation, run_sync
from logto_core.errors import (
    FlowLimitError,
    LogtoError,
    OAuthError,
    ProviderResponseError,
    SignInRequiredError,
    TransportError,
)
from logto_core.exchange import exchange
from logto_core.flows import MAX_REQUESTS_PER_FLOW, Outcome, _guarded, _Run
from logto_core.http import HttpRequest, HttpResponse
from logto_core.provider_state import ProviderCache, ProviderState
from logto_core.runtime import Runtime
from logto_core.scrub import REDACTED
from logto_core.session import SessionState
from logto_core.sleep import Sleep
from logto_core.testing import Fault
from logto_core.transport_policy import ExchangePolicy, RetryPolicy
from tests.harness import API, Harness, make_config
from tests.secret_leaks import assert_no_leak, error_texts

SECRET = "web-secret"


def _signed_in(**overrides: Any) -> tuple[Harness, str]:
    h = Harness(config_overrides=overrides)
    h.sign_in()
    refresh = h.session().refresh_token
    assert refresh is not None
    h.clock.advance(7200)  # every cached access token is stale: the next one refreshes
    return h, refresh


def _basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()).decode()


def _run_secrets(refresh: str, secret: str = SECRET, client_id: str = "web") -> list[str]:
    return [secret, refresh, f"{client_id}:{secret}", _basic(client_id, secret)]


@pytest.mark.parametrize("echo", ["oauth", "text"])
def test_refresh_error_echoing_the_request_shows_no_secret(echo: Any) -> None:
    h, refresh = _signed_in()
    h.provider.faults.add(Fault("token", echo=echo))
    outcome = h.token(resource=API)
    error = outcome.error
    assert isinstance(error, OAuthError if echo == "oauth" else ProviderResponseError)
    assert REDACTED in (str(error) if echo == "oauth" else error.body_excerpt)  # type: ignore[union-attr]
    assert_no_leak(error_texts(error), _run_secrets(refresh))
    if isinstance(error, OAuthError):
        # The whole description stays on the attribute, scrubbed; Logto's fields too.
        assert error.error_description is not None and "base64: " in error.error_description
        assert REDACTED in error.error_description and REDACTED in (error.logto_message or "")
        assert REDACTED in (error.error_uri or "")
    else:
        assert error._body is None  # the raw body is dropped once scrubbed
    assert h.session().refresh_token == refresh  # a 400 that is not invalid_grant keeps it


@pytest.mark.parametrize("echo", ["oauth", "text"])
def test_code_exchange_error_echoing_the_request_shows_no_secret(echo: Any) -> None:
    h = Harness()
    url = h.start()
    verifier = h.session().pending[0].code_verifier
    callback = h.provider.approve(url, user="alice")
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    h.provider.faults.add(Fault("token", grant_type="authorization_code", echo=echo))
    outcome = h.run("s", h.core.handle_sign_in_callback(h.session(), callback))
    assert outcome.error is not None
    assert_no_leak(error_texts(outcome.error), [SECRET, code, verifier, _basic("web", SECRET)])


def test_public_client_code_exchange_echo_shows_no_code_or_verifier() -> None:
    h = Harness(client_id="spa")
    url = h.start()
    verifier = h.session().pending[0].code_verifier
    callback = h.provider.approve(url, user="alice")
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    h.provider.faults.add(Fault("token", echo="oauth"))
    outcome = h.run("s", h.core.handle_sign_in_callback(h.session(), callback))
    assert isinstance(outcome.error, OAuthError)
    # What is not secret stays readable.
    assert "client_id=spa" in (outcome.error.error_description or "")
    assert_no_leak(error_texts(outcome.error), [code, verifier])


@pytest.mark.parametrize("echo", ["oauth", "text"])
def test_revocation_errors_returned_as_values_are_scrubbed(echo: Any) -> None:
    h, refresh = _signed_in()
    h.provider.faults.add(Fault("revocation", echo=echo))
    outcome = run_sync(h.core.revoke(refresh), h.send)
    assert isinstance(outcome.value, LogtoError)
    assert_no_leak(error_texts(outcome.value), _run_secrets(refresh))
    h.provider.faults.add(Fault("revocation", echo=echo))
    result = h.run("s", h.core.sign_out(h.session())).unwrap()
    assert result.revocation_error is not None
    assert_no_leak(error_texts(result.revocation_error), _run_secrets(refresh))


def test_a_secret_as_the_error_code_never_becomes_the_code() -> None:
    h, refresh = _signed_in()
    for value in (refresh, SECRET, _basic("web", SECRET)):
        h.provider.faults.add(Fault("token", status=400, body={"error": value}))
        error = h.token(resource=API).error
        assert isinstance(error, OAuthError)
        assert error.code == f"oauth.{REDACTED}" and error.error == REDACTED
        assert_no_leak(error_texts(error), _run_secrets(refresh))


def test_the_cause_of_sign_in_required_is_scrubbed_too() -> None:
    h, refresh = _signed_in()
    echo = {"error": "invalid_grant", "error_description": f"grant of {refresh} is gone"}
    h.provider.faults.add(Fault("token", status=400, body=echo))
    error = h.token(resource=API).error
    assert isinstance(error, SignInRequiredError) and isinstance(error.__cause__, OAuthError)
    assert error.__cause__.error_description == f"grant of {REDACTED} is gone"
    assert_no_leak(error_texts(error), _run_secrets(refresh))


def test_a_suppressed_context_holding_the_body_is_dropped() -> None:
    h, refresh = _signed_in()
    h.provider.faults.add(Fault("token", status=200, body=f"not json {refresh}".encode()))
    error = h.token(resource=API).error
    assert isinstance(error, ProviderResponseError) and error.code == "provider_response.not_json"
    assert error.__context__ is None  # json.JSONDecodeError.doc was the whole body
    assert error.body_excerpt == f"not json {REDACTED}"
    assert_no_leak(error_texts(error), _run_secrets(refresh))


def test_a_secret_cut_by_the_excerpt_leaves_no_half() -> None:
    h, refresh = _signed_in()
    for pad in range(185, 200, 3):
        body = ("x" * pad + refresh + "y" * 500).encode()
        h.provider.faults.add(Fault("token", status=400, body=body))
        error = h.token(resource=API).error
        assert isinstance(error, ProviderResponseError)
        assert refresh[:6] not in error.body_excerpt, pad
        assert error.body_excerpt.startswith("x" * pad) and len(error.body_excerpt) <= 203
        h.provider.faults.add(Fault("token", status=200, body=b"!" + body))
        error = h.token(resource=API).error
        assert isinstance(error, ProviderResponseError)  # cut before scrubbing: trimmed
        assert refresh[:6] not in error.body_excerpt, pad


# ---- invalid_client: which case it is, and the fix ------------------------------------


def _invalid_client(h: Harness) -> OAuthError:
    url = h.start()
    callback = h.provider.approve(url, user="alice")
    error = h.run("s", h.core.handle_sign_in_callback(h.session(), callback)).error
    assert isinstance(error, OAuthError) and error.code == "oauth.invalid_client"
    assert error.hint is not None and error.hint in str(error)
    return error


def test_invalid_client_with_a_wrong_secret() -> None:
    error = _invalid_client(Harness(config_overrides={"appSecret": "not-the-secret"}))
    assert "check appSecret" in str(error) and "remove appSecret" in str(error)
    assert "not-the-secret" not in str(error)


def test_invalid_client_for_a_public_app_sending_a_secret() -> None:
    error = _invalid_client(Harness(client_id="spa", config_overrides={"appSecret": "x-secret"}))
    assert "public" in error.hint and "remove appSecret" in error.hint  # type: ignore[operator]


def test_invalid_client_for_a_confidential_app_sending_none() -> None:
    error = _invalid_client(Harness(config_overrides={"appSecret": None}))
    assert "confidential" in error.hint and "set appSecret" in error.hint  # type: ignore[operator]


def test_invalid_client_for_an_unknown_app() -> None:
    h = Harness(config_overrides={"appSecret": SECRET})
    h.sign_in()
    h.clock.advance(7200)
    h.core = type(h.core)(make_config("nobody", appSecret=SECRET), runtime=h.core.runtime)
    h.core.cache = ProviderCache()
    error = h.token(resource=API).error
    assert isinstance(error, OAuthError) and error.code == "oauth.invalid_client"
    assert "check appId and endpoint" in str(error)


def test_invalid_client_hint_on_revocation_and_description_variants() -> None:
    h, refresh = _signed_in()
    for description, expected in [
        ("invalid secret provided", "check appSecret"),
        ("client authentication failed", "check appSecret"),
        ("the registered auth method does not match the provided mechanism", "registered"),
        (None, "check appSecret"),
    ]:
        body = {"error": "invalid_client", "error_description": description}
        h.provider.faults.add(Fault("revocation", status=401, body=body))
        outcome = run_sync(h.core.revoke(refresh), h.send)
        assert isinstance(outcome.value, OAuthError) and outcome.value.hint is not None
        assert expected in outcome.value.hint, description


def test_invalid_client_elsewhere_gets_no_hint() -> None:
    h, _ = _signed_in()
    h.provider.faults.add(Fault("userinfo", status=401, body={"error": "invalid_client"}, times=2))
    error = h.run("s", h.core.fetch_user_info(h.session())).error
    assert isinstance(error, OAuthError) and error.hint is None


# ---- _guarded drives the body like ``yield from`` --------------------------------------


def _guarded_run() -> _Run:
    return _Run(make_config(), Runtime(), SessionState(), ProviderState())


def test_guarded_closes_the_body_when_closed() -> None:
    closed: list[bool] = []

    def body() -> Generator[HttpRequest, HttpResponse | None, str]:
        try:
            yield HttpRequest.get("http://127.0.0.1:1/a")
        finally:
            closed.append(True)
        return "never"

    flow = _guarded(_guarded_run(), body())
    next(flow)
    flow.close()
    assert closed == [True]


def test_guarded_passes_throws_and_values_through() -> None:
    seen: list[object] = []

    def body() -> Generator[HttpRequest, HttpResponse | None, str]:
        try:
            yield HttpRequest.get("http://127.0.0.1:1/a")
        except TransportError as error:
            seen.append(error.code)
        response = yield HttpRequest.get("http://127.0.0.1:1/b")
        assert response is not None
        seen.append(response.status)
        return "done"

    flow = _guarded(_guarded_run(), body())
    next(flow)
    flow.throw(TransportError("x", code="transport.timeout"))
    with pytest.raises(StopIteration) as stop:
        flow.send(HttpResponse.build(204))
    assert stop.value.value.value == "done" and seen == ["transport.timeout", 204]
    # Anything that is not an SDK error (a cancellation, a bug) passes through.
    flow = _guarded(_guarded_run(), body())
    next(flow)
    with pytest.raises(KeyboardInterrupt):
        flow.throw(KeyboardInterrupt())


def test_guarded_scrubs_with_the_secrets_of_earlier_requests() -> None:
    def body() -> Generator[HttpRequest, HttpResponse | None, str]:
        yield HttpRequest.post_form("http://127.0.0.1:1/t", [("code", "early-code-value")])
        yield HttpRequest.get("http://127.0.0.1:1/b")
        raise OAuthError("invalid_request", error_description="early-code-value is bad")

    flow = _guarded(_guarded_run(), body())
    next(flow)
    flow.send(HttpResponse.build(200))
    with pytest.raises(StopIteration) as stop:
        flow.send(HttpResponse.build(200))
    error = stop.value.value.error
    assert isinstance(error, OAuthError)
    assert error.error_description == f"{REDACTED} is bad"
    assert json.dumps(error.args).count("early-code-value") == 0


def test_the_configured_secret_is_scrubbed_even_without_requests() -> None:
    # One cached scrubber per configuration; many configurations never mix their secrets.
    for n in range(20):
        secret = f"configured-secret-{n:02d}"
        run = _Run(make_config(appSecret=secret), Runtime(), SessionState(), ProviderState())

        def body(text: str = secret) -> Generator[HttpRequest, HttpResponse | None, str]:
            raise OAuthError("invalid_request", error_description=f"no {text} here")
            yield HttpRequest.get("http://127.0.0.1:1/never")  # pragma: no cover

        flow = _guarded(run, body())
        with pytest.raises(StopIteration) as stop:
            next(flow)
        error = stop.value.value.error
        assert isinstance(error, OAuthError)
        assert error.error_description == f"no {REDACTED} here", n


def test_a_message_never_joins_pieces_into_a_secret() -> None:
    # "sec\x00ret" is not the secret, but its excerpt in the message ("sec ret") would be.
    run = _Run(make_config(appSecret="sec ret"), Runtime(), SessionState(), ProviderState())

    def body() -> Generator[HttpRequest, HttpResponse | None, str]:
        raise OAuthError("invalid_request", error_description="a sec\x00ret b")
        yield HttpRequest.get("http://127.0.0.1:1/never")  # pragma: no cover

    with pytest.raises(StopIteration) as stop:
        next(_guarded(run, body()))
    error = stop.value.value.error
    assert isinstance(error, OAuthError) and "sec ret" not in str(error)
    assert str(error).startswith("provider answered invalid_request: a ")


def test_the_chain_is_followed_through_other_exceptions() -> None:
    def body() -> Generator[HttpRequest, HttpResponse | None, str]:
        yield HttpRequest.post_form("http://127.0.0.1:1/t", [("refresh_token", "rt-0123456789")])
        inner = OAuthError("invalid_grant", error_description="rt-0123456789 is dead")
        try:
            try:
                raise inner
            except OAuthError as error:
                raise ValueError("a library wrapped it") from error
        except ValueError as error:
            raise SignInRequiredError("sign in again") from error

    flow = _guarded(_guarded_run(), body())
    next(flow)
    with pytest.raises(StopIteration) as stop:
        flow.send(HttpResponse.build(400))
    error = stop.value.value.error
    assert isinstance(error, SignInRequiredError)
    assert isinstance(error.__cause__, ValueError)
    inner = error.__cause__.__cause__
    assert isinstance(inner, OAuthError) and inner.error_description == f"{REDACTED} is dead"


def test_flow_bounds_hold_inside_operations() -> None:
    """A runaway flow is stopped by its own guard wherever it runs (an operation driven by
    the clients' driver included): MAX_REQUESTS_PER_FLOW exchanges, each with its retries
    and waits (which count as one exchange), then the flow ends with a FlowLimitError."""
    retries = 3
    run = _guarded_run()
    run.policy = ExchangePolicy(RetryPolicy(max_retries=retries, base_delay=0.0), (5, 10))
    down = HttpRequest.get("http://127.0.0.1:1/oidc/jwks", purpose="jwks")

    def body() -> Generator[HttpRequest | Sleep, HttpResponse | None, str]:
        while True:  # every exchange fails: a loop that never gives up
            with contextlib.suppress(TransportError):
                yield from run.send(down)

    def operation() -> Generator[Any, Any, Outcome[str]]:
        yield "load"
        outcome = yield from _guarded(run, body())
        yield "save"
        return outcome

    performed: list[object] = []

    def perform(effect: object) -> object:
        performed.append(effect)
        if isinstance(effect, HttpRequest):
            raise policy.connection_failed(effect, "refused")
        return None

    outcome = run_operation(operation(), perform)
    assert isinstance(outcome.error, FlowLimitError)
    sends = [e for e in performed if isinstance(e, HttpRequest)]
    sleeps = [e for e in performed if isinstance(e, Sleep)]
    assert len(sends) == MAX_REQUESTS_PER_FLOW * (1 + retries)
    assert len(sleeps) == MAX_REQUESTS_PER_FLOW * retries
    assert sum(e.attempt == 0 for e in sends) == MAX_REQUESTS_PER_FLOW
    assert performed[0] == "load" and performed[-1] == "save"  # the operation went on


def test_operation_bound_counts_exchanges_not_their_retries() -> None:
    """An operation within MAX_EFFECTS_PER_OPERATION effects is not stopped by the retries
    and waits of its exchanges; a runaway of waits alone is, by the backstop."""
    retry = ExchangePolicy(RetryPolicy(max_retries=10, base_delay=0.0), (5, 10))
    runtime = Runtime()
    jwks = HttpRequest.get("http://127.0.0.1:1/oidc/jwks", purpose="jwks")

    def busy() -> Generator[Any, Any, int]:
        for _ in range(MAX_EFFECTS_PER_OPERATION - 1):
            with contextlib.suppress(TransportError):
                yield from exchange(jwks, retry, runtime=runtime)
        return 1

    def refuse(effect: object) -> object:
        if isinstance(effect, HttpRequest):
            raise policy.connection_failed(effect, "refused")
        return None

    assert run_operation(busy(), refuse) == 1  # 63 exchanges, 693 sends, 630 waits

    def waits_forever() -> Generator[Sleep, None, None]:
        while True:
            yield Sleep(0.0)

    with pytest.raises(FlowLimitError):
        run_operation(waits_forever(), lambda effect: None, max_effects=4)
