"""The userinfo endpoint (OIDC Core section 5.3)."""

from __future__ import annotations

import hmac

from .errors import LogtoUsageError, ProviderError, TokenValidationError
from .http import HttpRequest, HttpResponse
from .models import OidcProviderMetadata, UserInfoResponse
from .responses import read_object, validate_model


def build_userinfo_request(metadata: OidcProviderMetadata, access_token: str) -> HttpRequest:
    """GET the userinfo endpoint with the opaque access token (no resource) as Bearer."""
    if metadata.userinfo_endpoint is None:
        raise LogtoUsageError("the provider advertises no userinfo_endpoint")
    return HttpRequest.get(
        metadata.userinfo_endpoint,
        headers={"authorization": f"Bearer {access_token}"},
        purpose="userinfo",
    )


def parse_userinfo_response(response: HttpResponse, *, expected_sub: str) -> UserInfoResponse:
    """Validate userinfo claims; ``sub`` must be the signed-in user's (section 5.3.2), or the
    response could be a token substitution and is refused."""
    payload = read_object(response, what="userinfo")
    sub = payload.get("sub")
    if not isinstance(sub, str) or not sub:
        raise ProviderError("userinfo response lacks sub", code="userinfo.sub_missing")
    # surrogatepass: JSON may carry lone surrogates (\\ud800), which plain UTF-8 refuses.
    if not hmac.compare_digest(
        sub.encode("utf-8", "surrogatepass"), expected_sub.encode("utf-8", "surrogatepass")
    ):
        raise TokenValidationError(
            "userinfo sub does not match the ID token's sub",
            code="userinfo.sub_mismatch",
            claim="sub",
        )
    return validate_model(UserInfoResponse, payload, what="userinfo response")
