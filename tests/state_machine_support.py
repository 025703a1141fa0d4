"""Support for the stateful test: a recording harness and the model of the expected state.

The model is written from the provider's documented rules (single-use codes, refresh-token
rotation with a reuse window, grant revocation, key rotation) and the client's documented
transitions (``logto_core/flows.py``), not from the client's code: the machine compares the
real :class:`SessionState` against it after every step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from logto_core.http import HttpRequest, HttpResponse
from logto_core.session import MAX_PENDING_SIGN_INS, PENDING_SIGN_IN_TTL, TokenKey
from logto_core.testing import (
    ACCESS_TOKEN_TTL,
    CODE_TTL,
    REFRESH_TOKEN_TTL,
    REUSE_WINDOW,
    ROTATION_THRESHOLD,
)
from tests.harness import ENDPOINT, Harness

TOKEN_URL = f"{ENDPOINT}/oidc/token"
EXPIRY_MARGIN = 30.0  # LogtoConfig.tokenExpiryMargin default
DISCOVERY_MAX_AGE = 24 * 3600.0  # LogtoConfig.discoveryMaxAge default
JWKS_MAX_AGE = 3600.0  # LogtoConfig.jwksMaxAge default
JWKS_COOLDOWN = 60.0  # LogtoConfig.jwksRefetchCooldown default


# ---- what crossed the wire -------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One request the provider answered, with the answer as the client received it."""

    endpoint: str
    params: Mapping[str, str]
    status: int
    body: Mapping[str, Any]

    @property
    def is_refresh(self) -> bool:
        return self.endpoint == "token" and self.params.get("grant_type") == "refresh_token"

    @property
    def presented(self) -> str | None:
        return self.params.get("refresh_token")


