"""Back-channel logout end to end on both clients: the test provider (over loopback) mints the
logout tokens Logto sends, ``Logto.handleBackchannelLogout`` verifies them with its transport
and provider cache and signs out the matching sessions of a ``SessionRegistry``."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from logto_adapters import aio, sync
from logto_adapters.session_registry import RegisteredSession, SessionRegistry
from logto_adapters.testing import ServedProvider
from logto_core.log import LOGGER_NAME
from logto_core.protocol.backchannel import BackchannelLogoutResult
from logto_core.runtime import Runtime
from logto_core.testing import logout_request

from .conftest import APP_ID, REDIRECT, USER, Clock, make_config

OTHER_USER = "user-2"
RECEIVER = "http://127.0.0.1:9/back-channel-logout"


def _run(value: Any) -> Any:
    return asyncio.run(value) if inspect.iscoroutine(value) else value


@dataclass
class App:
    """A web app: one Logto, one session registry, browsers by their session id."""

    kind: str
    logto: Any
    sessions: SessionRegistry
    served: ServedProvider

    @property
    def provider(self) -> Any:
        return self.served.provider

    def sign_in(self, user: str = USER) -> RegisteredSession:
        storage = self.sessions.open(None)
        session = self.logto.session(storage)
        url = _run(session.signIn(REDIRECT))
        _run(session.handleSignInCallback(self.provider.approve(url, user)))
        self.sessions.rotate(storage.id)  # what an integration does at sign-in
        return storage

    def claims(self, storage: RegisteredSession) -> Any:
        return self.logto.session(storage).getIdTokenClaims()

    def signed_in(self, storage: RegisteredSession) -> bool:
        # The browser's next request: its cookie's id, opened again.
        opened = self.sessions.open(storage.id)
        assert opened.id == storage.id  # the id stays; the session is signed out
        return bool(self.logto.session(opened).isAuthenticated())

    def deliver(
        self, token: str, sessions: Any = None, *, use_registry: bool = True
    ) -> BackchannelLogoutResult:
        request = logout_request(RECEIVER, token)
        lookup = sessions if sessions is not None else (self.sessions if use_registry else None)
        result = self.logto.handleBackchannelLogout(
            request.method, request.headers, request.body, lookup
        )
        answered: BackchannelLogoutResult = _run(result)
        return answered

    def token(self, **kwargs: Any) -> str:
        return str(self.provider.logout_token(APP_ID, **kwargs))

    def requests_to(self, endpoint: str) -> int:
        return sum(1 for entry in self.provider.log if entry.endpoint == endpoint)

    def wait_for_revocations(self) -> None:
        assert self.logto.waitForRevocations(10.0) is True


@pytest.fixture
def app(kind: str, served: ServedProvider, clock: Clock) -> App:
    served.provider.add_user(OTHER_USER, name="Bea")
    module: Any = sync if kind == "sync" else aio
    runtime = Runtime(clock=clock)
    logto = module.Logto(make_config(served.url), runtime=runtime, timeout=(2.0, 5.0))
    return App(kind, logto, SessionRegistry(runtime=runtime), served)


def code(result: BackchannelLogoutResult) -> str | None:
    return result.error.code if result.error is not None else None


def test_a_logout_token_signs_out_the_session_it_names(app: App) -> None:
    mine, my_other_browser, someone_else = app.sign_in(), app.sign_in(), app.sign_in(OTHER_USER)
    claims = app.claims(mine)
    refresh_token = app.logto.session(mine).getRefreshToken()
    assert claims.sid is not None and app.provider.is_refresh_token_active(refresh_token)

    result = app.deliver(app.token(sid=claims.sid, sub=claims.sub))
    assert (result.status, result.ended, code(result)) == (200, 1, None)
    assert dict(result.headers) == {"Cache-Control": "no-store"} and result.body == b""
    assert (result.sid, result.sub) == (claims.sid, USER)

    assert not app.signed_in(mine)
    assert app.signed_in(my_other_browser) and app.signed_in(someone_else)
    assert _run(app.logto.session(mine).getAccessToken()) is None
    # Signed out as signOut does: the refresh token is revoked too (in the background).
    app.wait_for_revocations()
    assert not app.provider.is_refresh_token_active(refresh_token)
    assert _run(app.logto.session(my_other_browser).getAccessToken()) is not None


def test_a_logout_token_without_sid_signs_out_every_session_of_the_user(app: App) -> None:
    mine, my_other_browser, someone_else = app.sign_in(), app.sign_in(), app.sign_in(OTHER_USER)
    result = app.deliver(app.token(sub=USER))
    assert (result.status, result.ended) == (200, 2)
    assert not app.signed_in(mine) and not app.signed_in(my_other_browser)
    assert app.signed_in(someone_else)


def test_a_logout_for_a_session_no_one_has_succeeds(app: App) -> None:
    # Section 2.7: already signed out counts as a successful logout.
    result = app.deliver(app.token(sid="gone", sub=USER))
    assert (result.status, result.ended) == (200, 0)


def test_a_replayed_token_is_refused_and_ends_nothing_more(app: App) -> None:
    mine = app.sign_in()
    token = app.token(sub=USER)
    assert app.deliver(token).ended == 1
    again_signed_in = app.sign_in()  # the user signs in again; the old token comes back
    replay = app.deliver(token)
    assert (replay.status, code(replay)) == (400, "logout_token.replayed")
    assert json.loads(replay.body)["error"] == "invalid_request"
    assert app.signed_in(again_signed_in) and not app.signed_in(mine)


@pytest.mark.parametrize(
    ("claims", "header", "expected"),
    [
        ({"nonce": "n-1"}, None, "logout_token.nonce_present"),
        ({"events": {}}, None, "logout_token.events_invalid"),
        ({"sid": None, "sub": None}, None, "logout_token.subject_missing"),
        ({"iss": "http://127.0.0.1:1/oidc"}, None, "logout_token.iss_mismatch"),
        ({"aud": "another-app"}, None, "logout_token.aud_mismatch"),
        ({"jti": None}, None, "logout_token.missing_claim"),
        (None, {"typ": None}, "logout_token.typ_not_allowed"),
        (None, {"alg": "none"}, "logout_token.alg_not_allowed"),
    ],
)
def test_a_bad_token_is_refused_and_every_session_stays(
    app: App, claims: dict[str, Any] | None, header: dict[str, Any] | None, expected: str
) -> None:
    mine = app.sign_in()
    token = app.token(sub=USER, claims=claims, header=header)
    result = app.deliver(token)
    assert (result.status, code(result), result.ended) == (400, expected, 0)
    assert token.encode() not in result.body
    assert app.signed_in(mine)


def test_an_expired_or_stale_token_is_refused(app: App, clock: Clock) -> None:
    app.sign_in()
    assert code(app.deliver(app.token(sub=USER, expires_in=10), use_registry=False)) is None
    late = app.token(sub=USER, expires_in=10)
    clock.advance(71)
    assert code(app.deliver(late)) == "logout_token.expired"
    stale = app.token(sub=USER)
    clock.advance(181)
    assert code(app.deliver(stale)) == "logout_token.too_old"


def test_a_rotated_signing_key_is_fetched_once(app: App) -> None:
    app.sign_in()
    assert app.requests_to("jwks") == 1  # the sign-in's, in the app's provider cache
    app.provider.rotate_signing_key()
    assert app.deliver(app.token(sub=USER)).ended == 1
    assert app.requests_to("jwks") == 2
    forged = app.token(sub=USER, header={"kid": "unknown-kid"})
    assert code(app.deliver(forged)) == "logout_token.kid_unknown"
    assert app.requests_to("jwks") == 2  # within the cooldown: no refetch


class BrokenStore:
    def __init__(self) -> None:
        self.calls = 0

    def matching(self, *, iss: str, sid: str | None, sub: str | None) -> Sequence[Any]:
        self.calls += 1
        raise ConnectionError("the session store is down")


def test_when_the_sessions_cannot_be_ended_the_provider_may_retry(app: App) -> None:
    mine = app.sign_in()
    token = app.token(sub=USER)
    broken = BrokenStore()
    failed = app.deliver(token, broken)
    assert (failed.status, code(failed), broken.calls) == (400, "storage.end_sessions", 1)
    assert "store is down" not in failed.body.decode()
    assert failed.error is not None and isinstance(failed.error.__cause__, ConnectionError)
    assert app.signed_in(mine)
    retried = app.deliver(token)  # the same token again: not a replay
    assert (retried.status, retried.ended) == (200, 1) and not app.signed_in(mine)


def test_without_a_session_lookup_the_result_says_whom(app: App) -> None:
    mine = app.sign_in()
    sid = app.claims(mine).sid
    result = app.deliver(app.token(sid=sid), use_registry=False)
    assert (result.status, result.ended, result.sid, result.sub) == (200, 0, sid, None)
    assert app.signed_in(mine)


def test_a_request_that_is_not_a_logout_is_answered_400(app: App) -> None:
    for method, headers, body, expected in [
        ("GET", {}, b"", "logout_request.method"),
        ("POST", {"Content-Type": "application/json"}, b"{}", "logout_request.content_type"),
        ("POST", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=b", None),
    ]:
        result = _run(app.logto.handleBackchannelLogout(method, headers, body, app.sessions))
        assert result.status == 400
        assert code(result) == (expected or "logout_request.token_missing")
    assert app.requests_to("discovery") == 0  # nothing was fetched for them


def test_the_pep8_name_and_no_token_in_any_log_record(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app.sign_in()
    token = app.token(sub=USER)
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    request = logout_request(RECEIVER, token)
    result = _run(
        app.logto.handle_backchannel_logout(
            request.method, request.headers, request.body, app.sessions
        )
    )
    assert result.ended == 1
    _run(app.logto.handle_backchannel_logout(request.method, request.headers, request.body))
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "back-channel logout accepted; 1 session(s) signed out" in text
    assert "logout_token.replayed" in text
    jti = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["jti"]
    assert token not in text and jti not in text
