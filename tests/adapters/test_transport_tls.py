"""TLS failures are ``transport.tls``: they name the host and the fix, chain the TLS
library's reason (never the URL), are logged once at WARNING and are not retried; a trusted
setup, configured the way the error says, works. Both transports, on a loopback TLS peer
with ``trustme`` certificates."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import trustme

from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.http import HttpRequest
from logto_core.log import LOGGER_NAME

from . import peers
from .conftest import REDIRECT, Clock, Harness, make_client
from .senders import TRANSPORTS, Sender, trusting

SECRET_QUERY = "?token=secret-in-query"
FIXES = {"requests": "requests.Session whose verify", "httpx": "client_factory"}


@pytest.fixture(params=TRANSPORTS)
def transport_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_path(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def tls_peer(ca: trustme.CA, *names: str) -> AbstractContextManager[peers.Peer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return peers.serve(tls=context)


@pytest.fixture
def served(ca: trustme.CA) -> Iterator[peers.Peer]:
    with tls_peer(ca, "127.0.0.1", "localhost") as peer:
        yield peer


def failure(sender: Sender, url: str, caplog: pytest.LogCaptureFixture) -> TransportError:
    """The ``transport.tls`` error of a discovery request to ``url``, checked for what every
    TLS error must be: named host, no query, a sanitized cause, one WARNING record."""
    caplog.clear()
    request = HttpRequest.get(
        url + "/oidc/.well-known/openid-configuration" + SECRET_QUERY, purpose="discovery"
    )
    with (
        caplog.at_level(logging.WARNING, logger=LOGGER_NAME),
        pytest.raises(TransportError) as caught,
    ):
        sender.send(request)
    error = caught.value
    assert error.code == policy.TLS
    host = url.split("//")[1].split(":")[0]
    assert f"TLS certificate of {host}" in error.message
    assert error.message.startswith(f"GET {url}/oidc/.well-known/openid-configuration failed")
    cause = error.__cause__
    assert isinstance(cause, policy.TlsFailure)
    assert error.__context__ is None
    for text in (str(error), repr(error), str(cause)):
        assert "secret-in-query" not in text
    records = [r for r in caplog.records if r.name == LOGGER_NAME]
    assert [(r.levelno, r.getMessage()) for r in records] == [(logging.WARNING, error.message)]
    return error


def test_untrusted_ca(
    transport_kind: str, served: peers.Peer, caplog: pytest.LogCaptureFixture
) -> None:
    sender = Sender(transport_kind, timeout=5)
    try:
        error = failure(sender, served.url, caplog)
        assert "not trusted by the CA bundle in use" in error.message
        assert FIXES[transport_kind] in error.message
        assert "fix the server's certificate chain" in error.message
        cause = error.__cause__
        assert isinstance(cause, policy.TlsFailure)
        assert cause.reason == "unable to get local issuer certificate"
        assert cause.verify_code == 20
        assert served.connections == 1  # a certificate problem is not retried
    finally:
        sender.close()


@pytest.mark.parametrize(
    ("names", "host", "reason"),
    [
        (("tenant.example",), "127.0.0.1", "IP address mismatch"),
        (("127.0.0.1",), "localhost", "Hostname mismatch"),
    ],
)
def test_wrong_host_name(
    transport_kind: str,
    ca: trustme.CA,
    ca_path: str,
    caplog: pytest.LogCaptureFixture,
    names: tuple[str, ...],
    host: str,
    reason: str,
) -> None:
    sender = Sender(transport_kind, timeout=5, **trusting(transport_kind, ca, ca_path))
    try:
        with tls_peer(ca, *names) as peer:
            url = peer.url.replace("127.0.0.1", host)
            error = failure(sender, url, caplog)
        assert "is not valid for that host name" in error.message
        assert reason in error.message
        cause = error.__cause__
        assert isinstance(cause, policy.TlsFailure)
        assert cause.reason.startswith(reason)
    finally:
        sender.close()


def test_trusted_setup_works(
    transport_kind: str,
    served: peers.Peer,
    ca: trustme.CA,
    ca_path: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fix the error names works, even where the environment names another CA bundle
    (which requests would otherwise let override the session's ``verify``)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ssl.get_default_verify_paths().openssl_cafile)
    sender = Sender(transport_kind, timeout=5, **trusting(transport_kind, ca, ca_path))
    try:
        with caplog.at_level(logging.DEBUG, logger=LOGGER_NAME):
            for _ in range(2):
                response = sender.send(HttpRequest.get(served.url + "/oidc/jwks", purpose="jwks"))
                assert (response.status, response.body) == (200, peers.OK_BODY)
        assert caplog.records == []
        assert served.connections == 1  # and the TLS connection is kept alive
    finally:
        sender.close()


def test_failed_handshake_and_cut_handshake(
    transport_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that does not speak TLS is a TLS failure (not retried); a handshake cut by
    the network is a connection failure (retried, for discovery)."""
    with peers.serve() as plain:
        url = plain.url.replace("http://", "https://")
        sender = Sender(transport_kind, timeout=5)
        try:
            plain.on_connect.append(peers.Reply(b"HTTP/1.1 400 Bad Request\r\n\r\n", close=True))
            request = HttpRequest.get(url + "/oidc/jwks" + SECRET_QUERY, purpose="jwks")
            with (
                caplog.at_level(logging.WARNING, logger=LOGGER_NAME),
                pytest.raises(TransportError) as caught,
            ):
                sender.send(request)
            assert caught.value.code == policy.TLS
            assert "TLS connection to 127.0.0.1 failed" in caught.value.message
            assert isinstance(caught.value.__cause__, policy.TlsFailure)
            assert len(caplog.records) == 1
            assert plain.connections == 1

            caplog.clear()
            plain.on_connect += [peers.Close()] * 3
            with (
                caplog.at_level(logging.WARNING, logger=LOGGER_NAME),
                pytest.raises(TransportError) as cut,
            ):
                sender.send(request)
            assert cut.value.code == policy.CONNECTION
            assert caplog.records == []
            assert plain.connections == 4  # retried twice
        finally:
            sender.close()


def test_client_reports_the_tls_error(
    transport_kind: str, served: peers.Peer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    client_kind = "sync" if transport_kind == "requests" else "aio"
    client = make_client(client_kind, served.url, clock, timeout=5)
    harness = Harness(client_kind, client, None)  # type: ignore[arg-type]
    with (
        caplog.at_level(logging.WARNING, logger=LOGGER_NAME),
        pytest.raises(TransportError) as caught,
    ):
        harness.signIn(REDIRECT)
    assert caught.value.code == policy.TLS
    assert "127.0.0.1" in caught.value.message
    assert [r.levelno for r in caplog.records] == [logging.WARNING]  # once, not per layer
