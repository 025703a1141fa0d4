"""The :class:`TestProvider` facade: setup API, authorization approvals and request routing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from logto_core.enums import Prompt
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import DEFAULT_RUNTIME, Runtime

from . import endpoints, signin_page
from ._wire import (
    MAX_FORM_BYTES,
    Rejection,
    TokenRequest,
    error_response,
    parse_pairs,
    single_params,
)
from .authorize import (
    UnredirectableRequestError,
    parse_request,
    redirect_with,
    resolve_redirect,
    validate,
)
from .clientauth import basic_credentials
from .device import DeviceFlow
from .directory import ClientKind, Directory
from .faults import Fault, FaultQueue
from .grants import GrantStore
from .keys import KeyRing, SigningKey
from .logout import LogoutTokens
from .token_endpoint import TokenEndpoint
from .token_exchange import SUBJECT_TOKEN_TTL, TokenExchange
from .tokens import TokenMinter

_SENSITIVE = frozenset(
    {
        "client_secret",
        "code",
        "code_verifier",
        "device_code",
        "refresh_token",
        "token",
        "access_token",
        "id_token_hint",
        "subject_token",
        "actor_token",
        "client_assertion",
    }
)

# (method, path below the issuer) -> endpoint name.
_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/.well-known/openid-configuration"): "discovery",
    ("GET", "/.well-known/oauth-authorization-server"): "discovery",
    ("GET", "/auth"): "sign_in_page",
    ("POST", "/auth/interaction"): "sign_in_form",
    ("GET", "/jwks"): "jwks",
    ("POST", "/token"): "token",
    ("POST", "/device/auth"): "device_authorization",
    ("GET", "/me"): "userinfo",
    ("POST", "/me"): "userinfo",
    ("POST", "/token/revocation"): "revocation",
    ("POST", "/token/introspection"): "introspection",
    ("GET", "/session/end"): "end_session",
    ("POST", "/session/end"): "end_session",
}
_FORM_ENDPOINTS = frozenset({"token", "revocation", "introspection", "device_authorization"})


@dataclass(frozen=True, slots=True)
class ProviderReply:
    """An answer plus the delay (seconds) a fault asked for; the caller applies the delay."""

    response: HttpResponse
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One request the provider saw (or one approval/denial of an authorization request).

    ``params`` holds the form or query parameters (last value wins); ``client_id`` is the
    client the request named, from HTTP Basic or the parameters. ``repr()`` hides credentials.
    """

    endpoint: str
    method: str
    params: Mapping[str, str] = field(default_factory=dict)
    client_id: str | None = None

    @property
    def grant_type(self) -> str | None:
        """The token request's ``grant_type``, if any."""
        return self.params.get("grant_type")

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k in _SENSITIVE else v) for k, v in self.params.items()}
        return (
            f"LogEntry(endpoint={self.endpoint!r}, method={self.method!r}, params={shown!r}, "
            f"client_id={self.client_id!r})"
        )


def _basic_client_id(request: HttpRequest) -> str | None:
    try:
        credentials = basic_credentials(request)
    except Rejection:
        return None
    return credentials[0] if credentials else None


