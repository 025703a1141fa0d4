"""Machine-to-machine tokens and device sign-in through both clients, against the real
provider (the client API of /tmp/api-spec.md: ``LogtoM2MClient``, ``startDeviceSignIn`` and
``waitForDeviceSignIn``).

Device polls wait for real (the clients sleep on the runtime's clock, which only the test
moves): the provider names a 1 s interval here, so a test waits about a second per poll.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_core.errors import LogtoError, OAuthError, ScopeNotGrantedError, TransportError
from logto_core.runtime import Runtime

from .conftest import (
    Clock,
    Driver,
    RealProvider,
    approve_device,
    deny_device,
    make_driver,
    make_m2m_driver,
)
from .tenant import (
    ALICE,
    API_A,
    DEVICE_APP,
    DEVICE_CODE_TTL,
    M2M_APP,
    M2M_ORG,
    M2M_PERMISSIONS,
    OTHER_ORG,
    organization_audience,
)
from .test_flows import jwt_part

DEVICE_SCOPES = ["email", "read"]
POLL_INTERVAL = 1  # seconds, named by the provider for these tests (Logto's default is 5)
WAIT_LIMIT = 30.0  # seconds: the longest any wait here may take before it is a failure


def module_of(kind: str) -> Any:
    return sync if kind == "sync" else aio


def error_code(error: BaseException) -> str:
    assert isinstance(error, LogtoError), repr(error)
    return error.code


# ---- machine to machine ---------------------------------------------------------------------


def test_m2m_token_for_an_api_is_cached(
    kind: str, real_provider: RealProvider, clock: Clock
) -> None:
    m2m = make_m2m_driver(kind, real_provider, clock)
    permissions = M2M_PERMISSIONS[API_A]
    token = m2m.getAccessToken(resource=API_A, scopes=permissions)
    assert jwt_part(token, 0)["typ"] == "at+jwt"
    claims = jwt_part(token, 1)
    assert claims["aud"] == API_A and sorted(claims["scope"].split()) == sorted(permissions)
    assert claims["client_id"] == M2M_APP and claims["sub"] == M2M_APP
    assert real_provider.requests_to("token") == 1

    # Cached: neither the token again nor its claims cost a request.
    assert m2m.getAccessToken(resource=API_A, scopes=permissions) == token
    decoded = m2m.getAccessTokenClaims(resource=API_A, scopes=permissions)
    assert decoded.aud == API_A and decoded.client_id == M2M_APP
    assert real_provider.requests_to("token") == 1

    # Another key is another token. Logto grants only the scopes asked for: none here.
    bare = jwt_part(m2m.getAccessToken(resource=API_A), 1)
    assert bare["aud"] == API_A and not bare.get("scope")
    assert real_provider.requests_to("token") == 2

    # Near its expiry (within tokenExpiryMargin), the token is fetched again ...
    clock.advance(3600 - 10)
    renewed = m2m.getAccessToken(resource=API_A, scopes=permissions)
    assert renewed != token and real_provider.requests_to("token") == 3
    # ... and after clearAccessTokens too.
    m2m.clearAccessTokens()
    assert m2m.getAccessToken(resource=API_A, scopes=permissions) != renewed
    assert real_provider.requests_to("token") == 4


def test_m2m_organization_token(kind: str, real_provider: RealProvider, clock: Clock) -> None:
    m2m = make_m2m_driver(kind, real_provider, clock)
    claims = m2m.getAccessTokenClaims(organizationId=M2M_ORG, scopes=["read:docs"])
    assert claims.aud == organization_audience(M2M_ORG) and claims.scope == "read:docs"
    with pytest.raises(LogtoError) as denied:
        m2m.getAccessToken(organizationId=OTHER_ORG)  # the app is not a member
    assert error_code(denied.value) == "oauth.access_denied"
    assert isinstance(denied.value, OAuthError) and denied.value.hint is not None


def test_m2m_needs_a_target(kind: str, real_provider: RealProvider, clock: Clock) -> None:
    m2m = make_m2m_driver(kind, real_provider, clock)
    with pytest.raises(LogtoError) as neither:
        m2m.getAccessToken()
    assert error_code(neither.value) == "usage.m2m_target"
    assert real_provider.requests_to("token") == 0  # refused before any request
    with pytest.raises(LogtoError) as unknown:
        m2m.getAccessToken(resource="https://unknown.example.com")
    assert error_code(unknown.value) == "oauth.invalid_target"
    assert isinstance(unknown.value, OAuthError) and unknown.value.hint is not None


def test_m2m_scopes_not_granted(kind: str, real_provider: RealProvider, clock: Clock) -> None:
    """Logto issues the token without the scopes the app lacks; the client says so."""
    m2m = make_m2m_driver(kind, real_provider, clock)
    with pytest.raises(LogtoError) as missing:
        m2m.getAccessToken(resource=API_A, scopes=["read", "admin"])
    assert error_code(missing.value) == "scope_not_granted"
    assert isinstance(missing.value, ScopeNotGrantedError) and missing.value.missing == "admin"


def test_m2m_wrong_secret(kind: str, real_provider: RealProvider, clock: Clock) -> None:
    m2m = make_m2m_driver(kind, real_provider, clock, secret="not-the-secret-0123456789")
    with pytest.raises(LogtoError) as refused:
        m2m.getAccessToken(resource=API_A)
    assert error_code(refused.value) == "oauth.invalid_client"
    assert "not-the-secret-0123456789" not in str(refused.value)


# ---- device sign-in ---------------------------------------------------------------------------


@pytest.fixture
def short_interval(real_provider: RealProvider) -> None:
    """Name a short interval (the reset before the next test names none again)."""
    real_provider.set_device_interval(POLL_INTERVAL)


def device_client(kind: str, provider: RealProvider, clock: Clock) -> Driver:
    return make_driver(
        kind, provider, clock, appId=DEVICE_APP, scopes=DEVICE_SCOPES, resources=[API_A]
    )


def bounded_wait(client: Driver, started: Any) -> float:
    """``waitForDeviceSignIn`` with a timeout; returns the seconds it took."""
    begun = time.monotonic()
    client.waitForDeviceSignIn(started, timeout=WAIT_LIMIT)
    return time.monotonic() - begun


@pytest.mark.usefixtures("short_interval")
def test_device_sign_in(kind: str, real_provider: RealProvider, clock: Clock) -> None:
    client = device_client(kind, real_provider, clock)
    started = client.startDeviceSignIn()
    assert started.verification_uri == f"{real_provider.issuer}/device"
    assert (
        started.verification_uri_complete
        == f"{started.verification_uri}?user_code={started.user_code}"
    )
    assert started.interval == POLL_INTERVAL
    assert abs(started.expires_at - (clock() + DEVICE_CODE_TTL)) < 5
    assert not client.isAuthenticated()

    approve_device(real_provider, started.user_code)
    assert bounded_wait(client, started) < POLL_INTERVAL + 5
    assert real_provider.requests_to("token") == 1  # approved before the first poll

    assert client.isAuthenticated()
    claims = client.getIdTokenClaims()
    assert claims.sub == ALICE[2] and claims.aud == DEVICE_APP
    assert claims.email == "alice@example.com"
    assert client.fetchUserInfo().sub == ALICE[2]
    api = client.getAccessTokenClaims(API_A)
    assert api.aud == API_A and api.sub == ALICE[2] and api.scope == "read"

    # Refresh, with a public client's rotation.
    before = client.getRefreshToken()
    assert before is not None
    clock.advance(3700)  # every access token has expired
    fresh = client.getAccessToken(API_A)
    assert fresh is not None and jwt_part(fresh, 1)["iat"] >= clock() - 60
    assert client.getRefreshToken() not in (None, before)
    assert client.getIdTokenClaims().sub == ALICE[2]


@pytest.mark.usefixtures("short_interval")
def test_device_sign_in_while_the_user_approves(
    kind: str, real_provider: RealProvider, clock: Clock
) -> None:
    """Polled while pending (at least once), signed in at the poll after the approval."""
    client = device_client(kind, real_provider, clock)
    started = client.startDeviceSignIn()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(bounded_wait, client, started)
        deadline = time.monotonic() + 10 * POLL_INTERVAL
        while real_provider.requests_to("token") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert real_provider.requests_to("token") >= 1, "the client never polled"
        assert not waiting.done()
        approve_device(real_provider, started.verification_uri_complete)
        waiting.result(timeout=WAIT_LIMIT + 10)
    assert real_provider.requests_to("token") >= 2
    assert client.isAuthenticated() and client.getIdTokenClaims().sub == ALICE[2]


@pytest.mark.usefixtures("short_interval")
def test_device_sign_in_denied(kind: str, real_provider: RealProvider, clock: Clock) -> None:
    client = device_client(kind, real_provider, clock)
    started = client.startDeviceSignIn()
    deny_device(real_provider, started.user_code)
    with pytest.raises(module_of(kind).DeviceAuthorizationError) as refused:
        bounded_wait(client, started)
    assert error_code(refused.value) == "device.access_denied"
    assert not client.isAuthenticated()


@pytest.mark.usefixtures("short_interval")
@pytest.mark.parametrize("where", ["provider", "client"])
def test_device_code_expired(
    kind: str, real_provider: RealProvider, clock: Clock, where: str
) -> None:
    """Expired at the provider (its clock alone moved: it answers expired_token), or on the
    client's clock too (no poll can be sent in time: none is)."""
    client = device_client(kind, real_provider, clock)
    started = client.startDeviceSignIn()
    if where == "provider":
        real_provider.advance(DEVICE_CODE_TTL + 1)
    else:
        clock.advance(DEVICE_CODE_TTL + 1)
    with pytest.raises(module_of(kind).DeviceAuthorizationError) as expired:
        bounded_wait(client, started)
    assert error_code(expired.value) == "device.expired"
    assert real_provider.requests_to("token") == (1 if where == "provider" else 0)
    assert not client.isAuthenticated()


@pytest.mark.usefixtures("short_interval")
def test_device_wait_timeout(kind: str, real_provider: RealProvider, clock: Clock) -> None:
    client = device_client(kind, real_provider, clock)
    started = client.startDeviceSignIn()
    begun = time.monotonic()
    with pytest.raises(TransportError):
        client.waitForDeviceSignIn(started, timeout=0.5)
    assert time.monotonic() - begun < 5
    assert not client.isAuthenticated()


def test_device_wait_is_cancelled_with_its_task(real_provider: RealProvider, clock: Clock) -> None:
    """The asyncio client's wait ends when its task is cancelled (during the 5 s interval)."""
    client: Any = aio.LogtoClient(
        aio.LogtoConfig(
            endpoint=real_provider.base, appId=DEVICE_APP, scopes=DEVICE_SCOPES, resources=[API_A]
        ),
        runtime=Runtime(clock=clock),
        timeout=(2.0, 10.0),
    )

    async def scenario() -> None:
        started = await client.startDeviceSignIn()
        task = asyncio.create_task(client.waitForDeviceSignIn(started))
        await asyncio.sleep(0.2)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert task in done and task.cancelled()

    asyncio.run(scenario())
    assert real_provider.requests_to("token") == 0
