"""What a client method does, written once for every adapter: operations that yield effects.

A flow (:mod:`logto_core.flows`) only needs HTTP. A client method needs more: it loads the
session from the storage, runs flows, saves what changed, and makes sure that concurrent
callers never present one refresh token twice (:mod:`logto_core.singleflight`). Each client
method here is an *operation*: a generator that yields an :data:`Effect` (a small frozen
value describing one thing to do) and receives its result through ``send()``. Every operation
takes one :class:`~logto_core.context.Context`. An adapter runs it with
:func:`logto_core.driver.run_operation` (or its async twin) and a ``perform`` callable that
knows how to do each effect with its own storage, transport, coordinator and locks; a
failure of an effect is thrown into the operation where it was yielded.

==================  ==============================================================  ==========
effect              what the adapter does                                           result
==================  ==============================================================  ==========
``HttpRequest``     send this one attempt, within its ``timeout`` (failures raise   response
                    :class:`TransportError`); the clients run idempotent GETs
                    through :mod:`logto_core.shared_fetch` (one retried exchange
                    shared by concurrent callers, over the coordinator)
``Sleep``           wait until ``until`` on the runtime's clock (bounded)           ``None``
``LoadSession``     read the session from the storage                               session
``SaveSession``     apply the change to the stored session, atomically per session  ``Saved``
``Claim``           claim the flight of a key with the coordinator, leased          ticket
``AwaitFlight``     wait for the leader's published text, bounded                   text
``Publish``         hand a leader's result (text) to its followers, keep it         ``None``
``EndFlight``       mark a key ended (a grant signed out or replaced)               ``None``
``Shielded``        run a sub-operation to its end even if the caller goes away     its value
``RecordLogout``    check and record a logout token's ``jti`` in the app's replay   new?
                    cache, as one step                                              (bool)
``ForgetLogout``    forget it again (ending the sessions failed: the provider may   ``None``
                    send the token again)
``EndSessions``     sign out every session the verified logout token names          how many
==================  ==============================================================  ==========

Storage failures are raised by the adapter as :class:`StorageError` (the storage's own
exception chained); a coordinator shared by several processes raises
:class:`~logto_core.errors.CoordinationError` for its own failures: a failed ``Claim`` or
``AwaitFlight`` fails the request before anything is saved, ``Publish`` never fails, and a
failed ``EndFlight`` leaves the sign-out it follows standing. ``AwaitFlight`` raises
:class:`~logto_core.errors.LeaderLostError` when the leader's process died before
publishing: a refresh then claims the flight again.

``Shielded`` is what keeps tokens from being lost to interrupted callers:
once a refresh or a code exchange may have reached the provider, its result must be stored
and published even if the task that asked for it is cancelled (an ASGI server cancels a
request whose browser went away) or its thread is interrupted (a worker timeout raised from
a signal handler). Adapters run it in a task or thread of its own and only *wait* for it in
the caller, so an interruption stops the waiting, never the work.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from typing_extensions import Unpack

from . import changes, flows, log
from .changes import Change, Refreshed, SignedIn
from .context import Context
from .enums import InteractionMode
from .errors import (
    FlowLimitError,
    LeaderLostError,
    LogtoError,
    LogtoUsageError,
    OAuthError,
    SignInRequiredError,
    TransportError,
)
from .flows import LocalSignOut, Outcome
from .grants import (
    ClientCredentialsState,
    DeviceAuthorization,
    DeviceAuthorizationError,
    DevicePolling,
    Failed,
    Granted,
    backed_off,
    start_polling,
)
from .http import HttpRequest
from .models import AccessTokenClaims, UserInfoResponse
from .protocol.access_token import AccessTokenPolicy, Requirements
from .protocol.backchannel import (
    BackchannelLogoutResult,
    Body,
    Headers,
    logout_accepted,
    logout_refused,
    parse_logout_request,
)
from .protocol.bearer import AccessTokenError, bearer_token
from .protocol.callback import matching_attempt
from .protocol.logout_token import LogoutToken, replayed_error
from .protocol.signin_url import SignInOptions, SignInParams
from .protocol.token_exchange import ExchangedToken, TokenType
from .session import PENDING_SIGN_IN_TTL, CachedAccessToken, SessionState, TokenKey
from .singleflight import (
    KEEP_SECONDS,
    SUCCESSION_KEEP,
    Done,
    Ended,
    Follow,
    Lead,
    Ticket,
    callback_key,
    client_credentials_key,
    grant_key,
)
from .sleep import Sleep
from .token_cache import TokenCache

T = TypeVar("T")

MAX_ROUNDS = 8
"""Flights one token request may go through: each adopts a refresh another caller made (a
chain of rotations the stored session missed) or refreshes once."""

# ---- effects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadSession:
    """Read the user's session from the storage; answer the :class:`SessionState`."""


