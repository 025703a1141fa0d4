"""The multi-step flows, written once as generators: the SDK's state machine.

Each public function here returns a :data:`Flow`: a generator that yields the
:class:`~logto_core.http.HttpRequest` it needs sent, receives the matching
:class:`~logto_core.http.HttpResponse` through ``send()``, and finally returns an
:class:`Outcome` holding the result, the new :class:`SessionState` and the new
:class:`ProviderState`. A driver (:mod:`logto_core.driver`) runs it over any transport; a
transport failure is thrown into the generator as a :class:`TransportError` at the ``yield``
where it happened. Every request goes through :func:`logto_core.exchange.exchange` with the
flow's :class:`~logto_core.transport_policy.ExchangePolicy`, so a flow also yields the
:class:`~logto_core.sleep.Sleep` before each retry (answered with ``None``) and each attempt
carries its timeout. A flow makes at most :data:`MAX_REQUESTS_PER_FLOW` exchanges.

Every transition of the session lives in this module:

===========================  ==============================================================
flow                         session transitions
===========================  ==============================================================
``sign_in``                  + pending attempt (oldest dropped beyond the limit)
``handle_sign_in_callback``  - the matched attempt (always, once the state matched);
                             + ID token, refresh token, opaque access token on success
``get_access_token``         cache hit: none; refresh: + access token, rotated refresh token;
                             ``invalid_grant``: every token cleared (sign-in required)
``fetch_user_info``          as ``get_access_token``; a 401 drops that token and refreshes once
``sign_out_local``           every token cleared; pending attempts kept; never a request
``revoke_refresh_token``     none (it touches no session): RFC 7009, best effort
``client_credentials_token`` none (no user): a machine-to-machine token, checked and cached
                             by the operation
``start_device_sign_in``     none: the device authorization (RFC 8628)
``poll_device``              granted: + ID token, refresh token, opaque access token, as
                             after a callback; otherwise none
``exchange_token``           none (the token is another user's): RFC 8693
``verify_access_token``      none (the token is an API's caller's): RFC 9068, at the API
``verify_logout_token``      none (the sessions it names are the adapter's to end):
                             Back-Channel Logout 1.0 section 2.6
===========================  ==============================================================

Errors that leave the session unchanged (transport faults, invalid provider data) are
returned in the outcome with the state as it was when they happened, so provider knowledge
learnt on the way (discovery, keys, the JWKS refetch cooldown) is still kept.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from . import hints, log, reporting
from .config import LogtoConfig
from .enums import ORGANIZATION_URN_PREFIX
from .errors import (
    FlowLimitError,
    LogtoError,
    LogtoUsageError,
    OAuthError,
    ProviderError,
    ScopeNotGrantedError,
    SignInRequiredError,
)
from .exchange import exchange
from .grants import (
    DeviceAuthorization,
    DevicePolling,
    Failed,
    Granted,
    NeedToken,
    build_device_authorization,
    build_device_token_request,
    cache_entry,
    on_poll_response,
    parse_device_authorization_response,
)
from .http import HttpRequest, HttpResponse
from .jose.jwt import decode_id_token_claims
from .jose.keys import (
    NEED_KEYS,
    KeySet,
    NeedKeys,
    build_jwks_request,
    parse_jwks_response,
    retry_unknown_key,
)
from .models import (
    AccessTokenClaims,
    IdTokenClaims,
    OidcProviderMetadata,
    TokenResponse,
    UserInfoResponse,
)
from .protocol.access_token import (
    AccessTokenPolicy,
    Requirements,
    authorize,
    check_access_token,
    precheck,
)
from .protocol.access_token import unknown_key_error as access_token_unknown_key
from .protocol.bearer import AccessTokenError
from .protocol.callback import parse_callback
from .protocol.discovery import build_discovery_request, parse_discovery_response
from .protocol.end_session import build_end_session_url
from .protocol.id_token import (
    allowed_algorithms,
    check_id_token,
    check_refreshed_id_token,
    unknown_key_error,
)
from .protocol.logout_token import LogoutToken, check_logout_token
from .protocol.logout_token import unknown_key_error as logout_unknown_key_error
from .protocol.revocation import build_revocation_request, parse_revocation_response
from .protocol.signin_url import SignInOptions, build_sign_in
from .protocol.token_endpoint import build_code_exchange, build_refresh, parse_token_response
from .protocol.token_exchange import (
    ExchangedToken,
    TokenType,
    build_token_exchange,
    parse_token_exchange_response,
)
from .protocol.userinfo import build_userinfo_request, parse_userinfo_response
from .provider_state import ProviderCache, ProviderState, newest
from .runtime import Runtime
from .session import CachedAccessToken, SessionState, TokenKey
from .sleep import Sleep
from .transport_policy import DIRECT, ExchangePolicy

if TYPE_CHECKING:  # the context holds flows' inputs; it imports nothing of theirs at run time
    from .context import Context

T = TypeVar("T")
U = TypeVar("U")

Flow = Generator[HttpRequest | Sleep, HttpResponse | None, "Outcome[T]"]
Step = Generator[HttpRequest | Sleep, HttpResponse | None, T]

MAX_REQUESTS_PER_FLOW = 12
"""Exchanges one flow may make (retries of an exchange are its own, bounded by its policy): no
flow needs more than a handful; a bound makes a runaway loop impossible."""


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    """What a flow ends with. Persist ``session`` and ``provider`` first, then call
    :meth:`unwrap` to get the value or raise the error."""

    value: T | None
    session: SessionState
    provider: ProviderState
    error: LogtoError | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class LocalSignOut:
    """The local half of a sign-out: the end-session URL, and the refresh token the session
    held, still to revoke (``None`` when there is none, or when it was already dealt with).
    The token is kept out of ``repr``."""

    url: str
    to_revoke: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class _Run:
    """Scratch state of one flow run: the latest session and provider values."""

    config: LogtoConfig
    runtime: Runtime
    session: SessionState
    provider: ProviderState
    fetched_keys: bool = field(default=False)
    cache: ProviderCache | None = None
    """The client's shared provider cache, when the flow was given one: looked at again
    before any fetch, and told about every fetch as soon as it is made."""
    policy: ExchangePolicy = DIRECT
    """Retries and deadline of each of the flow's exchanges."""

    def send(self, request: HttpRequest) -> Step[HttpResponse]:
        """Exchange ``request`` with the provider, retries included."""
        return exchange(request, self.policy, runtime=self.runtime)

    def refresh_provider(self) -> None:
        """Catch up with what concurrent flows fetched since this one started."""
        if self.cache is not None:
            self.provider = newest(self.provider, self.cache.state)

    def publish_provider(self) -> None:
        if self.cache is not None:
            self.cache.merge(self.provider)

    def finish(self, value: U) -> Outcome[U]:
        return Outcome(value, self.session, self.provider)

    def fail(self, error: LogtoError) -> Outcome[U]:
        return Outcome(None, self.session, self.provider, error)


