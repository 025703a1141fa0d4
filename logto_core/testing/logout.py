"""Logout tokens as Logto sends them (OpenID Connect Back-Channel Logout 1.0), for testing a
back-channel logout receiver without a Logto server.

Logto's logout token (``logto-protocol.md``): header ``typ: logout+jwt`` with the tenant's
signing key and ``kid``; claims ``iss``, ``aud`` (the client id), ``iat``, ``jti``, ``sub``,
``events`` (the back-channel logout event) and ``sid`` when the client asked for sessions;
no ``exp``, never a ``nonce``. :class:`LogoutTokens` mints exactly that, and lets a test
change any claim or header member to make a broken one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from logto_core.errors import LogtoUsageError
from logto_core.http import HttpRequest

from .directory import Directory
from .grants import GrantStore
from .keys import KeyRing, SignOptions, apply_overrides

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class LogoutTokens:
    """Signs logout tokens with the provider's current key (see the module doc)."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: KeyRing,
        directory: Directory,
        store: GrantStore,
        clock: Callable[[], float],
    ) -> None:
        self._issuer = issuer
        self._keys = keys
        self._directory = directory
        self._store = store
        self._clock = clock

    def token(
        self,
        client_id: str,
        *,
        sid: str | None = None,
        sub: str | None = None,
        expires_in: float | None = None,
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """A logout token for ``client_id`` naming the session ``sid`` and/or the user
        ``sub`` (at least one), issued now, with a fresh ``jti``. ``expires_in`` adds an
        ``exp`` (Logto sends none). ``claims`` and ``header`` change members after the fact
        (a ``None`` value removes one), for tokens the receiver must refuse."""
        if client_id not in self._directory.clients:
            raise LogtoUsageError(f"unknown client {client_id!r}", code="testing.setup")
        if sid is None and sub is None:
            raise LogtoUsageError(
                "a logout token names a session (sid), a user (sub) or both",
                code="testing.setup",
            )
        now = int(self._clock())
        payload: dict[str, Any] = {
            "iss": self._issuer,
            "aud": client_id,
            "iat": now,
            "jti": self._store.new_id(),
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if sub is not None:
            payload["sub"] = sub
        if sid is not None:
            payload["sid"] = sid
        if expires_in is not None:
            payload["exp"] = now + int(expires_in)
        payload = apply_overrides(payload, claims)
        return self._keys.sign(
            payload, typ="logout+jwt", options=SignOptions(header_overrides=header)
        )


def logout_request(url: str, token: str) -> HttpRequest:
    """The provider's POST of ``token`` to a back-channel logout URI (section 2.5)."""
    return HttpRequest.post_form(url, [("logout_token", token)])


__all__ = ["BACKCHANNEL_LOGOUT_EVENT", "LogoutTokens", "logout_request"]