@dataclass(frozen=True, slots=True)
class SaveSession:
    """Apply ``change`` to the session the storage holds now and store the result.

    The adapter reads the stored session, applies the change and writes, as one step for
    that session: no other save of the same session (same grant) may come in between, while
    saves of other sessions never wait for it. ``grant`` is the refresh token of the session
    the operation read, a hint for which session that is (the adapter checks the stored one).
    A change that answers ``None`` (refused) or the same session writes nothing. Answers
    :class:`Saved`.
    """

    change: Change
    grant: str | None = None

    def __repr__(self) -> str:  # the hint is a token
        return "SaveSession()"


@dataclass(frozen=True, slots=True)
class Saved:
    """What a save found (``before``) and left (``after``) in the storage."""

    before: SessionState
    after: SessionState

    @property
    def written(self) -> bool:
        return self.after != self.before


@dataclass(frozen=True, slots=True)
class Claim:
    """Claim the flight of ``key`` with a new handle (under the table's lock); answer the
    :class:`~logto_core.singleflight.Lead`, ``Follow``, ``Done`` or ``Ended`` ticket.
    ``supersede``: a kept result was already adopted and was not enough; lead anew."""

    key: str
    supersede: bool = False


@dataclass(frozen=True, slots=True)
class AwaitFlight:
    """Wait for the leader of ``follow`` to resolve its handle; answer the result. The wait
    is bounded: when it runs out, the adapter raises :meth:`timeout_error`."""

    follow: Follow[Any]

    @staticmethod
    def timeout_error() -> TransportError:
        """The error to throw when the wait for the leader ran out."""
        return TransportError(
            "gave up waiting for a concurrent refresh of this session", code="transport.timeout"
        )


@dataclass(frozen=True, slots=True)
class Publish:
    """Record the leader's ``result`` for ``key`` (kept ``keep`` seconds for later
    claimers) and resolve the handle of ``lead`` with it. ``result`` is text
    (:func:`~logto_core.changes.encode_result`): a coordinator can store and forward it
    anywhere. Never fails."""

    key: str
    lead: Lead[Any]
    result: str = field(repr=False)
    keep: float


@dataclass(frozen=True, slots=True)
class EndFlight:
    """Mark ``key`` ended: a signed-out or replaced grant, whose copies must not come back."""

    key: str


@dataclass(frozen=True, slots=True)
class Shielded:
    """Run ``operation`` to its end where the caller's cancellation or interruption cannot
    reach it (the caller only waits for it); answer its value or raise its error."""

    operation: Generator[Any, Any, Any]


@dataclass(frozen=True, slots=True)
class RecordLogout:
    """Check and record ``key`` (a logout token's
    :attr:`~logto_core.protocol.logout_token.LogoutToken.replay_key`) in the app's replay
    cache (:class:`~logto_core.replay_cache.ReplayCache`), remembered until ``until``, as one
    step: two deliveries of one token at once must not both pass. Answer ``True`` when it
    was new, ``False`` for a replay."""

    key: str
    until: float


@dataclass(frozen=True, slots=True)
class ForgetLogout:
    """Forget ``key`` in the replay cache: the logout it came with failed, and the provider
    may deliver the same token again."""

    key: str


@dataclass(frozen=True, slots=True)
class EndSessions:
    """Sign out every session of this app that ``logout`` names (its ``sid``, or every
    session of its ``sub``; the adapter's session registry knows them). Answer how many were
    ended; raise a :class:`~logto_core.errors.LogtoError` when they could not be."""

    logout: LogoutToken


Effect = (
    HttpRequest
    | Sleep
    | LoadSession
    | SaveSession
    | Claim
    | AwaitFlight
    | Publish
    | EndFlight
    | Shielded
    | RecordLogout
    | ForgetLogout
    | EndSessions
)
"""Everything an operation may ask its adapter to do."""

Operation = Generator[Effect, Any, T]
"""A client method: yields effects, receives their results, returns the method's value."""


@dataclass(frozen=True, slots=True)
class Led:
    """What shielded leading work answers its caller: the result it published (the leader
    keeps the live value, its error's cause included; followers decode the published text)."""

    result: Any


# ---- building blocks --------------------------------------------------------------------


def value_or_none(outcome: Outcome[T]) -> T | None:
    """The tutorial's ``getAccessToken`` contract: ``None`` when the user must sign in (not
    signed in, no refresh token, the grant is dead); any other failure raises."""
    if isinstance(outcome.error, SignInRequiredError):
        return None
    return outcome.unwrap()


