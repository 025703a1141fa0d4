"""The interop tenant as the tests see it (mirrors ``provider/tenant.mjs``)."""

from __future__ import annotations

PUBLIC_APP = "public-app"
WEB_APP = "web-app"
WEB_APP_SECRET = "web-app-secret-0123456789abcdef"
DEVICE_APP = "device-app"  # native, device flow (RFC 8628) and refresh token only
M2M_APP = "m2m-app"
M2M_APP_SECRET = "m2m-app-secret-0123456789abcdef"

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_TTL = 600  # seconds, like Logto's
DEVICE_INTERVAL = 5  # seconds: the provider names no interval, so RFC 8628's default

API_A = "https://api-a.example.com"
API_B = "https://api-b.example.com/v1"
ORGANIZATIONS_SCOPE = "urn:logto:scope:organizations"
ORGANIZATIONS_RESOURCE = "urn:logto:resource:organizations"

ALICE = ("alice", "wonderland", "u_alice")
BOB = ("bob", "builder", "u_bob")
ALICE_ORG = "acme"
OTHER_ORG = "globex"  # alice is not a member
M2M_ORG = "acme"  # the machine-to-machine app is a member (not of globex)
M2M_PERMISSIONS = {API_A: ["read", "write"]}  # the M2M app's API permissions
M2M_ORG_SCOPES = ["read:docs", "write:docs"]  # its organization permissions in acme

# Where the Python-driven relying party "lives"; never contacted (the test reads the redirect).
APP_BASE = "http://127.0.0.1:9"
REDIRECT = f"{APP_BASE}/callback"
POST_LOGOUT = f"{APP_BASE}/"
BACKCHANNEL_PATH = "/back-channel-logout"  # the web app's back-channel logout receiver


def organization_audience(organization_id: str) -> str:
    return f"urn:logto:organization:{organization_id}"