class TestProvider:
    """An in-memory Logto-compatible OpenID provider for tests.

    It is a pure function from :class:`HttpRequest` to :class:`HttpResponse`: no sockets, no
    wall clock (``clock`` is called whenever the provider needs the time) and no OS randomness
    except for key generation (codes, tokens and ids come from ``runtime``). Register clients,
    users and resources, call :meth:`approve` with the URL your client built, then feed the
    client's requests to :meth:`handle`.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        endpoint: str = "http://127.0.0.1:3001",
        *,
        clock: Callable[[], float],
        runtime: Runtime | None = None,
        signing_alg: str = "ES384",
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.issuer = f"{self.endpoint}/oidc"
        self._clock = clock
        self._runtime = runtime or DEFAULT_RUNTIME
        self._paths = endpoints.Paths(self.issuer)
        self._prefix = urlsplit(self.issuer).path
        self.directory = Directory()
        self.store = GrantStore(self._runtime)
        self.keys = KeyRing(signing_alg, self._runtime)
        self.faults = FaultQueue()
        self.log: list[LogEntry] = []
        self.ended_sessions: list[str] = []
        """``sid`` values of sessions ended at the end-session endpoint."""
        minter = TokenMinter(
            issuer=self.issuer, keys=self.keys, directory=self.directory, store=self.store
        )
        self.devices = DeviceFlow(
            directory=self.directory,
            store=self.store,
            runtime=self._runtime,
            verification_uri=self._paths.url("/device"),
        )
        """Device authorizations; set ``devices.ttl``, ``devices.interval`` or
        ``devices.slow_down`` to change how later ones behave (see :class:`DeviceFlow`)."""
        self.token_exchange = TokenExchange(
            directory=self.directory, store=self.store, minter=minter, runtime=self._runtime
        )
        """Subject tokens and personal access tokens made for token exchange."""
        self._logout_tokens = LogoutTokens(
            issuer=self.issuer,
            keys=self.keys,
            directory=self.directory,
            store=self.store,
            clock=self._clock,
        )
        self._token = TokenEndpoint(
            directory=self.directory,
            store=self.store,
            minter=minter,
            devices=self.devices,
            exchange=self.token_exchange,
        )

    # -- setup ---------------------------------------------------------------------------
    @property
    def authorization_endpoint(self) -> str:
        """Where clients send the browser (``<issuer>/auth``)."""
        return self._paths.authorization

    @property
    def discovery_url(self) -> str:
        """``<issuer>/.well-known/openid-configuration``."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        redirect_uris: list[str] | None = None,
        post_logout_redirect_uris: list[str] | None = None,
        kind: ClientKind,
        always_issue_refresh_token: bool = False,
        device_flow: bool = False,
    ) -> None:
        """Register an application; ``secret`` is required for traditional and m2m apps.
        ``device_flow`` lets it use the device authorization grant (not m2m apps)."""
        self.directory.add_client(
            client_id,
            kind=kind,
            secret=secret,
            redirect_uris=redirect_uris or [],
            post_logout_redirect_uris=post_logout_redirect_uris or [],
            always_issue_refresh_token=always_issue_refresh_token,
            device_flow=device_flow,
        )

    def add_user(self, sub: str, **claims: Any) -> None:
        """Register a user. ``created_at``/``updated_at`` default to the clock, in ms."""
        stamp = int(self._clock() * 1000)
        claims.setdefault("created_at", stamp)
        claims.setdefault("updated_at", stamp)
        self.directory.add_user(sub, claims)

    def add_resource(self, indicator: str, scopes: list[str], access_token_ttl: int = 3600) -> None:
        """Register an API resource and the scopes it defines."""
        self.directory.add_resource(indicator, scopes, access_token_ttl)

    def grant_permissions(self, sub_or_client_id: str, resource: str, scopes: list[str]) -> None:
        """Let a user (through their roles) or an M2M app receive ``scopes`` of ``resource``."""
        self.directory.grant_permissions(sub_or_client_id, resource, scopes)

    def add_organization(self, org_id: str, name: str = "", description: str | None = None) -> None:
        """Register an organization."""
        self.directory.add_organization(org_id, name or org_id, description)

    def add_member(
        self, org_id: str, sub: str, roles: list[str] | None = None, scopes: list[str] | None = None
    ) -> None:
        """Make a user (or M2M app) a member with organization roles and their scopes."""
        self.directory.add_member(org_id, sub, roles or [], scopes or [])

    def grant_organization_resource_permissions(
        self, org_id: str, sub: str, resource: str, scopes: list[str]
    ) -> None:
        """Scopes of ``resource`` a member gets in organization-scoped API tokens."""
        self.directory.grant_organization_resource_permissions(org_id, sub, resource, scopes)

    # -- lifecycle controls --------------------------------------------------------------
    def rotate_signing_key(self, alg: str | None = None, *, keep_previous: bool = True) -> str:
        """Start signing with a new key; the JWKS keeps the previous key unless told not to.
        Returns the new ``kid``."""
        return self.keys.rotate(alg, keep_previous=keep_previous).kid

    @property
    def signing_key(self) -> SigningKey:
        """The current signing key."""
        return self.keys.current

    def revoke_grants(self, sub: str) -> int:
        """Revoke every grant of a user (like signing them out everywhere); returns a count."""
        return self.store.revoke_subject(sub)

    def suspend_user(self, sub: str) -> None:
        """Suspend a user: refreshes answer ``invalid_grant``, userinfo ``invalid_token``."""
        self.directory.user(sub).suspended = True

    def is_refresh_token_active(self, refresh_token: str) -> bool:
        """True when the token would be accepted by a refresh right now."""
        return self.store.is_refresh_active(refresh_token, self._clock())

    # -- back-channel logout: what the provider sends ---------------------------------------
    def logout_token(
        self,
        client_id: str,
        *,
        sid: str | None = None,
        sub: str | None = None,
        expires_in: float | None = None,
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """A logout token as Logto sends to ``client_id``'s back-channel logout URI, naming
        the session ``sid`` (an ID token's ``sid``) and/or the user ``sub``: ``typ:
        logout+jwt``, signed with the current key, ``iss``, ``aud``, ``iat`` (the clock),
        a fresh ``jti``, the back-channel logout ``events``; no ``exp`` unless
        ``expires_in`` is given, never a ``nonce``. ``claims`` / ``header`` change members
        (``None`` removes one), for tokens a receiver must refuse. The provider sends
        nothing itself (it opens no socket): deliver it with
        :func:`logto_core.testing.logout_request`."""
        return self._logout_tokens.token(
            client_id, sid=sid, sub=sub, expires_in=expires_in, claims=claims, header=header
        )

    # -- device flow: the user's side -----------------------------------------------------
    def approve_device(self, user_code: str, user: str) -> None:
        """``user`` entered ``user_code`` (any case, dash optional) and consented: the grant
        gets what the device asked for, ``offline_access`` included when asked. Unknown,
        expired or already decided codes, and suspended users, raise ``LogtoUsageError``."""
        self.devices.approve(user_code, self.directory.user(user), self._clock())

    def deny_device(self, user_code: str) -> None:
        """The user entered ``user_code`` and refused: the device's next poll answers
        ``access_denied``."""
        self.devices.deny(user_code, self._clock())

    # -- token exchange: what the Management API makes -----------------------------------
    def create_subject_token(self, user: str, ttl: float = SUBJECT_TOKEN_TTL) -> str:
        """A single-use subject token for ``user`` (``sub_...``), valid ``ttl`` seconds, as
        ``POST /api/subject-tokens`` makes; exchange it with ``subject_token_type``
        ``urn:ietf:params:oauth:token-type:access_token``."""
        return self.token_exchange.create_subject_token(user, ttl=ttl, now=self._clock())

    def create_personal_access_token(self, user: str, expires_at: float | None = None) -> str:
        """A reusable personal access token of ``user`` (``pat_...``), valid until
        ``expires_at`` (seconds on the provider's clock; ``None``: forever); exchange it with
        ``subject_token_type`` ``urn:logto:token-type:personal_access_token``."""
        return self.token_exchange.create_personal_access_token(user, expires_at=expires_at)

    # -- authorization endpoint ----------------------------------------------------------
    def approve(self, authorization_url: str, user: str) -> str:
        """Sign ``user`` in and consent; return the redirect URL the browser would follow.

        Invalid requests give the error redirect (``error``, ``error_description``, ``state``,
        ``iss``); an unknown client or an unregistered ``redirect_uri`` raises
        :class:`UnredirectableRequestError` instead, since nothing may be redirected then.
        """
        now = self._clock()
        params, resources = self._open_authorization(authorization_url)
        client, redirect_uri = resolve_redirect(params, self.directory)
        state = params.get("state")
        try:
            request = validate(params, resources, client, redirect_uri, self.directory)
            account = self.directory.user(user)
            if account.suspended:
                raise Rejection("access_denied", "user is suspended")
        except Rejection as rejection:
            return self._error_redirect(redirect_uri, rejection.error, rejection.description, state)
        needs_auth_time = Prompt.login.value in request.prompts or request.max_age is not None
        grant = self.store.create_grant(
            client_id=client.client_id,
            sub=account.sub,
            scopes=request.scopes,
            resources=request.resources,
            nonce=request.nonce,
            auth_time=now if needs_auth_time else None,
            now=now,
        )
        code = self.store.issue_code(
            grant, redirect_uri=redirect_uri, code_challenge=request.code_challenge, now=now
        )
        return redirect_with(redirect_uri, {"code": code, "state": state, "iss": self.issuer})

    def deny(
        self,
        authorization_url: str,
        error: str = "access_denied",
        description: str | None = None,
    ) -> str:
        """Answer the authorization request with an error redirect (the user refused)."""
        params, _ = self._open_authorization(authorization_url)
        _, redirect_uri = resolve_redirect(params, self.directory)
        text = description if description is not None else "End-User aborted interaction"
        return self._error_redirect(redirect_uri, error, text, params.get("state"))

    def _open_authorization(self, url: str) -> tuple[dict[str, str], list[str]]:
        params, resources = parse_request(url, authorization_endpoint=self.authorization_endpoint)
        self.log.append(LogEntry("authorization", "GET", params, params.get("client_id")))
        return params, resources

    def _error_redirect(
        self, redirect_uri: str, error: str, description: str, state: str | None
    ) -> str:
        values = {
            "error": error,
            "error_description": description,
            "state": state,
            "iss": self.issuer,
        }
        return redirect_with(redirect_uri, values)

    def _usernames(self) -> list[str]:
        return [str(u.claims.get("username") or u.sub) for u in self.directory.users.values()]

    def _find_user(self, username: str) -> str | None:
        for user in self.directory.users.values():
            if username in (user.sub, user.claims.get("username")):
                return user.sub
        return None

    # -- HTTP ----------------------------------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpResponse:
        """Answer one request (faults applied, any delay dropped)."""
        return self.respond(request).response

    def respond(self, request: HttpRequest) -> ProviderReply:
        """Answer one request and report the delay a fault asked for."""
        name = self._route(request)
        try:
            params, resources = self._read_params(request, name)
        except Rejection as rejection:
            params, resources = {}, []
            early: Rejection | None = rejection
        else:
            early = None
        client_id = params.get("client_id") or _basic_client_id(request)
        self.log.append(LogEntry(name, request.method, params, client_id))
        fault = self.faults.take(name, params.get("grant_type") if name == "token" else None)
        try:
            if early is not None:
                raise early
            response = self._dispatch(name, request, params, resources, fault)
        except Rejection as rejection:
            response = error_response(rejection, issuer=self.issuer)
        if fault is None:
            return ProviderReply(response)
        return ProviderReply(fault.apply(response, request), fault.delay)

    def _route(self, request: HttpRequest) -> str:
        path = urlsplit(request.url).path
        if not path.startswith(self._prefix):
            return "not_found"
        return _ROUTES.get((request.method, path[len(self._prefix) :]), "not_found")

    def _read_params(self, request: HttpRequest, name: str) -> tuple[dict[str, str], list[str]]:
        if request.method == "GET" or name not in _FORM_ENDPOINTS | {"end_session"}:
            pairs = parse_pairs(urlsplit(request.url).query)
        else:
            pairs = self._body_pairs(request)
        params = single_params(pairs, repeatable=frozenset({"resource"}))
        return params, [value for key, value in pairs if key == "resource" and value]

    @staticmethod
    def _body_pairs(request: HttpRequest) -> list[tuple[str, str]]:
        body = request.body or b""
        if len(body) > MAX_FORM_BYTES:
            raise Rejection("invalid_request", "request body too large", status=413)
        content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            return _json_pairs(body)
        try:
            return parse_pairs(body.decode("utf-8"))
        except UnicodeDecodeError:
            raise Rejection("invalid_request", "request body is not valid UTF-8") from None

    def _dispatch(
        self,
        name: str,
        request: HttpRequest,
        params: dict[str, str],
        resources: list[str],
        fault: Fault | None,
    ) -> HttpResponse:
        now = self._clock()
        if name == "discovery":
            return endpoints.discovery(self._paths, self.keys)
        if name == "jwks":
            return endpoints.jwks(self.keys)
        if name == "token":
            return self._token.handle(request, TokenRequest(params, resources), now, fault)
        if name == "device_authorization":
            return self.devices.authorize(request, params, resources, now)
        if name == "userinfo":
            return endpoints.userinfo(
                request, issuer=self.issuer, directory=self.directory, store=self.store, now=now
            )
        if name == "revocation":
            return endpoints.revocation(request, params, directory=self.directory, store=self.store)
        if name == "introspection":
            return endpoints.introspection(
                request,
                params,
                issuer=self.issuer,
                directory=self.directory,
                store=self.store,
                now=now,
            )
        if name == "sign_in_page":
            return signin_page.render(
                query=signin_page.query_of(params, resources),
                client_id=params.get("client_id", ""),
                usernames=self._usernames(),
                action=f"{self.authorization_endpoint}/interaction",
            )
        if name == "sign_in_form":
            return signin_page.submit(
                request.body or b"",
                authorization_endpoint=self.authorization_endpoint,
                find_user=self._find_user,
                approve=self.approve,
                deny=self.deny,
                usernames=self._usernames(),
                action=f"{self.authorization_endpoint}/interaction",
            )
        if name == "end_session":
            return endpoints.end_session(
                params, keys=self.keys, directory=self.directory, ended=self.ended_sessions
            )
        route = f"{request.method} {urlsplit(request.url).path}"
        raise Rejection(
            "invalid_request", f"unrecognized route or not allowed method ({route})", status=404
        )


def _json_pairs(body: bytes) -> list[tuple[str, str]]:
    """Pairs from a JSON object body; arrays give repeated names (``resource``)."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        raise Rejection("invalid_request", "request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Rejection("invalid_request", "request body must be a JSON object")
    pairs: list[tuple[str, str]] = []
    for key, value in payload.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str):
                raise Rejection("invalid_request", f"'{key}' must be a string")
            pairs.append((key, item))
    return pairs


__all__ = [
    "LogEntry",
    "ProviderReply",
    "TestProvider",
    "UnredirectableRequestError",
]