def _new_run(ctx: Context, session: SessionState) -> _Run:
    return _Run(
        ctx.config, ctx.runtime, session, ctx.cache.state, cache=ctx.cache, policy=ctx.exchange
    )


def _guarded(run: _Run, body: Step[T]) -> Flow[T]:
    """Run a flow body; an SDK error becomes the outcome's error with the state as it is.

    The body is driven by hand (``yield from`` without the sugar) so that every request it
    makes is seen: each error leaving the flow, raised or returned in the value, is scrubbed
    of the secrets those requests carried and given its likely fix
    (:mod:`logto_core.reporting`) before anyone can show or log it.

    It also bounds the flow, in production as in tests: at most :data:`MAX_REQUESTS_PER_FLOW`
    exchanges (first attempts), and at most as many effects as that many exchanges can make
    under the flow's policy (each ``1 + max_retries`` sends and ``max_retries`` waits). A
    flow past either bound is closed and ends with a :class:`FlowLimitError`."""
    sent: list[HttpRequest] = []
    retries = run.policy.retry.max_retries
    max_effects = MAX_REQUESTS_PER_FLOW * (1 + 2 * retries)
    exchanges = effects = 0
    try:
        effect = next(body)
        while True:
            effects += 1
            if isinstance(effect, HttpRequest):
                sent.append(effect)
                exchanges += effect.attempt == 0
            if exchanges > MAX_REQUESTS_PER_FLOW or effects > max_effects:
                body.close()
                raise FlowLimitError(
                    f"a flow exceeded {MAX_REQUESTS_PER_FLOW} requests", code="flow_limit"
                )
            try:
                result = yield effect
            except GeneratorExit:
                body.close()
                raise
            except BaseException as thrown:  # a transport failure, or a cancellation
                effect = body.throw(thrown)
            else:
                effect = body.send(result)
    except StopIteration as stop:
        value: T = stop.value
    except LogtoError as error:
        return run.fail(reporting.leaving_flow(error, run.config, sent))
    return run.finish(reporting.leaving_flow_value(value, run.config, sent))


