"""Fixtures for the adapter tests: the test provider served on loopback, and a harness that
drives the sync and the async client through the same calls."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider, serve_provider
from logto_core.runtime import Runtime
from logto_core.storage import MemoryStorage, Storage
from logto_core.testing import TestProvider

START = 1_700_000_000.0
APP_ID = "web-app"
APP_SECRET = "app-secret-value-0123456789"
REDIRECT = "http://127.0.0.1:9/callback"
POST_LOGOUT = "http://127.0.0.1:9/"
API = "https://api.example.com"
ORG = "org-1"
USER = "user-1"
KINDS = ["sync", "aio"]


class Clock:
    """A clock shared by the provider and the client, moved by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def setup_provider(provider: TestProvider) -> None:
    provider.add_client(
        APP_ID,
        secret=APP_SECRET,
        redirect_uris=[REDIRECT],
        post_logout_redirect_uris=[POST_LOGOUT],
        kind="traditional",
    )
    provider.add_user(USER, name="Ada", email="ada@example.com", email_verified=True)
    provider.add_resource(API, ["read", "write"])
    provider.grant_permissions(USER, API, ["read"])
    provider.add_organization(ORG, "Org One")
    provider.add_member(ORG, USER, roles=["member"], scopes=["read:docs"])


@pytest.fixture
def served(clock: Clock) -> Iterator[ServedProvider]:
    with serve_provider(lambda url: TestProvider(url, clock=clock), max_delay=5.0) as server:
        setup_provider(server.provider)
        yield server


def make_config(endpoint: str, **overrides: Any) -> sync.LogtoConfig:
    values: dict[str, Any] = {
        "endpoint": endpoint,
        "appId": APP_ID,
        "appSecret": APP_SECRET,
        "scopes": ["email", "read", sync.UserInfoScope.organizations],
        "resources": [API],
    }
    values.update(overrides)
    return sync.LogtoConfig(**values)


def make_client(
    kind: str,
    endpoint: str,
    clock: Clock,
    storage: Any = None,
    *,
    config: dict[str, Any] | None = None,
    **options: Any,
) -> Any:
    options.setdefault("timeout", (2.0, 5.0))
    module: Any = sync if kind == "sync" else aio
    return module.LogtoClient(
        make_config(endpoint, **(config or {})), storage, runtime=Runtime(clock=clock), **options
    )


@dataclass
class Harness:
    """Calls a client's methods the same way for both kinds: coroutines are run to completion
    (each in a fresh ``asyncio.run`` loop, as Flask's async views do)."""

    kind: str
    client: Any
    server: ServedProvider

    @property
    def provider(self) -> TestProvider:
        return self.server.provider

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if inspect.iscoroutine(result):
                return asyncio.run(result)
            return result

        return call

    def sign_in_user(self, user: str = USER) -> None:
        url = self.signIn(REDIRECT)
        self.handleSignInCallback(self.provider.approve(url, user))

    def requests_to(self, endpoint: str, grant_type: str | None = None) -> int:
        return sum(
            1
            for entry in self.provider.log
            if entry.endpoint == endpoint and (grant_type is None or entry.grant_type == grant_type)
        )


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage() -> Storage:
    return MemoryStorage()


@pytest.fixture
def harness(kind: str, served: ServedProvider, clock: Clock, storage: Storage) -> Harness:
    return Harness(kind, make_client(kind, served.url, clock, storage), served)


# A real redis-server, for the coordinator's tests (tests/redis_support.py).
from tests.redis_support import redis_server, redis_url  # noqa: E402, F401
