"""The Logto client, written once: :class:`Logto` (one per app), :class:`LogtoSession` (one
per request) and the tutorial's :class:`LogtoClient` (a session with a ``Logto`` of its own);
:class:`LogtoM2MClient` (machine to machine) and :class:`LogtoResourceServer` (an API that
verifies the access tokens it receives), each built on a ``Logto`` of its own.

Written once, for asyncio, in ``logto_adapters/_async/client.py``; the blocking client in
``logto_adapters/_sync/client.py`` is generated from it by ``scripts/unasync.py``, which
drops ``async``/``await`` and renames the few flavoured names. What differs beyond that lives
in each flavour's hand-written ``kit`` module (transport, shielding, background revocations,
storage access). Blocks between ``# unasync: async only`` and ``# unasync: end`` exist in the
asyncio client only; lines commented out between ``# unasync: else`` and ``# unasync: end``
replace them in the blocking one.

What every method does is written once in :mod:`logto_core.operations`; this module performs
their effects: requests through the transport, storage reads and saves (one at a time per
session, never waiting on another session's), the coordinator's single flight, and shielded
work that the caller's cancellation cannot stop.
"""

from __future__ import annotations

# unasync: async only
import contextvars

# unasync: end
from collections.abc import Sequence
from typing import Protocol, TypeVar

from typing_extensions import Unpack

from logto_core import operations as ops
from logto_core import shared_fetch
from logto_core.config import DEFAULT_ALGORITHMS, LogtoConfig
from logto_core.context import Context
from logto_core.coordination import AsyncCoordinator
from logto_core.enums import InteractionMode
from logto_core.errors import LogtoError, LogtoUsageError, StorageError
from logto_core.exchange import exchange
from logto_core.grants import CancelFlag, DeviceAuthorization
from logto_core.http import HttpRequest, HttpResponse
from logto_core.models import AccessTokenClaims, IdTokenClaims, UserInfoResponse
from logto_core.protocol.access_token import (
    AccessTokenPolicy,
    Requirements,
    resource_server_config,
)
from logto_core.protocol.backchannel import BackchannelLogoutResult, Body, Headers
from logto_core.protocol.logout_token import LogoutToken
from logto_core.protocol.signin_url import SignInParams
from logto_core.protocol.token_exchange import ExchangedToken, TokenType
from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.session import SessionState, TokenKey
from logto_core.sleep import Sleep
from logto_core.storage import MemoryStorage

from .._common import (
    DEFAULT_REVOCATION_TIMEOUT,
    DEFAULT_TIMEOUT,
    MAX_SAVE_ROUNDS,
    ForkSafe,
    checked_revocation_timeout,
    exchange_policy,
    refresh_wait_bound,
    shared_context,
    track_forks,
    waits_for_revocation,
)
from .._locks import KeyedLocks
from .._replay import ReplayGuard
from . import kit
from .kit import AnyStorage, AsyncOptions, Perform

T = TypeVar("T")

MAX_REKEYS = 4
"""Times a save follows the session to another grant before it writes under the last one."""


class SessionLookup(Protocol):
    """Where :meth:`Logto.handleBackchannelLogout` finds the sessions a logout token names:
    a :class:`~logto_adapters.session_registry.SessionRegistry`, or the app's own
    server-side store. ``matching`` answers the storages of the sessions whose ID token was
    issued by ``iss`` with session ``sid`` and for user ``sub`` (those given); a plain call,
    that must not block for long."""

    def matching(self, *, iss: str, sid: str | None, sub: str | None) -> Sequence[AnyStorage]: ...