def required(token: str | None) -> str:
    """``token``, or :class:`SignInRequiredError` when there is none."""
    if token is None:
        raise SignInRequiredError(
            "no access token: the user must sign in", code="sign_in_required.no_token"
        )
    return token


def copied(error: LogtoError) -> LogtoError:
    """A fresh copy of a shared error, so that callers raising it on several threads at once
    do not share (and overwrite) one traceback. The cause is kept."""
    clone = error.__class__.__new__(error.__class__)
    clone.__dict__.update(error.__dict__)
    clone.args = error.args
    clone.__cause__ = error.__cause__
    return clone


def _end_grant(refresh_token: str | None) -> Operation[None]:
    """End the grant's flight. The change that signed it out (or replaced it) is saved by
    then: a shared coordinator out of reach does not undo it, nor stop the revocation that
    follows a sign-out (which kills the grant at the provider, stale copies included)."""
    if refresh_token is None:
        return
    try:
        yield EndFlight(grant_key(refresh_token))
    except TransportError as error:
        log.end_failed(error)


# ---- sign-in and sign-out ---------------------------------------------------------------


def sign_in_op(
    ctx: Context,
    redirectUri: str,
    interactionMode: InteractionMode | str | None = None,
    **params: Unpack[SignInParams],
) -> Operation[str]:
    """``signIn``: remember the attempt in the storage, return the authorization URL."""
    options = SignInOptions.of(redirectUri, interactionMode, params)
    before: SessionState = yield LoadSession()
    outcome = yield from flows.sign_in(ctx, before, options)
    ctx.adopt(outcome.provider)
    url = outcome.unwrap()
    added = [p for p in outcome.session.pending if p not in before.pending]
    yield SaveSession(changes.added_pending(added, ctx.runtime.now()), before.refresh_token)
    return url


def callback_op(ctx: Context, callbackUri: object) -> Operation[None]:
    """``handleSignInCallback``: check the response, exchange the code, store the tokens.

    Concurrent handling of one callback (a double click, a browser retry) makes one code
    exchange: the others wait for it and store its result too (a second exchange of the code
    would be a replay, and the provider would revoke the grant). The same browser coming back
    with a callback handled before (a reload) adopts its result: a code never reaches the
    provider twice."""
    url = callbackUri if isinstance(callbackUri, str) else str(callbackUri)
    session: SessionState = yield LoadSession()
    attempt = matching_attempt(url, session.pending)
    if attempt is None:
        # Nothing to coalesce on: the flow says what is wrong (malformed, unknown state).
        outcome = yield from flows.handle_sign_in_callback(ctx, session, url)
        ctx.adopt(outcome.provider)
        outcome.unwrap()
        return
    ticket = yield Shielded(_claim_callback(ctx, callback_key(attempt.state), session, url))
    if isinstance(ticket, Led):  # this caller exchanged the code
        result: SignedIn = ticket.result
    elif isinstance(ticket, Follow):
        result = changes.decode_signed_in((yield AwaitFlight(ticket)), attempt.state)
    else:
        assert isinstance(ticket, Done)  # handled before (a reload)
        result = changes.decode_signed_in(ticket.result, attempt.state)
    saved: Saved = yield SaveSession(changes.signed_in(result), session.refresh_token)
    yield from _replaced(saved)
    if result.error is not None:
        raise copied(result.error)


def _claim_callback(
    ctx: Context, key: str, session: SessionState, url: str
) -> Operation[Led | Follow[Any] | Done]:
    """Claim the callback's flight and, when leading, exchange the code and publish the
    result, all shielded: once claimed, the flight is always settled. The result is kept for
    as long as the attempt may live, so that the same browser coming back with the same
    callback (a reload, or a request whose caller went away before storing the tokens)
    adopts the sign-in instead of presenting the code again."""
    ticket: Ticket = yield Claim(key)
    if not isinstance(ticket, Lead):
        assert not isinstance(ticket, Ended)  # callback keys are never ended
        return ticket
    attempt = matching_attempt(url, session.pending)
    assert attempt is not None
    result = SignedIn(attempt.state, None, None, None, _interrupted("code exchange"))
    closed = False
    try:
        outcome = yield from flows.handle_sign_in_callback(ctx, session, url)
        ctx.adopt(outcome.provider)
        result = SignedIn.of(attempt.state, outcome.session, outcome.error)
    except GeneratorExit:  # closed by its driver: it can no longer yield anything
        closed = True
        raise
    finally:
        if not closed:
            # A transient failure (or an exchange cut short) is shared with the concurrent
            # callers but not kept: a reload exchanges the code again, which at worst is
            # refused (no grant anyone holds is lost).
            keep = 0.0 if isinstance(result.error, TransportError) else PENDING_SIGN_IN_TTL
            yield Publish(key, ticket, changes.encode_result(result), keep)
    return Led(result)


