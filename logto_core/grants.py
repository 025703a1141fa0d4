"""Grants as kinds: each way of obtaining tokens with its own immutable state.

* :class:`TokenCache` (:mod:`logto_core.token_cache`) - access tokens by
  :class:`~logto_core.session.TokenKey`, bounded, apart from whatever grant obtained them (a
  user's session holds one, and so does a machine-to-machine client).
* :class:`UserGrant` - the user's grant (authorization code, then refresh): the ID token
  and the refresh token of a session (:attr:`SessionState.grant
  <logto_core.session.SessionState.grant>`).
* :class:`ClientCredentialsState` - machine-to-machine tokens (RFC 6749 section 4.4): no
  user, no refresh token, only a cache of the tokens obtained.
* :class:`DeviceAuthorization` and :class:`DevicePolling` - the device authorization grant
  (RFC 8628): the response that starts it, and the polling as a pure state machine whose
  steps are :class:`Poll` (an absolute time, for a :class:`~logto_core.sleep.Sleep`),
  :class:`Granted` or :class:`Failed`.

Everything here is pure: the time is always a ``now`` argument (the runtime's clock), and
requests are built and responses read by the protocol-step pairs of the other modules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from .config import LogtoConfig
from .errors import (
    DiscoveryError,
    LogtoError,
    OAuthError,
    ProviderError,
    ProviderResponseError,
    SignInRequiredError,
)
from .http import HttpRequest, HttpResponse
from .jose.jwt import decode_unverified
from .models import OidcProviderMetadata, TokenResponse
from .protocol.token_endpoint import (
    _scope_value,
    build_client_credentials,
    client_authentication,
    parse_token_response,
)
from .responses import read_object
from .session import UNKNOWN_LIFETIME, CachedAccessToken, SessionState, TokenKey
from .sleep import Sleep
from .token_cache import DEFAULT_LIMIT, EMPTY_CACHE, TokenCache
from .urls import is_acceptable_endpoint

# ---- the user's grant -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserGrant:
    """What a signed-in user's session holds of its grant (authorization code, then refresh):
    the ID token and, when offline access was granted, the refresh token."""

    id_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)

    @property
    def can_refresh(self) -> bool:
        return self.refresh_token is not None

    @classmethod
    def of(cls, session: SessionState) -> UserGrant | None:
        """The grant ``session`` holds; ``None`` when it is signed out (no ID token)."""
        if session.id_token is None:
            return None
        return cls(session.id_token, session.refresh_token)


MAX_JWT_LIFETIME = 24 * 3600.0
"""Longest lifetime read from a JWT access token's ``exp`` when it has no ``iat`` and the
response no ``expires_in``."""


def cache_entry(token: TokenResponse, now: float) -> CachedAccessToken:
    """The cache entry of a token received at ``now``, bounded as the session's tokens are:
    it lives ``expires_in`` seconds, never longer than the JWT says of itself (``exp - iat``,
    in the provider's own clock; without ``iat``, never past ``exp`` and at most
    :data:`MAX_JWT_LIFETIME`); without either, :data:`~logto_core.session.UNKNOWN_LIFETIME`.
    ``obtained_at`` lets freshness notice a clock that went back."""
    lifetime = float(token.expires_in) if token.expires_in is not None else None
    claims = _jwt_times(token.access_token)
    if claims is not None:
        iat, exp = claims
        own = exp - iat if iat is not None else exp - now
        lifetime = min(lifetime, own) if lifetime is not None else min(own, MAX_JWT_LIFETIME)
    if lifetime is None:
        lifetime = UNKNOWN_LIFETIME
    return CachedAccessToken(
        token=token.access_token,
        expires_at=now + max(lifetime, 0.0),
        scope=token.scope,
        obtained_at=now,
    )


def _jwt_times(access_token: str) -> tuple[float | None, float] | None:
    """``(iat, exp)`` of a JWT access token, read and not verified (only used to expire the
    cache early), or ``None`` for an opaque token or one without ``exp``."""
    if access_token.count(".") != 2:
        return None
    try:
        claims = decode_unverified(access_token)[1]
    except ProviderError:
        return None
    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    return None if exp is None else (iat, exp)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


# ---- client credentials (machine to machine) --------------------------------------------


def client_credentials_key(
    resource: str | None = None,
    organization_id: str | None = None,
    scopes: Sequence[str] | None = None,
) -> TokenKey:
    """What a machine-to-machine token is for (the normalised :class:`TokenKey`)."""
    return TokenKey.of(resource, organization_id, scopes)


@dataclass(frozen=True, slots=True)
class NeedToken:
    """No fresh token for ``key``: send :meth:`request` and give the answer to
    :meth:`ClientCredentialsState.on_response`."""

    key: TokenKey

    def request(self, config: LogtoConfig, metadata: OidcProviderMetadata) -> HttpRequest:
        """The client credentials token request for :attr:`key`
        (:func:`~logto_core.protocol.token_endpoint.build_client_credentials`)."""
        return build_client_credentials(
            config,
            metadata,
            resource=self.key.resource,
            organization_id=self.key.organization_id,
            scopes=self.key.scopes,
        )


@dataclass(frozen=True, slots=True)
class ClientCredentialsState:
    """A machine-to-machine client's tokens: no user, no refresh token, no ID token; only
    the access tokens obtained, by (resource, organization, scopes)."""

    tokens: TokenCache = field(default_factory=TokenCache)

    def token_for(self, key: TokenKey, now: float, margin: float) -> CachedAccessToken | NeedToken:
        """The cached token for ``key`` if it is still fresh at ``now``, else what to ask."""
        entry = self.tokens.fresh(key, now, margin)
        return entry if entry is not None else NeedToken(key)

    def adopted(self, key: TokenKey, token: TokenResponse, now: float) -> ClientCredentialsState:
        """The state with ``token`` (received at ``now``) cached for ``key``. A refresh token
        or an ID token the provider sent along is not kept: this grant has neither."""
        return ClientCredentialsState(self.tokens.with_entry(key, cache_entry(token, now)))

    def on_response(
        self, key: TokenKey, response: HttpResponse, now: float
    ) -> tuple[ClientCredentialsState, CachedAccessToken]:
        """Read the token endpoint's answer
        (:func:`~logto_core.protocol.token_endpoint.parse_token_response`: its typed errors,
        ``OAuthError`` for an error answer, are raised as they are) and cache the token.
        A failure leaves the state as it was (the caller keeps ``self``)."""
        state = self.adopted(key, parse_token_response(response), now)
        return state, state.tokens[key]

    def without(self, keys: Iterable[TokenKey] | None = None) -> ClientCredentialsState:
        """Forget every token (``keys=None``) or those keys' (e.g. a token an API refused)."""
        return ClientCredentialsState(self.tokens.without(keys))


