"""The sign-in (authorization request) URL and the pending attempt it opens.

:func:`build_sign_in` validates the caller's :class:`SignInOptions`, draws a fresh PKCE
verifier, ``state`` and ``nonce`` from the runtime, and returns the URL to send the browser to
together with the :class:`~logto_core.session.PendingSignIn` the app must keep until the
callback. Every parameter the SDK sets is reserved: ``extra_params`` can never override one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TypedDict
from urllib.parse import parse_qsl, quote, urlencode, urlunsplit

from ..config import LogtoConfig
from ..enums import DirectSignInMethod, FirstScreen, Identifier, InteractionMode, Prompt
from ..errors import LogtoUsageError
from ..runtime import Runtime
from ..session import PendingSignIn
from ..urls import is_acceptable_endpoint, split_url
from .pkce import code_challenge_s256, generate_code_verifier, generate_nonce, generate_state

OPTIONAL_PARAMETERS: tuple[str, ...] = (
    "first_screen",
    "identifier",
    "direct_sign_in",
    "interaction_mode",
    "login_hint",
    "organization_id",
    "ui_locales",
    "max_age",
)
"""Parameters set from named :class:`SignInOptions` fields."""

RESERVED_PARAMETERS: frozenset[str] = frozenset(
    {
        # Always set by the SDK.
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "resource",
        "prompt",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        # Would change where or how the response arrives, or replace every parameter at once
        # (a request object), which the callback checks could then not rely on.
        "response_mode",
        "request",
        "request_uri",
        # Credentials never belong in a URL the browser sees and logs.
        "client_secret",
        "code_verifier",
        "client_assertion",
        "client_assertion_type",
        *OPTIONAL_PARAMETERS,
    }
)
"""Parameter names ``extra_params`` may not set (compared case-insensitively)."""


@dataclass(frozen=True, slots=True)
class DirectSignIn:
    """Skip Logto's sign-in page and go straight to a social or enterprise SSO connector."""

    method: DirectSignInMethod | str
    """``social`` or ``sso``."""
    target: str
    """The social connector target (``google``) or the SSO connector id."""


class SignInParams(TypedDict, total=False):
    """The keyword options of ``signIn``, declared once: both clients and the operation take
    them as ``**Unpack[SignInParams]``, and :meth:`SignInOptions.of` turns them into the one
    value the flow reads."""

    firstScreen: FirstScreen | str | None
    identifiers: Sequence[Identifier | str] | None
    directSignIn: DirectSignIn | str | None
    loginHint: str | None
    prompt: str | Sequence[Prompt | str] | None
    organizationId: str | None
    uiLocales: str | None
    maxAge: int | None
    extraParams: Mapping[str, str] | None


_PARAM_FIELDS: dict[str, str] = {
    "firstScreen": "first_screen",
    "identifiers": "identifiers",
    "directSignIn": "direct_sign_in",
    "loginHint": "login_hint",
    "prompt": "prompt",
    "organizationId": "organization_id",
    "uiLocales": "ui_locales",
    "maxAge": "max_age",
    "extraParams": "extra_params",
}
"""Each public option and the :class:`SignInOptions` field it fills."""


@dataclass(frozen=True, slots=True)
class SignInOptions:
    """What a single sign-in asks of Logto besides the configured client, scopes, resources."""

    redirect_uri: str
    """Where Logto sends the browser back: an absolute http(s) URL without fragment, registered
    for the application."""
    interaction_mode: InteractionMode | str | None = None
    """Deprecated Logto parameter (``signIn``/``signUp``); ignored when ``first_screen`` is set."""
    first_screen: FirstScreen | str | None = None
    """The first screen Logto shows."""
    identifiers: Sequence[Identifier | str] | None = None
    """Identifiers offered on the identifier screens (sent space-joined as ``identifier``)."""
    direct_sign_in: str | DirectSignIn | None = None
    """``"social:<target>"``, ``"sso:<connector id>"`` or a :class:`DirectSignIn`."""
    login_hint: str | None = None
    """Pre-fills the identifier (an email, a phone number or a username)."""
    prompt: str | Sequence[Prompt | str] | None = None
    """Overrides ``LogtoConfig.prompt`` for this sign-in."""
    organization_id: str | None = None
    """Shows that organization's sign-in experience."""
    ui_locales: str | None = None
    """Space-separated BCP 47 language tags, most preferred first."""
    max_age: int | None = None
    """Seconds since the last authentication after which the user must sign in again."""
    extra_params: Mapping[str, str] | None = None
    """Further parameters (such as ``one_time_token``); never one of
    :data:`RESERVED_PARAMETERS`."""

    @classmethod
    def of(
        cls,
        redirect_uri: str,
        interaction_mode: InteractionMode | str | None,
        params: Mapping[str, object],
    ) -> SignInOptions:
        """The options of one ``signIn(redirectUri, interactionMode, **params)`` call; an
        unknown keyword (a typo such as ``loginhint``) is refused, not ignored."""
        if not params:  # the common case: nothing to check or rename
            return cls(redirect_uri, interaction_mode)
        unknown = sorted(name for name in params if name not in _PARAM_FIELDS)
        if unknown:
            raise LogtoUsageError(
                f"unknown signIn option {str(unknown[0])[:40]!r}; the options are "
                + ", ".join(_PARAM_FIELDS),
                code="usage.sign_in_option",
            )
        fields = {_PARAM_FIELDS[name]: value for name, value in params.items()}
        return cls(redirect_uri, interaction_mode, **fields)  # type: ignore[arg-type]


