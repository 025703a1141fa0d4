"""An in-memory pairing of the client core with the test provider, sharing a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logto_core.config import LogtoConfig
from logto_core.driver import run_sync
from logto_core.errors import TransportError
from logto_core.flows import Flow, Outcome, T
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.session import SessionState
from logto_core.testing import TestProvider
from tests.core_facade import CoreFacade

ENDPOINT = "http://127.0.0.1:3001"
REDIRECT = "http://127.0.0.1:5000/callback"
HOME = "http://127.0.0.1:5000/"
API = "https://api.example.com"
API2 = "https://store.example.com"
START = 1_700_000_000.0


class FakeClock:
    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_provider(clock: FakeClock, *, alg: str = "ES384") -> TestProvider:
    provider = TestProvider(endpoint=ENDPOINT, clock=clock, signing_alg=alg)
    for client_id, kind, secret in (("web", "traditional", "web-secret"), ("spa", "spa", None)):
        provider.add_client(
            client_id,
            secret=secret,
            redirect_uris=[REDIRECT],
            post_logout_redirect_uris=[HOME],
            kind=kind,  # type: ignore[arg-type]
        )
    for sub, name in (("alice", "Alice"), ("bob", "Bob")):
        provider.add_user(
            sub, username=sub, name=name, email=f"{sub}@example.com", custom_data={"n": name}
        )
    provider.add_resource(API, scopes=["read", "write"])
    provider.add_resource(API2, scopes=["read"])
    provider.grant_permissions("alice", API, ["read", "write"])
    provider.grant_permissions("alice", API2, ["read"])
    provider.grant_permissions("bob", API, ["read"])
    for org in ("o1", "o2"):
        provider.add_organization(org, name=org.upper())
        provider.add_member(org, "alice", roles=["admin"], scopes=["org:read"])
    provider.add_member("o1", "bob", roles=["member"], scopes=[])
    return provider


def make_config(client_id: str = "web", **overrides: Any) -> LogtoConfig:
    values: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "appId": client_id,
        "appSecret": "web-secret" if client_id == "web" else None,
        "scopes": [
            "email",
            "read",
            "write",
            "urn:logto:scope:organizations",
            "org:read",
            "custom_data",
        ],
        "resources": [API, API2],
    }
    values.update(overrides)
    return LogtoConfig(**values)


@dataclass
class Harness:
    """One client configuration, one provider, any number of sessions by name."""

    clock: FakeClock = field(default_factory=FakeClock)
    client_id: str = "web"
    config_overrides: dict[str, Any] = field(default_factory=dict)
    provider: TestProvider = field(init=False)
    core: CoreFacade = field(init=False)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    fail_next: list[TransportError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.provider = make_provider(self.clock)
        self.core = CoreFacade(
            make_config(self.client_id, **self.config_overrides), runtime=Runtime(clock=self.clock)
        )

    def send(self, request: HttpRequest) -> HttpResponse:
        if self.fail_next:
            raise self.fail_next.pop(0)
        reply = self.provider.respond(request)
        self.clock.advance(reply.delay)
        return reply.response

    def run(self, name: str, flow: Flow[T]) -> Outcome[T]:
        outcome = run_sync(flow, self.send)
        self.core.adopt(outcome.provider)
        self.sessions[name] = outcome.session
        return outcome

    def session(self, name: str = "s") -> SessionState:
        return self.sessions.get(name, SessionState())

    def start(self, name: str = "s", **kwargs: Any) -> str:
        return self.run(name, self.core.sign_in(self.session(name), REDIRECT, **kwargs)).unwrap()

    def sign_in(self, name: str = "s", user: str = "alice", **kwargs: Any) -> None:
        url = self.start(name, **kwargs)
        callback = self.provider.approve(url, user=user)
        self.run(name, self.core.handle_sign_in_callback(self.session(name), callback)).unwrap()

    def token(
        self, name: str = "s", resource: str | None = None, org: str | None = None
    ) -> Outcome[str]:
        return self.run(name, self.core.get_access_token(self.session(name), resource, org))

    def requests_to(self, endpoint: str, grant_type: str | None = None) -> int:
        return sum(
            1
            for e in self.provider.log
            if e.endpoint == endpoint and (grant_type is None or e.grant_type == grant_type)
        )
