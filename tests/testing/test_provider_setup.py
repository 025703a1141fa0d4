"""Setup API of the test provider: registration checks and small helpers."""

from __future__ import annotations

from typing import Any

import pytest

from logto_core.errors import LogtoUsageError
from logto_core.testing import Fault, TestProvider

from .conftest import API, Clock, World, basic, body, verify
from .test_provider_other_endpoints import end


def test_default_runtime_and_endpoint() -> None:
    provider = TestProvider(clock=Clock())
    assert provider.issuer == "http://127.0.0.1:3001/oidc"
    assert provider.authorization_endpoint == "http://127.0.0.1:3001/oidc/auth"


@pytest.mark.parametrize(
    ("client_id", "kwargs"),
    [
        ("", {"kind": "spa"}),
        ("x", {"kind": "desktop"}),
        ("x", {"kind": "traditional"}),
        ("x", {"kind": "m2m", "secret": ""}),
        ("x", {"kind": "native", "secret": "s"}),
    ],
)
def test_add_client_checks(world: World, client_id: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(LogtoUsageError):
        world.provider.add_client(client_id, **kwargs)


def test_client_repr_hides_secret(world: World) -> None:
    client = world.provider.directory.clients["web"]
    assert "web-secret" not in repr(client)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: p.add_user(""),
        lambda p: p.add_resource("not absolute", ["x"]),
        lambda p: p.add_resource("urn:logto:resource:organizations", ["x"]),
        lambda p: p.add_resource("https://x.example.com", ["x"], access_token_ttl=0),
        lambda p: p.grant_permissions("user-1", "https://unknown.example.com", ["x"]),
        lambda p: p.grant_permissions("user-1", API, ["fly"]),
        lambda p: p.add_organization(""),
        lambda p: p.add_member("org-404", "user-1"),
        lambda p: p.add_member("org-1", "nobody"),
        lambda p: p.grant_organization_resource_permissions("org-404", "user-1", API, ["read"]),
        lambda p: p.suspend_user("ghost"),
    ],
)
def test_setup_errors(world: World, call: Any) -> None:
    with pytest.raises(LogtoUsageError) as caught:
        call(world.provider)
    assert caught.value.code == "testing.setup"


def test_code_repr_hides_value(world: World) -> None:
    code = world.sign_in()["code"]
    stored = world.provider.store.codes[code]
    assert code not in repr(stored)


def test_confidential_client_without_pkce_exchanges(world: World) -> None:
    code = world.sign_in("web", code_challenge=None, code_challenge_method=None)["code"]
    response = world.exchange(
        code, client_id="web", headers=basic("web", "web-secret"), verifier=None
    )
    assert response.status == 200


def test_code_of_revoked_grant(world: World) -> None:
    code = world.sign_in()["code"]
    assert world.provider.revoke_grants("user-1") == 1
    assert world.provider.revoke_grants("user-1") == 0
    assert body(world.exchange(code))["error"] == "invalid_grant"


def test_unknown_refresh_token_is_inactive(world: World) -> None:
    assert not world.provider.is_refresh_token_active("nope")


def test_end_session_hint_from_previous_key_and_wrong_alg(world: World) -> None:
    hint = world.tokens()["id_token"]
    world.provider.rotate_signing_key()
    assert world.provider.keys.verify(hint) is not None
    world.provider.faults.add(Fault("token", id_token_header={"alg": "ES256"}))
    forged = world.tokens()["id_token"]
    assert world.provider.keys.verify(forged) is None
    world.provider.faults.add(Fault("token", id_token_header={"kid": "unknown"}))
    assert world.provider.keys.verify(world.tokens()["id_token"]) is None


def test_hint_without_sid_still_ends(world: World) -> None:
    world.provider.faults.add(Fault("token", id_token_claims={"sid": None}))
    hint = world.tokens()["id_token"]
    assert "sid" not in verify(world.provider, hint).claims
    assert end(world, id_token_hint=hint).status == 200
    assert world.provider.ended_sessions == []


def test_fault_for_other_endpoint_does_not_match() -> None:
    fault = Fault("token", grant_type="refresh_token")
    assert not fault.matches("jwks", None)
    assert not fault.matches("token", "authorization_code")
    assert fault.matches("token", "refresh_token")


def test_user_with_roles_in_several_organizations(world: World) -> None:
    world.provider.add_organization("org-2", name="Beta")
    world.provider.add_member("org-2", "user-1", roles=["owner", "viewer"])
    claims = verify(
        world.provider,
        world.tokens(scope="openid urn:logto:scope:organization_roles")["id_token"],
    ).claims
    assert claims["organization_roles"] == ["org-1:member", "org-2:owner", "org-2:viewer"]


def test_hint_with_bad_signature_is_refused(world: World) -> None:
    world.provider.faults.add(Fault("token", bad_signature=True))
    assert world.provider.keys.verify(world.tokens()["id_token"]) is None