class Logto(ForkSafe):
    """The object an app keeps for its whole life: configuration, clock, transport and
    connection pools, what is known of the provider (discovery, keys), the coordinator whose
    single flight makes concurrent refreshes of one session share one request, and the
    per-session locks of saves. Make one per app and one :meth:`session` per request; the
    options are :class:`~logto_adapters._async.kit.AsyncOptions`'s.

    Sessions are cheap and share everything above, however many are made, from any number of
    threads (and event loops). A process forked after it was used starts clean in the child.
    """

    def __init__(self, config: LogtoConfig, **options: Unpack[AsyncOptions]) -> None:
        timeout = options.get("timeout", DEFAULT_TIMEOUT)
        self._inline_revocation = waits_for_revocation(options.get("revocation", "inline"))
        self._revocation_timeout = checked_revocation_timeout(
            options.get("revocation_timeout", DEFAULT_REVOCATION_TIMEOUT)
        )
        runtime = options.get("runtime")
        self.runtime = runtime if runtime is not None else DEFAULT_RUNTIME
        # The retries of discovery and JWKS fetches are the shared fetch's (the followers of
        # a fetch share the leader's final outcome, see logto_core.shared_fetch): the flows
        # exchange each request once, within the same deadline. (Other requests are never
        # retried.)
        self._fetches = exchange_policy(timeout, options.get("max_retries", 2))
        # An export to start from, or a store shared with other processes (loaded now,
        # published to after each fetch).
        self.core, self._provider_store = shared_context(
            config,
            options.get("provider_cache"),
            runtime=self.runtime,
            exchange=exchange_policy(timeout, 0),
        )
        self._shared_provider = self.core.provider
        self._sending = kit.Sending(options, timeout, self.runtime)
        self._refresh_wait = refresh_wait_bound(timeout, options.get("refresh_wait"))
        self._sending.wait_bound = self._refresh_wait
        coordinator = options.get("coordinator")
        self._coordinator: AsyncCoordinator = (
            coordinator if coordinator is not None else kit.MemoryCoordinator(self.runtime)
        )
        self._revocations = kit.Revocations(self._revocation_timeout)
        self._replays = ReplayGuard()
        self._start_process_state()
        track_forks(self)

    def _start_process_state(self) -> None:
        """What only makes sense inside one process: locks, shielding."""
        self._locks = KeyedLocks()
        self._shield = kit.Shield()

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's connections and in-flight state (they belong
        to the parent's threads, loops and sockets), keep the provider knowledge."""
        self._start_process_state()
        self._revocations.after_fork_in_child()
        self._sending.after_fork_in_child()
        self._replays = self._replays.after_fork_in_child()

    @property
    def config(self) -> LogtoConfig:
        return self.core.config

    def session(self, storage: AnyStorage | None = None) -> LogtoSession:
        """A client for one user's session, kept in ``storage`` (a private
        :class:`MemoryStorage` when omitted): the tutorial's methods, sharing this object's
        caches, connections and single flight."""
        return LogtoSession(self, storage)

    def exportProviderCache(self) -> str:
        """What is known of the provider (discovery metadata, key sets, their fetch times) as
        JSON, for ``Logto(config, provider_cache=...)`` in a later process. Holds no user
        data and no secret."""
        return self.core.provider.to_json()

    async def aclose(self) -> None:
        """Wait for the revocations still running (at most ``revocation_timeout`` seconds),
        then close the connections this object opened (not a client or session passed in)."""
        await self._revocations.drain()
        self._shield.close()
        await self._sending.close()

    def waitForRevocations(self, timeout: float | None = None) -> bool:
        """Wait for the refresh-token revocations that sign-outs started in the background, at
        most ``timeout`` seconds (``None``: until they end; each is bounded by the transport
        timeouts). True when none is left running. Mainly for tests and graceful shutdown
        (closing and interpreter exit wait too, bounded). It blocks the calling thread."""
        return self._revocations.wait(timeout)

    async def __aenter__(self) -> Logto:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def exchangeToken(
        self,
        subjectToken: str,
        subjectTokenType: TokenType | str,
        *,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
        actorToken: str | None = None,
    ) -> ExchangedToken:
        """Exchange a subject token (RFC 8693) for an access token: an impersonation token
        from the Management API (``TokenType.access_token``) or a personal access token
        (``TokenType.personal_access_token``), for ``resource`` (a JWT), an organization, or
        the OIDC scopes; ``actorToken``, the acting user's opaque access token, puts
        ``act`` in the issued token. Nothing is stored or cached: the token is the subject's.
        Logto's refusals raise :class:`OAuthError` with a hint."""
        operation = ops.exchange_token_op(
            self.core,
            subjectToken,
            subjectTokenType,
            resource=resource,
            organizationId=organizationId,
            scopes=scopes,
            actorToken=actorToken,
        )
        return await self._run_app(operation)

    async def handleBackchannelLogout(
        self,
        method: str,
        headers: Headers,
        body: Body,
        sessions: SessionLookup | None = None,
    ) -> BackchannelLogoutResult:
        """Answer a back-channel logout request (OpenID Connect Back-Channel Logout 1.0),
        given as the web framework hands it over: ``method``, ``headers`` (a mapping or
        pairs) and the raw ``body`` bytes. The logout token is verified (``typ``
        ``logout+jwt``, signature with the provider's keys from this object's cache, issuer,
        audience, times, ``events``, ``sid`` or ``sub``, no ``nonce``; a ``jti`` seen before
        is a replay), then every session ``sessions`` finds for it is signed out as
        :meth:`LogtoSession.signOut` would (tokens forgotten, the grant ended in this
        process, the refresh token revoked in the background: the provider waits for the
        answer). Send back ``status``, ``headers`` and ``body`` of the result: 200, or 400
        with the reason (``error`` holds it, to log; this never raises for a bad request).
        Without ``sessions`` nothing is ended: the result's ``sid`` and ``sub`` say whom."""

        async def perform(effect: ops.Effect) -> object:
            if isinstance(effect, ops.RecordLogout):
                return self._replays.record(effect.key, effect.until, self.runtime.now())
            if isinstance(effect, ops.ForgetLogout):
                self._replays.forget(effect.key)
                return None
            if isinstance(effect, ops.EndSessions):
                return await self._end_sessions(effect.logout, sessions)
            return await self._perform_shared(effect, perform)

        operation = ops.backchannel_logout_op(self.core, method, headers, body)
        try:
            return await kit.run(operation, perform)
        finally:
            await self._share_provider()

    async def _end_sessions(self, logout: LogoutToken, sessions: SessionLookup | None) -> int:
        if sessions is None:
            return 0
        try:
            found = list(sessions.matching(iss=logout.iss, sid=logout.sid, sub=logout.sub))
        except Exception as error:  # the app's store: any failure is a storage failure
            raise StorageError(
                f"the session lookup failed ({type(error).__name__}); nothing was signed out",
                code="storage.end_sessions",
            ) from error
        for storage in found:
            result = await self.session(storage)._do(ops.sign_out_op(self.core))
            if result.to_revoke is not None:
                await self._revoke_later(result.to_revoke, inline=False)
        return len(found)

    export_provider_cache = exportProviderCache
    wait_for_revocations = waitForRevocations
    exchange_token = exchangeToken
    handle_backchannel_logout = handleBackchannelLogout

    # ---- what every session shares ------------------------------------------------------

    async def _perform_shared(self, effect: ops.Effect, perform: Perform) -> object:
        """The effects that do not touch a session's storage; ``perform`` is the session's
        interpreter, for shielded work."""
        if isinstance(effect, HttpRequest):
            return await self._send(effect)
        if isinstance(effect, Sleep):
            return await kit.sleep(effect, self.runtime)
        if isinstance(effect, ops.Claim):
            return await self._coordinator.claim(
                effect.key, lease=self._refresh_wait, supersede=effect.supersede
            )
        if isinstance(effect, ops.AwaitFlight):
            result = await self._coordinator.wait(effect.follow, self._refresh_wait)
            if result is None:
                raise effect.timeout_error()
            return result
        if isinstance(effect, ops.Publish):
            await self._coordinator.publish(
                effect.key, effect.lead, effect.result, keep=effect.keep
            )
            return None
        if isinstance(effect, ops.EndFlight):
            await self._coordinator.end(effect.key)
            return None
        assert isinstance(effect, ops.Shielded), effect
        return await self._shield.run(effect.operation, perform)

    async def _perform_app(self, effect: ops.Effect) -> object:
        """The effects of an operation that touches no session (a token exchange)."""
        return await self._perform_shared(effect, self._perform_app)

    async def _run_app(self, operation: ops.Operation[T]) -> T:
        """Run an operation that touches no session."""
        try:
            return await kit.run(operation, self._perform_app)
        finally:
            await self._share_provider()

    async def _share_provider(self) -> None:
        """Publish what is known of the provider to the shared provider cache, when a flow
        learnt something since the last publication (a discovery or key-set fetch)."""
        store, state = self._provider_store, self.core.provider
        if store is None or state is self._shared_provider:
            return
        self._shared_provider = state
        await kit.publish_provider(store, state.to_json())

    async def _send(self, request: HttpRequest) -> HttpResponse:
        """A flow's exchange. Discovery and JWKS are the core's shared fetch (identical
        ones in flight at once make one exchange, through the coordinator, across threads,
        loops and processes sharing it); other requests go to the transport as they are."""
        if not request.idempotent:
            return await self._sending.send(request)
        fetch = shared_fetch.fetch(request, self._fetches, self.runtime)
        response: HttpResponse = await kit.run(fetch, self._perform_fetch)
        return response

    async def _perform_fetch(self, effect: ops.Effect) -> object:
        """The effects of a shared fetch: its attempts go to the transport as they are."""
        if isinstance(effect, HttpRequest):
            return await self._sending.send(effect)
        if isinstance(effect, shared_fetch.FetchClaim):
            return await self._coordinator.claim(effect.key, lease=effect.lease)
        return await self._perform_shared(effect, self._perform_fetch)

    async def _revoke_later(self, refresh_token: str, *, inline: bool | None = None) -> None:
        """Revoke a signed-out session's refresh token in the background (the caller's
        request, and its storage, may be gone by the time it is sent), waiting for it at most
        the revocation timeout in inline mode (``inline``: this time, whatever the mode)."""
        send = self._sending.background_sender()

        async def attempt(effect: ops.Effect) -> object:
            if isinstance(effect, Sleep):  # a retry's backoff
                return await kit.sleep(effect, self.runtime)
            assert isinstance(effect, HttpRequest), effect  # a revocation sends requests only
            return await send(effect)

        async def perform(effect: ops.Effect) -> object:
            # Its discovery (rare: the sign-in cached the metadata) retries as the client's
            # fetches do, but is not shared: it runs apart from the caller (on a loop of its
            # own in the asyncio client), where a coordinator bound to the caller's loop or
            # thread could not be used.
            if isinstance(effect, HttpRequest) and effect.idempotent:
                return await kit.run(exchange(effect, self._fetches, runtime=self.runtime), attempt)
            return await attempt(effect)

        async def revoke() -> LogtoError | None:
            return await kit.run(ops.revoke_op(self.core, refresh_token), perform)

        wait = self._inline_revocation if inline is None else inline
        await self._revocations.run(revoke, inline=wait, timeout=self._revocation_timeout)


