"""What a client method does, written once for every adapter: operations that yield effects.

A flow (:mod:`logto_core.flows`) only needs HTTP. A client method needs more: it loads the
session from the storage, runs a flow, stores the changes, and, for token refreshes, shares
one refresh between concurrent callers of the same session (:mod:`logto_core.singleflight`).
Each client method here is an *operation*: a generator that yields an :data:`Effect` (a small
frozen value describing one thing to do) and receives its result through ``send()``. An
adapter runs it with :func:`logto_core.driver.run_operation` (or its async twin) and a
``perform`` callable that knows how to do each effect with its own storage, transport and
locks; a failure of an effect is thrown into the operation where it was yielded.

==================  ==========================================================  ===============
effect              what the adapter does                                       result
==================  ==========================================================  ===============
``HttpRequest``     send it (failures raise :class:`TransportError`)            ``HttpResponse``
``LoadSession``     read the session from the storage                           ``SessionState``
``SaveSession``     apply the writes (``None`` = delete), see the class         ``bool``
``JoinFlight``      make a handle and claim the flight under the table's lock   ticket
``AwaitFlight``     wait for the leader's handle, bounded                       ``Shared``
``SettleFlight``    record the result in the table, resolve the handle          ``None``
``ForgetFlights``   drop the kept results of a refresh token                    ``None``
==================  ==========================================================  ===============

Adapters must never ``close()`` an operation that is suspended: they throw the exception
into it instead (cancellation included), so that a refresh leader can still settle its
flight; followers must never wait for a leader that is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import log
from .client import LogtoCore, value_or_none
from .enums import FirstScreen, Identifier, InteractionMode, Prompt
from .errors import LogtoError, SignInRequiredError, TransportError
from .flows import Flow, LocalSignOut, Outcome
from .http import HttpRequest
from .models import AccessTokenClaims, UserInfoResponse
from .session import SessionState
from .signin_url import DirectSignIn
from .singleflight import FlightKey, Follow, Lead, Reuse, Shared, flight_key, interrupted

T = TypeVar("T")

# ---- effects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadSession:
    """Read the user's session from the storage; answer the :class:`SessionState`."""


@dataclass(frozen=True, slots=True)
class SaveSession:
    """Apply ``writes`` (``None`` = delete) to the storage, which held ``before``.

    A *guarded* save adopts another caller's writes: it must only happen if the storage still
    holds the refresh token ``before`` had (otherwise the storage already moved on: it is the
    leader's own storage, or a newer refresh landed). The adapter checks
    :meth:`accepts` and writes without letting another save of the same client in between,
    and answers whether it wrote.
    """

    before: SessionState
    writes: Mapping[str, str | None]
    guarded: bool = False

    def accepts(self, stored_refresh_token: str | None) -> bool:
        """Whether to write, given the refresh token the storage holds now."""
        return not self.guarded or (stored_refresh_token or None) == self.before.refresh_token

    @property
    def after(self) -> SessionState:
        """The session the storage holds once the writes are applied."""
        return SessionState.from_values({**self.before.dump(), **self.writes})


@dataclass(frozen=True, slots=True)
class JoinFlight:
    """Claim the single flight for ``key`` with a new handle (under the table's lock); answer
    the :class:`Lead`, :class:`Follow` or :class:`Reuse` ticket."""

    key: FlightKey


@dataclass(frozen=True, slots=True)
class AwaitFlight:
    """Wait for the leader of ``follow`` to resolve its handle; answer the :class:`Shared`.
    The wait is bounded: when it runs out, the adapter raises :meth:`timeout_error`."""

    follow: Follow[Any]

    @staticmethod
    def timeout_error() -> TransportError:
        """The error to throw when the wait for the leader ran out."""
        return TransportError(
            "gave up waiting for a concurrent refresh of this session", code="transport.timeout"
        )


@dataclass(frozen=True, slots=True)
class SettleFlight:
    """Record the leader's ``shared`` result for ``key`` in the table and resolve the handle
    of ``lead`` with it. Never fails: followers are waiting."""

    key: FlightKey
    lead: Lead[Any]
    shared: Shared


@dataclass(frozen=True, slots=True)
class ForgetFlights:
    """Drop the kept results of ``refresh_token`` (after a sign-in or a sign-out)."""

    refresh_token: str


Effect = (
    HttpRequest
    | LoadSession
    | SaveSession
    | JoinFlight
    | AwaitFlight
    | SettleFlight
    | ForgetFlights
)
"""Everything an operation may ask its adapter to do."""

