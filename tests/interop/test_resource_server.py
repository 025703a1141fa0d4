"""LogtoResourceServer (both clients) verifying the access tokens of a real OpenID provider
(oidc-provider configured like Logto): machine-to-machine, user and organization tokens, and
every bad token: expired, for another API, from another issuer, ``alg: none``, HMAC signed
with the provider's public key, an ID token, a missing scope, another organization, a
tampered signature, an unknown key after a rotation (refetched once, then refused), garbage.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from joserfc.jwk import OctKey

from logto_adapters import aio, sync
from logto_adapters.testing import serve_provider
from logto_core.jose.jwt import decode_unverified
from logto_core.runtime import Runtime
from logto_core.testing import TestProvider
from tests.jwt_factory import KEYS, sign

from .conftest import Clock, Driver, HttpBrowser, RealProvider, make_m2m_driver
from .tenant import (
    ALICE,
    ALICE_ORG,
    API_A,
    API_B,
    M2M_APP,
    M2M_ORG,
    OTHER_ORG,
    organization_audience,
)
from .test_flows import new_client, sign_in

PERMISSIONS = ["read", "write"]


def module_of(kind: str) -> Any:
    return sync if kind == "sync" else aio


def resource_server(
    kind: str, provider: RealProvider, clock: Clock, audience: str = API_A
) -> Driver:
    server = module_of(kind).LogtoResourceServer(
        provider.base, audience, realm="api", runtime=Runtime(clock=clock), timeout=(2.0, 10.0)
    )
    return Driver(kind, server)


def closed(driver: Driver) -> None:
    if driver.kind == "sync":
        driver.client.close()
    else:
        asyncio.run(driver.client.aclose())


@pytest.fixture
def api(kind: str, real_provider: RealProvider, clock: Clock) -> Iterator[Driver]:
    driver = resource_server(kind, real_provider, clock)
    yield driver
    closed(driver)


@pytest.fixture
def m2m(kind: str, real_provider: RealProvider, clock: Clock) -> Driver:
    return make_m2m_driver(kind, real_provider, clock)


def refused(api: Driver, token: str | None, code: str, *args: Any, **kwargs: Any) -> Any:
    with pytest.raises(sync.AccessTokenError) as caught:
        api.verify(token, *args, **kwargs)
    error = caught.value
    assert error.code == code, error
    for part in (token or "").split("."):
        if len(part) > 8:
            assert part not in str(error) and part not in repr(error)
            assert part not in error.www_authenticate()
    return error


def forged(token: str, **claims: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a real token, with ``claims`` changed, to sign another way."""
    header, payload = decode_unverified(token)
    return header, {**payload, **claims}


# ---- real tokens ----------------------------------------------------------------------------


def test_a_machine_token_verifies_without_more_requests(
    api: Driver, m2m: Driver, real_provider: RealProvider
) -> None:
    token = m2m.getAccessToken(resource=API_A, scopes=PERMISSIONS)
    claims = api.verify(token, PERMISSIONS)
    assert (claims.sub, claims.client_id, claims.aud) == (M2M_APP, M2M_APP, API_A)
    assert claims.iss == real_provider.issuer and claims.jti
    jwks = real_provider.requests_to("jwks")
    assert jwks == 1
    for _ in range(3):
        assert api.verifyAuthorization(f"Bearer {token}", "read write").jti == claims.jti
    assert real_provider.requests_to("jwks") == jwks
    error = refused(
        api, m2m.getAccessToken(resource=API_A), "access_token.insufficient_scope", ["read"]
    )
    assert error.status == 403 and error.scope == "read"


def test_machine_organization_tokens(
    kind: str, api: Driver, m2m: Driver, real_provider: RealProvider, clock: Clock
) -> None:
    scoped = m2m.getAccessToken(resource=API_A, organizationId=M2M_ORG, scopes=["read"])
    assert api.verify(scoped, ["read"], M2M_ORG).organization_id == M2M_ORG
    refused(api, scoped, "access_token.organization_mismatch", None, OTHER_ORG)
    org_token = m2m.getAccessToken(organizationId=M2M_ORG, scopes=["read:docs"])
    refused(api, org_token, "access_token.aud_mismatch")
    org_api = resource_server(kind, real_provider, clock, organization_audience(M2M_ORG))
    try:
        assert org_api.verify(org_token, ["read:docs"], M2M_ORG).sub == M2M_APP
        refused(org_api, org_token, "access_token.organization_mismatch", None, OTHER_ORG)
        refused(org_api, org_token, "access_token.insufficient_scope", ["write:docs"])
    finally:
        closed(org_api)


def test_a_user_s_tokens(kind: str, api: Driver, real_provider: RealProvider, clock: Clock) -> None:
    client = new_client(kind, real_provider, clock, "confidential")
    sign_in(client, HttpBrowser())
    token = client.getAccessToken(API_A)
    claims = api.verify(token, ["read"])
    assert claims.sub == ALICE[2] and claims.client_id == client.client.config.appId
    refused(api, token, "access_token.insufficient_scope", ["write"])  # alice lacks it
    refused(api, client.getAccessToken(API_B), "access_token.aud_mismatch")
    # The ID token is no access token (no typ, aud the client), refused before any fetch.
    before = real_provider.requests_to("jwks")
    refused(api, client.getIdToken(), "access_token.typ_not_allowed")
    assert real_provider.requests_to("jwks") == before
    org_api = resource_server(kind, real_provider, clock, organization_audience(ALICE_ORG))
    try:
        org_token = client.getOrganizationToken(ALICE_ORG)
        assert org_api.verify(org_token, ["read:docs"], ALICE_ORG).sub == ALICE[2]
        refused(org_api, org_token, "access_token.organization_mismatch", None, OTHER_ORG)
    finally:
        closed(org_api)


