"""Fixtures for the conformance catalogue: the test provider served on loopback (with the
signing algorithm a case needs) and a harness that drives either client the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from logto_adapters.testing import ServedProvider, serve_provider
from logto_core.errors import LogtoError
from logto_core.session import SessionState, StorageKey
from logto_core.storage import MemoryStorage, Storage
from logto_core.testing import TestProvider
from tests.adapters.conftest import (
    APP_SECRET,
    KINDS,
    Clock,
    Harness,
    make_client,
    setup_provider,
)

SPA_ID = "spa-app"
SPA_REDIRECT = "http://127.0.0.1:9/spa-callback"
SECRET_PARAMS = ("code", "code_verifier", "refresh_token", "token", "client_secret")

Serve = Callable[..., ServedProvider]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def serve(clock: Clock) -> Iterator[Serve]:
    """Start a provider signing with ``signing_alg`` (stopped at teardown)."""
    started: list[ServedProvider] = []

    def start(signing_alg: str = "ES384") -> ServedProvider:
        server = serve_provider(
            lambda url: TestProvider(url, clock=clock, signing_alg=signing_alg), max_delay=5.0
        )
        started.append(server)
        setup_provider(server.provider)
        server.provider.add_client(
            SPA_ID, kind="spa", redirect_uris=[SPA_REDIRECT], post_logout_redirect_uris=[]
        )
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def served(serve: Serve) -> ServedProvider:
    return serve()


@pytest.fixture
def storage() -> Storage:
    return MemoryStorage()


@pytest.fixture
def harness(kind: str, served: ServedProvider, clock: Clock, storage: Storage) -> Harness:
    return Harness(kind, make_client(kind, served.url, clock, storage), served)


def session_of(storage: Storage) -> dict[str, str | None]:
    """Every storage key the SDK owns, with its value."""
    return {key: storage.get(key) for key in StorageKey.ALL}


def secrets_seen(harness: Harness, storage: Storage | None = None) -> list[str]:
    """The client secret plus every code, verifier and token that crossed the wire or sits
    in the storage: none may appear in an error's message, ``str()`` or ``repr()``."""
    found = [APP_SECRET]
    for entry in harness.provider.log:
        found.extend(v for k, v in entry.params.items() if k in SECRET_PARAMS and v)
    if storage is not None:
        session = SessionState.load(storage.get)
        found.extend(token for token in (session.id_token, session.refresh_token) if token)
    return found


def expect_error(
    harness: Harness,
    call: Callable[[], Any],
    error_type: type[LogtoError],
    code: str,
    storage: Storage | None = None,
) -> Any:
    """Run ``call``, require ``error_type`` with ``code``, and require a clean message."""
    with pytest.raises(LogtoError) as caught:
        call()
    error = caught.value
    assert isinstance(error, error_type), f"{type(error).__name__} {error.code}"
    assert error.code == code, error.code
    text = f"{error} {error!r} {error.message}"
    for secret in secrets_seen(harness, storage):
        assert secret not in text
    return error
