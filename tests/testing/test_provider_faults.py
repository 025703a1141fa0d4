"""Fault injection: replaced answers, delays, and tampered ID tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc.errors import BadSignatureError
from joserfc.jws import JWSRegistry

from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest
from logto_core.testing import Fault

from .conftest import ISSUER, World, body, verify

JWKS = HttpRequest.get(ISSUER + "/jwks")


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    def decode(part: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        return result

    head, payload, signature = token.split(".")
    return decode(head), decode(payload), signature


def test_status_and_json_body_replaced_once(world: World) -> None:
    world.provider.faults.add(Fault("jwks", status=503, body={"error": "server_error"}))
    broken = world.provider.handle(JWKS)
    assert broken.status == 503
    assert body(broken) == {"error": "server_error"}
    assert broken.header("content-type") == "application/json"
    assert world.provider.handle(JWKS).status == 200
    assert len(world.provider.faults) == 0


def test_raw_body_and_headers(world: World) -> None:
    fault = Fault(
        "discovery",
        body=b"<html>",
        headers={"content-type": "text/html", "x-extra": "1", "Cache-Control": None},
    )
    world.provider.faults.add(fault)
    world.provider.faults.add(Fault("jwks", headers={"cache-control": None}))
    response = world.provider.handle(HttpRequest.get(world.provider.discovery_url))
    assert (response.status, response.body) == (200, b"<html>")
    assert response.header("content-type") == "text/html"
    assert response.header("x-extra") == "1"
    assert world.provider.handle(JWKS).header("cache-control") is None


def test_delay_is_reported_not_slept(world: World) -> None:
    world.provider.faults.add(Fault("jwks", delay=30.0))
    reply = world.provider.respond(JWKS)
    assert reply.delay == 30.0
    assert reply.response.status == 200
    assert world.provider.respond(JWKS).delay == 0.0


def test_times_and_ordering(world: World) -> None:
    world.provider.faults.add(Fault("jwks", status=500, times=2))
    world.provider.faults.add(Fault("jwks", status=429))
    statuses = [world.provider.handle(JWKS).status for _ in range(4)]
    assert statuses == [500, 500, 429, 200]


def test_unlimited_until_cleared(world: World) -> None:
    world.provider.faults.add(Fault("jwks", status=500, times=None))
    assert [world.provider.handle(JWKS).status for _ in range(3)] == [500] * 3
    assert len(world.provider.faults.pending) == 1
    world.provider.faults.clear()
    assert world.provider.handle(JWKS).status == 200


def test_grant_type_filter(world: World) -> None:
    world.provider.faults.add(Fault("token", grant_type="refresh_token", status=502))
    tokens = world.tokens()  # authorization_code request is not affected
    assert world.refresh(tokens["refresh_token"]).status == 502


def test_id_token_claims_mutated_and_removed(world: World) -> None:
    world.provider.faults.add(Fault("token", id_token_claims={"aud": "other", "nonce": None}))
    claims = verify(world.provider, world.tokens()["id_token"]).claims
    assert claims["aud"] == "other"
    assert "nonce" not in claims


def test_id_token_header_alg_none_is_resigned(world: World) -> None:
    world.provider.faults.add(Fault("token", id_token_header={"alg": "none"}))
    token = world.tokens()["id_token"]
    header, _, signature = segments(token)
    assert header["alg"] == "none"
    # Still signed with the real key, so only the header lies.
    key = world.provider.signing_key
    signing_input = token.rsplit(".", 1)[0].encode()
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert JWSRegistry.algorithms[key.alg].verify(signing_input, raw, key.key)


def test_id_token_header_kid_removed(world: World) -> None:
    world.provider.faults.add(Fault("token", id_token_header={"kid": None, "typ": "JWT"}))
    header, _, _ = segments(world.tokens()["id_token"])
    assert "kid" not in header
    assert header["typ"] == "JWT"


def test_unsigned_id_token(world: World) -> None:
    world.provider.faults.add(Fault("token", id_token_header={"alg": "none"}, unsigned=True))
    token = world.tokens()["id_token"]
    assert token.endswith(".")
    assert segments(token)[2] == ""


def test_bad_signature(world: World) -> None:
    world.provider.faults.add(Fault("token", bad_signature=True))
    token = world.tokens()["id_token"]
    with pytest.raises(BadSignatureError):
        verify(world.provider, token)


def test_id_token_fault_on_refresh(world: World) -> None:
    tokens = world.tokens()
    world.provider.faults.add(
        Fault("token", grant_type="refresh_token", id_token_claims={"sub": "mallory"})
    )
    refreshed = body(world.refresh(tokens["refresh_token"]))
    assert verify(world.provider, refreshed["id_token"]).claims["sub"] == "mallory"


def test_fault_on_error_answers_and_unknown_routes(world: World) -> None:
    world.provider.faults.add(Fault("not_found", status=502))
    assert world.provider.handle(HttpRequest.get(ISSUER + "/nowhere")).status == 502
    world.provider.faults.add(Fault("userinfo", delay=1.5))
    reply = world.provider.respond(HttpRequest.get(ISSUER + "/me"))
    assert (reply.response.status, reply.delay) == (401, 1.5)


def test_fault_without_changes_is_consumed_harmlessly(world: World) -> None:
    fault = Fault("jwks")
    assert not fault.touches_id_token
    assert Fault("token", unsigned=True).touches_id_token
    world.provider.faults.add(fault)
    assert world.provider.handle(JWKS).status == 200
    assert len(world.provider.faults) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"endpoint": "nowhere"}, {"endpoint": "jwks", "times": 0}, {"endpoint": "jwks", "delay": -1}],
)
def test_invalid_faults(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LogtoUsageError):
        Fault(**kwargs)
