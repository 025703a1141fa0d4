"""The edges of the new grants' code: every hint, the token-exchange answer's
``issued_token_type``, a device grant without an ID token, a flight result that is not a
token, and the bound of a device wait."""

from __future__ import annotations

from typing import Any

import pytest

from logto_core import changes, hints
from logto_core import operations as ops
from logto_core.driver import run_operation
from logto_core.errors import FlowLimitError, ProviderError, TransportError
from logto_core.protocol.token_exchange import TokenType, parse_token_exchange_response
from logto_core.session import SessionState, TokenKey
from logto_core.singleflight import Follow

from .factories import json_response
from .test_device_wait import START, Clock, Script, authorization, context
from .test_m2m_cache import Machine


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (hints.client_credentials("invalid_target"), "API identifier"),
        (hints.client_credentials("access_denied"), "member of the organization"),
        (hints.client_credentials("unauthorized_client"), "machine-to-machine application"),
        (hints.client_credentials("invalid_scope"), "scopes the API resource defines"),
        (hints.device_authorization("unauthorized_client"), "device flow enabled"),
        (hints.device_authorization("invalid_target"), "LogtoConfig.resources"),
        (hints.token_exchange("invalid_grant", "invalid actor token"), "actorToken"),
        (hints.token_exchange("invalid_grant", "subject token is already consumed"), "single-use"),
        (hints.token_exchange("invalid_grant", "subject token is expired"), "expired"),
        (hints.token_exchange("invalid_grant", "subject token not found"), "does not know"),
        (hints.token_exchange("invalid_grant", None), "not usable"),
        (hints.token_exchange("unauthorized_client", None), "enable it"),
        (hints.token_exchange("unsupported_grant_type", None), "enable it"),
        (hints.token_exchange("invalid_target", None), "API resource"),
        (hints.token_exchange("access_denied", None), "member"),
    ],
)
def test_each_hint_names_its_fix(hint: str | None, expected: str) -> None:
    assert hint is not None and expected in hint


def test_errors_without_a_known_fix_get_no_hint() -> None:
    assert hints.client_credentials("server_error") is None
    assert hints.device_authorization("server_error") is None
    assert hints.token_exchange("server_error", "anything") is None


BODY = {"access_token": "opaque-token-value", "token_type": "Bearer", "expires_in": 600}


@pytest.mark.parametrize(
    "issued", [None, TokenType.access_token.value, "urn:ietf:params:oauth:token-type:jwt"]
)
def test_an_issued_access_token_is_accepted(issued: str | None) -> None:
    body = {**BODY, "refresh_token": "dropped-refresh", "scope": "read"}
    if issued is not None:
        body["issued_token_type"] = issued
    exchanged = parse_token_exchange_response(json_response(body), 100.0)
    assert exchanged.issued_token_type == (issued or TokenType.access_token.value)
    assert exchanged.expires_at == 700.0 and exchanged.scopes == ["read"]
    assert not hasattr(exchanged, "refresh_token")


@pytest.mark.parametrize(
    "issued", ["urn:ietf:params:oauth:token-type:refresh_token", "urn:x:other", 5]
)
def test_another_issued_token_type_is_refused(issued: object) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_token_exchange_response(json_response({**BODY, "issued_token_type": issued}), 1.0)
    assert caught.value.code == "token_exchange.issued_token_type"


def test_a_device_grant_without_an_id_token_fails() -> None:
    clock = Clock()

    class Granting(Script):
        @staticmethod
        def respond(answer: str) -> Any:
            return json_response(BODY)

    script = Granting(clock, [], "granted")
    operation = ops.wait_device_sign_in_op(context(clock), authorization(5, 600))
    with pytest.raises(ProviderError) as caught:
        run_operation(operation, script.perform, max_effects=ops.DEVICE_WAIT_EFFECTS)
    assert caught.value.code == "token.id_token_missing"


def test_a_device_sign_in_without_an_id_token_changes_nothing() -> None:
    assert changes.device_signed_in(SessionState())(SessionState()) is None


def test_a_flight_result_that_is_not_a_token_is_a_transient_error() -> None:
    machine = Machine()
    plain = machine.perform

    def perform(effect: Any) -> object:
        if isinstance(effect, ops.Shielded):
            effect.operation.close()
            return Follow(object())
        if isinstance(effect, ops.AwaitFlight):
            return ops._RELEASED  # what a released flight answers
        return plain(effect)

    key = TokenKey.of("https://a.example.com")
    with pytest.raises(TransportError) as caught:
        run_operation(ops.m2m_token_op(machine.ctx, key), perform)
    assert caught.value.code == "transport.refresh_interrupted"
    assert not machine.session.access_tokens


def test_a_device_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "MAX_DEVICE_STEPS", 5)
    clock = Clock()
    script = Script(clock, [], "authorization_pending")
    operation = ops.wait_device_sign_in_op(context(clock), authorization(1, 600))
    with pytest.raises(FlowLimitError):
        run_operation(operation, script.perform, max_effects=ops.DEVICE_WAIT_EFFECTS)
    assert clock.now < START + 10
