"""client_credentials grant for machine-to-machine apps."""

from __future__ import annotations

import pytest

from .conftest import API, TOKEN_URL, World, basic, body, form, verify


def m2m(world: World, *extra: tuple[str, str]) -> tuple[int, dict[str, object]]:
    pairs = [("grant_type", "client_credentials"), *extra]
    response = world.provider.handle(form(TOKEN_URL, pairs, basic("m2m", "m2m-secret")))
    return response.status, body(response)


def test_resource_token(world: World) -> None:
    world.provider.grant_permissions("m2m", API, ["read", "delete"])
    status, tokens = m2m(world, ("resource", API), ("scope", "read delete"))
    assert status == 200
    assert set(tokens) == {"access_token", "expires_in", "token_type", "scope"}
    claims = verify(world.provider, str(tokens["access_token"])).claims
    assert (claims["sub"], claims["client_id"], claims["aud"]) == ("m2m", "m2m", API)
    assert claims["scope"] == "delete read"


def test_without_scope_no_scope_is_granted(world: World) -> None:
    """As oidc-provider's grant, and so Logto: only the scopes asked for are granted."""
    world.provider.grant_permissions("m2m", API, ["read", "delete"])
    _, tokens = m2m(world, ("resource", API))
    assert tokens["scope"] == ""
    assert not verify(world.provider, str(tokens["access_token"])).claims["scope"]


def test_scope_parameter_narrows(world: World) -> None:
    world.provider.grant_permissions("m2m", API, ["read", "delete"])
    _, tokens = m2m(world, ("resource", API), ("scope", "read write"))
    assert tokens["scope"] == "read"


def test_resource_ttl_is_used(world: World) -> None:
    world.provider.add_resource("https://short.example.com", ["x"], access_token_ttl=60)
    _, tokens = m2m(world, ("resource", "https://short.example.com"))
    assert tokens["expires_in"] == 60


def test_organization_token(world: World) -> None:
    world.provider.add_member("org-1", "m2m", roles=["bot"], scopes=["read:org"])
    _, tokens = m2m(world, ("organization_id", "org-1"), ("scope", "read:org"))
    claims = verify(world.provider, str(tokens["access_token"])).claims
    assert claims["aud"] == "urn:logto:organization:org-1"
    assert claims["scope"] == "read:org"
    assert "organization_id" not in claims


def test_organization_scoped_resource_token(world: World) -> None:
    world.provider.add_member("org-1", "m2m")
    world.provider.grant_organization_resource_permissions("org-1", "m2m", API, ["read"])
    _, tokens = m2m(world, ("organization_id", "org-1"), ("resource", API), ("scope", "read"))
    claims = verify(world.provider, str(tokens["access_token"])).claims
    assert (claims["aud"], claims["organization_id"], claims["scope"]) == (API, "org-1", "read")


def test_neither_resource_nor_organization_is_invalid_target(world: World) -> None:
    status, answer = m2m(world)
    assert (status, answer["error"]) == (400, "invalid_target")


def test_unknown_resource_is_invalid_target(world: World) -> None:
    assert m2m(world, ("resource", "https://nope.example.com"))[1]["error"] == "invalid_target"


def test_not_a_member_is_access_denied(world: World) -> None:
    status, answer = m2m(world, ("organization_id", "org-1"))
    assert (status, answer["error"]) == (403, "access_denied")


@pytest.mark.parametrize("client_id", ["spa", "web"])
def test_only_m2m_apps(world: World, client_id: str) -> None:
    pairs = [("grant_type", "client_credentials"), ("resource", API)]
    headers = basic("web", "web-secret") if client_id == "web" else None
    if headers is None:
        pairs.append(("client_id", client_id))
    response = world.provider.handle(form(TOKEN_URL, pairs, headers))
    assert body(response)["error"] == "unauthorized_client"
