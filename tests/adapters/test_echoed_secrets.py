"""A provider (or a gateway in front of it) that echoes the request in its error answer must
not make either client show a secret: not in ``str()``, ``repr()``, an attribute, the cause
chain, nor any log record (DEBUG included). Provider text is bounded in messages, and
``invalid_client`` names the fix."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import pytest

from logto_adapters.testing import ServedProvider
from logto_core.errors import LogtoError, OAuthError, ProviderResponseError
from logto_core.log import LOGGER_NAME
from logto_core.scrub import REDACTED
from logto_core.session import SessionState
from logto_core.storage import MemoryStorage
from logto_core.testing import Fault
from tests.adapters.conftest import API, POST_LOGOUT, REDIRECT, USER, Clock, Harness, make_client
from tests.secret_leaks import assert_no_leak, error_texts, record_texts

ECHO_APP = "echo-app"
# Every character an encoder changes, so that each encoding of the echo differs.
ECHO_SECRET = "s3cr+t/with=special&chars% :~"


@dataclass
class Echo:
    harness: Harness
    storage: MemoryStorage

    def secrets(self) -> set[str]:
        """The client secret in its forms, and what the storage holds now."""
        found = {ECHO_SECRET, f"{ECHO_APP}:{ECHO_SECRET}", _basic()}
        session = SessionState.load(self.storage.get)
        if session.refresh_token:
            found.add(session.refresh_token)
        for entry in session.pending:
            found.update({entry.code_verifier, entry.nonce})
        return found


def _echo_client(kind: str, served: ServedProvider, clock: Clock, **options: Any) -> Iterator[Echo]:
    if ECHO_APP not in served.provider.directory.clients:
        served.provider.add_client(
            ECHO_APP,
            secret=ECHO_SECRET,
            redirect_uris=[REDIRECT],
            post_logout_redirect_uris=[POST_LOGOUT],
            kind="traditional",
        )
    storage = MemoryStorage()
    config = {"appId": ECHO_APP, "appSecret": ECHO_SECRET}
    client = make_client(kind, served.url, clock, storage, config=config, **options)
    try:
        yield Echo(Harness(kind, client, served), storage)
    finally:
        _close(kind, client)


def _close(kind: str, client: Any) -> None:
    if kind == "sync":
        client.close()
    else:
        asyncio.run(client.aclose())


@pytest.fixture
def echo(kind: str, served: ServedProvider, clock: Clock) -> Iterator[Echo]:
    yield from _echo_client(kind, served, clock)


def _basic() -> str:
    pair = f"{quote_plus(ECHO_APP)}:{quote_plus(ECHO_SECRET)}".encode()
    return base64.b64encode(pair).decode()


def _expect(call: Any) -> LogtoError:
    with pytest.raises(LogtoError) as info:
        call()
    return info.value


def _logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(LOGGER_NAME)]


@pytest.mark.parametrize("mode", ["oauth", "text"])
def test_code_exchange_echo(echo: Echo, caplog: pytest.LogCaptureFixture, mode: Any) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    client = echo.harness
    url = client.signIn(REDIRECT)
    secrets = echo.secrets()
    callback = client.provider.approve(url, USER)
    secrets.add(dict(parse_qsl(urlsplit(callback).query))["code"])
    client.provider.faults.add(Fault("token", grant_type="authorization_code", echo=mode))
    error = _expect(lambda: client.handleSignInCallback(callback))
    assert isinstance(error, OAuthError if mode == "oauth" else ProviderResponseError)
    if isinstance(error, OAuthError):  # the whole echo is on the attribute, scrubbed
        assert REDACTED in (error.error_description or "")
    else:  # only the beginning: the request line and the first headers
        assert error.body_excerpt.startswith("rejected request: POST ")
    assert_no_leak(error_texts(error), secrets)
    assert _logged(caplog), "the flow's requests were logged"
    assert_no_leak(record_texts(_logged(caplog)), secrets)


@pytest.mark.parametrize("mode", ["oauth", "text"])
def test_refresh_echo(echo: Echo, caplog: pytest.LogCaptureFixture, mode: Any) -> None:
    client = echo.harness
    client.sign_in_user()
    secrets = echo.secrets()
    assert client.getRefreshToken() in secrets
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    client.provider.faults.add(Fault("token", grant_type="refresh_token", echo=mode))
    error = _expect(lambda: client.getAccessToken(API))
    assert error.code in ("oauth.invalid_request", "provider_response.status")
    assert_no_leak(error_texts(error), secrets)
    assert_no_leak(record_texts(_logged(caplog)), secrets)
    assert client.getAccessToken(API)  # the session survived the bad answer


@pytest.mark.parametrize("mode", ["oauth", "text"])
@pytest.mark.parametrize("revocation", ["background", "inline"])
def test_revocation_echo(
    kind: str,
    served: ServedProvider,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    mode: Any,
    revocation: str,
) -> None:
    for echo in _echo_client(kind, served, clock, revocation=revocation):
        client = echo.harness
        client.sign_in_user()
        secrets = echo.secrets()
        caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
        served.provider.faults.add(Fault("revocation", echo=mode))
        client.signOut(POST_LOGOUT)
        assert client.waitForRevocations(5.0) is True
        records = _logged(caplog)
        assert any(
            r.levelno == logging.WARNING and "revocation failed" in r.getMessage() for r in records
        )
        assert_no_leak(record_texts(records), secrets)


def test_a_secret_as_the_error_field(echo: Echo, caplog: pytest.LogCaptureFixture) -> None:
    client = echo.harness
    client.sign_in_user()
    secrets = echo.secrets()
    refresh = client.getRefreshToken()
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    for value in (refresh, _basic()):
        client.provider.faults.add(Fault("token", status=400, body={"error": value}))
        error = _expect(lambda: client.getAccessToken(API))
        # Redacted, or too long to be an error code at all: never the secret.
        assert error.code in (f"oauth.{REDACTED}", "provider_response.invalid_error")
        assert_no_leak(error_texts(error), secrets)
    assert_no_leak(record_texts(_logged(caplog)), secrets)


def test_provider_text_is_bounded_in_messages(harness: Harness) -> None:
    harness.sign_in_user()
    description = "x" * 10_000
    harness.provider.faults.add(
        Fault(
            "token", status=400, body={"error": "invalid_target", "error_description": description}
        )
    )
    error = _expect(lambda: harness.getAccessToken(API))
    assert isinstance(error, OAuthError) and error.error_description == description
    assert len(str(error)) < 400 and len(repr(error)) < 500
    harness.provider.faults.add(Fault("token", status=400, body={"error": "bad\nline"}))
    error = _expect(lambda: harness.getAccessToken(API))
    assert error.code == "provider_response.invalid_error"


@pytest.mark.parametrize(
    ("config", "fix"),
    [
        ({"appSecret": "not-the-secret"}, "check appSecret"),
        ({"appSecret": None}, "set appSecret"),
    ],
)
def test_invalid_client_names_the_fix(
    kind: str, served: ServedProvider, clock: Clock, config: dict[str, Any], fix: str
) -> None:
    client = make_client(kind, served.url, clock, MemoryStorage(), config=config)
    harness = Harness(kind, client, served)
    url = harness.signIn(REDIRECT)
    error = _expect(lambda: harness.handleSignInCallback(harness.provider.approve(url, USER)))
    assert isinstance(error, OAuthError) and error.code == "oauth.invalid_client"
    assert fix in str(error) and error.hint is not None and fix in error.hint
    assert "not-the-secret" not in str(error)
    _close(kind, client)


@pytest.mark.parametrize("mode", ["oauth", "text"])
def test_token_exchange_echo(echo: Echo, caplog: pytest.LogCaptureFixture, mode: Any) -> None:
    """The subject and actor tokens are secrets: an echo of the exchange shows neither."""
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    client = echo.harness
    client.sign_in_user()
    actor = client.getAccessToken()
    subject = client.provider.create_subject_token(USER)
    secrets = echo.secrets() | {subject, str(actor)}
    grant = "urn:ietf:params:oauth:grant-type:token-exchange"
    client.provider.faults.add(Fault("token", grant_type=grant, echo=mode))
    error = _expect(
        lambda: client.exchangeToken(
            subject, "urn:ietf:params:oauth:token-type:access_token", resource=API, actorToken=actor
        )
    )
    assert isinstance(error, OAuthError if mode == "oauth" else ProviderResponseError)
    assert_no_leak(error_texts(error), secrets)
    assert_no_leak(record_texts(_logged(caplog)), secrets)


@pytest.mark.parametrize("mode", ["oauth", "text"])
def test_client_credentials_echo(
    kind: str, served: ServedProvider, clock: Clock, caplog: pytest.LogCaptureFixture, mode: Any
) -> None:
    from logto_adapters import aio, sync
    from logto_core.runtime import Runtime

    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    served.provider.add_client("echo-m2m", secret=ECHO_SECRET, kind="m2m")
    module: Any = sync if kind == "sync" else aio
    config = module.LogtoConfig(endpoint=served.url, appId="echo-m2m", appSecret=ECHO_SECRET)
    harness = Harness(kind, module.LogtoM2MClient(config, runtime=Runtime(clock=clock)), served)
    served.provider.faults.add(Fault("token", grant_type="client_credentials", echo=mode))
    error = _expect(lambda: harness.getAccessToken(API, scopes=["read"]))
    assert isinstance(error, OAuthError if mode == "oauth" else ProviderResponseError)
    basic = base64.b64encode(f"echo-m2m:{quote_plus(ECHO_SECRET)}".encode()).decode()
    secrets = {ECHO_SECRET, f"echo-m2m:{ECHO_SECRET}", basic}
    assert_no_leak(error_texts(error), secrets)
    assert_no_leak(record_texts(_logged(caplog)), secrets)
    harness.aclose() if kind == "aio" else harness.close()
