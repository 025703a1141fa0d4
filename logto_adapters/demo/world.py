"""The embedded provider's sample tenant: one web app, two users, two APIs, an organization."""

from __future__ import annotations

import time
from dataclasses import dataclass

from logto_core.testing import TestProvider

APP_ID = "sample-web-app"
APP_SECRET = "sample-web-app-secret"  # the embedded provider's own demo credential
SHOPPING_API = "https://shopping.example.com/api"
STORE_API = "https://store.example.com/api"
ORGANIZATION_ID = "acme"


@dataclass(frozen=True)
class SampleTenant:
    provider: TestProvider
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    resources: tuple[str, ...] = (SHOPPING_API, STORE_API)
    scopes: tuple[str, ...] = ("read", "write", "custom_data")
    organization_id: str = ORGANIZATION_ID


def build_tenant(endpoint: str, app_base_url: str) -> SampleTenant:
    """A provider at ``endpoint`` that knows the sample app served at ``app_base_url``."""
    provider = TestProvider(endpoint, clock=time.time)
    provider.add_client(
        APP_ID,
        secret=APP_SECRET,
        redirect_uris=[f"{app_base_url}/callback"],
        post_logout_redirect_uris=[f"{app_base_url}/"],
        kind="traditional",
    )
    provider.add_user(
        "u_alice",
        username="alice",
        name="Alice Liddell",
        email="alice@example.com",
        email_verified=True,
        custom_data={"plan": "pro"},
    )
    provider.add_user("u_bob", username="bob", name="Bob", email="bob@example.com")
    provider.add_resource(SHOPPING_API, scopes=["read", "write"])
    provider.add_resource(STORE_API, scopes=["read"])
    provider.grant_permissions("u_alice", SHOPPING_API, ["read", "write"])
    provider.grant_permissions("u_alice", STORE_API, ["read"])
    provider.grant_permissions("u_bob", SHOPPING_API, ["read"])
    provider.add_organization(ORGANIZATION_ID, name="Acme", description="A sample organization")
    provider.add_member(ORGANIZATION_ID, "u_alice", roles=["admin"], scopes=[])
    return SampleTenant(provider)
