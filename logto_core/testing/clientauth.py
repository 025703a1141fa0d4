"""Client authentication at the token, revocation and introspection endpoints.

Confidential apps (traditional web, machine-to-machine) authenticate with their secret, either
with HTTP Basic (credentials form-urlencoded before base64, RFC 6749 §2.3.1) or with
``client_secret`` in the body, never both. Public apps (SPA, native) send ``client_id`` only
and are refused if they send any secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import unquote_plus

from logto_core.http import HttpRequest

from ._wire import Rejection
from .directory import Client, Directory


def basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    header = request.header("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Rejection("invalid_request", "invalid authorization header value format") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise Rejection("invalid_request", "invalid authorization header value format")
    return unquote_plus(client_id), unquote_plus(secret)


def _client_error(description: str, *, basic: bool) -> Rejection:
    headers = {"www-authenticate": 'Basic realm="oidc"'} if basic else None
    return Rejection("invalid_client", description, headers=headers)


def authenticate_client(
    request: HttpRequest, params: dict[str, str], directory: Directory
) -> Client:
    """The client the request authenticates as, or a ``Rejection``."""
    basic = basic_credentials(request)
    used_basic = basic is not None
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    if "client_assertion" in params:
        raise _client_error("client assertions are not supported here", basic=used_basic)
    if basic is not None and body_secret is not None:
        raise _client_error(
            "client authentication must only be provided using one mechanism", basic=True
        )
    if basic is not None and body_id is not None and body_id != basic[0]:
        raise Rejection("invalid_request", "mismatch in body and authorization client ids")
    client_id = basic[0] if basic is not None else body_id
    secret = basic[1] if basic is not None else body_secret
    if not client_id:
        raise Rejection("invalid_request", "no client authentication mechanism provided")
    client = directory.clients.get(client_id)
    if client is None:
        raise _client_error("client not found", basic=used_basic)
    if not client.confidential:
        if secret is not None:
            raise _client_error("public clients must not send a client secret", basic=used_basic)
        return client
    if secret is None:
        raise _client_error("client secret required", basic=used_basic)
    expected = (client.secret or "").encode("utf-8")
    if not hmac.compare_digest(secret.encode("utf-8"), expected):
        raise _client_error("invalid secret provided", basic=used_basic)
    return client