# ---- device authorization (RFC 8628) ----------------------------------------------------

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
"""The token request's ``grant_type`` while polling (RFC 8628 section 3.4)."""

DEFAULT_INTERVAL = 5.0
"""Seconds between polls when the provider names no ``interval`` (section 3.2)."""

SLOW_DOWN_STEP = 5.0
"""Seconds ``slow_down`` adds to the interval, for every later poll (section 3.5)."""

MAX_INTERVAL = 300.0
"""Longest ``interval`` accepted from the provider (as long as one ``Sleep`` may last)."""

MAX_DEVICE_LIFETIME = 3600.0
"""Longest a device authorization is polled for, whatever its ``expires_in`` says (Logto's
device codes live 600 s)."""

MAX_DEVICE_CODE_CHARS = 2048
MAX_USER_CODE_CHARS = 64
MAX_URI_CHARS = 2048


class DeviceAuthorizationError(SignInRequiredError):
    """The device authorization ended without a grant: the user refused
    (``device.access_denied``), or the device code expired before the user approved
    (``device.expired``). Start a new device authorization. ``__cause__`` is the provider's
    :class:`~logto_core.errors.OAuthError` when it said so."""

    code = "device"

    @property
    def refused(self) -> bool:
        """Whether the user refused (rather than the time running out)."""
        return self.code == "device.access_denied"


