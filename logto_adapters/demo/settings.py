"""Where the sample app finds its Logto tenant: the environment, or the embedded provider."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    endpoint: str
    app_id: str
    app_secret: str | None
    base_url: str
    secret_key: str
    resources: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    organization_id: str | None = None


def from_environment() -> Settings:
    """Read ``LOGTO_ENDPOINT``, ``LOGTO_APP_ID``, ``LOGTO_APP_SECRET`` and the sample app's own
    ``APP_BASE_URL``, ``APP_SECRET_KEY``, ``LOGTO_RESOURCES`` (space-separated),
    ``LOGTO_SCOPES`` and ``LOGTO_ORGANIZATION_ID``."""
    return Settings(
        endpoint=os.environ.get("LOGTO_ENDPOINT", "http://127.0.0.1:3001"),
        app_id=os.environ.get("LOGTO_APP_ID", "sample-web-app"),
        app_secret=os.environ.get("LOGTO_APP_SECRET") or None,
        base_url=os.environ.get("APP_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        secret_key=os.environ.get("APP_SECRET_KEY") or os.urandom(32).hex(),
        resources=os.environ.get("LOGTO_RESOURCES", "").split(),
        scopes=os.environ.get("LOGTO_SCOPES", "").split(),
        organization_id=os.environ.get("LOGTO_ORGANIZATION_ID") or None,
    )