def build_sign_in(
    config: LogtoConfig,
    authorization_endpoint: str,
    options: SignInOptions,
    runtime: Runtime,
) -> tuple[str, PendingSignIn]:
    """The authorization URL for a new sign-in attempt, and the attempt to remember.

    Raises :class:`LogtoUsageError` for invalid options: a redirect URI that is not an absolute
    http(s) URL without fragment, an unknown enum value, a malformed ``direct_sign_in``, or an
    ``extra_params`` entry naming a reserved parameter (in any letter case).
    """
    endpoint_query = _check_endpoint(authorization_endpoint, config)
    redirect_uri = _check_redirect_uri(options.redirect_uri)
    optional = _optional_params(options)
    extra = _extra_params(options.extra_params)
    prompt = config.prompt if options.prompt is None else _prompt(options.prompt)

    # Randomness is drawn only once the inputs are known to be good.
    verifier = generate_code_verifier(runtime)
    state = generate_state(runtime)
    nonce = generate_nonce(runtime)

    params: list[tuple[str, str]] = [
        ("client_id", config.appId),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", " ".join(config.sign_in_scopes())),
        *(("resource", resource) for resource in config.sign_in_resources()),
        ("prompt", prompt),
        ("code_challenge", code_challenge_s256(verifier)),
        ("code_challenge_method", "S256"),
        ("state", state),
        ("nonce", nonce),
        *optional,
        *extra,
    ]
    url = _with_query(authorization_endpoint, endpoint_query, params)
    attempt = PendingSignIn(
        state=state,
        nonce=nonce,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
        created_at=runtime.now(),
    )
    return url, attempt


# ---- URLs -----------------------------------------------------------------------------------


def _check_endpoint(endpoint: str, config: LogtoConfig) -> str:
    """Validate the authorization endpoint; return its existing query (to be merged)."""
    parts = split_url(endpoint) if isinstance(endpoint, str) else None
    if (
        parts is None
        or "#" in endpoint
        or not is_acceptable_endpoint(endpoint, allow_insecure_loopback=config.development_mode)
    ):
        raise LogtoUsageError(
            "the authorization endpoint must be an https URL without fragment "
            "(plain http only for loopback hosts)",
            code="sign_in.invalid_endpoint",
        )
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if name.casefold() in RESERVED_PARAMETERS:
            # The provider would see the parameter twice; refuse instead of guessing.
            raise LogtoUsageError(
                f"the authorization endpoint's query already sets {name!r}, "
                "a parameter the SDK sets itself",
                code="sign_in.invalid_endpoint",
            )
    return parts.query


def _check_redirect_uri(redirect_uri: object) -> str:
    parts = split_url(redirect_uri) if isinstance(redirect_uri, str) else None
    if (
        parts is None
        or not isinstance(redirect_uri, str)
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "#" in redirect_uri
        or any(c.isspace() or not c.isprintable() for c in redirect_uri)
    ):
        raise LogtoUsageError(
            f"redirect_uri must be an absolute http(s) URL without fragment, got {redirect_uri!r}",
            code="sign_in.invalid_redirect_uri",
        )
    if parts.username is not None or parts.password is not None:
        raise LogtoUsageError(
            "redirect_uri must not carry user credentials", code="sign_in.invalid_redirect_uri"
        )
    return redirect_uri


def _with_query(endpoint: str, existing: str, params: Iterable[tuple[str, str]]) -> str:
    parts = split_url(endpoint)
    assert parts is not None  # checked by _check_endpoint
    # quote (not quote_plus): spaces become %20, unambiguous for every server.
    query = urlencode(list(params), quote_via=quote)
    merged = f"{existing}&{query}" if existing else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, merged, ""))


# ---- options --------------------------------------------------------------------------------


def _optional_params(options: SignInOptions) -> list[tuple[str, str]]:
    values: dict[str, str | None] = {
        "first_screen": _enum_value(FirstScreen, options.first_screen, "first_screen"),
        "identifier": _identifiers(options.identifiers),
        "direct_sign_in": _direct_sign_in(options.direct_sign_in),
        "interaction_mode": _enum_value(
            InteractionMode, options.interaction_mode, "interaction_mode"
        ),
        "login_hint": _text(options.login_hint, "login_hint"),
        "organization_id": _text(options.organization_id, "organization_id"),
        "ui_locales": _text(options.ui_locales, "ui_locales"),
        "max_age": _max_age(options.max_age),
    }
    return [(name, value) for name, value in values.items() if value is not None]


