"""The likely fix for errors whose cause the SDK can narrow down from what it sent."""

from __future__ import annotations

PUBLIC_APP = "if this is a native or single-page (public) app, remove appSecret from LogtoConfig"


def invalid_client(*, sent_secret: bool, description: str | None) -> str:
    """What to do about ``invalid_client`` from the token or revocation endpoint.

    The SDK knows which kind of client it acted as: with ``appSecret`` it sent the secret with
    HTTP Basic (a confidential app); without, only ``client_id`` (a public app). The
    provider's description (Logto's, or oidc-provider's) only sharpens the hint: it is
    matched against known phrases, never quoted here.
    """
    said = (description or "").lower()
    if "not found" in said or "client is invalid" in said or "unknown client" in said:
        return (
            "Logto does not know this appId at this endpoint: check appId and endpoint "
            "(both are on the application's page in the Logto Console)"
        )
    if sent_secret:
        if "public" in said or "must not" in said:
            return (
                "the SDK sent appSecret, but Logto registers this app as a public (native or "
                "single-page) app: remove appSecret from LogtoConfig"
            )
        if "does not match" in said or "mechanism" in said or "method" in said:
            return (
                "the SDK sent appSecret with HTTP Basic, which is not how this app is "
                f"registered at Logto; {PUBLIC_APP}"
            )
        return (
            "the SDK sent appSecret with HTTP Basic and Logto refused it: check appSecret "
            "(copy it again from the Logto Console; it may have been rotated); " + PUBLIC_APP
        )
    return (
        "the SDK sent no secret (LogtoConfig has no appSecret, so only client_id), but this "
        "app is confidential at Logto (traditional web or machine-to-machine): set appSecret"
    )


def client_credentials(error: str) -> str | None:
    """What to do about Logto's refusal of a machine-to-machine token request."""
    if error == "invalid_target":
        return (
            "Logto issues machine-to-machine tokens for an API resource it knows (resource=, "
            "its API identifier in the Logto Console) or for an organization "
            "(organizationId=): check the indicator"
        )
    if error == "access_denied":
        return (
            "this machine-to-machine app is not a member of the organization, or the "
            "organization grants it no access: add the app to the organization in the Logto "
            "Console"
        )
    if error == "unauthorized_client":
        return (
            "this app may not use client_credentials at Logto: LogtoM2MClient needs a "
            "machine-to-machine application"
        )
    if error == "invalid_scope":
        return "ask only for scopes the API resource defines"
    return None


def device_authorization(error: str) -> str | None:
    """What to do about Logto's refusal of a device authorization (or a poll)."""
    if error == "unauthorized_client":
        return (
            "this app may not use the device flow at Logto: it needs a native application "
            "with the device flow enabled in the Logto Console"
        )
    if error == "invalid_target":
        return "every LogtoConfig.resources entry must be an API resource of this tenant"
    return None


def token_exchange(error: str, description: str | None) -> str | None:
    """What to do about Logto's refusal of a token exchange. The description is matched
    against Logto's known phrases, never quoted."""
    said = (description or "").lower()
    if error == "invalid_grant":
        if "actor" in said:
            return (
                "actorToken must be the acting user's opaque access token (getAccessToken() "
                "with no resource, so its scopes include openid), still valid"
            )
        if "consumed" in said:
            return (
                "an impersonation (subject) token is single-use: ask the Management API for "
                "a new one"
            )
        if "expired" in said:
            return "the subject token expired: ask for a new one"
        if "not found" in said:
            return (
                "Logto does not know this subject token: check it was made by this tenant "
                "and that subjectTokenType matches it"
            )
        return "the subject token is not usable: ask for a new one"
    if error in ("unauthorized_client", "unsupported_grant_type"):
        return "this app may not use token exchange at Logto: enable it for the application"
    if error == "invalid_target":
        return "resource must be an API resource of this tenant"
    if error == "access_denied":
        return "the subject is not a member of the organization"
    return None
