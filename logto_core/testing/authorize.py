"""The authorization endpoint, driven by tests: validate a request and answer as Logto would.

There is no browser or sign-in page: :meth:`TestProvider.approve` plays a user who signs in and
consents, :meth:`TestProvider.deny` one who refuses. Both check the request first, because a
client that builds a bad authorization URL must see the same error Logto would send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from logto_core.enums import OAuthScope, Prompt, UserInfoScope
from logto_core.errors import OAuthError
from logto_core.urls import is_absolute_uri

from ._wire import Rejection, parse_pairs, single_params
from .claims import USER_SCOPES
from .directory import ORGANIZATIONS_RESOURCE, Client, Directory

_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_PROMPTS = frozenset(prompt.value for prompt in Prompt)


class UnredirectableRequestError(OAuthError):
    """The authorization request cannot be answered with a redirect.

    Raised by :meth:`TestProvider.approve` and :meth:`TestProvider.deny` when the client is
    unknown or the ``redirect_uri`` is missing or not registered: the provider must not send the
    browser anywhere then (Logto shows an error page). ``error`` is ``invalid_request``,
    ``invalid_client`` or ``invalid_redirect_uri``.
    """


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated authorization request."""

    client: Client
    redirect_uri: str
    state: str | None
    scopes: frozenset[str]
    resources: frozenset[str]
    nonce: str | None
    code_challenge: str | None
    prompts: frozenset[str]
    max_age: int | None


def _unredirectable(error: str, description: str) -> UnredirectableRequestError:
    return UnredirectableRequestError(error, error_description=description)


def parse_request(url: str, *, authorization_endpoint: str) -> tuple[dict[str, str], list[str]]:
    """Single-valued parameters and the list of ``resource`` values of an authorization URL."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if base != authorization_endpoint:
        raise _unredirectable("invalid_request", "not this provider's authorization endpoint")
    pairs = parse_pairs(parts.query)
    try:
        params = single_params(pairs, repeatable=frozenset({"resource"}))
    except Rejection as rejection:
        raise _unredirectable(rejection.error, rejection.description) from None
    resources = [value for name, value in pairs if name == "resource"]
    return params, resources


def resolve_redirect(params: dict[str, str], directory: Directory) -> tuple[Client, str]:
    """The client and redirect URI, checked before anything may be redirected."""
    client_id = params.get("client_id")
    if client_id is None:
        raise _unredirectable("invalid_request", "missing required parameter 'client_id'")
    client = directory.clients.get(client_id)
    if client is None:
        raise _unredirectable("invalid_client", "client is invalid")
    redirect_uri = params.get("redirect_uri")
    if redirect_uri is None:
        raise _unredirectable("invalid_request", "missing required parameter 'redirect_uri'")
    if redirect_uri not in client.redirect_uris:
        raise _unredirectable(
            "invalid_redirect_uri",
            "redirect_uri did not match any of the client's registered redirect_uris",
        )
    return client, redirect_uri


def _check_response_type(params: dict[str, str]) -> None:
    response_type = params.get("response_type")
    if response_type is None:
        raise Rejection("invalid_request", "missing required parameter 'response_type'")
    if response_type != "code":
        raise Rejection("unsupported_response_type", "unsupported response_type requested")


def _check_pkce(params: dict[str, str], client: Client) -> str | None:
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise Rejection("invalid_request", "code_challenge_method sent without code_challenge")
        if not client.confidential:
            raise Rejection(
                "invalid_request",
                "Authorization Server policy requires PKCE to be used for this request",
            )
        return None
    if method != "S256":
        raise Rejection("invalid_request", "code_challenge_method must be S256")
    if not _PKCE_CHALLENGE.match(challenge):
        raise Rejection(
            "invalid_request",
            "code_challenge must be a string with a minimum length of 43 characters",
        )
    return challenge


def _check_prompts(params: dict[str, str]) -> frozenset[str]:
    prompts = frozenset(params.get("prompt", "").split())
    unknown = prompts - _PROMPTS
    if unknown:
        raise Rejection("invalid_request", f"unsupported prompt value requested: {sorted(unknown)}")
    if Prompt.none.value in prompts and len(prompts) > 1:
        raise Rejection("invalid_request", "prompt none must only be used alone")
    return prompts


def _check_max_age(params: dict[str, str]) -> int | None:
    raw = params.get("max_age")
    if raw is None:
        return None
    if not raw.isdigit():
        raise Rejection("invalid_request", "invalid max_age parameter value")
    return int(raw)


def check_resources(values: list[str], directory: Directory) -> frozenset[str]:
    """The requested resources, each an absolute URI that is registered (or the reserved
    organizations resource); ``invalid_target`` otherwise."""
    for value in values:
        if not is_absolute_uri(value):
            raise Rejection("invalid_target", "resource indicator must be an absolute URI")
        if value != ORGANIZATIONS_RESOURCE and value not in directory.resources:
            raise Rejection("invalid_target", "resource indicator is missing, or unknown")
    return frozenset(values)


def granted_scopes(
    requested: set[str],
    *,
    resources: frozenset[str],
    directory: Directory,
    offline: bool,
) -> frozenset[str]:
    """Scopes kept in a grant; unknown scopes are dropped, as Logto does. ``offline_access``
    is kept only when ``offline`` says the grant may have a refresh token."""
    known = set(USER_SCOPES)
    for indicator in resources:
        if indicator == ORGANIZATIONS_RESOURCE:
            known |= directory.organization_scopes()
        else:
            known |= directory.resources[indicator].scopes
    if offline:
        known.add(OAuthScope.offline_access.value)
    return frozenset(requested & known)


def validate(
    params: dict[str, str],
    resources: list[str],
    client: Client,
    redirect_uri: str,
    directory: Directory,
) -> AuthorizationRequest:
    """Check the redirectable parts of the request (the caller already resolved the client)."""
    _check_response_type(params)
    requested = set(params.get("scope", "").split())
    if UserInfoScope.openid.value not in requested:
        raise Rejection("invalid_request", "openid scope must be requested for this request")
    code_challenge = _check_pkce(params, client)
    prompts = _check_prompts(params)
    max_age = _check_max_age(params)
    resource_set = check_resources(resources, directory)
    offline = Prompt.consent.value in prompts or client.always_issue_refresh_token
    scopes = granted_scopes(requested, resources=resource_set, directory=directory, offline=offline)
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        scopes=scopes,
        resources=resource_set,
        nonce=params.get("nonce"),
        code_challenge=code_challenge,
        prompts=prompts,
        max_age=max_age,
    )


def redirect_with(redirect_uri: str, values: dict[str, str | None]) -> str:
    """``redirect_uri`` with ``values`` added to its query (``None`` values skipped)."""
    query = urlencode([(key, value) for key, value in values.items() if value is not None])
    if not query:
        return redirect_uri
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{separator}{query}"