def _text(value: object, name: str) -> str | None:
    """``None``, or a non-empty string that can be sent in a URL (UTF-8 encodable)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise LogtoUsageError(
            f"{name} must be a non-empty string (or None to omit it)",
            code="sign_in.invalid_option",
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LogtoUsageError(
            f"{name} contains characters that cannot be encoded (lone surrogates)",
            code="sign_in.invalid_option",
        ) from None
    return value


def _enum_value(enum: type[Enum], value: object, name: str) -> str | None:
    """The wire value of an enum member or of a plain string equal to one of its values."""
    if value is None:
        return None
    raw = value.value if isinstance(value, Enum) else value
    allowed = [str(member.value) for member in enum]
    if not isinstance(raw, str) or raw not in allowed:
        raise LogtoUsageError(
            f"{name} must be one of {allowed}, got {value!r}", code="sign_in.invalid_option"
        )
    return raw


def _identifiers(identifiers: object) -> str | None:
    if identifiers is None:
        return None
    # A single string (or Identifier member, itself a str) is read as space-separated values,
    # so that identifiers="email" does not turn into the letters e, m, a, i, l.
    if isinstance(identifiers, str):
        items: list[object] = list(str(getattr(identifiers, "value", identifiers)).split())
    elif isinstance(identifiers, Sequence):
        items = list(identifiers)
    else:
        raise LogtoUsageError(
            "identifiers must be a sequence of Identifier values", code="sign_in.invalid_option"
        )
    if not items:
        raise LogtoUsageError(
            "identifiers must not be empty (use None to omit it)", code="sign_in.invalid_option"
        )
    values = [_enum_value(Identifier, item, "each identifier") for item in items]
    return " ".join(dict.fromkeys(v for v in values if v is not None))


def _direct_sign_in(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, DirectSignIn):
        method: object = value.method
        target: object = value.target
    elif isinstance(value, str):
        method, sep, target = value.partition(":")
        if not sep:
            raise LogtoUsageError(
                f"direct_sign_in must look like 'social:<target>' or 'sso:<connector id>', "
                f"got {value!r}",
                code="sign_in.invalid_option",
            )
    else:
        raise LogtoUsageError(
            "direct_sign_in must be a string or a DirectSignIn", code="sign_in.invalid_option"
        )
    method_value = _enum_value(DirectSignInMethod, method, "the direct_sign_in method")
    if (
        not isinstance(target, str)
        or not target
        or any(c.isspace() or not c.isprintable() for c in target)
    ):
        raise LogtoUsageError(
            "the direct_sign_in target must be a non-empty string without spaces",
            code="sign_in.invalid_option",
        )
    _text(target, "the direct_sign_in target")
    return f"{method_value}:{target}"


def _max_age(value: object) -> str | None:
    if value is None:
        return None
    # bool is an int subclass; max_age=True is certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LogtoUsageError(
            f"max_age must be a non-negative integer of seconds, got {value!r}",
            code="sign_in.invalid_option",
        )
    return str(value)


def _prompt(value: object) -> str:
    if isinstance(value, str):
        raw = str(getattr(value, "value", value))
        parts: list[object] = list(raw.split())
    elif isinstance(value, Sequence):
        parts = list(value)
    else:
        raise LogtoUsageError(
            "prompt must be a string or a sequence of Prompt values",
            code="sign_in.invalid_option",
        )
    values = [_enum_value(Prompt, part, "each prompt value") for part in parts]
    unique = list(dict.fromkeys(v for v in values if v is not None))
    if not unique:
        raise LogtoUsageError(
            "prompt must not be empty (use None for the configured prompt)",
            code="sign_in.invalid_option",
        )
    if Prompt.none.value in unique and len(unique) > 1:
        raise LogtoUsageError(
            "prompt 'none' cannot be combined with other values", code="sign_in.invalid_option"
        )
    return " ".join(unique)


def _extra_params(extra: object) -> list[tuple[str, str]]:
    if extra is None:
        return []
    if not isinstance(extra, Mapping):
        raise LogtoUsageError(
            "extra_params must be a mapping of strings", code="sign_in.invalid_option"
        )
    out: list[tuple[str, str]] = []
    for name, value in extra.items():
        if not isinstance(name, str) or not name:
            raise LogtoUsageError(
                f"extra_params names must be non-empty strings, got {name!r}",
                code="sign_in.invalid_option",
            )
        if name.casefold() in RESERVED_PARAMETERS:
            raise LogtoUsageError(
                f"extra_params may not set {name!r}: the SDK sets it (or refuses it) itself; "
                "use the SignInOptions field or LogtoConfig instead",
                code="sign_in.reserved_parameter",
            )
        _text(name, "an extra_params name")
        if not isinstance(value, str):
            raise LogtoUsageError(
                f"extra_params[{name!r}] must be a string, got {type(value).__name__}",
                code="sign_in.invalid_option",
            )
        if value:
            _text(value, f"extra_params[{name!r}]")
        out.append((name, value))
    return out
