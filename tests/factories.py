"""Small builders shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logto_core.config import LogtoConfig
from logto_core.http import HttpResponse
from logto_core.models import OidcProviderMetadata
from logto_core.session import SessionState

ENDPOINT = "https://tenant.example.com"
ISSUER = f"{ENDPOINT}/oidc"


def config(**overrides: Any) -> LogtoConfig:
    values: dict[str, Any] = {"endpoint": ENDPOINT, "appId": "app", "appSecret": "s3cr3t-value"}
    values.update(overrides)
    return LogtoConfig(**values)


def discovery_document(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/auth",
        "token_endpoint": f"{ISSUER}/token",
        "userinfo_endpoint": f"{ISSUER}/me",
        "jwks_uri": f"{ISSUER}/jwks",
        "end_session_endpoint": f"{ISSUER}/session/end",
        "revocation_endpoint": f"{ISSUER}/token/revocation",
        "introspection_endpoint": f"{ISSUER}/token/introspection",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES384"],
        "authorization_response_iss_parameter_supported": True,
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def metadata(**overrides: Any) -> OidcProviderMetadata:
    return OidcProviderMetadata.model_validate(discovery_document(**overrides))


def json_response(payload: Any, status: int = 200, **headers: str) -> HttpResponse:
    return HttpResponse.json(status, payload, headers)


def stored(storage: Any) -> SessionState:
    """The session a storage (or a plain dict of storage values) holds, as the SDK reads it."""
    get = storage.get
    return SessionState.load(get)


def edit_stored(storage: Any, edit: Callable[[SessionState], SessionState]) -> None:
    """Change the stored session as a test needs (``storage.set``/``delete`` or a dict)."""
    for key, value in edit(stored(storage)).writes().items():
        if value is None:
            if isinstance(storage, dict):
                storage.pop(key, None)
            else:
                storage.delete(key)
        elif isinstance(storage, dict):
            storage[key] = value
        else:
            storage.set(key, value)
