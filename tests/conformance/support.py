"""Helpers shared by the conformance tests."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from logto_adapters.testing import ServedProvider
from logto_core.http import HttpRequest
from logto_core.jose.jwt import decode_unverified
from tests.adapters.conftest import REDIRECT, USER, Harness


def real_json(served: ServedProvider, path: str) -> Any:
    """What the provider really serves at ``<issuer><path>`` (to build a tampered copy)."""
    with served.lock:
        response = served.provider.handle(HttpRequest.get(served.provider.issuer + path))
    return json.loads(response.body)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def start_and_approve(harness: Harness, user: str = USER, redirect: str = REDIRECT) -> str:
    """signIn, then the browser approves: the callback URL."""
    return harness.provider.approve(harness.signIn(redirect), user)


def header_of(token: str | None) -> dict[str, Any]:
    assert token is not None
    return decode_unverified(token)[0]


def claims_of(token: str | None) -> dict[str, Any]:
    assert token is not None
    return decode_unverified(token)[1]


def log_params(
    harness: Harness, endpoint: str, grant_type: str | None = None
) -> list[dict[str, str]]:
    return [
        dict(entry.params)
        for entry in harness.provider.log
        if entry.endpoint == endpoint and (grant_type is None or entry.grant_type == grant_type)
    ]
