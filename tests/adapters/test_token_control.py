"""A signed-in user's tokens on both clients: organization-scoped API tokens under their own
key, dropping cached tokens (all, or one key) and forcing a refresh, never losing the grant,
with concurrent forced callers still sharing one refresh."""

from __future__ import annotations

import asyncio
from typing import Any

from logto_adapters import aio
from logto_core.runtime import Runtime

from .conftest import API, ORG, USER, Clock, Harness, make_config


def refreshes(harness: Harness) -> int:
    return harness.requests_to("token", "refresh_token")


def test_an_organization_scoped_api_token_has_its_own_key(harness: Harness) -> None:
    harness.provider.grant_organization_resource_permissions(ORG, USER, API, ["read"])
    harness.sign_in_user()
    plain = harness.getAccessTokenClaims(API)
    scoped = harness.getAccessTokenClaims(API, ORG)
    assert scoped.aud == API and scoped.organization_id == ORG
    assert plain.aud == API and plain.organization_id is None
    assert harness.getAccessToken(API, organizationId=ORG) == harness.getAccessToken(API, ORG)
    assert harness.getAccessToken(API) != harness.getAccessToken(API, ORG)
    org_token = harness.getOrganizationTokenClaims(ORG)
    assert org_token.aud == f"urn:logto:organization:{ORG}"
    assert refreshes(harness) == 3


def test_force_refresh_gets_a_new_token_and_keeps_the_grant(harness: Harness) -> None:
    harness.sign_in_user()
    first = harness.getAccessToken(API)
    assert (harness.getAccessTokenClaims(API).scope or "").split() == ["read"]
    harness.provider.directory.permissions[(USER, API)].discard("read")  # a role change
    assert harness.getAccessToken(API) == first  # the cache answers
    forced = harness.getAccessToken(API, forceRefresh=True)
    assert forced != first
    assert not harness.getAccessTokenClaims(API).scope
    assert harness.getAccessToken(API) == forced  # cached again
    assert refreshes(harness) == 2
    assert harness.isAuthenticated() and harness.getRefreshToken() is not None
    claims = harness.getAccessTokenClaims(API, forceRefresh=True)
    assert claims.aud == API and refreshes(harness) == 3


def test_clearing_drops_every_token_or_one_key(harness: Harness) -> None:
    harness.sign_in_user()
    api_token = harness.getAccessToken(API)
    org_token = harness.getOrganizationToken(ORG)
    harness.clearAccessTokens(organizationId=ORG)
    assert harness.getAccessToken(API) == api_token
    assert harness.getOrganizationToken(ORG) != org_token  # within seconds of its refresh
    assert refreshes(harness) == 3
    harness.clearAccessTokens()
    assert harness.isAuthenticated()
    assert harness.getAccessToken(API) != api_token
    assert refreshes(harness) == 4


def test_clearing_a_signed_out_session_is_harmless(harness: Harness) -> None:
    harness.clearAccessTokens()
    assert harness.getAccessToken(API) is None


def test_clearing_keeps_a_rotation_it_finds(served: Any, clock: Clock) -> None:
    """A public client's refresh rotates the token; a stale copy of the session cleared
    afterwards must adopt the successor, not drop the record of it (presenting the consumed
    token again would revoke the grant)."""
    from logto_core.session import StorageKey
    from logto_core.storage import MemoryStorage

    from .conftest import REDIRECT

    served.provider.add_client("native", redirect_uris=[REDIRECT], kind="native")
    config = make_config(served.url, appId="native", appSecret=None)
    logto = aio.Logto(config, runtime=Runtime(clock=clock))
    stale, fresh = MemoryStorage(), MemoryStorage()

    async def main() -> None:
        session = logto.session(stale)
        url = await session.signIn(REDIRECT)
        await session.handleSignInCallback(served.provider.approve(url, USER))
        fresh.set(StorageKey.SESSION, str(stale.get(StorageKey.SESSION)))
        await logto.session(fresh).getAccessToken(API)  # rotates the refresh token
        await session.clearAccessTokens()  # the stale copy still holds the consumed one
        assert await session.getAccessToken(API) is not None
        assert served.provider.is_refresh_token_active(str(session.getRefreshToken()))
        # The other copy, cleared, adopts what the stale one did: no consumed token is
        # presented again, and the grant lives on.
        other = logto.session(fresh)
        await other.clearAccessTokens()
        assert other.getRefreshToken() == session.getRefreshToken()
        assert await other.getAccessToken(API) is not None
        assert served.provider.is_refresh_token_active(str(other.getRefreshToken()))
        await logto.aclose()

    asyncio.run(main())


def test_concurrent_forced_refreshes_share_one_request(served: Any, clock: Clock) -> None:
    from logto_core.storage import MemoryStorage

    from .conftest import REDIRECT

    storage = MemoryStorage()
    logto = aio.Logto(make_config(served.url), runtime=Runtime(clock=clock))

    async def main() -> list[str | None]:
        first = logto.session(storage)
        url = await first.signIn(REDIRECT)
        await first.handleSignInCallback(served.provider.approve(url, USER))
        await first.getAccessToken(API)
        sessions = [logto.session(storage) for _ in range(10)]
        tokens = await asyncio.gather(*(s.getAccessToken(API, forceRefresh=True) for s in sessions))
        await logto.aclose()
        return tokens

    tokens = asyncio.run(main())
    assert len(set(tokens)) == 1 and None not in tokens
    assert sum(1 for e in served.provider.log if e.grant_type == "refresh_token") == 2
