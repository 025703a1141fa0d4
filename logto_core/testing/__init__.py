"""A Logto-compatible OpenID provider for tests: in memory, deterministic, fault-injectable.

>>> from logto_core.testing import TestProvider
>>> provider = TestProvider(clock=lambda: 1_700_000_000.0)
>>> provider.issuer
'http://127.0.0.1:3001/oidc'

See ``docs/test-provider.md`` for a walkthrough.
"""

from __future__ import annotations

from .authorize import UnredirectableRequestError
from .device import DEVICE_CODE_TTL, DEVICE_INTERVAL
from .faults import Fault, FaultQueue
from .grants import (
    ACCESS_TOKEN_TTL,
    CODE_TTL,
    ID_TOKEN_TTL,
    REFRESH_TOKEN_TTL,
    REUSE_WINDOW,
    ROTATION_THRESHOLD,
)
from .keys import SUPPORTED_ALGS, SigningKey
from .logout import BACKCHANNEL_LOGOUT_EVENT, logout_request
from .provider import LogEntry, ProviderReply, TestProvider
from .token_exchange import SUBJECT_TOKEN_TTL

__all__ = [
    "ACCESS_TOKEN_TTL",
    "BACKCHANNEL_LOGOUT_EVENT",
    "CODE_TTL",
    "DEVICE_CODE_TTL",
    "DEVICE_INTERVAL",
    "ID_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "REUSE_WINDOW",
    "ROTATION_THRESHOLD",
    "SUBJECT_TOKEN_TTL",
    "SUPPORTED_ALGS",
    "Fault",
    "FaultQueue",
    "LogEntry",
    "ProviderReply",
    "SigningKey",
    "TestProvider",
    "UnredirectableRequestError",
    "logout_request",
]
