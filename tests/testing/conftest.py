"""Fixtures for the test-provider tests: a settable clock, seeded entropy, a signed-in flow."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime
from logto_core.testing import TestProvider

START = 1_700_000_000.0
ENDPOINT = "http://127.0.0.1:3001"
ISSUER = ENDPOINT + "/oidc"
TOKEN_URL = ISSUER + "/token"
REDIRECT = "http://app.test/callback"
API = "https://api.example.com"


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def seeded_runtime(clock: Clock) -> Runtime:
    """Deterministic entropy: SHA-256 of a counter, so runs are reproducible."""
    counter = iter(range(10**9))

    def entropy(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(str(next(counter)).encode()).digest()
        return out[:n]

    return Runtime(clock=clock, entropy=entropy)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


VERIFIER = "v" * 43 + "erifier-0123456789"
CHALLENGE = b64url(hashlib.sha256(VERIFIER.encode()).digest())


def auth_url(client_id: str = "spa", **overrides: Any) -> str:
    """An authorization URL; ``None`` values drop a parameter, lists repeat it."""
    params: dict[str, Any] = {
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "openid offline_access profile email",
        "state": "st4te",
        "nonce": "n0nce",
        "prompt": "consent",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs.append((key, item))
    return f"{ISSUER}/auth?{urlencode(pairs)}"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def form(
    url: str, pairs: list[tuple[str, str]], headers: dict[str, str] | None = None
) -> HttpRequest:
    return HttpRequest.post_form(url, pairs, headers=headers)


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode()}


def body(response: HttpResponse) -> Any:
    return json.loads(response.body)


def verify(provider: TestProvider, token: str) -> jwt.Token:
    """Verify a JWT against the provider's published JWKS, with joserfc directly."""
    jwks = body(provider.handle(HttpRequest.get(ISSUER + "/jwks")))
    keys = KeySet.import_key_set(jwks)
    return jwt.decode(token, keys, algorithms=["ES384", "ES256", "ES512", "RS256"])


@dataclass
class World:
    """A provider with one app of each kind, a user, an API and an organization."""

    clock: Clock
    provider: TestProvider
    notes: dict[str, Any] = field(default_factory=dict)

    def sign_in(self, client_id: str = "spa", **overrides: Any) -> dict[str, str]:
        """Approve an authorization request and return the callback parameters."""
        redirect = self.provider.approve(auth_url(client_id, **overrides), "user-1")
        return query(redirect)

    def exchange(
        self,
        code: str,
        *,
        client_id: str = "spa",
        extra: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        verifier: str | None = VERIFIER,
    ) -> HttpResponse:
        pairs = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)]
        if verifier is not None:
            pairs.append(("code_verifier", verifier))
        if headers is None:
            pairs.append(("client_id", client_id))
        pairs += extra or []
        return self.provider.handle(form(TOKEN_URL, pairs, headers))

    def tokens(self, client_id: str = "spa", **overrides: Any) -> dict[str, Any]:
        """Sign in and exchange the code; returns the token response body."""
        code = self.sign_in(client_id, **overrides)["code"]
        headers = basic("web", "web-secret") if client_id == "web" else None
        response = self.exchange(code, client_id=client_id, headers=headers)
        assert response.status == 200, response.body
        result: dict[str, Any] = body(response)
        return result

    def refresh(
        self,
        refresh_token: str,
        *,
        client_id: str = "spa",
        extra: list[tuple[str, str]] | None = None,
    ) -> HttpResponse:
        pairs = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)]
        headers = None
        if client_id == "web":
            headers = basic("web", "web-secret")
        else:
            pairs.append(("client_id", client_id))
        pairs += extra or []
        return self.provider.handle(form(TOKEN_URL, pairs, headers))


@pytest.fixture
def world() -> World:
    clock = Clock()
    provider = TestProvider(ENDPOINT, clock=clock, runtime=seeded_runtime(clock))
    provider.add_client(
        "spa",
        kind="spa",
        redirect_uris=[REDIRECT],
        post_logout_redirect_uris=["http://app.test/bye"],
    )
    provider.add_client("web", kind="traditional", secret="web-secret", redirect_uris=[REDIRECT])
    provider.add_client("m2m", kind="m2m", secret="m2m-secret")
    provider.add_user(
        "user-1",
        username="alice",
        name="Alice",
        email="alice@example.com",
        custom_data={"plan": "pro"},
        identities={"google": {"userId": "g-1", "details": {}}},
        roles=["admin"],
        favourite_colour="green",
    )
    provider.add_resource(API, ["read", "write", "delete"])
    provider.grant_permissions("user-1", API, ["read", "write"])
    provider.add_organization("org-1", name="Acme", description="Rockets")
    provider.add_member("org-1", "user-1", roles=["member"], scopes=["read:org", "invite"])
    return World(clock, provider)