Operation = Generator[Effect, Any, T]
"""A client method: yields effects, receives their results, returns the method's value."""

Ticket = Lead[Any] | Follow[Any] | Reuse
"""What :class:`JoinFlight` answers."""


# ---- building blocks --------------------------------------------------------------------


def settled_flow(
    core: LogtoCore, build: Callable[[SessionState], Flow[T]]
) -> Operation[tuple[SessionState, Outcome[T]]]:
    """Load the session, run the flow ``build`` makes from it, store its changes. Returns the
    session it started from and the outcome, not unwrapped."""
    before: SessionState = yield LoadSession()
    outcome = yield from build(before)
    yield SaveSession(before, core.settle(before, outcome))
    return before, outcome


def _forget(before: SessionState) -> Operation[None]:
    """A new sign-in or a sign-out ends the refresh token's story: results kept for it must
    not be handed to anyone any more."""
    if before.refresh_token is not None:
        yield ForgetFlights(before.refresh_token)


def required(token: str | None) -> str:
    """``token``, or :class:`SignInRequiredError` when there is none."""
    if token is None:
        raise SignInRequiredError(
            "no access token: the user must sign in", code="sign_in_required.no_token"
        )
    return token


# ---- sign-in and sign-out ---------------------------------------------------------------


def sign_in_op(
    core: LogtoCore,
    redirectUri: str,
    interactionMode: InteractionMode | str | None = None,
    *,
    firstScreen: FirstScreen | str | None = None,
    identifiers: Sequence[Identifier | str] | None = None,
    directSignIn: DirectSignIn | str | None = None,
    loginHint: str | None = None,
    prompt: str | Sequence[Prompt | str] | None = None,
    organizationId: str | None = None,
    uiLocales: str | None = None,
    maxAge: int | None = None,
    extraParams: Mapping[str, str] | None = None,
) -> Operation[str]:
    """``signIn``: remember the attempt in the storage, return the authorization URL."""

    def flow(session: SessionState) -> Flow[str]:
        return core.sign_in(
            session,
            redirectUri,
            interactionMode,
            firstScreen=firstScreen,
            identifiers=identifiers,
            directSignIn=directSignIn,
            loginHint=loginHint,
            prompt=prompt,
            organizationId=organizationId,
            uiLocales=uiLocales,
            maxAge=maxAge,
            extraParams=extraParams,
        )

    _, outcome = yield from settled_flow(core, flow)
    return outcome.unwrap()


def callback_op(core: LogtoCore, callbackUri: str) -> Operation[None]:
    """``handleSignInCallback``: check the response, exchange the code, store the tokens."""
    before, outcome = yield from settled_flow(
        core, lambda session: core.handle_sign_in_callback(session, callbackUri)
    )
    yield from _forget(before)
    outcome.unwrap()


def sign_out_op(
    core: LogtoCore, postLogoutRedirectUri: str | None = None, *, wait_for_revocation: bool
) -> Operation[LocalSignOut]:
    """``signOut``: clear the tokens in the storage and build the end-session URL, without
    any request. With ``wait_for_revocation`` the refresh token is then revoked here
    (:func:`revoke_op`, best effort) and the result has nothing left ``to_revoke``;
    otherwise the result hands the token over for the adapter to revoke in the background
    with :func:`revoke_op`, so that an unreachable provider never delays the sign-out."""
    before: SessionState = yield LoadSession()
    outcome = core.sign_out_local(before, postLogoutRedirectUri)
    yield SaveSession(before, core.settle(before, outcome))
    yield from _forget(before)
    result = outcome.unwrap()
    if wait_for_revocation and result.to_revoke is not None:
        yield from revoke_op(core, result.to_revoke)
        return LocalSignOut(url=result.url)
    return result


def revoke_op(core: LogtoCore, refresh_token: str) -> Operation[LogtoError | None]:
    """Revoke ``refresh_token`` (RFC 7009): discovery if needed, then the revocation request.
    Best effort: a failure is logged as a warning and returned, never raised. It yields only
    requests (no storage effect), so it can run after the request that signed out is over."""
    outcome = yield from core.revoke(refresh_token)
    core.adopt(outcome)
    error = outcome.value  # the flow reports its failure as its value, never as an error
    if error is not None:
        log.revocation_failed(error)
    return error


# ---- tokens -----------------------------------------------------------------------------


