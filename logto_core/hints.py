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
