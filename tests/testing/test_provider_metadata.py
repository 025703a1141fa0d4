"""Discovery, JWKS, key rotation and routing of the test provider."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError
from joserfc.jwk import KeySet

from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest
from logto_core.testing import TestProvider

from .conftest import ENDPOINT, ISSUER, Clock, World, body, seeded_runtime, verify


def test_discovery_advertises_logto_metadata(world: World) -> None:
    response = world.provider.handle(HttpRequest.get(ISSUER + "/.well-known/openid-configuration"))
    assert response.status == 200
    doc = body(response)
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == ISSUER + "/auth"
    assert doc["token_endpoint"] == ISSUER + "/token"
    assert doc["userinfo_endpoint"] == ISSUER + "/me"
    assert doc["jwks_uri"] == ISSUER + "/jwks"
    assert doc["revocation_endpoint"] == ISSUER + "/token/revocation"
    assert doc["introspection_endpoint"] == ISSUER + "/token/introspection"
    assert doc["end_session_endpoint"] == ISSUER + "/session/end"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["id_token_signing_alg_values_supported"] == ["ES384"]
    assert doc["backchannel_logout_supported"] is True
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_jwt",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        doc["grant_types_supported"]
    )
    assert "urn:logto:scope:organizations" in doc["scopes_supported"]
    assert "custom_data" in doc["claims_supported"]
    assert "registration_endpoint" not in doc
    assert "userinfo_signing_alg_values_supported" not in doc


def test_discovery_alias_is_identical(world: World) -> None:
    first = world.provider.handle(HttpRequest.get(ISSUER + "/.well-known/openid-configuration"))
    alias = world.provider.handle(
        HttpRequest.get(ISSUER + "/.well-known/oauth-authorization-server")
    )
    assert alias.status == 200
    assert body(alias) == body(first)


def test_jwks_is_no_cache_and_lists_signing_key(world: World) -> None:
    response = world.provider.handle(HttpRequest.get(ISSUER + "/jwks"))
    assert response.header("cache-control") == "no-cache"
    (key,) = body(response)["keys"]
    assert key["kid"] == world.provider.signing_key.kid
    assert key["alg"] == "ES384"
    assert key["use"] == "sig"
    assert key["crv"] == "P-384"
    assert "d" not in key  # never the private part


def test_rotation_keeps_old_tokens_verifiable(world: World) -> None:
    old = world.tokens()["id_token"]
    old_kid = world.provider.signing_key.kid
    new_kid = world.provider.rotate_signing_key()
    assert new_kid != old_kid
    keys = body(world.provider.handle(HttpRequest.get(ISSUER + "/jwks")))["keys"]
    assert [k["kid"] for k in keys] == [new_kid, old_kid]
    assert verify(world.provider, old).claims["sub"] == "user-1"
    new = world.tokens()["id_token"]
    assert verify(world.provider, new).header["kid"] == new_kid


def test_rotation_without_previous_drops_old_key(world: World) -> None:
    old = world.tokens()["id_token"]
    world.provider.rotate_signing_key(keep_previous=False)
    jwks = body(world.provider.handle(HttpRequest.get(ISSUER + "/jwks")))
    assert len(jwks["keys"]) == 1
    with pytest.raises(InvalidKeyIdError):
        jwt.decode(old, KeySet.import_key_set(jwks), algorithms=["ES384"])


def test_rotation_to_another_algorithm_changes_discovery(world: World) -> None:
    world.provider.rotate_signing_key("RS256")
    doc = body(world.provider.handle(HttpRequest.get(ISSUER + "/.well-known/openid-configuration")))
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    token = world.tokens()["id_token"]
    decoded = verify(world.provider, token)
    assert decoded.header["alg"] == "RS256"
    assert "typ" not in decoded.header


@pytest.mark.parametrize(("alg", "crv"), [("ES256", "P-256"), ("ES512", "P-521")])
def test_other_elliptic_algorithms(alg: str, crv: str) -> None:
    clock = Clock()
    provider = TestProvider(ENDPOINT, clock=clock, runtime=seeded_runtime(clock), signing_alg=alg)
    (key,) = provider.keys.jwks()["keys"]
    assert (key["alg"], key["crv"]) == (alg, crv)


def test_unknown_algorithm_is_a_usage_error() -> None:
    with pytest.raises(LogtoUsageError):
        TestProvider(ENDPOINT, clock=Clock(), signing_alg="HS256")


def test_forged_signature_fails_joserfc_verification(world: World) -> None:
    token = world.tokens()["id_token"]
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(BadSignatureError):
        verify(world.provider, forged)


def test_keyring_verify_rejects_malformed_tokens(world: World) -> None:
    keys = world.provider.keys
    assert keys.verify("not-a-jwt") is None
    assert keys.verify("!!.!!.!!") is None
    assert keys.verify("WzFd.WzFd.AA") is None  # header and payload are JSON arrays


def test_unknown_route_is_404_invalid_request(world: World) -> None:
    response = world.provider.handle(HttpRequest.get(ISSUER + "/nope"))
    assert response.status == 404
    assert body(response)["error"] == "invalid_request"
    assert body(response)["code"] == "oidc.invalid_request"


def test_wrong_method_and_foreign_prefix_are_404(world: World) -> None:
    assert world.provider.handle(HttpRequest.get(ISSUER + "/token")).status == 404
    assert world.provider.handle(HttpRequest.get(ENDPOINT + "/api/jwks")).status == 404


def test_endpoint_with_path_prefix() -> None:
    clock = Clock()
    provider = TestProvider("https://auth.example.com/tenant-1/", clock=clock)
    assert provider.issuer == "https://auth.example.com/tenant-1/oidc"
    response = provider.handle(HttpRequest.get(provider.discovery_url))
    assert body(response)["token_endpoint"] == "https://auth.example.com/tenant-1/oidc/token"


def test_log_records_requests(world: World) -> None:
    world.provider.handle(HttpRequest.get(ISSUER + "/jwks"))
    entry = world.provider.log[-1]
    assert (entry.endpoint, entry.method, entry.grant_type) == ("jwks", "GET", None)