# ---- bad tokens -----------------------------------------------------------------------------


def test_an_expired_token(api: Driver, m2m: Driver, clock: Clock) -> None:
    token = m2m.getAccessToken(resource=API_A)
    api.verify(token)
    clock.advance(3600 + 61)  # past the token's expiry and the 60 s clock tolerance
    error = refused(api, token, "access_token.expired")
    assert (error.status, error.error) == (401, "invalid_token")
    assert error.www_authenticate().startswith('Bearer realm="api", error="invalid_token"')


def test_a_token_of_another_issuer(kind: str, api: Driver, clock: Clock) -> None:
    """A token for the same API from another Logto-like tenant (the test provider)."""
    with serve_provider(lambda url: TestProvider(url, clock=clock), max_delay=5.0) as other:
        other.provider.add_client("intruder", secret="s" * 32, kind="m2m")
        other.provider.add_resource(API_A, ["read"])
        other.provider.grant_permissions("intruder", API_A, ["read"])
        intruder = module_of(kind).LogtoM2MClient(
            module_of(kind).LogtoConfig(endpoint=other.url, appId="intruder", appSecret="s" * 32),
            runtime=Runtime(clock=clock),
        )
        token = Driver(kind, intruder).getAccessToken(API_A, scopes=["read"])
        closed(Driver(kind, intruder))
    assert decode_unverified(token)[1]["aud"] == API_A
    refused(api, token, "access_token.kid_unknown")  # not signed by the provider's keys
    header, claims = forged(token)
    key = KEYS["P-384"]
    with_our_key = sign({**header, "kid": key.kid}, claims, key=key.private)
    refused(api, with_our_key, "access_token.kid_unknown")


def test_alg_none_and_hmac_with_the_public_key(
    api: Driver, m2m: Driver, real_provider: RealProvider
) -> None:
    token = m2m.getAccessToken(resource=API_A)
    header, claims = forged(token, scope="read write")
    refused(
        api,
        sign({**header, "alg": "none"}, claims, sign_alg="none"),
        "access_token.alg_not_allowed",
    )
    jwks = requests.get(f"{real_provider.issuer}/jwks", timeout=10).json()
    public = next(key for key in jwks["keys"] if key["kid"] == header["kid"])
    for secret in (json.dumps(public).encode(), json.dumps(public, sort_keys=True).encode()):
        hmac = sign(
            {**header, "alg": "HS256"}, claims, key=OctKey.import_key(secret), sign_alg="HS256"
        )
        refused(api, hmac, "access_token.alg_not_allowed")


def test_a_tampered_token(api: Driver, m2m: Driver) -> None:
    token = m2m.getAccessToken(resource=API_A, scopes=["read"])
    header, payload, signature = token.split(".")
    _, claims = forged(token, scope="read write")
    more = sign({"alg": "none"}, claims, sign_alg="none").split(".")[1]
    refused(api, f"{header}.{more}.{signature}", "access_token.bad_signature")
    middle = len(signature) // 2
    flipped = (
        signature[:middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    )
    refused(api, f"{header}.{payload}.{flipped}", "access_token.bad_signature")


def test_key_rotation_refetches_once_and_unknown_keys_are_refused(
    api: Driver, m2m: Driver, real_provider: RealProvider, clock: Clock
) -> None:
    api.verify(m2m.getAccessToken(resource=API_A))
    jwks = real_provider.requests_to("jwks")
    new_kid = real_provider.rotate_keys()[0]
    m2m.clearAccessTokens()
    rotated = m2m.getAccessToken(resource=API_A)
    assert decode_unverified(rotated)[0]["kid"] == new_kid
    assert api.verify(rotated).sub == M2M_APP
    assert real_provider.requests_to("jwks") == jwks + 1  # the rotated set, fetched once
    header, claims = forged(rotated)
    key = KEYS["P-384"]
    unknown = sign({**header, "kid": "no-such-kid"}, claims, key=key.private)
    for _ in range(3):  # within the cooldown: no further request
        refused(api, unknown, "access_token.kid_unknown")
    assert real_provider.requests_to("jwks") == jwks + 1
    clock.advance(61)
    refused(api, unknown, "access_token.kid_unknown")  # one refetch, then refused again
    refused(api, unknown, "access_token.kid_unknown")
    assert real_provider.requests_to("jwks") == jwks + 2
    assert api.verify(rotated).sub == M2M_APP


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("garbage", "access_token.malformed"),
        ("a.b.c", "access_token.malformed"),
        ("", "access_token.malformed"),
        ("eyJhbGciOiJFUzM4NCJ9.e30.c2ln", "access_token.typ_not_allowed"),
    ],
)
def test_garbage_costs_no_request(
    api: Driver, real_provider: RealProvider, token: str, code: str
) -> None:
    assert refused(api, token, code).status == 401
    assert real_provider.requests_to(".well-known/openid-configuration") == 0
    assert real_provider.requests_to("jwks") == 0
    assert real_provider.requests_to(".well-known/openid-configuration") == 0


def test_the_authorization_header(api: Driver, m2m: Driver) -> None:
    token = m2m.getAccessToken(resource=API_A)
    assert api.verifyAuthorization(f"BEARER {token}").sub == M2M_APP
    with pytest.raises(sync.AccessTokenError) as missing:
        api.verifyAuthorization(None)
    assert missing.value.status == 401 and missing.value.www_authenticate() == 'Bearer realm="api"'
    with pytest.raises(sync.AccessTokenError) as malformed:
        api.verifyAuthorization(f"Bearer {token}, Bearer {token}")
    assert (malformed.value.status, malformed.value.error) == (400, "invalid_request")
