"""Benchmark 2: CPU cost of handling a sign-in callback, against the verification floor.

The core is driven directly with an in-memory provider, so no network time is included.
Callbacks are prepared first (a sign-in, the provider's approval, the provider's token
response, all recorded); the timed part replays each one through the core: the callback URL
check, the code-exchange request, the token response's validation, the ES384 ID-token
verification and the storage value (``SessionState.writes``). The floor is the raw signature
check of the same ID tokens with ``cryptography`` alone (split, base64url, raw-to-DER
signature, ``EllipticCurvePublicKey.verify``), the key already loaded.
"""

from __future__ import annotations

import base64
import gc
import json
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from logto_core import flows
from logto_core.config import LogtoConfig
from logto_core.context import Context
from logto_core.driver import run_sync
from logto_core.http import HttpResponse
from logto_core.protocol.id_token import verify_id_token
from logto_core.protocol.signin_url import SignInOptions
from logto_core.runtime import Runtime
from logto_core.session import SessionState
from logto_core.testing import TestProvider

from .harness import APP_ID, APP_SECRET, REDIRECT, Clock, setup_provider, user_name

ENDPOINT = "http://127.0.0.1:3001"


@dataclass
class Prepared:
    session: SessionState
    callback: str
    response: HttpResponse
    id_token: str


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def floor_verify(token: str, key: ec.EllipticCurvePublicKey) -> None:
    """The least work that checks an ES384 JWS signature."""
    header, payload, signature = token.split(".")
    raw = _b64(signature)
    half = len(raw) // 2
    der = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
    key.verify(der, f"{header}.{payload}".encode("ascii"), ec.ECDSA(hashes.SHA384()))


def _public_key(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64(jwk["x"]), "big"), int.from_bytes(_b64(jwk["y"]), "big"), ec.SECP384R1()
    )
    return numbers.public_key()


class World:
    """One core and one in-memory provider sharing a clock."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.provider = TestProvider(ENDPOINT, clock=self.clock)
        setup_provider(self.provider)
        config = LogtoConfig(
            endpoint=ENDPOINT,
            appId=APP_ID,
            appSecret=APP_SECRET,
            scopes=["email", "read", "urn:logto:scope:organizations"],
        )
        self.core = Context(config, runtime=Runtime(clock=self.clock))

    def send(self, request: Any) -> HttpResponse:
        return self.provider.handle(request)

    def prepare(self, n: int) -> Prepared:
        """A sign-in attempt, the browser's callback URL and the token response to it."""
        before = SessionState()
        outcome = run_sync(flows.sign_in(self.core, before, SignInOptions(REDIRECT)), self.send)
        self.core.adopt(outcome.provider)
        session = outcome.session
        callback = self.provider.approve(outcome.unwrap(), user_name(n))
        flow = flows.handle_sign_in_callback(self.core, session, callback)
        response = self.send(next(flow))  # the code exchange, answered once by the provider
        flow.close()
        id_token = json.loads(response.body)["id_token"]
        return Prepared(session, callback, response, id_token)

    def sign_in(self, n: int) -> SessionState:
        """A complete sign-in, requests included."""
        before = SessionState()
        outcome = run_sync(flows.sign_in(self.core, before, SignInOptions(REDIRECT)), self.send)
        self.core.adopt(outcome.provider)
        callback = self.provider.approve(outcome.unwrap(), user_name(n))
        done = run_sync(
            flows.handle_sign_in_callback(self.core, outcome.session, callback), self.send
        )
        self.core.adopt(done.provider)
        done.unwrap()
        return done.session

    def handle(self, prepared: Prepared) -> SessionState:
        """The timed part: everything the core does with one callback."""
        flow = flows.handle_sign_in_callback(self.core, prepared.session, prepared.callback)
        next(flow)
        try:
            flow.send(prepared.response)
        except StopIteration as stop:
            outcome = stop.value
        else:  # pragma: no cover - the provider state is warm, no other request is needed
            raise AssertionError("the callback flow asked for a second request")
        self.core.adopt(outcome.provider)
        outcome.session.writes()  # what a save stores: the one session value
        outcome.unwrap()
        return outcome.session


def _interleaved(fns: dict[str, Any], items: list[Any], repeats: int) -> dict[str, float]:
    """Best CPU seconds (this thread's) per item of each function. The functions take turns in
    every round, and CPU time rather than wall time is counted, so that other processes on the
    machine disturb the comparison as little as possible."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            started = time.thread_time()
            for item in items:
                fn(item)
            best[name] = min(best[name], (time.thread_time() - started) / len(items))
    return best


def run(quick: bool = False) -> dict[str, Any]:
    count, repeats = (100, 3) if quick else (200, 9)
    world = World()
    # Warm the provider state (discovery and keys), as a running app has it.
    world.sign_in(0)
    prepared = [world.prepare(n) for n in range(count)]
    for item in prepared[:5]:
        assert world.handle(item).id_token == item.id_token
    keys = world.core.provider.keys
    assert keys is not None and len(keys.keys) == 1
    key = _public_key(dict(keys.keys[0]))
    for item in prepared[:5]:
        floor_verify(item.id_token, key)

    def verify_only(item: Prepared) -> None:
        verify_id_token(
            item.id_token,
            keys=keys,
            issuer=f"{ENDPOINT}/oidc",
            client_id=APP_ID,
            now=world.clock(),
            clock_tolerance=60.0,
            algorithms=["ES384"],
            expected_nonce=item.session.pending[-1].nonce,
        )

    best = _interleaved(
        {
            "callback": world.handle,
            "verify": verify_only,
            "floor": lambda item: floor_verify(item.id_token, key),
        },
        prepared,
        repeats,
    )
    callback, verify, floor = best["callback"], best["verify"], best["floor"]
    return {
        "callbacks": count,
        "callback_us": callback * 1e6,
        "verify_id_token_us": verify * 1e6,
        "floor_us": floor * 1e6,
        "callback_over_floor": callback / floor,
        "verify_over_floor": verify / floor,
        "world": world,
        "prepared": prepared,
    }
