"""LogtoResourceServer on both clients against the test provider over loopback: real
machine, user and organization tokens verified (with no request once the keys are cached),
every bad token refused with the answer RFC 6750 gives it, concurrent first verifications
sharing one discovery and one key-set fetch, and the key set refetched once after a rotation."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc.jwk import OctKey

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider
from logto_core.errors import LogtoUsageError, ProviderError, TransportError
from logto_core.jose.jwt import decode_unverified
from logto_core.runtime import Runtime
from logto_core.testing import Fault
from logto_core.testing.keys import SignOptions
from tests.jwt_factory import sign

from .conftest import API, KINDS, ORG, USER, Clock, Harness
from .test_m2m import M2M_ID, OTHER_ORG, m2m_client, setup_m2m

REALM = "orders"
ORG_AUDIENCE = f"urn:logto:organization:{ORG}"


def resource_server(
    kind: str, served: ServedProvider, clock: Clock, audience: str = API, **options: Any
) -> Harness:
    module: Any = sync if kind == "sync" else aio
    options.setdefault("timeout", (2.0, 5.0))
    server = module.LogtoResourceServer(
        served.url, audience, realm=REALM, runtime=Runtime(clock=clock), **options
    )
    return Harness(kind, server, served)


def close(harness: Harness) -> None:
    harness.aclose() if harness.kind == "aio" else harness.close()


@pytest.fixture
def api(kind: str, served: ServedProvider, clock: Clock) -> Iterator[Harness]:
    """The resource server of the client kind under test (``kind``: the user's client, the
    machine client and it are all of that kind)."""
    setup_m2m(served)
    harness = resource_server(kind, served, clock)
    yield harness
    close(harness)


@pytest.fixture
def m2m(api: Harness, served: ServedProvider, clock: Clock) -> Iterator[Harness]:
    harness = m2m_client(api.kind, served, clock)
    yield harness
    close(harness)


def fetches(harness: Harness) -> tuple[int, int]:
    return harness.requests_to("discovery"), harness.requests_to("jwks")


def refused(
    api: Harness, token: str | None, code: str, *args: Any, header: bool = False, **kwargs: Any
) -> Any:
    """The error verifying ``token`` (or, with ``header``, that Authorization value) raises;
    its code is ``code`` and nothing it shows holds the token."""
    method = api.verifyAuthorization if header else api.verify
    with pytest.raises(sync.AccessTokenError) as caught:
        method(token, *args, **kwargs)
    error = caught.value
    assert error.code == code
    for part in [token or "", *(token or "").split(".")]:
        if len(part) > 8:
            assert part not in str(error) and part not in repr(error)
            assert part not in error.www_authenticate()
    return error


def provider_signed(api: Harness, claims: dict[str, Any], **options: Any) -> str:
    """A token signed with the provider's own current key: only the named defect is wrong."""
    return api.provider.keys.sign(claims, typ="at+jwt", options=SignOptions(**options))


def claims_of(api: Harness, token: str) -> dict[str, Any]:
    """The claims of a real token, to forge a variant of it."""
    return decode_unverified(token)[1]


# ---- real tokens --------------------------------------------------------------------------


def test_a_machine_token_verifies_and_then_costs_no_request(api: Harness, m2m: Harness) -> None:
    token = m2m.getAccessToken(API, scopes=["read", "write"])
    claims = api.verify(token, ["read", "write"])
    assert isinstance(claims, sync.AccessTokenClaims)
    assert (claims.sub, claims.client_id, claims.aud) == (M2M_ID, M2M_ID, API)
    assert claims.jti and set((claims.scope or "").split()) == {"read", "write"}
    assert fetches(api) == (2, 1)  # the client's discovery, the API's discovery and key set
    for _ in range(3):
        assert api.verify(token, "read").jti == claims.jti
        assert api.verifyAuthorization(f"Bearer {token}", ["write"]).sub == M2M_ID
    assert fetches(api) == (2, 1)


