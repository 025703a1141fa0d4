"""The userinfo endpoint (OIDC Core section 5.3)."""

from __future__ import annotations

import hmac
import re

from ..errors import (
    LogtoUsageError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
    TokenValidationError,
)
from ..http import HttpRequest, HttpResponse
from ..models import OidcProviderMetadata, UserInfoResponse
from ..responses import raise_for_status, read_object, validate_model


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
    """Validate a userinfo answer (OIDC Core section 5.3.2 and 5.3.3).

    * An error is an :class:`OAuthError`, whether the provider put it in a JSON body or, as
      RFC 6750 section 3 (which section 5.3.3 refers to) describes, only in the
      ``WWW-Authenticate: Bearer error="..."`` challenge.
    * ``Content-Type: application/jwt`` is a signed (or encrypted) userinfo response, which
      the SDK does not support: :class:`ProviderError` ``userinfo.signed_unsupported``.
    * Otherwise the body is a JSON object (strict decoder) with a string ``sub`` equal to the
      signed-in user's (section 5.3.2: else the response could be a token substitution,
      ``userinfo.sub_missing``, ``userinfo.sub_mismatch``), and every standard claim well
      typed (:class:`~logto_core.models.UserInfoResponse`: ``userinfo.claims_invalid``).
    """
    if not response.ok:
        _raise_error(response)
    if _media_type(response) == "application/jwt":
        raise ProviderError(
            "the provider answered userinfo with a signed JWT (application/jwt), which the "
            "SDK does not support: turn off userinfo signing for this application",
            code="userinfo.signed_unsupported",
        )
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
    try:
        return validate_model(UserInfoResponse, payload, what="userinfo response")
    except ProviderError as error:
        # The message names the mistyped claims, never their values (personal data).
        raise ProviderError(error.message, code="userinfo.claims_invalid") from None


def _media_type(response: HttpResponse) -> str:
    return (response.header("content-type") or "").partition(";")[0].strip().lower()


def _raise_error(response: HttpResponse) -> None:
    try:
        raise_for_status(response, what="userinfo")
    except ProviderResponseError as error:
        challenge = bearer_challenge(response.header("www-authenticate"))
        if challenge is None or "error" not in challenge:
            raise
        raise OAuthError(
            challenge["error"],
            error_description=challenge.get("error_description"),
            error_uri=challenge.get("error_uri"),
            status=response.status,
        ) from error


MAX_CHALLENGE_CHARS = 4096
"""``WWW-Authenticate`` values longer than this are not read (RFC 6750 challenges are short)."""

# RFC 9110 section 11: token68-free auth-params, token = 1*tchar.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_QUOTED_RE = re.compile(_QUOTED)
_BEARER = re.compile(r"(?:^|,)[ \t]*Bearer(?=[ \t]|,|$)", re.IGNORECASE)
_PARAM = re.compile(rf"[ \t,]*({_TOKEN})[ \t]*=[ \t]*({_TOKEN}|{_QUOTED})[ \t]*(?=,|$)")
# RFC 6750 section 3: error and error_description are %x20-21 / %x23-5B / %x5D-7E.
_NQSCHAR = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_DESCRIPTION_CHARS = 300


def bearer_challenge(header: str | None) -> dict[str, str] | None:
    """The auth-params of the ``Bearer`` challenge in a ``WWW-Authenticate`` value.

    Only ``error`` (non-empty), ``error_description`` (cut at 300 characters) and
    ``error_uri`` are kept, and only when their characters are those RFC 6750 section 3
    allows; ``None`` when there is no Bearer challenge. Never raises.
    """
    if not header or len(header) > MAX_CHALLENGE_CHARS:
        return None
    # Look for the scheme outside quoted strings (a realm may contain ", Bearer error=").
    masked = _QUOTED_RE.sub(lambda m: '"' + "x" * (len(m.group()) - 2) + '"', header)
    found = _BEARER.search(masked)
    if found is None:
        return None
    params: dict[str, str] = {}
    position = found.end()
    while (match := _PARAM.match(header, position)) is not None:
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params.setdefault(name, value)
        position = match.end()
    kept: dict[str, str] = {}
    for name in ("error", "error_description", "error_uri"):
        value = params.get(name)
        if value is not None and _NQSCHAR.fullmatch(value):
            kept[name] = value[:_DESCRIPTION_CHARS] if name == "error_description" else value
    if not kept.get("error"):
        kept.pop("error", None)
    return kept