# ---- shared steps -----------------------------------------------------------------------


def _metadata(run: _Run) -> Step[OidcProviderMetadata]:
    now = run.runtime.now()
    metadata = run.provider.fresh_metadata(run.config, now)
    if metadata is None:
        run.refresh_provider()
        metadata = run.provider.fresh_metadata(run.config, now)
    if metadata is None:
        response = yield from run.send(build_discovery_request(run.config))
        metadata = parse_discovery_response(response, run.config)
        run.provider = run.provider.with_metadata(metadata, now)
        run.publish_provider()
    return metadata


def _fetch_keys(run: _Run, metadata: OidcProviderMetadata, *, forced: bool) -> Step[KeySet]:
    now = run.runtime.now()
    response = yield from run.send(build_jwks_request(metadata))
    keys = parse_jwks_response(response, now=now)
    run.provider = run.provider.with_keys(keys, forced_at=now if forced else None)
    run.fetched_keys = True
    run.publish_provider()
    return keys


def _verified_id_token(
    run: _Run,
    metadata: OidcProviderMetadata,
    token: str,
    *,
    expected_nonce: str | None,
    access_token: str | None,
    nonce_unknown: bool = False,
) -> Step[IdTokenClaims]:
    """Verify an ID token, fetching the keys if needed (:func:`_verified_with_keys`)."""
    now = run.runtime.now()
    algorithms = allowed_algorithms(
        run.config.idTokenAlgorithms, metadata.id_token_signing_alg_values_supported
    )

    def check(key_set: KeySet) -> IdTokenClaims | NeedKeys:
        return check_id_token(
            token,
            keys=key_set,
            issuer=metadata.issuer,
            client_id=run.config.appId,
            now=now,
            clock_tolerance=run.config.clockTolerance,
            algorithms=algorithms,
            expected_nonce=expected_nonce,
            access_token=access_token,
            nonce_unknown=nonce_unknown,
        )

    return (yield from _verified_with_keys(run, metadata, check, unknown_key_error, "ID token"))


def _verified_with_keys(
    run: _Run,
    metadata: OidcProviderMetadata,
    check: Callable[[KeySet], T | NeedKeys],
    unknown_key: Callable[[], LogtoError],
    what: str,
) -> Step[T]:
    """Run ``check`` (a token's verification through the JWT chain) with the provider's key
    set, fetching it when none is fresh. When the token names a key the set lacks
    (``NEED_KEYS``), the keys decide what may be tried (:func:`retry_unknown_key`: a set a
    concurrent flow fetched meanwhile, at most one refetch per cooldown); this only does it,
    and raises ``unknown_key()`` when the key is still unknown after that."""
    now = run.runtime.now()
    keys = run.provider.fresh_keys(run.config, now)
    if keys is None:
        run.refresh_provider()
        keys = run.provider.fresh_keys(run.config, now)
    if keys is None:
        keys = yield from _fetch_keys(run, metadata, forced=False)
    result = check(keys)
    if result is NEED_KEYS:
        run.refresh_provider()  # a concurrent flow may have fetched the rotated set meanwhile
        retry = retry_unknown_key(
            run.provider, run.config, now, tried=keys, fetched=run.fetched_keys
        )
        if retry.newer is not None:
            result = check(retry.newer)
        if result is NEED_KEYS and retry.refetch:
            log.keys_refetched(what)
            result = check((yield from _fetch_keys(run, metadata, forced=True)))
    if result is NEED_KEYS:
        raise unknown_key()
    return result