def test_a_user_s_token_and_its_scopes(api: Harness, harness: Harness) -> None:
    harness.sign_in_user()
    token = harness.getAccessToken(API)
    assert api.verifyAuthorization(f"bearer {token}", ["read"]).sub == USER
    error = refused(api, token, "access_token.insufficient_scope", ["read", "write"])
    assert (error.status, error.error, error.scope) == (403, "insufficient_scope", "read write")
    assert error.www_authenticate() == (
        f'Bearer realm="{REALM}", error="insufficient_scope", '
        f"error_description=\"the access token lacks the scopes 'write'\", "
        'scope="read write"'
    )


def test_organization_tokens(
    api: Harness, m2m: Harness, harness: Harness, served: ServedProvider, clock: Clock
) -> None:
    scoped = m2m.getAccessToken(API, ORG, ["read"])
    assert api.verify(scoped, ["read"], ORG).organization_id == ORG
    refused(api, scoped, "access_token.organization_mismatch", None, OTHER_ORG)
    refused(api, m2m.getAccessToken(API), "access_token.organization_mismatch", None, ORG)
    # A user's organization token (aud urn:logto:organization:<id>) is for an API whose
    # audience is that organization.
    harness.sign_in_user()
    org_token = harness.getOrganizationToken(ORG)
    assert org_token is not None
    refused(api, org_token, "access_token.aud_mismatch")
    org_api = resource_server(api.kind, served, clock, audience=ORG_AUDIENCE)
    try:
        claims = org_api.verify(org_token, None, ORG)
        assert claims.sub == USER and claims.aud == ORG_AUDIENCE
        refused(org_api, org_token, "access_token.organization_mismatch", None, OTHER_ORG)
    finally:
        close(org_api)


def test_organization_roles_when_the_token_carries_them(api: Harness, m2m: Harness) -> None:
    claims = claims_of(api, m2m.getAccessToken(API, ORG, ["read"]))
    token = provider_signed(api, {**claims, "organization_roles": [f"{ORG}:robot"]})
    assert api.verify(token, ["read"], ORG, organizationRoles=["robot"]).sub == M2M_ID
    refused(
        api, token, "access_token.organization_role_missing", None, ORG, organizationRoles="admin"
    )
    bare = provider_signed(api, claims)  # no organization_roles claim: refused, not assumed
    refused(
        api, bare, "access_token.organization_role_missing", None, ORG, organizationRoles="robot"
    )


# ---- bad tokens ---------------------------------------------------------------------------


def test_an_expired_token(api: Harness, m2m: Harness, clock: Clock) -> None:
    token = m2m.getAccessToken(API)
    clock.advance(3600 + 30)  # within the 60 s clock tolerance
    assert api.verify(token).sub == M2M_ID
    clock.advance(31)
    error = refused(api, token, "access_token.expired")
    assert (error.status, error.error) == (401, "invalid_token")
    assert error.www_authenticate() == (
        f'Bearer realm="{REALM}", error="invalid_token", '
        'error_description="access token has expired"'
    )


def test_a_token_for_another_api(api: Harness, m2m: Harness) -> None:
    api.provider.add_resource("https://billing.example.com", ["pay"])
    api.provider.grant_permissions(M2M_ID, "https://billing.example.com", ["pay"])
    refused(api, m2m.getAccessToken("https://billing.example.com"), "access_token.aud_mismatch")


def test_a_token_of_another_issuer(api: Harness, m2m: Harness) -> None:
    claims = claims_of(api, m2m.getAccessToken(API))
    forged = provider_signed(api, {**claims, "iss": "https://evil.example.com/oidc"})
    refused(api, forged, "access_token.iss_mismatch")


def test_alg_none(api: Harness, m2m: Harness) -> None:
    claims = claims_of(api, m2m.getAccessToken(API))
    unsigned = provider_signed(api, claims, header_overrides={"alg": "none"}, unsigned=True)
    refused(api, unsigned, "access_token.alg_not_allowed")


