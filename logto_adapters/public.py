"""The names both clients export, so that the tutorial's ``from logto import X`` becomes
``from logto_adapters.sync import X`` (or ``.aio``) with no other change.

``logto_adapters.sync`` and ``logto_adapters.aio`` re-export everything listed here, plus
their own ``LogtoClient``.
"""

from __future__ import annotations

from logto_core.config import ConfigError, LogtoConfig
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
    CoordinationError,
    DiscoveryError,
    JwksError,
    LeaderLostError,
    LogoutRequestError,
    LogtoError,
    LogtoUsageError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
    ScopeNotGrantedError,
    SignInRequiredError,
    StorageError,
    TokenValidationError,
    TransportError,
)
from logto_core.grants import CancelFlag, DeviceAuthorization, DeviceAuthorizationError
from logto_core.models import (
    AccessTokenClaims,
    IdTokenClaims,
    OidcProviderMetadata,
    TokenResponse,
    UserInfoResponse,
)
from logto_core.protocol.backchannel import BackchannelLogoutResult
from logto_core.protocol.bearer import AccessTokenError
from logto_core.protocol.id_token import UnknownKeyError
from logto_core.protocol.logout_token import LogoutToken
from logto_core.protocol.signin_url import DirectSignIn, SignInParams
from logto_core.protocol.token_exchange import ExchangedToken, TokenType
from logto_core.storage import AtomicStorage, MemoryStorage, Storage

from ._common import ProviderCacheStore
from .redis_registry import RedisRegisteredSession, RedisSessionRegistry
from .redis_storage import RedisProviderCache
from .session_registry import RegisteredSession, SessionRegistry

LogtoException = LogtoError
"""The official SDK's name for the base error; ``except LogtoException`` keeps working."""

DeviceSignIn = DeviceAuthorization
"""What ``startDeviceSignIn`` returns: the user code and where to enter it."""

__all__ = [
    "AccessTokenClaims",
    "AccessTokenError",
    "AtomicStorage",
    "BackchannelLogoutResult",
    "CallbackError",
    "CancelFlag",
    "ConfigError",
    "CoordinationError",
    "DeviceAuthorization",
    "DeviceAuthorizationError",
    "DeviceSignIn",
    "DirectSignIn",
    "DiscoveryError",
    "ExchangedToken",
    "FirstScreen",
    "FlowLimitError",
    "IdTokenClaims",
    "Identifier",
    "InteractionMode",
    "JwksError",
    "LeaderLostError",
    "LogoutRequestError",
    "LogoutToken",
    "LogtoConfig",
    "LogtoError",
    "LogtoException",
    "LogtoUsageError",
    "MemoryStorage",
    "OAuthError",
    "OAuthScope",
    "OidcProviderMetadata",
    "Prompt",
    "ProviderCacheStore",
    "ProviderError",
    "ProviderResponseError",
    "RedisProviderCache",
    "RedisRegisteredSession",
    "RedisSessionRegistry",
    "RegisteredSession",
    "ReservedResource",
    "ScopeNotGrantedError",
    "SessionRegistry",
    "SignInParams",
    "SignInRequiredError",
    "Storage",
    "StorageError",
    "TokenResponse",
    "TokenType",
    "TokenValidationError",
    "TransportError",
    "UnknownKeyError",
    "UserInfoResponse",
    "UserInfoScope",
]