# ---- sign-in ----------------------------------------------------------------------------


def sign_in(ctx: Context, session: SessionState, options: SignInOptions) -> Flow[str]:
    """Start a sign-in: returns the authorization URL and remembers the attempt."""
    run = _new_run(ctx, session)
    return _guarded(run, _sign_in(run, options))


def _sign_in(run: _Run, options: SignInOptions) -> Step[str]:
    metadata = yield from _metadata(run)
    url, attempt = build_sign_in(run.config, metadata.authorization_endpoint, options, run.runtime)
    run.session = run.session.with_pending(attempt, run.runtime.now())
    return url


def handle_sign_in_callback(
    ctx: Context, session: SessionState, callback_url: str
) -> Flow[IdTokenClaims]:
    """Validate the authorization response, exchange the code, verify the ID token."""
    run = _new_run(ctx, session)
    return _guarded(run, _handle_callback(run, callback_url))


def _handle_callback(run: _Run, callback_url: str) -> Step[IdTokenClaims]:
    metadata = yield from _metadata(run)
    result = parse_callback(
        callback_url,
        pending=run.session.pending,
        issuer=metadata.issuer,
        iss_required=metadata.authorization_response_iss_parameter_supported,
        now=run.runtime.now(),
    )
    # The attempt is single-use from here on, whatever happens next.
    run.session = run.session.without_pending(result.attempt.state)
    if result.error is not None:
        raise result.error
    assert result.code is not None
    response = yield from run.send(
        build_code_exchange(run.config, metadata, code=result.code, attempt=result.attempt)
    )
    token = parse_token_response(response)
    if token.id_token is None:
        raise ProviderError(
            "the code exchange returned no id_token although openid was requested",
            code="token.id_token_missing",
        )
    claims = yield from _verified_id_token(
        run,
        metadata,
        token.id_token,
        expected_nonce=result.attempt.nonce,
        access_token=token.access_token,
    )
    now = run.runtime.now()
    run.session = run.session.signed_in(
        id_token=token.id_token,
        refresh_token=token.refresh_token,
        access_token=(TokenKey(), cache_entry(token, now)),
    )
    return claims


# ---- tokens -----------------------------------------------------------------------------


def get_access_token(ctx: Context, session: SessionState, key: TokenKey) -> Flow[str]:
    """A fresh access token for (resource, organization, scopes): from the cache, or by
    refreshing. ``invalid_grant`` clears the session and gives :class:`SignInRequiredError`."""
    run = _new_run(ctx, session)
    return _guarded(run, _access_token(run, key))


def check_target(config: LogtoConfig, key: TokenKey) -> None:
    """Refuse, before any request, a token the provider would refuse: a resource that was
    not requested at sign-in (Logto rotates the refresh token and then answers
    ``invalid_target``, which costs a public client its grant), an organization token without
    the organizations scope, an organization URN given as a resource."""
    if key.organization_id and not config.wants_organizations():
        raise LogtoUsageError(
            "organization tokens need UserInfoScope.organizations in LogtoConfig.scopes",
            code="usage.organizations_scope",
        )
    if key.resource is None:
        return
    if key.resource.startswith(ORGANIZATION_URN_PREFIX):
        raise LogtoUsageError(
            "use organization_id (getOrganizationToken) for organization tokens",
            code="usage.organization_resource",
        )
    if key.resource not in config.sign_in_resources():
        raise LogtoUsageError(
            f"the resource {key.resource[:200]!r} was not requested at sign-in: add it to "
            "LogtoConfig.resources (and sign in again) to get tokens for it",
            code="usage.resource_not_configured",
        )


