"""LogtoM2MClient on both clients against the test provider over loopback: tokens per
(resource, organization, scopes), cached until the margin, shared by concurrent callers,
and Logto's refusals as typed errors with a hint."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider
from logto_core.runtime import Runtime
from logto_core.storage import MemoryStorage

from .conftest import API, KINDS, ORG, Clock, Harness

M2M_ID = "m2m-app"
M2M_SECRET = "m2m-secret-value-0123456789"
OTHER_ORG = "org-2"


def setup_m2m(served: ServedProvider) -> None:
    provider = served.provider
    provider.add_client(M2M_ID, secret=M2M_SECRET, kind="m2m")
    provider.grant_permissions(M2M_ID, API, ["read", "write"])
    provider.add_member(ORG, M2M_ID, roles=["robot"], scopes=["read:docs"])
    provider.grant_organization_resource_permissions(ORG, M2M_ID, API, ["read"])
    provider.add_organization(OTHER_ORG, "Org Two")


def m2m_client(kind: str, served: ServedProvider, clock: Clock, **overrides: Any) -> Harness:
    module: Any = sync if kind == "sync" else aio
    values: dict[str, Any] = {"endpoint": served.url, "appId": M2M_ID, "appSecret": M2M_SECRET}
    values.update(overrides)
    client = module.LogtoM2MClient(
        module.LogtoConfig(**values), runtime=Runtime(clock=clock), timeout=(2.0, 5.0)
    )
    return Harness(kind, client, served)


@pytest.fixture(params=KINDS)
def m2m(request: pytest.FixtureRequest, served: ServedProvider, clock: Clock) -> Iterator[Harness]:
    setup_m2m(served)
    harness = m2m_client(str(request.param), served, clock)
    yield harness
    harness.aclose() if harness.kind == "aio" else harness.close()


def grants(harness: Harness) -> int:
    return harness.requests_to("token", "client_credentials")


def test_a_resource_token_is_cached_until_the_margin(m2m: Harness, clock: Clock) -> None:
    token = m2m.getAccessToken(API, scopes=["read", "write"])
    claims = m2m.getAccessTokenClaims(API, scopes=["write", "read"])
    assert claims.aud == API and claims.sub == M2M_ID
    assert set((claims.scope or "").split()) == {"read", "write"}
    assert m2m.getAccessToken(resource=API, scopes=["read", "write"]) == token
    assert grants(m2m) == 1
    clock.advance(3600 - 30 + 1)  # inside the default 30 s margin
    assert m2m.getAccessToken(API, scopes=["read", "write"]) != token
    assert grants(m2m) == 2
    bare = m2m.getAccessTokenClaims(API)  # Logto grants only the scopes asked for
    assert bare.aud == API and not bare.scope and grants(m2m) == 3


def test_organization_tokens_have_their_own_keys(m2m: Harness) -> None:
    org_claims = m2m.getAccessTokenClaims(organizationId=ORG, scopes=["read:docs"])
    assert org_claims.aud == f"urn:logto:organization:{ORG}" and org_claims.scope == "read:docs"
    scoped = m2m.getAccessTokenClaims(API, ORG, ["read"])
    assert scoped.aud == API and scoped.organization_id == ORG
    assert (scoped.scope or "").split() == ["read"]
    plain = m2m.getAccessTokenClaims(API)
    assert plain.organization_id is None
    assert grants(m2m) == 3
    m2m.getAccessToken(API, ORG, ["read"])
    m2m.getAccessToken(organizationId=ORG, scopes=["read:docs"])
    assert grants(m2m) == 3


def test_scopes_are_part_of_the_key_and_must_all_be_granted(m2m: Harness) -> None:
    narrow = m2m.getAccessTokenClaims(API, scopes=["read"])
    assert (narrow.scope or "").split() == ["read"]
    assert m2m.getAccessToken(API, scopes=["read"]) == m2m.getAccessToken(API, None, ["read"])
    m2m.getAccessToken(API)
    assert grants(m2m) == 2
    m2m.provider.add_resource("https://billing.example.com", ["pay", "refund"])
    m2m.provider.grant_permissions(M2M_ID, "https://billing.example.com", ["pay"])
    for _ in range(2):  # not cached: each call asks again
        with pytest.raises(sync.ScopeNotGrantedError) as caught:
            m2m.getAccessToken("https://billing.example.com", scopes=["pay", "refund"])
        assert caught.value.code == "scope_not_granted" and caught.value.missing == "refund"
        assert "role" in caught.value.message
    assert grants(m2m) == 4


def test_no_target_is_a_usage_error_without_a_request(m2m: Harness) -> None:
    with pytest.raises(sync.LogtoUsageError) as caught:
        m2m.getAccessToken()
    assert caught.value.code == "usage.m2m_target"
    assert "resource" in caught.value.message and "organizationId" in caught.value.message
    assert m2m.requests_to("token") == 0


def test_logto_refusals_carry_a_hint(m2m: Harness) -> None:
    with pytest.raises(sync.OAuthError) as unknown:
        m2m.getAccessToken("https://unknown.example.com")
    assert unknown.value.code == "oauth.invalid_target"
    assert unknown.value.hint is not None and "API identifier" in unknown.value.hint
    with pytest.raises(sync.OAuthError) as outsider:
        m2m.getAccessToken(organizationId=OTHER_ORG)
    assert outsider.value.code == "oauth.access_denied"
    assert outsider.value.hint is not None and "member" in outsider.value.hint


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_secret_is_named_and_never_shown(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    setup_m2m(served)
    wrong = "not-the-secret-0123456789"
    harness = m2m_client(kind, served, clock, appSecret=wrong)
    with pytest.raises(sync.OAuthError) as caught:
        harness.getAccessToken(API)
    assert caught.value.code == "oauth.invalid_client" and caught.value.hint is not None
    assert wrong not in repr(caught.value) and wrong not in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_a_web_app_is_told_it_is_not_a_machine_to_machine_app(
    kind: str, served: ServedProvider, clock: Clock
) -> None:
    from .conftest import APP_ID, APP_SECRET

    harness = m2m_client(kind, served, clock, appId=APP_ID, appSecret=APP_SECRET)
    with pytest.raises(sync.OAuthError) as caught:
        harness.getAccessToken(API)
    assert caught.value.code == "oauth.unauthorized_client"
    assert caught.value.hint is not None and "machine-to-machine" in caught.value.hint


@pytest.mark.parametrize("module", [sync, aio])
def test_a_public_configuration_is_refused(module: Any) -> None:
    with pytest.raises(sync.LogtoUsageError) as caught:
        module.LogtoM2MClient(module.LogtoConfig(endpoint="https://x.example.com", appId="a"))
    assert caught.value.code == "usage.m2m_secret"


def test_clearing_drops_all_tokens_or_one_key(m2m: Harness) -> None:
    first = m2m.getAccessToken(API)
    m2m.getAccessToken(organizationId=ORG)
    m2m.clearAccessTokens(organizationId=ORG)
    assert m2m.getAccessToken(API) == first
    m2m.getAccessToken(organizationId=ORG)
    assert grants(m2m) == 3
    m2m.clearAccessTokens()
    assert m2m.getAccessToken(API) != first
    m2m.getAccessToken(organizationId=ORG)
    assert grants(m2m) == 5


def test_the_cache_lives_in_the_storage_given(served: ServedProvider, clock: Clock) -> None:
    setup_m2m(served)
    storage = MemoryStorage()
    config = sync.LogtoConfig(endpoint=served.url, appId=M2M_ID, appSecret=M2M_SECRET)
    with sync.LogtoM2MClient(config, storage, runtime=Runtime(clock=clock)) as first:
        token = first.getAccessToken(API)
    with sync.LogtoM2MClient(config, storage, runtime=Runtime(clock=clock)) as later:
        assert later.getAccessToken(API) == token  # a later process, same cache
    assert served.provider.log[-1].grant_type == "client_credentials"
    assert sum(1 for e in served.provider.log if e.grant_type == "client_credentials") == 1


def test_concurrent_threads_share_one_request(served: ServedProvider, clock: Clock) -> None:
    setup_m2m(served)
    harness = m2m_client("sync", served, clock)
    barrier = threading.Barrier(20)
    tokens: list[str] = []

    def call() -> None:
        barrier.wait()
        tokens.append(harness.getAccessToken(API))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(tokens) == 20 and len(set(tokens)) == 1
    assert grants(harness) == 1
    harness.close()


def test_concurrent_tasks_share_one_request(served: ServedProvider, clock: Clock) -> None:
    setup_m2m(served)
    config = aio.LogtoConfig(endpoint=served.url, appId=M2M_ID, appSecret=M2M_SECRET)

    async def main() -> list[str]:
        async with aio.LogtoM2MClient(config, runtime=Runtime(clock=clock)) as client:
            return await asyncio.gather(*(client.getAccessToken(API) for _ in range(20)))

    tokens = asyncio.run(main())
    assert len(set(tokens)) == 1
    assert sum(1 for e in served.provider.log if e.grant_type == "client_credentials") == 1