def build_device_authorization(
    config: LogtoConfig,
    metadata: OidcProviderMetadata,
    *,
    scopes: Sequence[str] | None = None,
    resources: Sequence[str] | None = None,
) -> HttpRequest:
    """The device authorization request (RFC 8628 section 3.1) to the provider's
    ``device_authorization_endpoint``: the client's authentication (``client_id`` alone for a
    native app, Basic for a confidential one), ``scope`` (the sign-in scopes by default) and
    a ``resource`` for each resource (the sign-in resources by default)."""
    endpoint = metadata.device_authorization_endpoint
    if endpoint is None:
        raise DiscoveryError(
            "the provider advertises no device_authorization_endpoint: enable the device "
            "flow for this application",
            code="device.unsupported",
        )
    headers, auth_form = client_authentication(config)
    wanted = config.sign_in_scopes() if scopes is None else scopes
    targets = config.sign_in_resources() if resources is None else resources
    form = [*auth_form, *_scope_value(wanted), *(("resource", r) for r in targets)]
    return HttpRequest.post_form(endpoint, form, headers=headers, purpose="device_authorization")


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """A device authorization response (RFC 8628 section 3.2), read at ``obtained_at``:
    show the user :attr:`user_code` and :attr:`verification_uri` (or
    :attr:`verification_uri_complete`, which carries the code), then poll with
    :func:`start_polling`."""

    device_code: str = field(repr=False)
    user_code: str = field(repr=False)
    verification_uri: str
    verification_uri_complete: str | None = field(repr=False)
    expires_at: float
    interval: float
    obtained_at: float


def parse_device_authorization_response(
    response: HttpResponse, config: LogtoConfig, now: float
) -> DeviceAuthorization:
    """Validate the device authorization response, received at ``now`` (section 3.2).

    Status 200 (``device.status``) and a JSON object (``provider_response.*``; an error
    answer is an :class:`~logto_core.errors.OAuthError`). Then each member, a
    :class:`~logto_core.errors.ProviderError` ``device.response_invalid`` naming it (never
    quoting it: the body holds the device code):

    * ``device_code`` REQUIRED: non-empty visible ASCII, at most
      :data:`MAX_DEVICE_CODE_CHARS` (it is sent back in a form);
    * ``user_code`` REQUIRED: non-empty printable text, at most :data:`MAX_USER_CODE_CHARS`;
    * ``verification_uri`` REQUIRED and ``verification_uri_complete`` OPTIONAL: at most
      :data:`MAX_URI_CHARS`, https (or http on loopback in development mode), else
      ``device.verification_uri_insecure``;
    * ``expires_in`` REQUIRED: a number of seconds, at least 1 (polling stops after at most
      :data:`MAX_DEVICE_LIFETIME`);
    * ``interval`` OPTIONAL (:data:`DEFAULT_INTERVAL`): a number from 1 to
      :data:`MAX_INTERVAL`.
    """
    if response.ok and response.status != 200:
        raise ProviderResponseError(
            f"device authorization answered HTTP {response.status}, expected 200",
            status=response.status,
            code="device.status",
        )
    payload = read_object(response, what="device authorization")
    device_code = _text_member(payload, "device_code", MAX_DEVICE_CODE_CHARS, ascii_only=True)
    user_code = _text_member(payload, "user_code", MAX_USER_CODE_CHARS, ascii_only=False)
    verification_uri = _uri_member(payload, "verification_uri", config)
    complete = (
        _uri_member(payload, "verification_uri_complete", config)
        if payload.get("verification_uri_complete") is not None
        else None
    )
    expires_in = _number_member(payload, "expires_in")
    # At least a second: a shorter life cannot be polled once, and a tiny positive number
    # added to the clock would leave the expiry equal to now.
    if expires_in is None or not expires_in >= 1:
        raise _invalid("expires_in", "a number of seconds, at least 1")
    interval = _number_member(payload, "interval")
    if interval is None:
        interval = DEFAULT_INTERVAL
    elif not 1 <= interval <= MAX_INTERVAL:
        raise _invalid("interval", f"a number of seconds from 1 to {MAX_INTERVAL:g}")
    return DeviceAuthorization(
        device_code=device_code,
        user_code=user_code,
        verification_uri=verification_uri,
        verification_uri_complete=complete,
        expires_at=now + min(expires_in, MAX_DEVICE_LIFETIME),
        interval=interval,
        obtained_at=now,
    )


def _invalid(member: str, what: str) -> ProviderError:
    return ProviderError(
        f"device authorization response: {member} must be {what} (RFC 8628 section 3.2)",
        code="device.response_invalid",
    )