class LogtoSession:
    """The tutorial's methods for one user's session, kept in ``storage``; made by
    :meth:`Logto.session`, one per request. Everything but the storage (connections, caches,
    single flight, locks) belongs to the :class:`Logto` it came from."""

    # unasync: async only
    __slots__ = ("_last", "core", "logto", "storage")
    # unasync: else
    # __slots__ = ("core", "logto", "storage")
    # unasync: end

    def __init__(self, logto: Logto, storage: AnyStorage | None = None) -> None:
        self.logto = logto
        self.core: Context = logto.core
        """The protocol side (configuration, runtime, provider cache): the app's."""
        self.storage: AnyStorage = storage if storage is not None else MemoryStorage()
        # unasync: async only
        self._last: SessionState | None = None
        # unasync: end

    @property
    def config(self) -> LogtoConfig:
        return self.logto.core.config

    @property
    def runtime(self) -> Runtime:
        return self.logto.runtime

    # ---- sign-in and sign-out -----------------------------------------------------------

    async def signIn(
        self,
        redirectUri: str,
        interactionMode: InteractionMode | str | None = None,
        **options: Unpack[SignInParams],
    ) -> str:
        """Start a sign-in: remember the attempt in the storage and return the URL to redirect
        the browser to. The keyword options (``SignInParams``) are ``firstScreen``,
        ``identifiers``, ``directSignIn``, ``loginHint``, ``prompt``, ``organizationId``,
        ``uiLocales``, ``maxAge`` and ``extraParams``; an unknown one is refused."""
        return await self._do(ops.sign_in_op(self.core, redirectUri, interactionMode, **options))

    async def handleSignInCallback(self, callbackUri: object) -> None:
        """Check the authorization response in ``callbackUri`` (the URL the browser came back
        to: a string, or any object whose ``str()`` is it, such as Starlette's ``URL``),
        exchange the code and store the tokens. Raises a :class:`LogtoError` subclass on any
        failure."""
        await self._do(ops.callback_op(self.core, callbackUri))

    async def signOut(self, postLogoutRedirectUri: str | None = None) -> str:
        """Forget the session's tokens and return the provider's end-session URL to redirect
        the browser to. The refresh token is then revoked (best effort: a failure is logged as
        a warning, never raised), waiting at most ``revocation_timeout`` seconds (see the
        ``revocation`` option)."""
        result = await self._do(ops.sign_out_op(self.core, postLogoutRedirectUri))
        if result.to_revoke is not None:
            await self.logto._revoke_later(result.to_revoke)
        return result.url

    # ---- local getters ------------------------------------------------------------------

    def isAuthenticated(self) -> bool:
        """True when the session holds an ID token."""
        return self._local().is_authenticated

    def getIdToken(self) -> str | None:
        return self._local().id_token

    def getIdTokenClaims(self) -> IdTokenClaims:
        """Claims of the stored ID token; :class:`SignInRequiredError` when there is none."""
        return self.core.id_token_claims(self._local())

    def getRefreshToken(self) -> str | None:
        return self._local().refresh_token

    # unasync: async only
    async def isAuthenticatedAsync(self) -> bool:
        """:meth:`isAuthenticated`, read from the storage (any storage)."""
        return (await self._load()).is_authenticated

    async def getIdTokenAsync(self) -> str | None:
        return (await self._load()).id_token

    async def getIdTokenClaimsAsync(self) -> IdTokenClaims:
        return self.core.id_token_claims(await self._load())

    async def getRefreshTokenAsync(self) -> str | None:
        return (await self._load()).refresh_token

    is_authenticated_async = isAuthenticatedAsync
    get_id_token_async = getIdTokenAsync
    get_id_token_claims_async = getIdTokenClaimsAsync
    get_refresh_token_async = getRefreshTokenAsync
    # unasync: end

    # ---- network ------------------------------------------------------------------------

    async def fetchUserInfo(self) -> UserInfoResponse:
        """The userinfo endpoint's answer for the signed-in user."""
        return await self._do(ops.user_info_op(self.core))

    async def getAccessToken(
        self,
        resource: str = "",
        organizationId: str | None = None,
        *,
        forceRefresh: bool = False,
    ) -> str | None:
        """An access token for ``resource`` ("" for the userinfo token), refreshed when
        needed; ``None`` when the user must sign in. Other failures raise. With
        ``organizationId``, the token for the API resource within that organization (Logto
        adds its ``organization_id`` claim; needs ``UserInfoScope.organizations``).
        ``forceRefresh``: do not answer from a token obtained before this call (after a
        change of the user's roles); concurrent callers still share one refresh."""
        # A page view's common case, answered without starting an operation (an async
        # storage must be awaited: it takes the operation's path).
        if not forceRefresh:
            session = kit.read_now(self.storage)
            cached = (
                self.core.cached_access_token(session, resource, organizationId)
                if session
                else None
            )
            if cached is not None:
                return cached
        operation = ops.get_access_token_op(self.core, resource, organizationId, force=forceRefresh)
        return await self._do(operation)

    async def getAccessTokenClaims(
        self,
        resource: str = "",
        organizationId: str | None = None,
        *,
        forceRefresh: bool = False,
    ) -> AccessTokenClaims:
        """Claims of :meth:`getAccessToken`'s token (decoded, not verified)."""
        operation = ops.access_token_claims_op(
            self.core, resource, organizationId, force=forceRefresh
        )
        return await self._do(operation)

    async def clearAccessTokens(
        self, resource: str | None = None, organizationId: str | None = None
    ) -> None:
        """Forget cached access tokens, keeping the grant: every one when called without
        arguments, else only the token of ``resource`` and/or ``organizationId``. The next
        :meth:`getAccessToken` for them refreshes (e.g. after the user's roles changed)."""
        keys = None
        if resource or organizationId:
            keys = [TokenKey.of(resource, organizationId)]
        await self._do(ops.clear_tokens_op(self.core, keys))

    # ---- device sign-in (RFC 8628) ------------------------------------------------------

    async def startDeviceSignIn(self) -> DeviceAuthorization:
        """Start a device sign-in for the configured scopes and resources (an app with no
        browser of its own: a command-line tool, a TV). Show the user
        ``verification_uri`` and ``user_code`` (or ``verification_uri_complete``, which
        carries the code), then call :meth:`waitForDeviceSignIn`. Needs a native app with
        the device flow enabled at Logto. Nothing is stored yet."""
        return await self._do(ops.start_device_sign_in_op(self.core))

    async def waitForDeviceSignIn(
        self,
        started: DeviceAuthorization,
        timeout: float | None = None,
        cancel: CancelFlag | None = None,
    ) -> None:
        """Poll until the user approved the device sign-in ``started`` (at the provider's
        interval, slower when it says ``slow_down``), then store the tokens: the session is
        signed in as after :meth:`handleSignInCallback` (ID token verified). Raises
        :class:`DeviceAuthorizationError` when the user refused (``device.access_denied``)
        or the code expired (``device.expired``); ``device.wait_timeout`` after ``timeout``
        seconds and ``device.cancelled`` once ``cancel.is_set()`` (a ``threading.Event`` or
        an ``asyncio.Event``) leave the code usable for another wait. The asyncio client's
        wait is also cancelled with its task."""
        if not isinstance(started, DeviceAuthorization):
            raise LogtoUsageError(
                "waitForDeviceSignIn takes what startDeviceSignIn returned",
                code="usage.device_sign_in",
            )
        cancelled = cancel.is_set if cancel is not None else None
        operation = ops.wait_device_sign_in_op(
            self.core, started, timeout=timeout, cancelled=cancelled
        )
        try:
            await kit.run(operation, self._perform, max_effects=ops.DEVICE_WAIT_EFFECTS)
        finally:
            await self.logto._share_provider()

    # ---- token exchange (RFC 8693) ------------------------------------------------------

    async def exchangeToken(
        self,
        subjectToken: str,
        subjectTokenType: TokenType | str,
        *,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
        actorToken: str | None = None,
    ) -> ExchangedToken:
        """See :meth:`Logto.exchangeToken`: the session is neither read nor changed."""
        return await self.logto.exchangeToken(
            subjectToken,
            subjectTokenType,
            resource=resource,
            organizationId=organizationId,
            scopes=scopes,
            actorToken=actorToken,
        )

    async def getOrganizationToken(self, organizationId: str) -> str | None:
        """An organization token; ``None`` when the user must sign in. Needs
        ``UserInfoScope.organizations`` in the configured scopes."""
        session = kit.read_now(self.storage)
        cached = self.core.cached_access_token(session, None, organizationId) if session else None
        if cached is not None:
            return cached
        return await self._do(ops.organization_token_op(self.core, organizationId))

    async def getOrganizationTokenClaims(self, organizationId: str) -> AccessTokenClaims:
        return await self._do(ops.organization_token_claims_op(self.core, organizationId))

    # PEP 8 spellings.
    sign_in = signIn
    handle_sign_in_callback = handleSignInCallback
    sign_out = signOut
    is_authenticated = isAuthenticated
    get_id_token = getIdToken
    get_id_token_claims = getIdTokenClaims
    get_refresh_token = getRefreshToken
    fetch_user_info = fetchUserInfo
    get_access_token = getAccessToken
    get_access_token_claims = getAccessTokenClaims
    get_organization_token = getOrganizationToken
    get_organization_token_claims = getOrganizationTokenClaims
    clear_access_tokens = clearAccessTokens
    start_device_sign_in = startDeviceSignIn
    wait_for_device_sign_in = waitForDeviceSignIn
    exchange_token = exchangeToken

    # ---- storage ------------------------------------------------------------------------

    def _local(self) -> SessionState:
        """The session for a plain (non-awaited) getter."""
        session = kit.read_now(self.storage)
        # unasync: async only
        if session is None:  # an async storage: the session this object last saw
            return self._snapshot_or_raise()
        # unasync: end
        return session

    # unasync: async only
    def _remember(self, session: SessionState) -> None:
        self._last = session

    def _remembered(self) -> SessionState | None:
        return self._last

    def _snapshot_or_raise(self) -> SessionState:
        session = self._remembered()
        if session is None:
            raise kit.no_snapshot()
        return session

    # unasync: end

    async def _load(self) -> SessionState:
        session = await kit.read(self.storage)
        # unasync: async only
        self._remember(session)
        # unasync: end
        return session

    async def _save(self, effect: ops.SaveSession) -> ops.Saved:
        """Apply the change to the stored session under that session's lock (its grant):
        saves of one session never interleave, saves of others never wait. When the stored
        grant is not the one the operation read, the save follows it to its lock. The
        change compares on the grant it started from (:mod:`logto_core.changes`): a save
        is a compare-and-set on the refresh token.

        A storage with ``compare_and_set`` (:class:`~logto_core.storage.AtomicStorage`)
        makes the save atomic across processes too: the value read is the one compared, and
        a save that another process overtook reads again and applies its change again."""
        locks = self.logto._locks
        key = KeyedLocks.key_of(effect.grant)
        atomic = kit.is_atomic(self.storage)
        for attempt in range(MAX_REKEYS + 1):
            async with locks.held_async(key):
                stored: str | None = None
                if atomic:
                    stored, before = await kit.read_stored(self.storage)
                    # unasync: async only
                    self._remember(before)
                    # unasync: end
                else:
                    before = await self._load()
                grant = KeyedLocks.key_of(before.refresh_token)
                if grant != key and attempt < MAX_REKEYS:
                    key = grant
                    continue
                if atomic:
                    return await self._compare_and_save(effect, stored, before)
                after = effect.change(before)
                if after is None or after == before:
                    return ops.Saved(before, before)
                await kit.write(self.storage, after)
                # unasync: async only
                self._remember(after)
                # unasync: end
                return ops.Saved(before, after)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _compare_and_save(
        self, effect: ops.SaveSession, stored: str | None, before: SessionState
    ) -> ops.Saved:
        """The atomic save: apply the change to what was read, store it if the storage still
        holds what was read; else read again, at most ``MAX_SAVE_ROUNDS`` times."""
        for _ in range(MAX_SAVE_ROUNDS):
            after = effect.change(before)
            if after is None or after == before:
                return ops.Saved(before, before)
            if await kit.compare_and_set(self.storage, stored, after):
                # unasync: async only
                self._remember(after)
                # unasync: end
                return ops.Saved(before, after)
            stored, before = await kit.read_stored(self.storage)
            # unasync: async only
            self._remember(before)
            # unasync: end
        raise kit.contended()

    # ---- the effect interpreter ---------------------------------------------------------

    async def _do(self, operation: ops.Operation[T]) -> T:
        try:
            return await kit.run(operation, self._perform)
        finally:
            await self.logto._share_provider()

    async def _perform(self, effect: ops.Effect) -> object:
        if isinstance(effect, ops.LoadSession):
            return await self._load()
        if isinstance(effect, ops.SaveSession):
            return await self._save(effect)
        return await self.logto._perform_shared(effect, self._perform)


