"""The flows as methods of a context, for the core's tests.

The clients run flows through operations (:mod:`logto_core.operations`), each given the one
:class:`~logto_core.context.Context`. Tests of the flows themselves call them one by one;
this facade keeps those calls short (``core.sign_in(session, REDIRECT)``) and composes the
sign-out the clients do in two steps (the local part, then the revocation) into one flow so
that a test can check both at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from typing_extensions import Unpack

from logto_core import flows
from logto_core.context import Context
from logto_core.enums import InteractionMode
from logto_core.errors import LogtoError
from logto_core.flows import Flow, LocalSignOut, Outcome
from logto_core.models import IdTokenClaims, UserInfoResponse
from logto_core.protocol.signin_url import SignInOptions, SignInParams
from logto_core.session import SessionState, TokenKey


@dataclass(frozen=True, slots=True)
class SignOutResult:
    """The end-session URL, and the revocation's failure (``None``: revoked, or nothing to
    revoke)."""

    url: str
    revocation_error: LogtoError | None = None


class CoreFacade(Context):
    __slots__ = ()

    def sign_in(
        self,
        session: SessionState,
        redirectUri: str,
        interactionMode: InteractionMode | str | None = None,
        **params: Unpack[SignInParams],
    ) -> Flow[str]:
        options = SignInOptions.of(redirectUri, interactionMode, params)
        return flows.sign_in(self, session, options)

    def handle_sign_in_callback(
        self, session: SessionState, callbackUri: str
    ) -> Flow[IdTokenClaims]:
        return flows.handle_sign_in_callback(self, session, callbackUri)

    def get_access_token(
        self,
        session: SessionState,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> Flow[str]:
        key = TokenKey.of(resource or None, organizationId, scopes)
        return flows.get_access_token(self, session, key)

    def fetch_user_info(self, session: SessionState) -> Flow[UserInfoResponse]:
        return flows.fetch_user_info(self, session)

    def user_info_with_token(
        self, session: SessionState, access_token: str
    ) -> Flow[UserInfoResponse]:
        return flows.user_info_with_token(self, session, access_token)

    def check_target(self, key: TokenKey) -> None:
        flows.check_target(self.config, key)

    def sign_out_local(
        self, session: SessionState, postLogoutRedirectUri: str | None = None
    ) -> Outcome[LocalSignOut]:
        return flows.sign_out_local(self, session, postLogoutRedirectUri)

    def revoke(self, refresh_token: str) -> Flow[LogtoError | None]:
        return flows.revoke_refresh_token(self, refresh_token)

    def sign_out(
        self, session: SessionState, postLogoutRedirectUri: str | None = None
    ) -> Flow[SignOutResult]:
        """What a client's ``signOut`` does, as one flow: the local sign-out, then the
        revocation of the refresh token it handed over (best effort)."""
        local = flows.sign_out_local(self, session, postLogoutRedirectUri)
        if local.error is not None:
            return Outcome(None, local.session, local.provider, local.error)
        value = local.unwrap()
        failure: LogtoError | None = None
        if value.to_revoke is not None:
            revoked = yield from flows.revoke_refresh_token(self, value.to_revoke)
            self.adopt(revoked.provider)
            failure = revoked.value
        return Outcome(SignOutResult(value.url, failure), local.session, self.provider)