def _replaced(saved: Saved) -> Operation[None]:
    """A sign-in that replaced another grant ends it: copies of the old session (another
    tab's request still in flight) must not bring it back."""
    old = saved.before.refresh_token
    if old is not None and old != saved.after.refresh_token:
        yield from _end_grant(old)


def sign_out_op(ctx: Context, postLogoutRedirectUri: str | None = None) -> Operation[LocalSignOut]:
    """``signOut``: forget the tokens and build the end-session URL, without any request.

    The result hands over the refresh token the storage held, for the adapter to revoke
    (:func:`revoke_op`, bounded, best effort), so that an unreachable provider never holds
    the sign-out. The grant is ended in this process: a refresh in flight cannot store its
    result any more, and a stale copy of the session is treated as signed out."""
    before: SessionState = yield LoadSession()
    outcome = flows.sign_out_local(ctx, before, postLogoutRedirectUri)
    ctx.adopt(outcome.provider)
    local = outcome.unwrap()  # an invalid redirect fails here, before anything is forgotten
    saved: Saved = yield SaveSession(changes.signed_out, before.refresh_token)
    to_revoke = saved.before.refresh_token or local.to_revoke
    yield from _end_grant(to_revoke)
    if before.refresh_token is not None and before.refresh_token != to_revoke:
        yield from _end_grant(before.refresh_token)
    return LocalSignOut(url=local.url, to_revoke=to_revoke)


def revoke_op(ctx: Context, refresh_token: str) -> Operation[LogtoError | None]:
    """Revoke ``refresh_token`` (RFC 7009): discovery if needed, then the revocation request.
    Best effort: a failure is logged as a warning and returned, never raised. It yields only
    requests (no storage effect), so it can run after the request that signed out is over."""
    outcome = yield from flows.revoke_refresh_token(ctx, refresh_token)
    ctx.adopt(outcome.provider)
    error = outcome.value  # the flow reports its failure as its value, never as an error
    if error is not None:
        log.revocation_failed(error)
    return error


# ---- tokens -----------------------------------------------------------------------------


def access_token_op(
    ctx: Context,
    resource: str | None = None,
    organizationId: str | None = None,
    *,
    force: bool = False,
) -> Operation[Outcome[str]]:
    """A token for (resource, organization): from the cache, or through the grant's single
    flight, so that callers holding one refresh token never present it twice (whatever
    token each of them wants), and a result the stored session missed (a rotation an
    interrupted request or a failing storage did not keep) is adopted, not refreshed again.
    ``force``: a token obtained before this call is not good enough (the user's roles
    changed); the refresh still goes through the single flight, and a kept result is still
    adopted first (its refresh token may be the only live one). Usage mistakes raise; the
    outcome carries the rest (:class:`SignInRequiredError` among them)."""
    key = ctx.token_key(resource, organizationId)
    # Before anything: a wrong resource costs a public client its grant.
    flows.check_target(ctx.config, key)
    session: SessionState = yield LoadSession()
    not_before = ctx.runtime.now() if force else None
    adopted: set[str] = set()  # flights whose kept result this caller took already
    for _ in range(MAX_ROUNDS):
        cached = ctx.cached_access_token(session, resource, organizationId, not_before=not_before)
        if cached is not None:
            return Outcome(cached, session, ctx.provider)
        refresh_token = session.refresh_token
        if refresh_token is None:
            # No grant to coordinate on: the flow says why (and makes no request).
            return (yield from flows.get_access_token(ctx, session, key))
        flight = grant_key(refresh_token)
        # A forced refresh must not be answered from the token it replaces.
        start = session.without_access_tokens([key]) if not_before is not None else session
        ticket = yield Shielded(_claim_refresh(ctx, Claim(flight, flight in adopted), start, key))
        if isinstance(ticket, Led):  # this caller led: the refresh is done
            refreshed: Refreshed = ticket.result
            yield SaveSession(changes.refreshed(refresh_token, refreshed), refresh_token)
            return _answer(ctx, session, refreshed, key)
        if isinstance(ticket, Ended):
            yield SaveSession(changes.cleared_if(refresh_token), refresh_token)
            error = SignInRequiredError(
                "this session was signed out (or replaced by another sign-in); sign in again",
                code="sign_in_required.signed_out",
            )
            return Outcome(None, session.cleared(), ctx.provider, error)
        concurrent = isinstance(ticket, Follow)
        if concurrent:
            try:
                text = yield AwaitFlight(ticket)
            except LeaderLostError:
                # Its leader's process died before publishing: claim again (one of the
                # callers that waited leads the flight, the others follow it).
                continue
        else:
            text = ticket.result
        refreshed = changes.decode_refreshed(text)
        saved: Saved = yield SaveSession(changes.refreshed(refresh_token, refreshed), refresh_token)
        # A concurrent leader's result is this caller's too (its token, if it is the token
        # this caller wants; its failure); a result kept from an earlier refresh is only
        # adopted (then the next round looks again), except a dead grant, dead for everyone.
        if concurrent and (refreshed.error is not None or refreshed.token_key == key):
            return _answer(ctx, saved.after, refreshed, key)
        if refreshed.error is not None and refreshed.dead:
            return Outcome(None, saved.after, ctx.provider, copied(refreshed.error))
        adopted.add(flight)
        session = saved.after
    raise TransportError(
        f"the session's refresh token kept changing during {MAX_ROUNDS} rounds; try again",
        code="transport.refresh_unsettled",
    )