def _access_token(run: _Run, key: TokenKey, *, force: bool = False) -> Step[str]:
    now = run.runtime.now()
    cached = run.session.access_tokens.get(key)
    if not force and cached is not None and cached.is_fresh(now, run.config.tokenExpiryMargin):
        return cached.token
    check_target(run.config, key)
    refresh_token = run.session.refresh_token
    if refresh_token is None:
        raise SignInRequiredError(
            "no refresh token: the user is not signed in, or the sign-in did not grant "
            "offline_access (prompt=consent)",
            code="sign_in_required.no_refresh_token",
        )
    metadata = yield from _metadata(run)
    response = yield from run.send(
        build_refresh(
            run.config,
            metadata,
            refresh_token=refresh_token,
            resource=key.resource,
            organization_id=key.organization_id,
            scopes=key.scopes,
        )
    )
    try:
        token = parse_token_response(response)
    except OAuthError as error:
        if error.error == "invalid_grant":
            log.grant_dead()
            run.session = run.session.cleared()
            raise SignInRequiredError(
                "the provider says the grant is no longer valid; sign in again",
                code="sign_in_required.invalid_grant",
            ) from error
        raise
    # Store a rotated refresh token before anything else can fail: the consumed one must never
    # be presented again (Logto revokes the whole grant on reuse after 3 seconds).
    if token.refresh_token is not None:
        run.session = run.session.with_refresh_token(token.refresh_token)
    if token.id_token is not None:
        yield from _accept_refreshed_id_token(run, metadata, token)
    entry = cache_entry(token, run.runtime.now())
    run.session = run.session.with_access_token(key, entry)
    return entry.token


def _accept_refreshed_id_token(
    run: _Run, metadata: OidcProviderMetadata, token: TokenResponse
) -> Step[None]:
    """OIDC Core 12.2: a refreshed ID token is verified like the first one and must name the
    same user, issuer and audience. Logto repeats the original nonce in it."""
    assert token.id_token is not None
    previous = _stored_claims(run.session)
    # Without a stored ID token (a session written by another SDK, or corrupt) the original
    # nonce is unknown: the token is verified in every other respect, and stored, so that the
    # session recovers instead of refreshing and failing on every call.
    claims = yield from _verified_id_token(
        run,
        metadata,
        token.id_token,
        expected_nonce=previous.nonce if previous is not None else None,
        access_token=token.access_token,
        nonce_unknown=previous is None,
    )
    if previous is not None:
        check_refreshed_id_token(previous, claims)
    run.session = run.session.with_id_token(token.id_token)


def _stored_claims(session: SessionState) -> IdTokenClaims | None:
    if session.id_token is None:
        return None
    return decode_id_token_claims(session.id_token)


# ---- userinfo ---------------------------------------------------------------------------


def fetch_user_info(ctx: Context, session: SessionState) -> Flow[UserInfoResponse]:
    """Userinfo with the opaque access token; on 401 ``invalid_token`` refresh once and retry
    once (never a loop)."""
    run = _new_run(ctx, session)
    return _guarded(run, _user_info(run))


def _user_info(run: _Run) -> Step[UserInfoResponse]:
    claims = _signed_in_claims(run.session)
    metadata = yield from _metadata(run)
    key = TokenKey()
    for attempt in range(2):
        access_token = yield from _access_token(run, key, force=attempt > 0)
        try:
            return (yield from _user_info_request(run, metadata, access_token, claims.sub))
        except OAuthError as error:
            if attempt > 0 or error.status != 401 or run.session.refresh_token is None:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def user_info_with_token(
    ctx: Context, session: SessionState, access_token: str
) -> Flow[UserInfoResponse]:
    """Userinfo with a given opaque access token, no refresh: a 401 is the caller's to handle
    (the client operation refreshes through the single flight and retries once)."""
    run = _new_run(ctx, session)
    return _guarded(run, _user_info_once(run, access_token))


def _user_info_once(run: _Run, access_token: str) -> Step[UserInfoResponse]:
    claims = _signed_in_claims(run.session)
    metadata = yield from _metadata(run)
    return (yield from _user_info_request(run, metadata, access_token, claims.sub))


