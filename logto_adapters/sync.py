"""The blocking Logto client, over ``requests``.

Drop-in for the tutorial with ``from logto_adapters.sync import LogtoClient, LogtoConfig``;
every method is a plain call (no ``await``)::

    client = LogtoClient(LogtoConfig(endpoint=..., appId=..., appSecret=...), storage=...)
    url = client.signIn(redirectUri="https://your-app.com/callback")
    client.handleSignInCallback(request.url)
    client.getIdTokenClaims()

What every method does is written once, in :mod:`logto_core.operations`; this module only
performs their effects: the ``requests`` transport, the storage reads and writes (saves of
one session one at a time, saves of different sessions never waiting for each other), waits
on the single flight that makes concurrent callers of one grant share one refresh, and
shielded work (a refresh or a code exchange runs on a worker thread, with the caller's
context, so that an exception raised in the caller by a signal handler stops its waiting, not
the work: the rotated refresh token is stored and shared all the same).

Thread-safety: one client may serve many threads (and users, with a per-request storage such
as a Flask session). Discovery and keys are shared by all its users. A process forked after
the client was used starts clean in the child (no shared connections or in-flight state).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import requests

from logto_core import operations as ops
from logto_core.client import LogtoCore
from logto_core.driver import run_operation
from logto_core.errors import LogtoError
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import DEFAULT_RUNTIME, Runtime
from logto_core.session import SessionState
from logto_core.sleep import Sleep
from logto_core.transport_policy import Timeout

from . import public
from ._background import BackgroundJobs
from ._common import (
    DEFAULT_REVOCATION_TIMEOUT,
    DEFAULT_TIMEOUT,
    ForkSafe,
    RevocationMode,
    SharedGets,
    checked_revocation_timeout,
    exchange_policy,
    ordered,
    refresh_wait_bound,
    sleep,
    storage_failed,
    track_forks,
    waits_for_revocation,
)
from ._flights import Flights, KeyedLocks
from .public import *  # noqa: F403 - the tutorial's names, re-exported
from .public import (
    AccessTokenClaims,
    DirectSignIn,
    FirstScreen,
    Identifier,
    IdTokenClaims,
    InteractionMode,
    LogtoConfig,
    MemoryStorage,
    Prompt,
    Storage,
    UserInfoResponse,
)
from .transport_requests import RequestsTransport

T = TypeVar("T")

Transport = Callable[[HttpRequest], HttpResponse]


SHIELD_THREADS = 32
"""Worker threads for shielded work (refreshes and code exchanges in progress)."""

MAX_REKEYS = 4
"""Times a save follows the session to another grant before it writes under the last one."""


class LogtoClient(ForkSafe):
    """The tutorial's ``LogtoClient``, blocking.

    :param config: the :class:`LogtoConfig`.
    :param storage: where the user's session lives; a private :class:`MemoryStorage` when
        omitted (fine for scripts, not for a web app serving several users).
    :param session: a ``requests.Session`` to send with (connection pools, proxies, TLS);
        by default the client creates its own and reuses it for every request.
    :param timeout: ``(connect, total)`` seconds per provider exchange, retries included.
    :param runtime: clock and entropy (tests pass fakes).
    :param max_retries: extra attempts for discovery and JWKS fetches on connection errors,
        5xx and 429 (nothing else is ever retried).
    :param transport: replaces the ``requests`` transport altogether (any callable sending an
        :class:`~logto_core.http.HttpRequest` and raising
        :class:`~logto_core.errors.TransportError` on failure).
    :param refresh_wait: longest wait, in seconds, for a concurrent refresh of the same session
        (defaults to four total timeouts).
    :param revocation: how :meth:`signOut` revokes the refresh token (RFC 7009; the local
        sign-out is done first and never depends on it). ``"inline"`` (the default): before
        returning, waiting at most ``revocation_timeout`` seconds; a revocation that takes
        longer goes on in the background. ``"background"``: ``signOut`` returns at once. In
        both modes revocations still running are waited for by :meth:`close` (and leaving a
        ``with`` block) and at interpreter exit, at most ``revocation_timeout`` seconds in
        all, so a script that exits right after ``signOut`` loses nothing.
    :param revocation_timeout: seconds, see ``revocation`` (default 3).
    """

    def __init__(
        self,
        config: LogtoConfig,
        storage: Storage | None = None,
        *,
        session: requests.Session | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        runtime: Runtime | None = None,
        max_retries: int = 2,
        transport: Transport | None = None,
        refresh_wait: float | None = None,
        revocation: RevocationMode = "inline",
        revocation_timeout: float = DEFAULT_REVOCATION_TIMEOUT,
    ) -> None:
        self._inline_revocation = waits_for_revocation(revocation)
        self._revocation_timeout = checked_revocation_timeout(revocation_timeout)
        self.runtime = runtime if runtime is not None else DEFAULT_RUNTIME
        self.core = LogtoCore(
            config, runtime=self.runtime, exchange=exchange_policy(timeout, max_retries)
        )
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self._requests: RequestsTransport | None = None
        if transport is None:
            self._requests = RequestsTransport(
                session,
                timeout=timeout,
            )
            transport = self._requests
        self._send: Transport = transport
        self._refresh_wait = refresh_wait_bound(timeout, refresh_wait)
        self._revocations = BackgroundJobs("logto-revocation", exit_wait=self._revocation_timeout)
        self._start_process_state()
        track_forks(self)

    def _start_process_state(self) -> None:
        """What only makes sense inside one process: in-flight tables, locks, worker threads."""
        self._flights = Flights(self.runtime, lease=self._refresh_wait)
        self._gets = SharedGets()
        self._locks = KeyedLocks()
        self._shield_pool = concurrent.futures.ThreadPoolExecutor(
            SHIELD_THREADS, thread_name_prefix="logto-shield"
        )
        self._in_shield = threading.local()

    def after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's connections and in-flight state (they belong
        to the parent's threads and sockets), keep the provider knowledge."""
        self._start_process_state()
        self._revocations.after_fork_in_child()
        reset = getattr(self._send, "after_fork_in_child", None)
        if callable(reset):
            reset()

    @property
    def config(self) -> LogtoConfig:
        return self.core.config

    def close(self) -> None:
        """Wait for the revocations still running (at most ``revocation_timeout`` seconds),
        then close the ``requests.Session`` the client created (not one passed in)."""
        self._revocations.wait(self._revocation_timeout)
        self._revocations.shutdown()
        self._shield_pool.shutdown(wait=False)
        if self._requests is not None:
            self._requests.close()

    def waitForRevocations(self, timeout: float | None = None) -> bool:
        """Wait for the refresh-token revocations that sign-outs started in the background, at
        most ``timeout`` seconds (``None``: until they end; each is bounded by the transport
        timeouts). True when none is left running. Mainly for tests and graceful shutdown
        (:meth:`close` and interpreter exit wait too, bounded)."""
        return self._revocations.wait(timeout)

    def __enter__(self) -> LogtoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- sign-in and sign-out -----------------------------------------------------------

    def signIn(
        self,
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
    ) -> str:
        """Start a sign-in: remember the attempt in the storage and return the URL to redirect
        the browser to."""
        return self._do(
            ops.sign_in_op(
                self.core,
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
        )

    def handleSignInCallback(self, callbackUri: object) -> None:
        """Check the authorization response in ``callbackUri`` (the URL the browser came back
        to: a string, or any object whose ``str()`` is it), exchange the code and store the
        tokens. Raises a :class:`LogtoError` subclass on any failure."""
        self._do(ops.callback_op(self.core, callbackUri))

    def signOut(self, postLogoutRedirectUri: str | None = None) -> str:
        """Forget the session's tokens and return the provider's end-session URL to redirect
        the browser to. The refresh token is then revoked (best effort: a failure is logged as
        a warning, never raised), waiting at most ``revocation_timeout`` seconds (see
        ``revocation``)."""
        result = self._do(ops.sign_out_op(self.core, postLogoutRedirectUri))
        if result.to_revoke is not None:
            job = self._revocations.start(partial(self._revoke, result.to_revoke))
            if job is not None and self._inline_revocation:
                concurrent.futures.wait([job], self._revocation_timeout)
        return result.url

    # ---- local getters (storage only, no network) ---------------------------------------

    def isAuthenticated(self) -> bool:
        """True when the storage holds an ID token."""
        return self._load().is_authenticated

    def getIdToken(self) -> str | None:
        return self._load().id_token

    def getIdTokenClaims(self) -> IdTokenClaims:
        """Claims of the stored ID token; :class:`SignInRequiredError` when there is none."""
        return self.core.id_token_claims(self._load())

    def getRefreshToken(self) -> str | None:
        return self._load().refresh_token

    # ---- network ------------------------------------------------------------------------

    def fetchUserInfo(self) -> UserInfoResponse:
        """The userinfo endpoint's answer for the signed-in user."""
        return self._do(ops.user_info_op(self.core))

    def getAccessToken(self, resource: str = "") -> str | None:
        """An access token for ``resource`` ("" for the userinfo token), refreshed when
        needed; ``None`` when the user must sign in. Other failures raise."""
        # A page view's common case, answered without starting an operation.
        cached = self.core.cached_access_token(self._load(), resource)
        return (
            cached if cached is not None else self._do(ops.get_access_token_op(self.core, resource))
        )

    def getAccessTokenClaims(self, resource: str = "") -> AccessTokenClaims:
        """Claims of :meth:`getAccessToken`'s token (decoded, not verified)."""
        return self._do(ops.access_token_claims_op(self.core, resource))

    def getOrganizationToken(self, organizationId: str) -> str | None:
        """An organization token; ``None`` when the user must sign in. Needs
        ``UserInfoScope.organizations`` in the configured scopes."""
        cached = self.core.cached_access_token(self._load(), None, organizationId)
        if cached is not None:
            return cached
        return self._do(ops.organization_token_op(self.core, organizationId))

    def getOrganizationTokenClaims(self, organizationId: str) -> AccessTokenClaims:
        return self._do(ops.organization_token_claims_op(self.core, organizationId))

    # PEP 8 spellings.
    sign_in = signIn
    handle_sign_in_callback = handleSignInCallback
    sign_out = signOut
    wait_for_revocations = waitForRevocations
    is_authenticated = isAuthenticated
    get_id_token = getIdToken
    get_id_token_claims = getIdTokenClaims
    get_refresh_token = getRefreshToken
    fetch_user_info = fetchUserInfo
    get_access_token = getAccessToken
    get_access_token_claims = getAccessTokenClaims
    get_organization_token = getOrganizationToken
    get_organization_token_claims = getOrganizationTokenClaims

    # ---- the effect interpreter ---------------------------------------------------------

    def _do(self, operation: ops.Operation[T]) -> T:
        return run_operation(operation, self._perform)

    def _revoke(self, refresh_token: str) -> LogtoError | None:
        """A background revocation: only requests, no storage (the caller's request, and
        its storage, may be gone by now)."""
        return run_operation(ops.revoke_op(self.core, refresh_token), self._perform)

    def _perform(self, effect: ops.Effect) -> object:
        if isinstance(effect, HttpRequest):
            return self._gets.send(effect, self._send, self._refresh_wait)
        if isinstance(effect, Sleep):
            return sleep(effect, self.runtime)
        if isinstance(effect, ops.LoadSession):
            return self._load()
        if isinstance(effect, ops.SaveSession):
            return self._save(effect)
        if isinstance(effect, ops.Claim):
            return self._flights.claim(effect)
        if isinstance(effect, ops.AwaitFlight):
            return self._wait(effect)
        if isinstance(effect, ops.Publish):
            self._flights.publish(effect)
            return None
        if isinstance(effect, ops.EndFlight):
            self._flights.end(effect)
            return None
        return self._shield(effect)

    def _get(self, key: str) -> Any:
        try:
            return self.storage.get(key)
        except Exception as error:
            raise storage_failed("read", key, error) from error

    def _load(self) -> SessionState:
        return SessionState.load(self._get)

    def _save(self, effect: ops.SaveSession) -> ops.Saved:
        """Apply the change to the stored session under that session's lock (its grant):
        saves of one session never interleave, saves of others never wait. When the stored
        grant is not the one the operation read, the save follows it to its lock."""
        key = KeyedLocks.key_of(effect.grant)
        for attempt in range(MAX_REKEYS + 1):
            with self._locks.held(key):
                before = self._load()
                stored = KeyedLocks.key_of(before.refresh_token)
                if stored != key and attempt < MAX_REKEYS:
                    key = stored
                    continue
                after = effect.change(before)
                if after is None or after == before:
                    return ops.Saved(before, before)
                self._write(after)
                return ops.Saved(before, after)
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, session: SessionState) -> None:
        for key, value in ordered(session.writes()):
            try:
                if value is None:
                    self.storage.delete(key)
                else:
                    self.storage.set(key, value)
            except Exception as error:
                raise storage_failed("write", key, error) from error

    def _wait(self, effect: ops.AwaitFlight) -> object:
        handle: concurrent.futures.Future[Any] = effect.follow.handle
        try:
            return handle.result(timeout=self._refresh_wait)
        except concurrent.futures.TimeoutError:
            pass
        raise effect.timeout_error()

    def _shield(self, effect: ops.Shielded) -> object:
        """Run the work on a worker thread, with the caller's context (a Flask session is a
        context variable), and wait for it here: whatever interrupts this thread stops the
        waiting, not the work."""
        if getattr(self._in_shield, "active", False):
            return run_operation(effect.operation, self._perform)
        context = contextvars.copy_context()
        try:
            job = self._shield_pool.submit(context.run, self._run_shielded, effect.operation)
        except RuntimeError:  # closed, or out of threads: the work cannot be shielded here
            return run_operation(effect.operation, self._perform)
        return job.result()

    def _run_shielded(self, operation: ops.Operation[T]) -> T:
        self._in_shield.active = True
        try:
            return run_operation(operation, self._perform)
        finally:
            self._in_shield.active = False


__all__ = ["LogtoClient"]
__all__ += public.__all__
