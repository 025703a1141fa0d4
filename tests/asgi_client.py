"""Starlette's test client, imported once for the tests of the ASGI integrations.

Starlette 1.x asks for the ``httpx2`` package behind its test client and warns when it
falls back to ``httpx``, which the SDK already depends on and which serves the same.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx.* with .starlette.testclient.")
    from starlette.testclient import TestClient

__all__ = ["TestClient"]