def _signed_in_claims(session: SessionState) -> IdTokenClaims:
    claims = _stored_claims(session)
    if claims is None:
        raise SignInRequiredError("not signed in", code="sign_in_required.not_signed_in")
    return claims


def _user_info_request(
    run: _Run, metadata: OidcProviderMetadata, access_token: str, sub: str
) -> Step[UserInfoResponse]:
    response = yield from run.send(build_userinfo_request(metadata, access_token))
    return parse_userinfo_response(response, expected_sub=sub)


# ---- sign-out ---------------------------------------------------------------------------


def sign_out_local(
    ctx: Context, session: SessionState, post_logout_redirect_uri: str | None = None
) -> Outcome[LocalSignOut]:
    """The part of a sign-out that never waits on the provider: build the end-session URL
    (cached metadata if any, else Logto's fixed path), clear the session's tokens, and hand
    back the refresh token to revoke. No request: this is a plain function, not a flow. An
    invalid ``post_logout_redirect_uri`` fails with the session untouched."""
    run = _new_run(ctx, session)
    try:
        value = _sign_out_locally(run, post_logout_redirect_uri)
    except LogtoError as error:
        return run.fail(error)
    return run.finish(value)


def _sign_out_locally(run: _Run, post_logout_redirect_uri: str | None) -> LocalSignOut:
    url = build_end_session_url(
        run.config,
        run.provider.metadata,
        post_logout_redirect_uri=post_logout_redirect_uri,
        id_token_hint=run.session.id_token,
    )
    to_revoke = run.session.refresh_token
    run.session = run.session.cleared()
    return LocalSignOut(url=url, to_revoke=to_revoke)


def revoke_refresh_token(ctx: Context, refresh_token: str) -> Flow[LogtoError | None]:
    """Revoke ``refresh_token`` (RFC 7009): discovery when the metadata is not fresh, then the
    revocation request (none when the provider advertises no revocation endpoint). Best
    effort: the outcome's value is the failure, or ``None``; it never carries an error. It
    belongs to no session (the outcome's session is empty and must not be stored): it may run
    after the sign-out that handed the token over has finished."""
    run = _new_run(ctx, SessionState())
    return _guarded(run, _revoke(run, refresh_token))


def _revoke(run: _Run, refresh_token: str) -> Step[LogtoError | None]:
    try:
        metadata = yield from _metadata(run)
        if metadata.revocation_endpoint is not None:
            response = yield from run.send(
                build_revocation_request(run.config, metadata, refresh_token)
            )
            parse_revocation_response(response)
    except LogtoError as error:
        return error
    return None


# ---- machine to machine (client credentials) --------------------------------------------


def client_credentials_token(ctx: Context, key: TokenKey) -> Flow[CachedAccessToken]:
    """A machine-to-machine token for ``key`` (RFC 6749 section 4.4), as a cache entry: the
    operation caches it. Scopes asked for and not granted fail with
    :class:`ScopeNotGrantedError`; Logto's refusals are :class:`OAuthError` with a hint."""
    run = _new_run(ctx, SessionState())
    return _guarded(run, _client_credentials(run, key))


def _client_credentials(run: _Run, key: TokenKey) -> Step[CachedAccessToken]:
    metadata = yield from _metadata(run)
    response = yield from run.send(NeedToken(key).request(run.config, metadata))
    try:
        token = parse_token_response(response)
    except OAuthError as error:
        _hinted(error, hints.client_credentials(error.error))
        raise
    entry = cache_entry(token, run.runtime.now())
    check_granted(key, entry)
    return entry


def check_granted(key: TokenKey, entry: CachedAccessToken) -> None:
    """Refuse a token that lacks scopes ``key`` asked for: Logto leaves out the scopes the
    app's roles do not grant, and an API would then answer 403 with no word of why. A token
    whose response named no scope has the scopes asked for (RFC 6749 section 5.1)."""
    if not key.scopes or entry.scope is None:
        return
    missing = sorted(set(key.scopes) - set(entry.scope.split()))
    if missing:
        shown = " ".join(missing)
        raise ScopeNotGrantedError(
            f"the token lacks the scopes {shown[:200]!r}: Logto grants an app only the "
            "permissions of its roles; assign it a role with them in the Logto Console",
            missing=shown,
        )