def _answer(
    ctx: Context, session: SessionState, refreshed: Refreshed, key: TokenKey
) -> Outcome[str]:
    """The outcome a refresh gives the caller that led or followed it for ``key``."""
    if refreshed.error is not None:
        return Outcome(None, session, ctx.provider, copied(refreshed.error))
    assert refreshed.entry is not None and refreshed.token_key == key  # a success cached it
    return Outcome(refreshed.entry.token, session, ctx.provider)


def _claim_refresh(
    ctx: Context, claim: Claim, session: SessionState, key: TokenKey
) -> Operation[Led | Follow[Any] | Done | Ended]:
    """Claim the grant's flight and, when leading, refresh and publish, all shielded: once
    claimed, the flight is always settled, whatever happens to the caller. A result that
    retired the refresh token lives on in this process, so that its successor is found by
    whoever holds the consumed token next (the caller, if it was interrupted before it could
    store it; a request whose storage failed). Answers the ticket, or :class:`Led` with the
    result when this caller led."""
    ticket: Ticket = yield claim
    if not isinstance(ticket, Lead):
        return ticket
    result = Refreshed(None, None, key, None, _interrupted("refresh"))
    closed = False
    try:
        outcome = yield from flows.get_access_token(ctx, session, key)
        ctx.adopt(outcome.provider)
        result = Refreshed.between(session, outcome.session, key, outcome.error)
    except GeneratorExit:  # closed by its driver: it can no longer yield anything
        closed = True
        raise
    finally:
        if not closed:
            yield Publish(claim.key, ticket, changes.encode_result(result), _keep(result))
    return Led(result)


def _keep(result: Refreshed) -> float:
    """How long a refresh result is kept: for every later holder of a token it retired; a
    while, for callers that just missed the flight; not at all after a transient failure."""
    if result.retires_token:
        return SUCCESSION_KEEP
    return KEEP_SECONDS if result.error is None else 0.0


def _interrupted(what: str) -> TransportError:
    """What a leader publishes when its work broke off without a result (a crash of the
    transport or of the storage): a transient failure, so the next caller tries again."""
    return TransportError(
        f"the concurrent {what} of this session did not complete",
        code="transport.refresh_interrupted",
    )


def get_access_token_op(
    ctx: Context,
    resource: str = "",
    organizationId: str | None = None,
    *,
    force: bool = False,
) -> Operation[str | None]:
    """``getAccessToken``: ``None`` when the user must sign in; other failures raise. With
    ``organizationId``, the token for the resource within that organization."""
    outcome = yield from access_token_op(ctx, resource or None, organizationId, force=force)
    return value_or_none(outcome)


def access_token_claims_op(
    ctx: Context,
    resource: str = "",
    organizationId: str | None = None,
    *,
    force: bool = False,
) -> Operation[AccessTokenClaims]:
    """``getAccessTokenClaims``: the claims of :func:`get_access_token_op`'s token."""
    token = yield from get_access_token_op(ctx, resource, organizationId, force=force)
    return ctx.access_token_claims(required(token))


_RELEASED = changes.encode_result(Refreshed(None, None, TokenKey(" released"), None, None))
"""What a flight claimed only to be released answers a caller that joined it meanwhile:
no token for anyone, no error (that caller then looks again, and refreshes)."""


def clear_tokens_op(ctx: Context, keys: list[TokenKey] | None = None) -> Operation[None]:
    """``clearAccessTokens``: forget cached access tokens (every one when ``keys`` is
    ``None``), never the grant: the next call for them refreshes. A refresh result the
    coordinator keeps for callers that just missed it would hand a dropped token back: it
    is forgotten too, unless it holds the successor of the session's refresh token (then
    the session adopts the successor, and only drops the access tokens)."""
    session: SessionState = yield LoadSession()
    if session.refresh_token is not None:
        yield from _forget_kept(session.refresh_token)
    yield SaveSession(changes.dropped_tokens(keys), session.refresh_token)


