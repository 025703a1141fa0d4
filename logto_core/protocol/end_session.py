"""RP-initiated logout: the end-session URL."""

from __future__ import annotations

from urllib.parse import urlencode

from ..config import LogtoConfig
from ..errors import LogtoUsageError
from ..models import OidcProviderMetadata
from ..urls import split_url


def build_end_session_url(
    config: LogtoConfig,
    metadata: OidcProviderMetadata | None,
    *,
    post_logout_redirect_uri: str | None = None,
    id_token_hint: str | None = None,
    state: str | None = None,
) -> str:
    """The URL to send the browser to. Without ``id_token_hint`` Logto asks the user to
    confirm. Works without metadata (Logto's endpoint is at a fixed path), so sign-out never
    depends on the provider being reachable."""
    endpoint = (
        metadata.end_session_endpoint
        if metadata is not None and metadata.end_session_endpoint
        else f"{config.issuer}/session/end"
    )
    params = [("client_id", config.appId)]
    if post_logout_redirect_uri is not None:
        parts = split_url(post_logout_redirect_uri)
        if (
            parts is None
            or parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.fragment
        ):
            raise LogtoUsageError(
                "postLogoutRedirectUri must be an absolute http(s) URL without fragment"
            )
        params.append(("post_logout_redirect_uri", post_logout_redirect_uri))
    if id_token_hint:
        params.append(("id_token_hint", id_token_hint))
    if state:
        params.append(("state", state))
    for _, value in params:
        if not _encodable(value):
            raise LogtoUsageError("sign-out parameters must be valid Unicode text")
    separator = "&" if "?" in endpoint else "?"
    return f"{endpoint}{separator}{urlencode(params)}"


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