def _hinted(error: OAuthError, hint: str | None) -> OAuthError:
    if hint is not None and error.hint is None:
        error.add_hint(hint)
    return error


# ---- device sign-in (RFC 8628) ----------------------------------------------------------


def start_device_sign_in(ctx: Context) -> Flow[DeviceAuthorization]:
    """The device authorization for the configured scopes and resources (section 3.1)."""
    run = _new_run(ctx, SessionState())
    return _guarded(run, _device_authorization(run))


def _device_authorization(run: _Run) -> Step[DeviceAuthorization]:
    metadata = yield from _metadata(run)
    response = yield from run.send(build_device_authorization(run.config, metadata))
    try:
        return parse_device_authorization_response(response, run.config, run.runtime.now())
    except OAuthError as error:
        _hinted(error, hints.device_authorization(error.error))
        raise


def poll_device(ctx: Context, session: SessionState, polling: DevicePolling) -> Flow[DevicePolling]:
    """One poll of the token endpoint (section 3.4) and the polling state after it (the
    schedule is :func:`logto_core.grants.advance`'s). Granted: the ID token is verified as
    after a code exchange (there is no nonce in this grant) and the session is signed in
    with the new grant; a failure to verify fails the flow, and so does the end of the
    polling without a grant (the ``Failed`` error). Call it when ``polling.step`` is a due
    :class:`~logto_core.grants.Poll`."""
    run = _new_run(ctx, session)
    return _guarded(run, _poll_device(run, polling))


def _poll_device(run: _Run, polling: DevicePolling) -> Step[DevicePolling]:
    metadata = yield from _metadata(run)
    response = yield from run.send(
        build_device_token_request(run.config, metadata, polling.authorization)
    )
    polling = on_poll_response(polling, run.runtime.now(), response)
    outcome = polling.outcome
    if isinstance(outcome, Failed):
        # Raised here, so that it leaves the flow scrubbed of this run's secrets (the
        # device code an echoing provider would quote), its cause included.
        if isinstance(outcome.error, OAuthError):
            _hinted(outcome.error, hints.device_authorization(outcome.error.error))
        raise outcome.error
    if not isinstance(outcome, Granted):
        return polling
    token = outcome.token
    if token.id_token is None:
        raise ProviderError(
            "the device grant returned no id_token although openid was requested",
            code="token.id_token_missing",
        )
    yield from _verified_id_token(
        run, metadata, token.id_token, expected_nonce=None, access_token=token.access_token
    )
    run.session = run.session.signed_in(
        id_token=token.id_token,
        refresh_token=token.refresh_token,
        access_token=(TokenKey(), cache_entry(token, run.runtime.now())),
    )
    return polling


# ---- token exchange (RFC 8693) ----------------------------------------------------------


def exchange_token(
    ctx: Context,
    subject_token: str,
    subject_token_type: TokenType | str,
    *,
    resource: str | None = None,
    organization_id: str | None = None,
    scopes: Sequence[str] | None = None,
    actor_token: str | None = None,
) -> Flow[ExchangedToken]:
    """Exchange a subject token (and an optional actor token) for an access token. It
    touches no session: the token is the subject's."""
    run = _new_run(ctx, SessionState())
    request = _ExchangeRequest(
        subject_token, subject_token_type, resource, organization_id, scopes, actor_token
    )
    return _guarded(run, _exchange(run, request))


@dataclass(frozen=True, slots=True)
class _ExchangeRequest:
    subject_token: str = field(repr=False)
    subject_token_type: TokenType | str
    resource: str | None
    organization_id: str | None
    scopes: Sequence[str] | None
    actor_token: str | None = field(repr=False)