def _forget_kept(refresh_token: str) -> Operation[None]:
    flight = grant_key(refresh_token)
    ticket: Ticket = yield Claim(flight)
    if isinstance(ticket, Done):
        kept = changes.decode_refreshed(ticket.result)
        if kept.retires_token:  # the only live token may be in it: keep the grant
            successor = Refreshed(
                kept.refresh_token, kept.id_token, kept.token_key, None, kept.error
            )
            yield SaveSession(changes.refreshed(refresh_token, successor), refresh_token)
            return
        ticket = yield Claim(flight, supersede=True)
    if isinstance(ticket, Lead):  # nothing runs: release the flight, keeping nothing
        yield Publish(flight, ticket, _RELEASED, 0.0)


def organization_token_op(ctx: Context, organizationId: str) -> Operation[str | None]:
    """``getOrganizationToken``: ``None`` when the user must sign in."""
    return value_or_none((yield from access_token_op(ctx, None, organizationId)))


def organization_token_claims_op(ctx: Context, organizationId: str) -> Operation[AccessTokenClaims]:
    """``getOrganizationTokenClaims``: the claims of the organization token."""
    token = yield from organization_token_op(ctx, organizationId)
    return ctx.access_token_claims(required(token))


def user_info_op(ctx: Context) -> Operation[UserInfoResponse]:
    """``fetchUserInfo``, with the opaque access token obtained through the single flight.
    A 401 from userinfo drops that token and tries once more with a new one (never a loop).
    A grant that died on the way is reported as such."""
    for attempt in range(2):
        session: SessionState = yield LoadSession()
        if not session.is_authenticated:
            raise SignInRequiredError("not signed in", code="sign_in_required.not_signed_in")
        token = (yield from access_token_op(ctx)).unwrap()
        outcome = yield from flows.user_info_with_token(ctx, session, token)
        ctx.adopt(outcome.provider)
        error = outcome.error
        if (
            attempt == 0
            and isinstance(error, OAuthError)
            and error.status == 401
            and session.refresh_token is not None
        ):
            yield SaveSession(changes.dropped_token(TokenKey(), token), session.refresh_token)
            continue
        return outcome.unwrap()
    raise AssertionError("unreachable")  # pragma: no cover


# ---- machine to machine -----------------------------------------------------------------


def m2m_token_op(ctx: Context, key: TokenKey) -> Operation[CachedAccessToken]:
    """``LogtoM2MClient.getAccessToken``: the cached token for ``key`` while it is fresh,
    else one client-credentials request shared by every concurrent caller of the app (the
    coordinator's single flight, keyed by app and token key), cached in the client's
    storage. Failures raise (there is no user to sign in)."""
    if key.resource is None and key.organization_id is None:
        raise LogtoUsageError(
            "a machine-to-machine token is for an API resource (resource=, its API identifier "
            "in the Logto Console) or an organization (organizationId=): give one",
            code="usage.m2m_target",
        )
    flight = client_credentials_key(ctx.config.endpoint, ctx.config.appId, key.encode())
    session: SessionState = yield LoadSession()
    cached = _fresh_client_token(ctx, session, key)
    if cached is not None:
        return cached
    ticket = yield Shielded(_claim_client_credentials(ctx, Claim(flight), key))
    if isinstance(ticket, Led):
        result: Refreshed = ticket.result
    else:
        assert not isinstance(ticket, Ended)  # machine-to-machine keys are never ended
        text = (yield AwaitFlight(ticket)) if isinstance(ticket, Follow) else ticket.result
        result = changes.decode_refreshed(text)
    if result.error is not None:
        raise copied(result.error)
    if result.entry is None:  # not a token request's result: another kind of flight's
        raise _interrupted("token request")
    yield SaveSession(changes.cached_token(key, result.entry))
    return result.entry


def _fresh_client_token(
    ctx: Context, session: SessionState, key: TokenKey
) -> CachedAccessToken | None:
    step = ClientCredentialsState(TokenCache.of(session.access_tokens)).token_for(
        key, ctx.runtime.now(), ctx.config.tokenExpiryMargin
    )
    return step if isinstance(step, CachedAccessToken) else None


