"""Soak engine: many sessions, thousands of operations, random faults, both clients.

One loopback test provider (with a fake clock) serves two client instances of one kind: a
confidential web app and a public SPA (whose refresh tokens rotate on every use). Each
session is one user with its own storage. Operations are drawn at random from a seeded
generator; before some of them a fault is armed:

* ``5xx`` / ``429`` on the refresh grant (Fault status),
* ``timeout``: a fault delay longer than the client's total timeout,
* ``reset``: the HTTP library's transport raises a connection error before sending (a
  ``requests`` adapter / ``httpx`` transport mounted through the clients' public options),
* ``truncated``: a 200 whose body is cut in the middle of the JSON,
* ``invalid_grant``: the refresh answers ``invalid_grant`` (the session must end cleanly),
* ``userinfo_401``: one ``invalid_token`` answer from userinfo,
* ``rotate_key``: the provider starts signing with a new key,
* clock skew: each client's clock is off the provider's by up to +-40 s (tolerance 60 s).

Invariants, checked as it runs and at the end (:class:`SoakReport` lists violations):

* every error is a :class:`LogtoError` (anything else propagates and fails the run);
* after a transient fault the session keeps its tokens, and an immediate retry works;
* no token crosses sessions: ID tokens, JWT access tokens and userinfo name the session's user;
* no refresh token the client saw rotated away is ever presented again (``provider.log``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import requests
from requests.adapters import HTTPAdapter

from logto_adapters import aio, sync
from logto_adapters.testing import ServedProvider, serve_provider
from logto_core.errors import LogtoError
from logto_core.jose.jwt import decode_unverified
from logto_core.runtime import Runtime
from logto_core.session import SessionState
from logto_core.storage import MemoryStorage
from logto_core.testing import Fault, TestProvider

START = 1_700_000_000.0
WEB_ID, WEB_SECRET = "soak-web", "soak-web-secret-0123456789"
SPA_ID = "soak-spa"
REDIRECT = "http://127.0.0.1:9/callback"
API = "https://api.soak.example"
ORG = "org-soak"
# Generous enough that a busy machine never times a healthy loopback exchange out; the
# "timeout" fault stalls beyond it.
TIMEOUT = (1.0, 1.5)
STALL = 2.0  # a fault delay beyond the total timeout
TRANSIENT = ("5xx", "429", "timeout", "reset", "truncated")
FAULTS = (*TRANSIENT, "invalid_grant", "userinfo_401", "rotate_key")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Chaos:
    """How many upcoming requests the HTTP library's transport must fail with a reset."""

    def __init__(self) -> None:
        self.armed = 0

    def fire(self) -> bool:
        if self.armed > 0:
            self.armed -= 1
            return True
        return False


class ChaosAdapter(HTTPAdapter):
    """A ``requests`` adapter that fails armed requests as a reset connection would."""

    def __init__(self, chaos: Chaos) -> None:
        super().__init__()
        self.chaos = chaos

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if self.chaos.fire():
            raise requests.exceptions.ConnectionError("connection reset by peer (soak)")
        response = super().send(request, *args, **kwargs)
        # One connection per request: the loopback server writes headers and body separately
        # without TCP_NODELAY, which costs ~40 ms on a reused connection (Nagle + delayed
        # ACK); a fresh connection avoids it. Read the (small) body, then drop the connection.
        _ = response.content
        self.poolmanager.clear()
        return response


class ChaosTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that fails armed requests as a reset connection would."""

    def __init__(self, chaos: Chaos) -> None:
        self.chaos = chaos
        # No keep-alive, for the same reason as the requests session (see Driver._client).
        self.inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.chaos.fire():
            raise httpx.ReadError("connection reset by peer (soak)", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Session:
    user: str
    app: str  # "web" or "spa"
    storage: MemoryStorage = field(default_factory=MemoryStorage)


@dataclass
class SoakReport:
    kind: str
    sessions: int = 0
    operations: int = 0
    seconds: float = 0.0
    requests: int = 0
    refreshes: int = 0
    sign_ins: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    transient_recovered: int = 0
    expired: int = 0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.kind}: {self.sessions} sessions, {self.operations} operations, "
            f"{self.requests} requests ({self.refreshes} refreshes, {self.sign_ins} sign-ins) "
            f"in {self.seconds:.1f} s; faults {dict(sorted(self.faults.items()))}; "
            f"typed errors {dict(sorted(self.errors.items()))}; "
            f"{self.transient_recovered} transient faults recovered; "
            f"{self.expired} sessions found expired by the provider; "
            f"violations: {len(self.violations)}"
        )


def setup(provider: TestProvider, users: int) -> None:
    provider.add_client(WEB_ID, kind="traditional", secret=WEB_SECRET, redirect_uris=[REDIRECT])
    provider.add_client(SPA_ID, kind="spa", redirect_uris=[REDIRECT])
    provider.add_resource(API, ["read"])
    provider.add_organization(ORG, "Soak")
    for n in range(users):
        user = f"user-{n}"
        provider.add_user(user, name=f"User {n}")
        provider.grant_permissions(user, API, ["read"])
        provider.add_member(ORG, user, roles=["member"], scopes=["read:docs"])


class Driver:
    """Runs client calls for one kind: plain calls, or coroutines on one event loop."""

    def __init__(self, kind: str, served: ServedProvider, clock: Clock, rng: random.Random):
        self.kind = kind
        self.chaos = Chaos()
        self.loop = asyncio.new_event_loop() if kind == "aio" else None
        self.clients = {
            app: self._client(app, served.url, clock, rng.uniform(-40, 40))
            for app in ("web", "spa")
        }

    def _client(self, app: str, url: str, clock: Clock, skew: float) -> Any:
        config = sync.LogtoConfig(
            endpoint=url,
            appId=WEB_ID if app == "web" else SPA_ID,
            appSecret=WEB_SECRET if app == "web" else None,
            scopes=["read", sync.UserInfoScope.organizations],
            resources=[API],
        )
        runtime = Runtime(clock=lambda: clock.now + skew)
        if self.kind == "sync":
            session = requests.Session()
            adapter = ChaosAdapter(self.chaos)
            session.mount("http://", adapter)
            return sync.LogtoClient(
                config, MemoryStorage(), session=session, timeout=TIMEOUT, runtime=runtime
            )
        chaos = self.chaos
        return aio.LogtoClient(
            config,
            MemoryStorage(),
            client_factory=lambda: httpx.AsyncClient(transport=ChaosTransport(chaos)),
            timeout=TIMEOUT,
            runtime=runtime,
        )

    def call(self, session: Session, name: str, *args: Any) -> Any:
        client = self.clients[session.app]
        client.storage = session.storage  # one client, per-session storage (as a web app does)
        result = getattr(client, name)(*args)
        if self.loop is not None and asyncio.iscoroutine(result):
            return self.loop.run_until_complete(result)
        return result

    def close(self) -> None:
        for client in self.clients.values():
            closing = client.close() if hasattr(client, "close") else None
            if self.loop is not None and asyncio.iscoroutine(closing):
                self.loop.run_until_complete(closing)
        if self.loop is not None:
            self.loop.close()


def stored(storage: MemoryStorage) -> SessionState:
    return SessionState.load(storage.get)


def user_of(token: str | None) -> Any:
    return decode_unverified(token)[1].get("sub") if token else None


class Soak:
    def __init__(self, kind: str, sessions: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = Clock()
        self.report = SoakReport(kind, sessions=sessions)
        self.served = serve_provider(lambda url: TestProvider(url, clock=self.clock), max_delay=2.0)
        setup(self.served.provider, sessions)
        self.sessions = [Session(f"user-{n}", "web" if n % 2 else "spa") for n in range(sessions)]
        self.driver = Driver(kind, self.served, self.clock, self.rng)
        # refresh token -> log length when the client was seen replacing it.
        self.retired: dict[str, int] = {}

    @property
    def provider(self) -> TestProvider:
        return self.served.provider

    def close(self) -> None:
        self.driver.close()
        self.served.stop()

    # ---- one operation ------------------------------------------------------------------

    def attempt(self, session: Session, name: str, *args: Any) -> tuple[Any, LogtoError | None]:
        before = stored(session.storage).refresh_token
        try:
            result = self.driver.call(session, name, *args)
            error = None
        except LogtoError as caught:  # anything else propagates: the run fails
            result, error = None, caught
            self.report.errors[caught.code] += 1
        after = stored(session.storage).refresh_token
        if before is not None and after is not None and after != before:
            with self.served.lock:
                self.retired.setdefault(before, len(self.provider.log))
        self.report.operations += 1
        return result, error

    def sign_in(self, session: Session) -> None:
        url, error = self.attempt(session, "signIn", REDIRECT)
        if error is not None:
            return
        with self.served.lock:
            callback = self.provider.approve(url, session.user)
        self.attempt(session, "handleSignInCallback", callback)
        self.report.sign_ins += 1

    def check_owner(self, session: Session) -> None:
        """No token of another user in this session."""
        for token in (stored(session.storage).id_token,):
            if token is not None and user_of(token) != session.user:
                self.report.violations.append(f"{session.user} holds an ID token of another user")

    def use(self, session: Session) -> None:
        choice = self.rng.random()
        if choice < 0.35:
            token, _ = self.attempt(session, "getAccessToken", API)
            if token is not None and user_of(token) != session.user:
                self.report.violations.append(f"{session.user} got another user's API token")
        elif choice < 0.55:
            token, _ = self.attempt(session, "getOrganizationToken", ORG)
            if token is not None and user_of(token) != session.user:
                self.report.violations.append(f"{session.user} got another user's org token")
        elif choice < 0.8:
            info, _ = self.attempt(session, "fetchUserInfo")
            if info is not None and info.sub != session.user:
                self.report.violations.append(f"{session.user} got another user's userinfo")
        elif choice < 0.95:
            self.attempt(session, "getAccessToken")
        else:
            self.attempt(session, "signOut")

    # ---- faults -------------------------------------------------------------------------------

    def arm(self, fault: str) -> None:
        refresh = "refresh_token"
        faults = {
            "5xx": Fault("token", grant_type=refresh, status=503, body=b"overloaded"),
            "429": Fault("token", grant_type=refresh, status=429, headers={"retry-after": "1"}),
            "timeout": Fault("token", grant_type=refresh, delay=STALL),
            "truncated": Fault("token", grant_type=refresh, body=b'{"access_token": "abc'),
            "invalid_grant": Fault(
                "token", grant_type=refresh, status=400, body={"error": "invalid_grant"}
            ),
            "userinfo_401": Fault("userinfo", status=401, body={"error": "invalid_token"}),
        }
        with self.served.lock:
            if fault == "reset":
                self.driver.chaos.armed = 1
            elif fault == "rotate_key":
                self.provider.rotate_signing_key()
            else:
                self.provider.faults.add(faults[fault])
        self.report.faults[fault] += 1

    def disarm(self) -> None:
        with self.served.lock:
            self.provider.faults.clear()
        self.driver.chaos.armed = 0

    def transient(self, session: Session, fault: str) -> None:
        """A transient fault on a refresh: the tokens survive, an immediate retry works."""
        self.clock.now += 3601  # the access tokens are stale: the next call refreshes
        refresh = stored(session.storage).refresh_token
        with self.served.lock:
            alive = refresh is not None and self.provider.is_refresh_token_active(refresh)
        if not alive:
            # The fake clock ran past the refresh token's 14-day lifetime (or a key rotation
            # cost the session its last refresh): its end is the provider's verdict, not a fault.
            self.report.expired += 1
            self.use(session)
            return
        before = (
            stored(session.storage).id_token,
            stored(session.storage).refresh_token,
        )
        self.arm(fault)
        token, error = self.attempt(session, "getAccessToken", API)
        self.disarm()
        after = (
            stored(session.storage).id_token,
            stored(session.storage).refresh_token,
        )
        if error is None:
            return  # the fault hit nothing the call needed
        if after != before:
            self.report.violations.append(f"{fault}: session of {session.user} changed")
        token, error = self.attempt(session, "getAccessToken", API)  # same fake second
        if error is not None or token is None:
            self.report.violations.append(
                f"{fault}: retry failed for {session.user}: {error and error.code}"
            )
        else:
            self.report.transient_recovered += 1

    # ---- the run --------------------------------------------------------------------------------

    def step(self, fault_rate: float, timeouts_left: list[int]) -> None:
        session = self.rng.choice(self.sessions)
        self.clock.now += self.rng.choice([0, 0, 1, 30, 300, 1200, 3601])
        if stored(session.storage).refresh_token is None:
            self.sign_in(session)
            return
        if self.rng.random() < fault_rate:
            fault = self.rng.choice(FAULTS)
            if fault == "timeout":
                if timeouts_left[0] <= 0:
                    fault = "5xx"
                else:
                    timeouts_left[0] -= 1
            if fault in TRANSIENT:
                self.transient(session, fault)
            elif fault == "invalid_grant":
                self.clock.now += 3601
                self.arm(fault)
                token, error = self.attempt(session, "getAccessToken", API)
                self.disarm()
                # The tutorial's answer: None, and the whole session is gone.
                if (
                    token is not None
                    or error is not None
                    or stored(session.storage).id_token
                    or stored(session.storage).refresh_token
                ):
                    self.report.violations.append("invalid_grant did not end the session")
            else:
                self.arm(fault)
                self.use(session)
                self.disarm()
        else:
            self.use(session)
        self.check_owner(session)

    def run(
        self, operations: int, seconds: float, fault_rate: float, max_timeouts: int
    ) -> SoakReport:
        started = time.monotonic()
        timeouts_left = [max_timeouts]
        while self.report.operations < operations and time.monotonic() - started < seconds:
            self.step(fault_rate, timeouts_left)
        self.finish()
        self.report.seconds = time.monotonic() - started
        return self.report

    def finish(self) -> None:
        with self.served.lock:
            log = list(self.provider.log)
        self.report.requests = len(log)
        self.report.refreshes = sum(1 for e in log if e.grant_type == "refresh_token")
        for index, entry in enumerate(log):
            token = (
                entry.params.get("refresh_token") if entry.grant_type == "refresh_token" else None
            )
            if token is not None and token in self.retired and index >= self.retired[token]:
                self.report.violations.append("a rotated refresh token was presented again")
        for session in self.sessions:
            self.check_owner(session)


def run_soak(
    kind: str,
    *,
    sessions: int = 150,
    operations: int = 1500,
    seconds: float = 25.0,
    fault_rate: float = 0.15,
    max_timeouts: int = 6,
    seed: int = 1,
) -> SoakReport:
    """Run one soak for ``kind`` (``"sync"`` or ``"aio"``), bounded by count and time."""
    soak = Soak(kind, sessions, seed)
    try:
        return soak.run(operations, seconds, fault_rate, max_timeouts)
    finally:
        soak.close()


__all__ = ["FAULTS", "SoakReport", "run_soak"]
