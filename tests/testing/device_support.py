"""Helpers for the device-flow tests: device clients, the device authorization request, a poll."""

from __future__ import annotations

from typing import Any

from logto_core.http import HttpResponse

from .conftest import ISSUER, TOKEN_URL, World, basic, body, form

DEVICE_AUTH_URL = ISSUER + "/device/auth"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE = r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}"


def add_device_clients(world: World) -> None:
    """``tv``: a native app with the device flow; ``box``: a confidential one."""
    world.provider.add_client("tv", kind="native", device_flow=True)
    world.provider.add_client("box", kind="traditional", secret="box-secret", device_flow=True)


def _auth(client_id: str, pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    secrets = {"box": "box-secret", "web": "web-secret", "m2m": "m2m-secret"}
    if client_id in secrets:
        return basic(client_id, secrets[client_id])
    pairs.append(("client_id", client_id))
    return None


def start(
    world: World,
    client_id: str = "tv",
    *,
    scope: str | None = "openid offline_access profile",
    resources: tuple[str, ...] = (),
) -> HttpResponse:
    """The device authorization request."""
    pairs = [("resource", resource) for resource in resources]
    if scope is not None:
        pairs.append(("scope", scope))
    headers = _auth(client_id, pairs)
    return world.provider.handle(form(DEVICE_AUTH_URL, pairs, headers))


def started(world: World, client_id: str = "tv", **kwargs: Any) -> dict[str, Any]:
    response = start(world, client_id, **kwargs)
    assert response.status == 200, response.body
    result: dict[str, Any] = body(response)
    return result


def poll(world: World, device_code: str, client_id: str = "tv") -> HttpResponse:
    """One token request of the device_code grant."""
    pairs = [("grant_type", DEVICE_GRANT), ("device_code", device_code)]
    headers = _auth(client_id, pairs)
    return world.provider.handle(form(TOKEN_URL, pairs, headers))


def polled_error(world: World, device_code: str, client_id: str = "tv") -> tuple[int, str]:
    response = poll(world, device_code, client_id)
    return response.status, str(body(response).get("error"))