def test_hmac_signed_with_the_provider_s_public_key(api: Harness, m2m: Harness) -> None:
    claims = claims_of(api, m2m.getAccessToken(API))
    public = api.provider.keys.current.public_jwk()
    for secret in (json.dumps(public).encode(), json.dumps(public, sort_keys=True).encode()):
        header = {"alg": "HS256", "kid": public["kid"], "typ": "at+jwt"}
        token = sign(header, claims, key=OctKey.import_key(secret), sign_alg="HS256")
        refused(api, token, "access_token.alg_not_allowed")


def test_an_id_token_presented_as_an_access_token(api: Harness, harness: Harness) -> None:
    harness.sign_in_user()
    id_token = harness.getIdToken()
    assert id_token is not None
    refused(api, id_token, "access_token.typ_not_allowed")
    refused(api, f"Bearer {id_token}", "access_token.typ_not_allowed", header=True)


def test_a_tampered_token(api: Harness, m2m: Harness) -> None:
    token = m2m.getAccessToken(API, scopes=["read"])
    header, _, signature = token.split(".")
    claims = claims_of(api, token)
    more = provider_signed(api, {**claims, "scope": "read write"}).split(".")[1]
    refused(api, f"{header}.{more}.{signature}", "access_token.bad_signature")
    refused(api, provider_signed(api, claims, bad_signature=True), "access_token.bad_signature")


def test_an_unknown_key_after_rotation(api: Harness, m2m: Harness, clock: Clock) -> None:
    before = m2m.getAccessToken(API)
    api.verify(before)
    _, jwks = fetches(api)
    # A second later (sets fetched at one instant are united, see provider_state.newest).
    clock.advance(1)
    api.provider.rotate_signing_key(keep_previous=False)
    m2m.clearAccessTokens()
    rotated = m2m.getAccessToken(API)
    assert api.verify(rotated).sub == M2M_ID  # the new key: the set fetched once more
    assert fetches(api)[1] == jwks + 1
    # The retired key's token names a kid the fresh set lacks: refused, and within the
    # cooldown no further fetch, however many such tokens come.
    for _ in range(3):
        refused(api, before, "access_token.kid_unknown")
    forged = provider_signed(api, claims_of(api, rotated), header_overrides={"kid": "forged-kid"})
    refused(api, forged, "access_token.kid_unknown")
    assert fetches(api)[1] == jwks + 1
    clock.advance(61)  # past jwksRefetchCooldown: one refetch, then refused again
    refused(api, forged, "access_token.kid_unknown")
    refused(api, forged, "access_token.kid_unknown")
    assert fetches(api)[1] == jwks + 2


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("garbage", "access_token.malformed"),
        ("a.b.c", "access_token.malformed"),
        ("", "access_token.malformed"),
        ("x" * 40_000, "access_token.malformed"),
        ("eyJhbGciOiJFUzM4NCJ9.e30.c2ln", "access_token.typ_not_allowed"),
        ("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.", "access_token.alg_not_allowed"),
    ],
)
def test_garbage_costs_no_request(api: Harness, token: str, code: str) -> None:
    refused(api, token, code)
    assert fetches(api) == (0, 0)


def test_the_authorization_header(api: Harness, m2m: Harness) -> None:
    token = m2m.getAccessToken(API)
    missing = refused(api, None, "bearer.missing", header=True)
    assert (missing.status, missing.error) == (401, None)
    assert missing.www_authenticate() == f'Bearer realm="{REALM}"'
    assert refused(api, f"Basic {token}", "bearer.other_scheme", header=True).status == 401
    malformed = refused(api, f"Bearer {token} {token}", "bearer.malformed", header=True)
    assert (malformed.status, malformed.error) == (400, "invalid_request")
    assert fetches(api) == (1, 0)  # the header is read before anything is fetched


