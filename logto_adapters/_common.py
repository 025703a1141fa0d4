"""Names both clients export, so that ``from logto import X`` becomes
``from logto_adapters.sync import X`` (or ``.aio``) without any other change.

Only re-exports live here; the clients share their protocol logic through :mod:`logto_core`.
"""

from __future__ import annotations

from logto_core.config import LogtoConfig
from logto_core.driver import FlowLimitError
from logto_core.enums import (
    FirstScreen,
    Identifier,
    InteractionMode,
    OAuthScope,
    Prompt,
    ReservedResource,
    UserInfoScope,
)
from logto_core.errors import (
    CallbackError,
    DiscoveryError,
    JwksError,
    LogtoError,
    LogtoUsageError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
    SignInRequiredError,
    TokenValidationError,
    TransportError,
)
from logto_core.id_token import UnknownKeyError
from logto_core.models import (
    AccessTokenClaims,
    IdTokenClaims,
    OidcProviderMetadata,
    TokenResponse,
    UserInfoResponse,
)
from logto_core.signin_url import DirectSignIn
from logto_core.storage import MemoryStorage, Storage

LogtoException = LogtoError
"""The official SDK's name for the base error; ``except LogtoException`` keeps working."""

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 15.0)
"""``(connect, total)`` seconds of one provider exchange, retries included."""

SYNC_GETTERS_DOC = """\
``isAuthenticated``, ``getIdToken``, ``getIdTokenClaims`` and ``getRefreshToken`` only read the
storage; they never touch the network."""

__all__ = [
    "DEFAULT_TIMEOUT",
    "AccessTokenClaims",
    "CallbackError",
    "DirectSignIn",
    "DiscoveryError",
    "FirstScreen",
    "FlowLimitError",
    "IdTokenClaims",
    "Identifier",
    "InteractionMode",
    "JwksError",
    "LogtoConfig",
    "LogtoError",
    "LogtoException",
    "LogtoUsageError",
    "MemoryStorage",
    "OAuthError",
    "OAuthScope",
    "OidcProviderMetadata",
    "Prompt",
    "ProviderError",
    "ProviderResponseError",
    "ReservedResource",
    "SignInRequiredError",
    "Storage",
    "TokenResponse",
    "TokenValidationError",
    "TransportError",
    "UnknownKeyError",
    "UserInfoResponse",
    "UserInfoScope",
]

PUBLIC_NAMES: tuple[str, ...] = (*[n for n in __all__ if n != "DEFAULT_TIMEOUT"], "LogtoClient")
"""What ``logto_adapters.sync`` and ``logto_adapters.aio`` both export."""