def _text_member(payload: dict[str, object], name: str, limit: int, *, ascii_only: bool) -> str:
    value = payload.get(name)
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > limit
        or not value.isprintable()
        or (ascii_only and not value.isascii())
    ):
        kind = "visible ASCII" if ascii_only else "printable text"
        raise _invalid(name, f"present, non-empty {kind} of at most {limit} characters")
    return value


def _uri_member(payload: dict[str, object], name: str, config: LogtoConfig) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_URI_CHARS:
        raise _invalid(name, f"a URI of at most {MAX_URI_CHARS} characters")
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise _invalid(name, "a URI without spaces or control characters")
    if not is_acceptable_endpoint(value, allow_insecure_loopback=config.development_mode):
        raise ProviderError(
            f"device authorization response: {name} is not an https URL (the user would "
            "enter their code on a page anyone on the network can change)",
            code="device.verification_uri_insecure",
        )
    return value


def _number_member(payload: dict[str, object], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(name, "a JSON number")
    return float(value)


def build_device_token_request(
    config: LogtoConfig, metadata: OidcProviderMetadata, authorization: DeviceAuthorization
) -> HttpRequest:
    """One poll: the token request with the device code (section 3.4), authenticated as
    every token request is. The device code is a secret (``scrub.SENSITIVE_FIELDS``)."""
    headers, auth_form = client_authentication(config)
    form = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", authorization.device_code),
        *auth_form,
    ]
    return HttpRequest.post_form(metadata.token_endpoint, form, headers=headers, purpose="token")


class CancelFlag(Protocol):
    """What can cancel a wait for a device sign-in: ``threading.Event``, ``asyncio.Event``,
    or anything with ``is_set()``."""

    def is_set(self) -> bool: ...


# ---- polling, as a pure state machine ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Poll:
    """Send the next token request (:func:`build_device_token_request`) at ``at`` (seconds
    since the epoch, on the runtime's clock), not before. A ``Sleep`` is bounded
    (:data:`~logto_core.sleep.MAX_SLEEP`): sleep again while ``now < at``."""

    at: float

    def sleep(self) -> Sleep:
        return Sleep(self.at)

    def due(self, now: float) -> bool:
        return now >= self.at


@dataclass(frozen=True, slots=True)
class Granted:
    """The user approved: the token response, read by
    :func:`~logto_core.protocol.token_endpoint.parse_token_response`. Its ``id_token`` (when
    ``openid`` was asked for) is not verified here; whoever adopts it verifies it as after a
    code exchange (there is no nonce in this grant)."""

    token: TokenResponse


@dataclass(frozen=True, slots=True)
class Failed:
    """Polling ended without a grant (:class:`DeviceAuthorizationError`, or the token
    endpoint's own error)."""

    error: LogtoError


DeviceStep = Poll | Granted | Failed


@dataclass(frozen=True, slots=True)
class DevicePolling:
    """Where the polling of one device authorization stands. ``interval`` only grows
    (``slow_down``); ``next_poll_at`` is the time of the poll asked for last; ``outcome``,
    once set, never changes."""

    authorization: DeviceAuthorization = field(repr=False)
    interval: float
    next_poll_at: float
    polls: int = 0
    outcome: Granted | Failed | None = field(default=None, repr=False)

    @property
    def expires_at(self) -> float:
        return self.authorization.expires_at

    @property
    def done(self) -> bool:
        return self.outcome is not None

    @property
    def step(self) -> DeviceStep:
        """What to do next: :class:`Poll`, or the outcome."""
        return self.outcome if self.outcome is not None else Poll(self.next_poll_at)


def start_polling(authorization: DeviceAuthorization, now: float) -> DevicePolling:
    """The polling of ``authorization`` from ``now``: the first poll one interval later
    (the user needs that long at least), or :class:`Failed` if the code expires first."""
    start = DevicePolling(
        authorization, authorization.interval, max(now, authorization.obtained_at)
    )
    return _scheduled(start, now)