# ---- the client around it -----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_first_verifications_share_one_discovery_and_one_key_set(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    setup_m2m(served)
    machine = m2m_client(kind, served, clock)
    token = machine.getAccessToken(API)
    close(machine)
    served.provider.faults.add(Fault(endpoint="discovery", delay=0.5))
    served.provider.faults.add(Fault(endpoint="jwks", delay=0.5))
    module: Any = sync if kind == "sync" else aio
    server = module.LogtoResourceServer(served.url, API, runtime=Runtime(clock=clock))
    discovery = sum(1 for entry in served.provider.log if entry.endpoint == "discovery")

    def one(_: int) -> Any:
        result = server.verify(token)
        return result if kind == "sync" else asyncio.run(result)

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    assert {claims.sub for claims in results} == {M2M_ID}
    log = served.provider.log
    assert sum(1 for entry in log if entry.endpoint == "discovery") == discovery + 1
    assert sum(1 for entry in log if entry.endpoint == "jwks") == 1
    if kind == "sync":
        server.close()
    else:
        asyncio.run(server.aclose())


@pytest.mark.parametrize("kind", KINDS)
def test_logto_out_of_reach_is_not_the_caller_s_fault(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    setup_m2m(served)
    machine = m2m_client(kind, served, clock)
    token = machine.getAccessToken(API)
    close(machine)
    api = resource_server(kind, served, clock, max_retries=0)
    served.provider.faults.add(Fault(endpoint="discovery", status=503))
    with pytest.raises(TransportError):
        api.verify(token)
    served.provider.faults.add(Fault(endpoint="discovery", status=404))
    with pytest.raises(ProviderError) as broken:
        api.verify(token)
    assert not isinstance(broken.value, sync.AccessTokenError)
    assert api.verify(token).sub == M2M_ID  # nothing bad remembered
    close(api)


@pytest.mark.parametrize("kind", KINDS)
def test_construction_and_names(kind: str, served: ServedProvider, clock: Clock) -> None:
    module: Any = sync if kind == "sync" else aio
    server = module.LogtoResourceServer(
        served.url, API, clockTolerance=5, jwksRefetchCooldown=120, algorithms=["ES384"]
    )
    assert server.audience == API and server.config.appId == API
    assert server.config.appSecret is None and server.config.clockTolerance == 5
    assert server.config.jwksRefetchCooldown == 120 and server.policy.algorithms == {"ES384"}
    assert server.config.jwksMaxAge == sync.LogtoConfig(endpoint=served.url, appId="x").jwksMaxAge
    assert (
        module.LogtoResourceServer.verify_authorization
        is module.LogtoResourceServer.verifyAuthorization
    )
    assert (
        module.LogtoResourceServer.export_provider_cache
        is module.LogtoResourceServer.exportProviderCache
    )
    coroutine = asyncio.iscoroutinefunction
    assert coroutine(module.LogtoResourceServer.verify) == (kind == "aio")
    assert coroutine(module.LogtoResourceServer.verifyAuthorization) == (kind == "aio")
    assert module.AccessTokenError is sync.AccessTokenError
    for audience in ("", "orders", "https://api.example.com/#v1"):
        with pytest.raises(LogtoUsageError) as caught:
            module.LogtoResourceServer(served.url, audience)
        assert caught.value.code == "usage.resource_server"
    with pytest.raises(LogtoUsageError):
        module.LogtoResourceServer(served.url, API, algorithms=["HS256"])
    with pytest.raises(sync.ConfigError):
        module.LogtoResourceServer("ftp://tenant.example", API)
    harness = Harness(kind, server, served)
    with pytest.raises(LogtoUsageError) as bad_scope:
        harness.verify("a.b.c", ['re"ad'])
    assert bad_scope.value.code == "usage.access_requirements"
    if kind == "sync":
        server.close()
    else:
        asyncio.run(server.aclose())


def test_the_provider_cache_can_be_exported_and_reused(
    api: Harness, m2m: Harness, served: ServedProvider, clock: Clock
) -> None:
    token = m2m.getAccessToken(API)
    api.verify(token)
    cache = api.exportProviderCache()
    later = resource_server(api.kind, served, clock, provider_cache=cache)
    before = fetches(api)
    assert later.verify(token).sub == M2M_ID
    assert fetches(api) == before  # no request in the later process
    close(later)