def _exchange(run: _Run, request: _ExchangeRequest) -> Step[ExchangedToken]:
    metadata = yield from _metadata(run)
    response = yield from run.send(
        build_token_exchange(
            run.config,
            metadata,
            subject_token=request.subject_token,
            subject_token_type=request.subject_token_type,
            resource=request.resource,
            organization_id=request.organization_id,
            scopes=request.scopes,
            actor_token=request.actor_token,
        )
    )
    try:
        return parse_token_exchange_response(response, run.runtime.now())
    except OAuthError as error:
        _hinted(error, hints.token_exchange(error.error, error.error_description))
        raise


# ---- protecting an API (RFC 9068) --------------------------------------------------------


def verify_access_token(
    ctx: Context, token: str, policy: AccessTokenPolicy, requirements: Requirements
) -> Flow[AccessTokenClaims]:
    """Verify an access token presented to the API of ``policy`` and check that it allows
    the request (``requirements``). What needs no word of the provider to refuse (garbage, an
    ID token, an unsigned token: :func:`~logto_core.protocol.access_token.precheck`) is
    refused before anything is fetched; then discovery and the key set, each only when the
    cache has none fresh (a token signed with an unknown key refetches the set at most once
    per cooldown). It touches no session. Failures of the token are
    :class:`AccessTokenError` in ``policy``'s realm."""
    run = _new_run(ctx, SessionState())
    return _guarded(run, _verify_access_token(run, token, policy, requirements))


def _verify_access_token(
    run: _Run, token: str, policy: AccessTokenPolicy, requirements: Requirements
) -> Step[AccessTokenClaims]:
    try:
        precheck(token, policy)
        metadata = yield from _metadata(run)
        now = run.runtime.now()
        algorithms = allowed_algorithms(
            policy.algorithms, metadata.id_token_signing_alg_values_supported
        )

        def check(keys: KeySet) -> AccessTokenClaims | NeedKeys:
            return check_access_token(
                token,
                keys=keys,
                issuer=metadata.issuer,
                audience=policy.audience,
                algorithms=algorithms,
                now=now,
                clock_tolerance=run.config.clockTolerance,
            )

        claims = yield from _verified_with_keys(
            run, metadata, check, access_token_unknown_key, "access token"
        )
        authorize(claims, requirements)
    except AccessTokenError as error:
        policy.in_realm(error)
        raise
    return claims


# ---- back-channel logout ----------------------------------------------------------------


def verify_logout_token(ctx: Context, token: str) -> Flow[LogoutToken]:
    """Verify a logout token (Back-Channel Logout 1.0 section 2.6,
    :mod:`logto_core.protocol.logout_token`) with the provider's keys: discovery and the key
    set from the shared cache, fetched when stale, and an unknown ``kid`` refetching the set
    at most once per ``jwksRefetchCooldown`` (:func:`_verified_with_keys`), as for ID
    tokens. It touches no session; the replay check and ending the sessions are the
    operation's."""
    run = _new_run(ctx, SessionState())
    return _guarded(run, _verify_logout(run, token))


def _verify_logout(run: _Run, token: str) -> Step[LogoutToken]:
    metadata = yield from _metadata(run)
    now = run.runtime.now()
    # Section 2.6: the algorithms of ID tokens.
    algorithms = allowed_algorithms(
        run.config.idTokenAlgorithms, metadata.id_token_signing_alg_values_supported
    )

    def check(key_set: KeySet) -> LogoutToken | NeedKeys:
        return check_logout_token(
            token,
            keys=key_set,
            issuer=metadata.issuer,
            client_id=run.config.appId,
            now=now,
            clock_tolerance=run.config.clockTolerance,
            algorithms=algorithms,
        )

    return (
        yield from _verified_with_keys(
            run, metadata, check, logout_unknown_key_error, "logout token"
        )
    )


__all__ = [
    "MAX_REQUESTS_PER_FLOW",
    "Flow",
    "LocalSignOut",
    "Outcome",
    "check_granted",
    "check_target",
    "client_credentials_token",
    "exchange_token",
    "fetch_user_info",
    "get_access_token",
    "handle_sign_in_callback",
    "poll_device",
    "revoke_refresh_token",
    "sign_in",
    "sign_out_local",
    "start_device_sign_in",
    "user_info_with_token",
    "verify_access_token",
    "verify_logout_token",
]