def _claim_client_credentials(
    ctx: Context, claim: Claim, key: TokenKey
) -> Operation[Led | Follow[Any] | Done | Ended]:
    """Claim the token's flight and, when leading, request it and publish the result to the
    callers waiting for it."""
    ticket: Ticket = yield claim
    if not isinstance(ticket, Lead):
        return ticket
    result = Refreshed(None, None, key, None, _interrupted("token request"))
    closed = False
    try:
        # Looked at again under the lead: a flight that ended between this caller's read
        # and its claim has stored its token already (nothing is kept to say so).
        session: SessionState = yield LoadSession()
        cached = _fresh_client_token(ctx, session, key)
        if cached is not None:
            result = Refreshed(None, None, key, cached, None)
        else:
            outcome = yield from flows.client_credentials_token(ctx, key)
            ctx.adopt(outcome.provider)
            result = Refreshed(None, None, key, outcome.value, outcome.error)
            if outcome.value is not None:  # stored before anyone is told: see above
                yield SaveSession(changes.cached_token(key, outcome.value))
    except GeneratorExit:  # closed by its driver: it can no longer yield anything
        closed = True
        raise
    finally:
        if not closed:
            # Nothing is kept: the token is in the client's storage by the time it matters,
            # and a kept copy would outlive clearAccessTokens.
            yield Publish(claim.key, ticket, changes.encode_result(result), 0.0)
    return Led(result)


def m2m_token_claims_op(ctx: Context, key: TokenKey) -> Operation[AccessTokenClaims]:
    """``LogtoM2MClient.getAccessTokenClaims``."""
    entry = yield from m2m_token_op(ctx, key)
    return ctx.access_token_claims(entry.token)


# ---- device sign-in ---------------------------------------------------------------------

MAX_DEVICE_STEPS = 20_000
"""Effects one wait for a device sign-in may take (polls and sleeps): far more than a code
that lives at most :data:`~logto_core.grants.MAX_DEVICE_LIFETIME` needs; a bound all the
same."""

DEVICE_WAIT_EFFECTS = MAX_DEVICE_STEPS + 8
"""The effect bound to run :func:`wait_device_sign_in_op` with (one effect per step, and a
few to spare): the driver's default bound is for operations of a few flows."""

CANCEL_CHECK_SECONDS = 0.5
"""How often a wait that can be cancelled looks at its cancel flag."""


def start_device_sign_in_op(ctx: Context) -> Operation[DeviceAuthorization]:
    """``startDeviceSignIn``: the device authorization, nothing stored."""
    outcome = yield from flows.start_device_sign_in(ctx)
    ctx.adopt(outcome.provider)
    return outcome.unwrap()