class LogtoClient(LogtoSession):
    """The tutorial's ``LogtoClient``: a :class:`Logto` of its own and one session over
    ``storage`` (a private :class:`MemoryStorage` when omitted: fine for scripts, not for a
    web app serving several users). The options are those of :class:`Logto`.

    One client may serve many requests with a per-request storage (a framework's session
    proxy). An app that would build a client per request should keep one :class:`Logto`
    instead and call :meth:`Logto.session` per request: clients made per request share no
    connections, no caches and no single flight.
    """

    # unasync: async only
    __slots__ = ("_snapshot",)
    # unasync: else
    # __slots__ = ()
    # unasync: end

    def __init__(
        self,
        config: LogtoConfig,
        storage: AnyStorage | None = None,
        **options: Unpack[AsyncOptions],
    ) -> None:
        super().__init__(Logto(config, **options), storage)
        # unasync: async only
        # With an async storage, the plain getters answer from the session of the current
        # context (each request's), never another request's.
        self._snapshot: contextvars.ContextVar[SessionState] = contextvars.ContextVar(
            f"logto_session_{id(self)}"
        )
        # unasync: end

    # unasync: async only
    def _remember(self, session: SessionState) -> None:
        self._snapshot.set(session)

    def _remembered(self) -> SessionState | None:
        return self._snapshot.get(None)

    # unasync: end

    async def aclose(self) -> None:
        """See :meth:`Logto.aclose`."""
        await self.logto.aclose()

    def waitForRevocations(self, timeout: float | None = None) -> bool:
        """See :meth:`Logto.waitForRevocations`."""
        return self.logto.waitForRevocations(timeout)

    wait_for_revocations = waitForRevocations

    async def __aenter__(self) -> LogtoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class LogtoM2MClient:
    """A machine-to-machine client (client credentials, RFC 6749 section 4.4) for a Logto
    machine-to-machine app: tokens for an API resource, an organization, or a resource
    within an organization, with no user. Each token is cached under (resource,
    organization, scopes) until ``tokenExpiryMargin`` before it expires; concurrent callers
    wanting the same token share one request (the coordinator's single flight). ``storage``
    keeps the cache (a private :class:`MemoryStorage` when omitted: a command-line tool may
    pass one that survives the process); the options are those of :class:`Logto`.
    """

    __slots__ = ("_session", "logto")

    def __init__(
        self,
        config: LogtoConfig,
        storage: AnyStorage | None = None,
        **options: Unpack[AsyncOptions],
    ) -> None:
        if isinstance(config, LogtoConfig) and not config.is_confidential:
            raise LogtoUsageError(
                "LogtoM2MClient needs appSecret: a machine-to-machine app authenticates "
                "with its secret (both are on the application's page in the Logto Console)",
                code="usage.m2m_secret",
            )
        self.logto = Logto(config, **options)
        self._session = LogtoSession(self.logto, storage)

    @property
    def config(self) -> LogtoConfig:
        return self.logto.config

    async def getAccessToken(
        self,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> str:
        """An access token for the API ``resource`` (its API identifier in the Logto
        Console; Logto's Management API on a self-hosted tenant is
        ``https://default.logto.app/api``), for the organization ``organizationId``, or for
        the resource within the organization; ``scopes`` (a subset of the app's
        permissions) when given must all be granted (:class:`ScopeNotGrantedError`
        otherwise). Failures raise: :class:`OAuthError` (with a hint) when Logto refuses."""
        key = TokenKey.of(resource, organizationId, scopes)
        session = kit.read_now(self._session.storage)
        if session is not None:
            cached = self.logto.core.cached_access_token(session, resource, organizationId, scopes)
            if cached is not None:
                return cached
        entry = await self._session._do(ops.m2m_token_op(self.logto.core, key))
        return entry.token

    async def getAccessTokenClaims(
        self,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> AccessTokenClaims:
        """Claims of :meth:`getAccessToken`'s token (decoded, not verified)."""
        key = TokenKey.of(resource, organizationId, scopes)
        return await self._session._do(ops.m2m_token_claims_op(self.logto.core, key))

    async def clearAccessTokens(
        self,
        resource: str | None = None,
        organizationId: str | None = None,
        scopes: Sequence[str] | None = None,
    ) -> None:
        """Forget cached tokens: every one when called without arguments, else the token of
        that (resource, organization, scopes)."""
        keys = None
        if resource or organizationId or scopes:
            keys = [TokenKey.of(resource, organizationId, scopes)]
        await self._session._do(ops.clear_tokens_op(self.logto.core, keys))

    async def aclose(self) -> None:
        """Close the connections this client opened (see :meth:`Logto.aclose`)."""
        await self.logto.aclose()

    async def __aenter__(self) -> LogtoM2MClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    get_access_token = getAccessToken
    get_access_token_claims = getAccessTokenClaims
    clear_access_tokens = clearAccessTokens


class LogtoResourceServer:
    """An API's side of Logto: verifies the access tokens its callers present (RFC 9068)
    and checks that they allow the request (scopes, organization, organization roles).

    ``endpoint`` is the Logto endpoint, as for :class:`LogtoConfig`; ``audience`` the API's
    resource indicator (its API identifier in the Logto Console, or
    ``urn:logto:organization:<id>`` for a user's organization tokens). No app id or secret:
    a resource server fetches the discovery document and the key set (shared by every
    caller, cached, refetched once per ``jwksRefetchCooldown`` when a token names an
    unknown key) and never authenticates to Logto. Its :class:`LogtoConfig` (:attr:`config`)
    holds the audience as its ``appId``, which never leaves the process.

    ``realm`` names the protection space in the challenges of its errors; ``algorithms`` the
    accepted signature algorithms (intersected with the provider's; never ``none`` or
    HMAC); ``clockTolerance``, ``jwksMaxAge``, ``jwksRefetchCooldown``, ``discoveryMaxAge``
    and ``allowInsecureLoopback`` are :class:`LogtoConfig`'s (its defaults when omitted).
    The other options are those of :class:`Logto` (timeouts, retries, transport, runtime,
    provider cache, coordinator).

    A token refused is an :class:`AccessTokenError` with ``status`` (400, 401, 403),
    ``error`` and ``www_authenticate()`` for the answer; trouble reaching Logto is a
    :class:`TransportError` (or ``DiscoveryError``, ``JwksError``): answer 503.
    """

    __slots__ = ("logto", "policy")

    def __init__(
        self,
        endpoint: str,
        audience: str,
        *,
        realm: str | None = None,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        clockTolerance: float | None = None,
        jwksMaxAge: float | None = None,
        jwksRefetchCooldown: float | None = None,
        discoveryMaxAge: float | None = None,
        allowInsecureLoopback: bool | None = None,
        **options: Unpack[AsyncOptions],
    ) -> None:
        self.policy = AccessTokenPolicy.of(audience, algorithms, realm)
        """What the API accepts: its audience, the algorithms, its realm."""
        given = {
            "clockTolerance": clockTolerance,
            "jwksMaxAge": jwksMaxAge,
            "jwksRefetchCooldown": jwksRefetchCooldown,
            "discoveryMaxAge": discoveryMaxAge,
            "allowInsecureLoopback": allowInsecureLoopback,
        }
        settings = {name: value for name, value in given.items() if value is not None}
        self.logto = Logto(resource_server_config(endpoint, self.policy, **settings), **options)
        """The app-lifetime object: transport, provider cache, coordinator."""

    @property
    def config(self) -> LogtoConfig:
        return self.logto.config

    @property
    def audience(self) -> str:
        return self.policy.audience

    async def verify(
        self,
        token: str,
        requiredScopes: Sequence[str] | str | None = None,
        organizationId: str | None = None,
        *,
        organizationRoles: Sequence[str] | str | None = None,
    ) -> AccessTokenClaims:
        """The claims of ``token`` once it is a valid access token for this API and allows
        the request: every one of ``requiredScopes`` granted (a list, or one space-delimited
        string); with ``organizationId``, for that organization (its ``organization_id``
        claim, or an organization token's audience); each of ``organizationRoles`` held in
        that organization (Logto's ``organization_roles`` claim, ``<organization id>:<role>``,
        which a custom token claims script adds; a token without it is refused).

        Raises :class:`AccessTokenError`: 401 ``invalid_token`` (malformed, forged, expired,
        for another API or issuer, an ID token...), 403 ``insufficient_scope`` (a scope, the
        organization or a role missing). No request while the keys are cached."""
        requirements = Requirements.of(requiredScopes, organizationId, organizationRoles)
        operation = ops.verify_access_token_op(self.logto.core, token, self.policy, requirements)
        return await self.logto._run_app(operation)

    async def verifyAuthorization(
        self,
        authorization: str | None,
        requiredScopes: Sequence[str] | str | None = None,
        organizationId: str | None = None,
        *,
        organizationRoles: Sequence[str] | str | None = None,
    ) -> AccessTokenClaims:
        """:meth:`verify` with the raw ``Authorization`` header value of the request
        (``None`` when it has none): ``Bearer <token>``, the scheme in any case. No header or
        another scheme is 401 without ``error`` (RFC 6750 section 3.1); a malformed one 400
        ``invalid_request``."""
        requirements = Requirements.of(requiredScopes, organizationId, organizationRoles)
        operation = ops.verify_authorization_op(
            self.logto.core, authorization, self.policy, requirements
        )
        return await self.logto._run_app(operation)

    def exportProviderCache(self) -> str:
        """See :meth:`Logto.exportProviderCache`: discovery and keys, for a later process."""
        return self.logto.exportProviderCache()

    async def aclose(self) -> None:
        """Close the connections this object opened (see :meth:`Logto.aclose`)."""
        await self.logto.aclose()

    async def __aenter__(self) -> LogtoResourceServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    verify_authorization = verifyAuthorization
    export_provider_cache = exportProviderCache


__all__ = [
    "Logto",
    "LogtoClient",
    "LogtoM2MClient",
    "LogtoResourceServer",
    "LogtoSession",
    "SessionLookup",
]