def advance(state: DevicePolling, now: float, answer: TokenResponse | LogtoError) -> DevicePolling:
    """The state after the token endpoint's ``answer`` to the poll ``state.step`` asked
    for, received at ``now`` (section 3.5):

    * a token: :class:`Granted`;
    * ``authorization_pending``: poll again one interval later;
    * ``slow_down``: the interval grows by :data:`SLOW_DOWN_STEP` for good, then as above;
    * ``access_denied``: :class:`Failed` with ``device.access_denied``;
    * ``expired_token``: :class:`Failed` with ``device.expired``;
    * any other error: :class:`Failed` with that error.

    The next poll is never sooner than one interval after both ``now`` and the poll asked
    for last, and never at or after the expiry (``device.expired`` then). Once done, the
    state answers its outcome whatever else arrives."""
    if state.outcome is not None:
        return state
    polled = replace(state, polls=state.polls + 1)
    if isinstance(answer, TokenResponse):
        return replace(polled, outcome=Granted(answer))
    kind = answer.error if isinstance(answer, OAuthError) else None
    if kind == "authorization_pending":
        return _scheduled(polled, now)
    if kind == "slow_down":
        return _scheduled(replace(polled, interval=polled.interval + SLOW_DOWN_STEP), now)
    if kind == "access_denied":
        refused = DeviceAuthorizationError(
            "the user refused the device sign-in; start a new device authorization to try again",
            code="device.access_denied",
        )
        refused.__cause__ = answer
        return replace(polled, outcome=Failed(refused))
    if kind == "expired_token":
        return replace(polled, outcome=Failed(_expired(answer)))
    return replace(polled, outcome=Failed(answer))


def on_poll_response(state: DevicePolling, now: float, response: HttpResponse) -> DevicePolling:
    """:func:`advance` with the token endpoint's response as received (read by
    :func:`~logto_core.protocol.token_endpoint.parse_token_response`)."""
    if state.outcome is not None:
        return state
    try:
        answer: TokenResponse | LogtoError = parse_token_response(response)
    except LogtoError as error:
        answer = error
    return advance(state, now, answer)


MAX_BACKOFF_DOUBLINGS = 5
"""How many times in a row a poll that got no answer doubles the wait before the next one."""


def backed_off(state: DevicePolling, now: float, failures: int) -> DevicePolling:
    """The state after ``failures`` polls in a row that got no answer at all (a connection
    failure, a timeout), the last at ``now`` (section 3.5: back off): the next poll waits
    the interval doubled for each (at most :data:`MAX_BACKOFF_DOUBLINGS` times), never
    sooner than one interval after the poll asked for last; :class:`Failed`
    (``device.expired``) when that would be at or after the expiry."""
    if state.outcome is not None:
        return state
    wait = state.interval * 2 ** min(max(failures, 0), MAX_BACKOFF_DOUBLINGS)
    at = max(now, state.next_poll_at) + wait
    if not at < state.expires_at:
        return replace(state, outcome=Failed(_expired(None)))
    return replace(state, next_poll_at=at)


def _scheduled(state: DevicePolling, now: float) -> DevicePolling:
    at = max(now, state.next_poll_at) + state.interval
    if not at < state.expires_at:  # also a NaN clock
        return replace(state, outcome=Failed(_expired(None)))
    return replace(state, next_poll_at=at)


def _expired(cause: LogtoError | None) -> DeviceAuthorizationError:
    error = DeviceAuthorizationError(
        "the device code expired before the user approved the sign-in; start a new device "
        "authorization",
        code="device.expired",
    )
    error.__cause__ = cause
    return error


__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_LIMIT",
    "DEVICE_CODE_GRANT",
    "EMPTY_CACHE",
    "MAX_BACKOFF_DOUBLINGS",
    "MAX_DEVICE_LIFETIME",
    "MAX_INTERVAL",
    "MAX_JWT_LIFETIME",
    "SLOW_DOWN_STEP",
    "CancelFlag",
    "ClientCredentialsState",
    "DeviceAuthorization",
    "DeviceAuthorizationError",
    "DevicePolling",
    "DeviceStep",
    "Failed",
    "Granted",
    "NeedToken",
    "Poll",
    "TokenCache",
    "UserGrant",
    "advance",
    "backed_off",
    "build_device_authorization",
    "build_device_token_request",
    "cache_entry",
    "client_credentials_key",
    "on_poll_response",
    "parse_device_authorization_response",
    "start_polling",
]