def wait_device_sign_in_op(
    ctx: Context,
    authorization: DeviceAuthorization,
    *,
    timeout: float | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Operation[None]:
    """``waitForDeviceSignIn``: poll on the schedule :func:`logto_core.grants.advance`
    keeps (never sooner than the interval, ``slow_down`` adding to it, never past the
    expiry) until the user approved or refused, then store the grant as a callback does.
    Each poll runs shielded: once it may have reached the provider, a granted answer is
    stored even if the caller went away. A poll that got no answer (``TransportError``) is
    tried again later, the wait doubling with each such failure in a row; the failure is
    raised only when no poll fits before the expiry any more. Gives up with
    ``device.wait_timeout`` after ``timeout`` seconds, or ``device.cancelled`` once
    ``cancelled()`` says so (looked at every :data:`CANCEL_CHECK_SECONDS`); the
    authorization stays usable for another wait."""
    now = ctx.runtime.now()
    deadline = now + timeout if timeout is not None else None
    polling = start_polling(authorization, now)
    failures = 0  # polls in a row that got no answer
    for _ in range(MAX_DEVICE_STEPS):
        step = polling.step
        if isinstance(step, Failed):
            raise copied(step.error)
        if isinstance(step, Granted):
            return
        now = ctx.runtime.now()
        if cancelled is not None and cancelled():
            raise DeviceAuthorizationError(
                "the wait for the device sign-in was cancelled", code="device.cancelled"
            )
        if deadline is not None and now >= deadline:
            raise TransportError(
                "gave up waiting for the device sign-in (timeout); the code stays valid "
                "until it expires: wait again to go on",
                code="device.wait_timeout",
            )
        if not step.due(now):
            until = step.at if deadline is None else min(step.at, deadline)
            if cancelled is not None:
                until = min(until, now + CANCEL_CHECK_SECONDS)
            yield Sleep(until)
            continue
        try:
            polling = yield Shielded(_poll_and_store(ctx, polling))
        except TransportError:
            # No answer at all: the code is most likely still pending, so poll again later,
            # backing off, while it lives (section 3.5).
            failures += 1
            polling = backed_off(polling, ctx.runtime.now(), failures)
            if polling.done:
                raise
        else:
            failures = 0
    raise FlowLimitError("a device sign-in wait exceeded its bound", code="flow_limit")


def _poll_and_store(ctx: Context, polling: DevicePolling) -> Operation[DevicePolling]:
    session: SessionState = yield LoadSession()
    outcome = yield from flows.poll_device(ctx, session, polling)
    ctx.adopt(outcome.provider)
    after = outcome.unwrap()
    if isinstance(after.outcome, Granted):
        saved: Saved = yield SaveSession(changes.device_signed_in(outcome.session))
        yield from _replaced(saved)
    return after


# ---- token exchange ---------------------------------------------------------------------


def exchange_token_op(
    ctx: Context,
    subjectToken: str,
    subjectTokenType: TokenType | str,
    *,
    resource: str | None = None,
    organizationId: str | None = None,
    scopes: Sequence[str] | None = None,
    actorToken: str | None = None,
) -> Operation[ExchangedToken]:
    """``exchangeToken``: one token exchange request; nothing stored (the token is the
    subject's, not the session's), nothing shared (an impersonation token is single-use)."""
    outcome = yield from flows.exchange_token(
        ctx,
        subjectToken,
        subjectTokenType,
        resource=resource,
        organization_id=organizationId,
        scopes=scopes,
        actor_token=actorToken,
    )
    ctx.adopt(outcome.provider)
    return outcome.unwrap()


# ---- protecting an API ------------------------------------------------------------------


def verify_access_token_op(
    ctx: Context, token: str, policy: AccessTokenPolicy, requirements: Requirements
) -> Operation[AccessTokenClaims]:
    """``LogtoResourceServer.verify``: the token's claims once it is valid for ``policy``'s
    API and allows the request (``requirements``); an :class:`AccessTokenError` otherwise.
    Costs no request while discovery and the key set are cached; nothing stored."""
    outcome = yield from flows.verify_access_token(ctx, token, policy, requirements)
    ctx.adopt(outcome.provider)
    return outcome.unwrap()


def verify_authorization_op(
    ctx: Context, authorization: str | None, policy: AccessTokenPolicy, requirements: Requirements
) -> Operation[AccessTokenClaims]:
    """``LogtoResourceServer.verifyAuthorization``: :func:`verify_access_token_op` with the
    token of an ``Authorization`` header value (:func:`~logto_core.protocol.bearer.bearer_token`:
    ``None`` or another scheme is 401 without ``error``, a malformed one 400)."""
    try:
        token = bearer_token(authorization)
    except AccessTokenError as error:
        policy.in_realm(error)
        raise
    return (yield from verify_access_token_op(ctx, token, policy, requirements))


# ---- back-channel logout ----------------------------------------------------------------


def backchannel_logout_op(
    ctx: Context, method: str, headers: Headers, body: Body
) -> Operation[BackchannelLogoutResult]:
    """``handleBackchannelLogout``: answer a back-channel logout request (Back-Channel Logout
    1.0 sections 2.5 to 2.8). Parse it, verify its logout token
    (:func:`~logto_core.flows.verify_logout_token`: keys fetched, and refetched once per
    cooldown for an unknown ``kid``, as for ID tokens), record its ``jti`` (a replay is
    refused), end the sessions it names, and answer 200; any failure is answered 400 (the
    result carries the error), never raised. When the sessions could not be ended the
    ``jti`` is forgotten again, so that the provider's retry of the same token is not taken
    for a replay."""
    try:
        token = parse_logout_request(method, headers, body)
        outcome = yield from flows.verify_logout_token(ctx, token)
        ctx.adopt(outcome.provider)
        logout = outcome.unwrap()
        if not (yield RecordLogout(logout.replay_key, logout.until)):
            raise replayed_error()
        try:
            ended: int = yield EndSessions(logout)
        except LogtoError:
            yield ForgetLogout(logout.replay_key)
            raise
    except LogtoError as error:
        log.logout_refused(error)
        return logout_refused(error)
    log.logout_received(ended)
    return logout_accepted(logout, ended)


__all__ = [
    "CANCEL_CHECK_SECONDS",
    "DEVICE_WAIT_EFFECTS",
    "MAX_DEVICE_STEPS",
    "MAX_ROUNDS",
    "AwaitFlight",
    "Claim",
    "Effect",
    "EndFlight",
    "EndSessions",
    "ForgetLogout",
    "LoadSession",
    "Operation",
    "Publish",
    "RecordLogout",
    "SaveSession",
    "Saved",
    "Shielded",
    "Sleep",
    "access_token_claims_op",
    "access_token_op",
    "backchannel_logout_op",
    "callback_op",
    "clear_tokens_op",
    "copied",
    "exchange_token_op",
    "get_access_token_op",
    "m2m_token_claims_op",
    "m2m_token_op",
    "organization_token_claims_op",
    "organization_token_op",
    "required",
    "revoke_op",
    "sign_in_op",
    "sign_out_op",
    "start_device_sign_in_op",
    "user_info_op",
    "verify_access_token_op",
    "verify_authorization_op",
    "wait_device_sign_in_op",
]