def _json_object(body: bytes) -> Mapping[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class RecordingHarness(Harness):
    """The harness, recording every answered request and able to fake a gateway 503 (an
    answer the provider never processed, unlike a provider ``Fault`` which is applied to a
    processed answer)."""

    exchanges: list[Exchange] = field(default_factory=list)
    gateway_503: bool = False

    def send(self, request: HttpRequest) -> HttpResponse:
        if self.gateway_503 and request.method == "POST" and request.url == TOKEN_URL:
            self.gateway_503 = False
            return HttpResponse.build(503, {"retry-after": "1"})
        response = super().send(request)
        entry = self.provider.log[-1]
        self.exchanges.append(
            Exchange(
                entry.endpoint, dict(entry.params), response.status, _json_object(response.body)
            )
        )
        return response

    def reset_faults(self) -> None:
        """Drop faults that found no request to apply to (e.g. the cache answered)."""
        self.provider.faults.clear()
        self.fail_next.clear()
        self.gateway_503 = False

    def token_exchanges(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.endpoint == "token"]


# ---- the model -------------------------------------------------------------------------


def query_value(url: str, name: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get(name)
    return values[0] if values else None


@dataclass(frozen=True)
class Attempt:
    """A sign-in the machine started (one browser tab)."""

    session: str
    url: str
    state: str
    created_at: float

    def __repr__(self) -> str:
        return f"Attempt(session={self.session!r}, created_at={self.created_at})"


@dataclass(frozen=True)
class Callback:
    """A redirect back from the provider for an attempt: approved for ``user``, or denied
    (``user is None``)."""

    attempt: Attempt
    url: str
    user: str | None
    issued_at: float
    epoch: int
    """The user's revocation epoch when the code (and its grant) was issued."""

    def __repr__(self) -> str:
        return f"Callback({self.attempt!r}, user={self.user!r}, issued_at={self.issued_at})"

    @property
    def state(self) -> str:
        return self.attempt.state

    @property
    def code(self) -> str | None:
        return query_value(self.url, "code")


@dataclass(frozen=True)
class Cached:
    token: str
    obtained_at: float

    def fresh(self, now: float) -> bool:
        return now < self.obtained_at + ACCESS_TOKEN_TTL - EXPIRY_MARGIN


@dataclass
class SessionModel:
    """The expected state of one session."""

    pending: list[Attempt] = field(default_factory=list)
    sub: str | None = None
    id_token: str | None = None
    refresh_token: str | None = None
    rt_issued_at: float = 0.0
    rt_consumed_at: float | None = None
    """When the provider rotated the current refresh token away in an answer that never
    reached the client (a processed request answered 5xx)."""
    grant_epoch: int = 0
    revoked_by_reuse: bool = False
    """The provider saw a rotated-away token after the window and revoked the grant."""
    access: dict[TokenKey, Cached] = field(default_factory=dict)

    def start(self, attempt: Attempt, now: float) -> None:
        alive = [p for p in self.pending if now - p.created_at < PENDING_SIGN_IN_TTL]
        alive.append(attempt)
        self.pending = alive[-MAX_PENDING_SIGN_INS:]

    def take(self, state: str) -> Attempt | None:
        for attempt in self.pending:
            if attempt.state == state:
                self.pending.remove(attempt)
                return attempt
        return None

    def clear(self) -> None:
        """Every token forgotten; pending sign-ins (other tabs) kept."""
        self.sub = self.id_token = self.refresh_token = None
        self.rt_consumed_at = None
        self.access = {}

    def sign_in(self, callback: Callback, body: Mapping[str, Any], now: float) -> None:
        assert callback.user is not None
        self.sub = callback.user
        self.id_token = body["id_token"]
        self.refresh_token = body["refresh_token"]
        self.rt_issued_at = now
        self.rt_consumed_at = None
        self.grant_epoch = callback.epoch
        self.revoked_by_reuse = False
        self.access = {TokenKey(): Cached(body["access_token"], now)}

    def grant_revoked(self, epoch: int) -> bool:
        """Is the grant revoked (its opaque access tokens refused at userinfo too)?"""
        return self.revoked_by_reuse or self.grant_epoch != epoch

    def reused_late(self, now: float) -> bool:
        """Presenting the current refresh token now is a reuse after the window."""
        return self.rt_consumed_at is not None and now - self.rt_consumed_at > REUSE_WINDOW

    def grant_dead(self, now: float, epoch: int) -> bool:
        """Would the provider answer ``invalid_grant`` to the current refresh token?"""
        if self.grant_revoked(epoch) or self.reused_late(now):
            return True
        return now >= self.rt_issued_at + REFRESH_TOKEN_TTL

    def rotation_due(self, now: float, confidential: bool) -> bool:
        if not confidential:
            return True
        return now - self.rt_issued_at >= ROTATION_THRESHOLD * REFRESH_TOKEN_TTL


@dataclass
class ProviderKnowledge:
    """What the client is expected to know about the provider (shared by all sessions)."""

    metadata_at: float | None = None
    provider_key_gen: int = 0
    client_key_gen: int | None = None
    keys_fetched_at: float = 0.0
    last_forced: float | None = None

    def metadata_fresh(self, now: float) -> bool:
        return self.metadata_at is not None and 0 <= now - self.metadata_at < DISCOVERY_MAX_AGE

    def learn_metadata(self, now: float) -> None:
        if not self.metadata_fresh(now):
            self.metadata_at = now

    def verify(self, now: float) -> bool:
        """Can an ID token signed with the provider's current key be verified now? Updates
        the key knowledge like the client should (fetch when stale, one forced refetch on an
        unknown key per cooldown)."""
        if self.client_key_gen is None or not (0 <= now - self.keys_fetched_at < JWKS_MAX_AGE):
            self.client_key_gen, self.keys_fetched_at = self.provider_key_gen, now
            return True
        if self.client_key_gen == self.provider_key_gen:
            return True
        if self.last_forced is None or not (0 <= now - self.last_forced < JWKS_COOLDOWN):
            # The run verifies with the refetched keys, and the client keeps them.
            self.client_key_gen, self.keys_fetched_at = self.provider_key_gen, now
            self.last_forced = now
            return True
        return False


def code_expired(callback: Callback, now: float) -> bool:
    return now >= callback.issued_at + CODE_TTL