def access_token_op(
    core: LogtoCore,
    resource: str | None = None,
    organizationId: str | None = None,
    *,
    reused_once: bool = False,
) -> Operation[Outcome[str]]:
    """A token for (resource, organization): from the cache without any flow; by running the
    flow when there is no refresh token (it says why); else through the single flight, so
    that concurrent callers holding the same refresh token share one refresh."""
    session: SessionState = yield LoadSession()
    cached = core.cached_access_token(session, resource, organizationId)
    if cached is not None:
        return Outcome(cached, session, core.provider)
    flow = core.get_access_token(session, resource, organizationId)
    if session.refresh_token is None:
        outcome = yield from flow
        yield SaveSession(session, core.settle(session, outcome))
        return outcome
    key = flight_key(session.refresh_token, core.token_key(resource, organizationId))
    ticket: Ticket = yield JoinFlight(key)
    if isinstance(ticket, Lead):
        return (yield from _lead(core, ticket, key, session, flow))
    flow.close()  # never started: the leader refreshes for everyone
    if isinstance(ticket, Follow):
        shared: Shared = yield AwaitFlight(ticket)
    else:
        shared = ticket.result
    yield SaveSession(session, shared.writes, guarded=True)
    if isinstance(ticket, Reuse) and not reused_once and _stale(core, shared, key):
        # A kept result can be seconds old: its token may be inside the expiry margin by now.
        # The storage holds the rotated refresh token now, so ask again, once.
        return (yield from access_token_op(core, resource, organizationId, reused_once=True))
    return shared.outcome


def _stale(core: LogtoCore, shared: Shared, key: FlightKey) -> bool:
    entry = shared.outcome.session.access_tokens.get(key.token_key)
    now = core.runtime.now()
    return entry is not None and not entry.is_fresh(now, core.config.tokenExpiryMargin)


def _lead(
    core: LogtoCore, lead: Lead[Any], key: FlightKey, before: SessionState, flow: Flow[str]
) -> Operation[Outcome[str]]:
    """Run the refresh for everyone, then settle the flight: also when the run is cut short
    (cancelled, a crash in the transport or the storage), so that followers are released."""
    shared: Shared | None = None
    try:
        outcome = yield from flow
        shared = Shared(core.settle(before, outcome), outcome)
        yield SaveSession(before, shared.writes)
    except BaseException:
        # Once the refresh ran, its writes are worth adopting even if this storage failed:
        # the consumed refresh token must not be presented again.
        if shared is None:
            shared = interrupted(before, core.provider)
        yield SettleFlight(key, lead, shared)
        raise
    yield SettleFlight(key, lead, shared)
    return outcome


def get_access_token_op(core: LogtoCore, resource: str = "") -> Operation[str | None]:
    """``getAccessToken``: ``None`` when the user must sign in; other failures raise."""
    return value_or_none((yield from access_token_op(core, resource or None)))


def access_token_claims_op(core: LogtoCore, resource: str = "") -> Operation[AccessTokenClaims]:
    """``getAccessTokenClaims``: the claims of :func:`get_access_token_op`'s token."""
    token = yield from get_access_token_op(core, resource)
    return core.access_token_claims(required(token))


def organization_token_op(core: LogtoCore, organizationId: str) -> Operation[str | None]:
    """``getOrganizationToken``: ``None`` when the user must sign in."""
    return value_or_none((yield from access_token_op(core, None, organizationId)))


def organization_token_claims_op(
    core: LogtoCore, organizationId: str
) -> Operation[AccessTokenClaims]:
    """``getOrganizationTokenClaims``: the claims of the organization token."""
    token = yield from organization_token_op(core, organizationId)
    return core.access_token_claims(required(token))


def user_info_op(core: LogtoCore) -> Operation[UserInfoResponse]:
    """``fetchUserInfo``. A fresh token is cached first through the single flight, so that
    concurrent calls do not each refresh inside their own userinfo flow."""
    warm = yield from access_token_op(core)
    if warm.error is not None and not isinstance(warm.error, SignInRequiredError):
        raise warm.error
    _, outcome = yield from settled_flow(core, core.fetch_user_info)
    return outcome.unwrap()


__all__ = [
    "AwaitFlight",
    "Effect",
    "ForgetFlights",
    "JoinFlight",
    "LoadSession",
    "Operation",
    "SaveSession",
    "SettleFlight",
    "Ticket",
    "access_token_claims_op",
    "access_token_op",
    "callback_op",
    "get_access_token_op",
    "organization_token_claims_op",
    "organization_token_op",
    "required",
    "revoke_op",
    "settled_flow",
    "sign_in_op",
    "sign_out_op",
    "user_info_op",
]
