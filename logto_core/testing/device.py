"""The device authorization grant (RFC 8628), as Logto serves it with node-oidc-provider.

A device asks ``POST <issuer>/device/auth`` for a device code and a user code, shows the user
code, and polls the token endpoint with the device code while the user enters the code on
another screen. The test plays that user with :meth:`TestProvider.approve_device` and
:meth:`TestProvider.deny_device`.

The rules, all on the provider's clock:

* a user code is 8 letters of :data:`USER_CODE_ALPHABET` shown as ``XXXX-XXXX``; what the user
  types is compared in upper case without dashes or spaces;
* a device code lives :attr:`DeviceFlow.ttl` seconds; a poll at or after that answers
  ``expired_token``;
* until the user decides, a poll answers ``authorization_pending``, or ``slow_down`` when it
  came sooner than the device code's interval after the previous poll, and that interval
  then grows by :data:`SLOW_DOWN_STEP` seconds for every later poll;
* after approval the device code is redeemed once; presenting it again revokes the grant it
  produced and answers ``invalid_grant``. After denial the first poll answers
  ``access_denied`` and later ones ``invalid_grant``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import urlencode

from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import Runtime

from ._wire import NO_STORE, Rejection
from .authorize import check_resources, granted_scopes
from .clientauth import authenticate_client
from .directory import Client, Directory, User
from .grants import Grant, GrantStore, new_token_value

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_TTL = 600
"""Seconds a device code lives, by default (Logto: 10 minutes)."""
DEVICE_INTERVAL = 5
"""Seconds between polls the provider expects at first, by default (RFC 8628's default)."""
SLOW_DOWN_STEP = 5
"""Seconds a ``slow_down`` answer adds to a device code's interval."""
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
"""Letters of user codes: consonants only, so that no word and no look-alike appears."""
USER_CODE_LENGTH = 8

_UNBIASED_LIMIT = 256 - 256 % len(USER_CODE_ALPHABET)
_PENDING = (
    "authorization request is still pending as the end-user hasn't yet completed the user "
    "interaction steps"
)
_SLOW_DOWN = "you are polling too quickly and should back off at a reasonable rate"


def _usage(message: str) -> LogtoUsageError:
    return LogtoUsageError(message, code="testing.device")


def _invalid_grant(description: str) -> Rejection:
    return Rejection("invalid_grant", description)


def normalize_user_code(text: str) -> str:
    """A user code as the provider stores it: upper case, letters and digits only."""
    return re.sub(r"\W|_", "", text.upper(), flags=re.ASCII)


def display_user_code(code: str) -> str:
    """A stored user code as shown to the user (``XXXX-XXXX``)."""
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


@dataclass(slots=True)
class DeviceAuthorization:
    """One device authorization request and where it stands."""

    device_code: str = field(repr=False)
    user_code: str = field(repr=False)
    """Normalized (no dash)."""
    client_id: str
    scopes: frozenset[str]
    resources: frozenset[str]
    expires_at: float
    interval: int
    """Seconds the provider expects between polls now (grows with ``slow_down``)."""
    last_poll: float | None = None
    grant_id: str | None = None
    """The grant the user's approval created."""
    denied: bool = False
    consumed: bool = False

    @property
    def decided(self) -> bool:
        """Whether the user approved or denied."""
        return self.grant_id is not None or self.denied


class DeviceFlow:
    """The provider's device authorizations: the device authorization endpoint, the user's
    decision and the polling rules of the ``device_code`` grant.

    ``ttl``, ``interval`` and ``slow_down`` apply to device authorizations made after they
    are changed. ``interval=None`` leaves ``interval`` out of the response, as Logto does
    (clients then wait RFC 8628's 5 s); ``slow_down=False`` never answers ``slow_down``, as
    Logto does (node-oidc-provider defines the error but never sends it).
    """

    def __init__(
        self, *, directory: Directory, store: GrantStore, runtime: Runtime, verification_uri: str
    ) -> None:
        self._directory = directory
        self._store = store
        self._runtime = runtime
        self.verification_uri = verification_uri
        self.ttl: int = DEVICE_CODE_TTL
        """Seconds a new device code lives."""
        self.interval: int | None = DEVICE_INTERVAL
        """Seconds announced as ``interval`` (``None``: not announced; 5 s apply)."""
        self.slow_down: bool = True
        """Answer ``slow_down`` to polls that come too soon."""
        self.authorizations: dict[str, DeviceAuthorization] = {}
        """Every device authorization, by device code."""
        self._by_user_code: dict[str, DeviceAuthorization] = {}

    # -- the device authorization endpoint -----------------------------------------------
    def authorize(
        self, request: HttpRequest, params: dict[str, str], resources: list[str], now: float
    ) -> HttpResponse:
        """Answer ``POST /oidc/device/auth``."""
        client = authenticate_client(request, params, self._directory)
        if not client.device_flow:
            raise Rejection(
                "unauthorized_client", f"{DEVICE_CODE_GRANT} not allowed for this client"
            )
        targets = check_resources(resources, self._directory)
        requested = set(params.get("scope", "").split())
        # Logto issues a refresh token to a device whenever offline_access was asked for.
        scopes = granted_scopes(
            requested, resources=targets, directory=self._directory, offline=True
        )
        record = DeviceAuthorization(
            device_code=new_token_value(self._runtime),
            user_code=self._new_user_code(),
            client_id=client.client_id,
            scopes=scopes,
            resources=targets,
            expires_at=now + self.ttl,
            interval=self.interval if self.interval is not None else DEVICE_INTERVAL,
        )
        self.authorizations[record.device_code] = record
        self._by_user_code[record.user_code] = record
        shown = display_user_code(record.user_code)
        body: dict[str, object] = {
            "device_code": record.device_code,
            "user_code": shown,
            "verification_uri": self.verification_uri,
            "verification_uri_complete": (
                f"{self.verification_uri}?{urlencode({'user_code': shown})}"
            ),
            "expires_in": self.ttl,
        }
        if self.interval is not None:
            body["interval"] = self.interval
        return HttpResponse.json(200, body, NO_STORE)

    def _new_user_code(self) -> str:
        while True:
            letters: list[str] = []
            while len(letters) < USER_CODE_LENGTH:
                for byte in self._runtime.random_bytes(USER_CODE_LENGTH):
                    # Rejection sampling keeps every letter equally likely.
                    if byte < _UNBIASED_LIMIT and len(letters) < USER_CODE_LENGTH:
                        letters.append(USER_CODE_ALPHABET[byte % len(USER_CODE_ALPHABET)])
            code = "".join(letters)
            if code not in self._by_user_code:
                return code

    # -- the user's decision -------------------------------------------------------------
    def pending(self, user_code: str, now: float) -> DeviceAuthorization:
        """The undecided, unexpired authorization of ``user_code`` (as typed); a usage
        error otherwise."""
        record = self._by_user_code.get(normalize_user_code(user_code))
        if record is None:
            raise _usage(f"unknown user code {user_code!r}; was it issued by /device/auth?")
        if now >= record.expires_at:
            raise _usage(f"user code {user_code!r} has expired")
        if record.decided:
            raise _usage(f"user code {user_code!r} was already approved or denied")
        return record

    def approve(self, user_code: str, account: User, now: float) -> None:
        """``account`` entered ``user_code`` and consented to what the device asked for."""
        record = self.pending(user_code, now)
        if account.suspended:
            raise _usage(f"user {account.sub!r} is suspended and cannot sign in")
        grant = self._store.create_grant(
            client_id=record.client_id,
            sub=account.sub,
            scopes=record.scopes,
            resources=record.resources,
            nonce=None,
            auth_time=None,
            now=now,
        )
        record.grant_id = grant.grant_id

    def deny(self, user_code: str, now: float) -> None:
        """The user entered ``user_code`` and refused."""
        self.pending(user_code, now).denied = True

    # -- the device_code grant -----------------------------------------------------------
    def redeem(self, client: Client, device_code: str, now: float) -> Grant:
        """The grant behind an approved device code, which is now used up; otherwise the
        polling answer (``authorization_pending``, ``slow_down``, ``expired_token``,
        ``access_denied``) or ``invalid_grant``, raised."""
        record = self.authorizations.get(device_code)
        if record is None:
            raise _invalid_grant("device code not found")
        if record.client_id != client.client_id:
            raise _invalid_grant("client mismatch")
        if now >= record.expires_at:
            raise Rejection("expired_token", "device code is expired")
        if not record.decided:
            self._still_pending(record, now)
        if record.consumed:
            if record.grant_id is not None:
                self._store.revoke_grant(record.grant_id)
            raise _invalid_grant("device code already consumed")
        record.consumed = True
        if record.grant_id is None:
            raise Rejection("access_denied", "End-User aborted interaction", status=400)
        grant = self._store.grants[record.grant_id]
        if grant.revoked:
            raise _invalid_grant("grant request is invalid")
        return grant

    def _still_pending(self, record: DeviceAuthorization, now: float) -> NoReturn:
        previous, record.last_poll = record.last_poll, now
        if self.slow_down and previous is not None and now - previous < record.interval:
            record.interval += SLOW_DOWN_STEP
            raise Rejection("slow_down", _SLOW_DOWN)
        raise Rejection("authorization_pending", _PENDING)
