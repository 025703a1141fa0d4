"""Wire-level helpers of the test provider: base64url, OAuth error answers, parameter parsing.

Error answers follow the shape Logto sends: ``error``, ``error_description``, Logto's ``code``
(``oidc.<error>``) and a human ``message``, plus ``error_uri`` for ``invalid_grant``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from logto_core.errors import LogtoError
from logto_core.http import HttpResponse

# Status of each OAuth error the provider emits, as listed in the protocol reference.
ERROR_STATUS: dict[str, int] = {
    "invalid_grant": 400,
    "invalid_client": 401,
    "invalid_request": 400,
    "invalid_target": 400,
    "invalid_scope": 400,
    "insufficient_scope": 403,
    "access_denied": 403,
    "unsupported_grant_type": 400,
    "unsupported_token_type": 400,
    "unauthorized_client": 400,
    "invalid_token": 401,
    "authorization_pending": 400,
    "slow_down": 400,
    "expired_token": 400,
    "server_error": 500,
}

# Human text for Logto's ``message`` field (Logto localises these; English is enough here).
_MESSAGES: dict[str, str] = {
    "invalid_grant": "Grant request is invalid.",
    "invalid_client": "Client authentication failed.",
    "invalid_request": "The request is invalid.",
    "invalid_target": "The requested resource is invalid.",
    "invalid_scope": "The requested scope is invalid.",
    "insufficient_scope": "The token is missing a required scope.",
    "access_denied": "Access denied.",
    "unsupported_grant_type": "The grant type is not supported.",
    "unsupported_token_type": "The token type is not supported.",
    "unauthorized_client": "The client is not authorized to use this grant type.",
    "invalid_token": "The access token is invalid.",
    "authorization_pending": "The authorization request is still pending.",
    "slow_down": "The client is polling too quickly.",
    "expired_token": "The device code has expired.",
}

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}

MAX_FORM_BYTES = 56 * 1024
"""Logto's body limit on the token endpoint (about 56 kB)."""


class Rejection(LogtoError):
    """Internal: an endpoint refuses the request with an OAuth error.

    Raised inside endpoint handlers and turned into an error response by the router; it never
    leaves :meth:`TestProvider.handle`.
    """

    code = "testing.rejection"

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status if status is not None else ERROR_STATUS.get(error, 400)
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A parsed token request: single values plus every ``resource`` sent."""

    params: dict[str, str]
    resources: list[str]

    def require(self, name: str) -> str:
        value = self.params.get(name)
        if value is None:
            raise Rejection("invalid_request", f"missing required parameter '{name}'")
        return value

    def single_resource(self) -> str | None:
        if len(self.resources) > 1:
            raise Rejection("invalid_target", "only a single resource indicator value is supported")
        return self.resources[0] if self.resources else None


def error_body(error: str, description: str, *, issuer: str) -> dict[str, Any]:
    """The JSON body of an OAuth error as Logto shapes it."""
    body: dict[str, Any] = {
        "error": error,
        "error_description": description,
        "code": f"oidc.{error}",
        "message": _MESSAGES.get(error, description),
    }
    if error == "invalid_grant":
        # Logto links to documentation; a provider-local link keeps the field present and honest.
        body["error_uri"] = f"{issuer}/errors/invalid_grant"
    return body


def error_response(rejection: Rejection, *, issuer: str) -> HttpResponse:
    """Turn a :class:`Rejection` into the HTTP answer."""
    headers = {**NO_STORE, **rejection.headers}
    payload = error_body(rejection.error, rejection.description, issuer=issuer)
    return HttpResponse.json(rejection.status, payload, headers)


def b64url(data: bytes) -> str:
    """Unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; raises ``ValueError`` on malformed input."""
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def json_b64(value: Mapping[str, Any]) -> str:
    """Compact JSON, base64url-encoded (a JWS header or payload segment)."""
    return b64url(json.dumps(dict(value), separators=(",", ":")).encode("utf-8"))


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """Form/query pairs; blank values are kept so that ``a=`` is seen as present."""
    return parse_qsl(text, keep_blank_values=True)


def single_params(pairs: list[tuple[str, str]], *, repeatable: frozenset[str]) -> dict[str, str]:
    """Collapse pairs into one value per name, refusing repeats of non-repeatable names.

    Empty values count as absent, as in node-oidc-provider.
    """
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params and name not in repeatable:
            raise Rejection("invalid_request", f"'{name}' parameter must not be provided twice")
        if value != "":
            params[name] = value
    return params
