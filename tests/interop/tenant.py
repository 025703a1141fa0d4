"""The interop tenant as the tests see it (mirrors ``provider/tenant.mjs``)."""

from __future__ import annotations

PUBLIC_APP = "public-app"
WEB_APP = "web-app"
WEB_APP_SECRET = "web-app-secret-0123456789abcdef"
M2M_APP = "m2m-app"
M2M_APP_SECRET = "m2m-app-secret-0123456789abcdef"

API_A = "https://api-a.example.com"
API_B = "https://api-b.example.com/v1"
ORGANIZATIONS_SCOPE = "urn:logto:scope:organizations"
ORGANIZATIONS_RESOURCE = "urn:logto:resource:organizations"

ALICE = ("alice", "wonderland", "u_alice")
BOB = ("bob", "builder", "u_bob")
ALICE_ORG = "acme"
OTHER_ORG = "globex"  # alice is not a member

# Where the Python-driven relying party "lives"; never contacted (the test reads the redirect).
APP_BASE = "http://127.0.0.1:9"
REDIRECT = f"{APP_BASE}/callback"
POST_LOGOUT = f"{APP_BASE}/"


def organization_audience(organization_id: str) -> str:
    return f"urn:logto:organization:{organization_id}"
