"""Client configuration: the tutorial's ``LogtoConfig`` plus what a careful client needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, overload

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_snake
from typing_extensions import Self

from .enums import DEFAULT_SCOPES, Prompt, ReservedResource, UserInfoScope
from .errors import LogtoUsageError
from .urls import is_absolute_uri, is_acceptable_endpoint

DEFAULT_ALGORITHMS: tuple[str, ...] = (
    "ES384",
    "ES256",
    "ES512",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "EdDSA",
)
"""Asymmetric JWS algorithms accepted for ID tokens. ``none`` and HMAC are never accepted."""


class ConfigError(LogtoUsageError):
    """An invalid :class:`LogtoConfig`; the message names the fields and the reasons, never
    the secret. (Not a ``ValueError``: pydantic would turn that back into its own error.)"""

    code = "config.invalid"


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "config"
        # pydantic prefixes the text of a validator's ValueError; the field name says enough.
        problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "invalid LogtoConfig: " + "; ".join(problems)


def _visible_ascii(value: str) -> bool:
    return bool(value.strip()) and value.isascii() and value.isprintable()


_ISSUER_SUFFIXES = ("/oidc/.well-known/openid-configuration", "/oidc")
"""What a pasted issuer or discovery URL ends with (the SDK adds them to the endpoint)."""


def _both_spellings(name: str) -> AliasChoices:
    # Accept the tutorial's camelCase and PEP 8 snake_case keyword arguments alike.
    return AliasChoices(name, to_snake(name))


class LogtoConfig(BaseModel):
    """How to reach a Logto tenant and how strictly to check what it sends.

    The first six fields are the tutorial's. Every field may also be given in snake_case
    (``app_id=...``). The object is immutable (setting a field raises :class:`ConfigError`):
    :meth:`replace` makes a changed, validated copy. ``repr()`` never shows the secret.
    """

    if TYPE_CHECKING:
        # What type checkers see (with or without pydantic's mypy plugin, which keeps an
        # explicit __init__): both spellings of every field, and the secret as a plain str.
        # The appId is required in one of them. At run time pydantic's own __init__ validates.
        @overload
        def __init__(
            self,
            *,
            endpoint: str,
            appId: str,
            appSecret: str | SecretStr | None = None,
            prompt: str | Sequence[str] = ...,
            scopes: Sequence[str] = ...,
            resources: Sequence[str] = ...,
            clockTolerance: float = ...,
            tokenExpiryMargin: float = ...,
            allowInsecureLoopback: bool = ...,
            discoveryMaxAge: float = ...,
            jwksMaxAge: float = ...,
            jwksRefetchCooldown: float = ...,
            idTokenAlgorithms: Sequence[str] = ...,
            app_secret: str | SecretStr | None = None,
            clock_tolerance: float = ...,
            token_expiry_margin: float = ...,
            allow_insecure_loopback: bool = ...,
            discovery_max_age: float = ...,
            jwks_max_age: float = ...,
            jwks_refetch_cooldown: float = ...,
            id_token_algorithms: Sequence[str] = ...,
        ) -> None: ...

        @overload
        def __init__(
            self,
            *,
            endpoint: str,
            app_id: str,
            app_secret: str | SecretStr | None = None,
            prompt: str | Sequence[str] = ...,
            scopes: Sequence[str] = ...,
            resources: Sequence[str] = ...,
            clock_tolerance: float = ...,
            token_expiry_margin: float = ...,
            allow_insecure_loopback: bool = ...,
            discovery_max_age: float = ...,
            jwks_max_age: float = ...,
            jwks_refetch_cooldown: float = ...,
            id_token_algorithms: Sequence[str] = ...,
            appSecret: str | SecretStr | None = None,
            clockTolerance: float = ...,
            tokenExpiryMargin: float = ...,
            allowInsecureLoopback: bool = ...,
            discoveryMaxAge: float = ...,
            jwksMaxAge: float = ...,
            jwksRefetchCooldown: float = ...,
            idTokenAlgorithms: Sequence[str] = ...,
        ) -> None: ...

        def __init__(self, **data: Any) -> None: ...

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        hide_input_in_errors=True,
        alias_generator=AliasGenerator(validation_alias=_both_spellings),
    )

    @model_validator(mode="wrap")
    @classmethod
    def _typed_errors(
        cls, data: Any, handler: ModelWrapValidatorHandler[LogtoConfig]
    ) -> LogtoConfig:
        # Every failure of the SDK is a LogtoError, configuration mistakes included. An
        # exception that is not a ValueError passes through pydantic untouched.
        try:
            config = handler(data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc)) from None
        if not is_acceptable_endpoint(
            config.endpoint, allow_insecure_loopback=config.allowInsecureLoopback
        ):
            raise ConfigError(
                "invalid LogtoConfig: endpoint: must use https when allowInsecureLoopback is off"
            )
        return config

    endpoint: str
    """The Logto endpoint, e.g. ``https://tenant.logto.app`` (may carry a path prefix)."""
    appId: str = Field(min_length=1)
    """The application (client) id."""
    appSecret: SecretStr | None = None
    """The client secret of a confidential app; ``None`` for public (native, SPA) apps,
    which then send no secret at all."""
    prompt: str = Prompt.consent.value
    """Default ``prompt``: ``consent`` (gives refresh tokens), ``login``, ``none``, or a
    space-joined combination; a list is accepted too."""
    scopes: list[str] = Field(default_factory=list)
    """Extra scopes; ``openid``, ``offline_access`` and ``profile`` are always requested."""
    resources: list[str] = Field(default_factory=list)
    """API resource indicators (absolute URIs) to request at sign-in."""

    clockTolerance: float = Field(default=60.0, ge=0, le=600)
    """Seconds of clock skew tolerated when checking ``exp``, ``iat`` and ``nbf``."""
    tokenExpiryMargin: float = Field(default=30.0, ge=0, le=3600)
    """A cached access token is refreshed this many seconds before it expires."""
    allowInsecureLoopback: bool = True
    """Allow plain ``http`` for loopback hosts only (127.0.0.1, ::1, localhost), for local
    development and tests, when the endpoint itself is configured as such (see
    :attr:`development_mode`). Other hosts always need https."""
    discoveryMaxAge: float = Field(default=24 * 3600.0, gt=0)
    """Seconds a fetched discovery document is reused."""
    jwksMaxAge: float = Field(default=3600.0, gt=0)
    """Seconds a fetched key set is reused."""
    jwksRefetchCooldown: float = Field(default=60.0, ge=0)
    """Minimum seconds between two key-set refetches triggered by an unknown key id."""
    idTokenAlgorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    """Client-side allow-list of ID-token algorithms (intersected with the provider's)."""

    @field_validator("appId")
    @classmethod
    def _check_app_id(cls, value: str) -> str:
        if not _visible_ascii(value):
            raise ValueError("appId must be printable ASCII (RFC 6749 client_id)")
        return value

    @field_validator("appSecret")
    @classmethod
    def _check_app_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if not secret.strip():
            raise ValueError(
                "appSecret is empty (an unset environment variable?): set it to the app's "
                "secret from the Logto Console, or leave it out (None) for a public (native, "
                "single-page) app"
            )
        if not _visible_ascii(secret):
            raise ValueError("appSecret must be printable ASCII")
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        if not value.isascii():
            raise ValueError("endpoint must be ASCII (write international host names in punycode)")
        value = value.strip().rstrip("/")
        for pasted in _ISSUER_SUFFIXES:
            if value.lower().endswith(pasted):
                tenant = value[: -len(pasted)] or "https://your-tenant.logto.app"
                raise ValueError(
                    f"endpoint ends with {value[-len(pasted) :]!r}, which is Logto's issuer "
                    f"(<endpoint>/oidc), not the endpoint: drop it and use {tenant!r}"
                )
        if (
            "?" in value
            or "#" in value
            or not is_acceptable_endpoint(value, allow_insecure_loopback=True)
        ):
            raise ValueError(
                "endpoint must be an https URL without query or fragment "
                "(plain http only for loopback hosts)"
            )
        return value

    @field_validator("prompt", mode="before")
    @classmethod
    def _join_prompt(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return " ".join(str(getattr(v, "value", v)) for v in value)
        return getattr(value, "value", value)

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, value: str) -> str:
        allowed = {p.value for p in Prompt}
        parts = value.split()
        if not parts or any(p not in allowed for p in parts):
            raise ValueError(f"prompt must be space-joined values among {sorted(allowed)}")
        if "none" in parts and len(parts) > 1:
            raise ValueError("prompt 'none' cannot be combined with other values")
        return " ".join(dict.fromkeys(parts))

    @field_validator("scopes", mode="before")
    @classmethod
    def _scope_values(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [getattr(v, "value", v) for v in value]
        return value

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not scope or any(c.isspace() or c == '"' or c == "\\" for c in scope):
                raise ValueError(f"invalid scope {scope!r}")
        return value

    @field_validator("resources")
    @classmethod
    def _check_resources(cls, value: list[str]) -> list[str]:
        for resource in value:
            if not is_absolute_uri(resource):
                raise ValueError(f"resource {resource!r} must be an absolute URI without fragment")
        return value

    @field_validator("idTokenAlgorithms")
    @classmethod
    def _check_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for alg in value:
            if alg == "none" or alg.startswith("HS"):
                raise ValueError(f"algorithm {alg!r} is never accepted for ID tokens")
        if not value:
            raise ValueError("at least one ID-token algorithm is needed")
        return value

    # ---- immutability ---------------------------------------------------------------------

    if not TYPE_CHECKING:  # pragma: no branch - type checkers refuse these assignments anyway

        def __setattr__(self, name: str, value: Any) -> NoReturn:
            self._immutable(name)

        def __delattr__(self, name: str) -> NoReturn:
            self._immutable(name)

    @staticmethod
    def _immutable(name: str) -> NoReturn:
        raise ConfigError(
            f"LogtoConfig is immutable (cannot change {name!r}): make a changed copy with "
            f"config.replace({name}=...), which validates it like a new LogtoConfig",
            code="config.immutable",
        )

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (camelCase or snake_case names), validated like a
        new config: ``config.replace(appSecret=None)``."""
        fields = type(self).model_fields
        spelled = {to_snake(name): name for name in fields}
        values: dict[str, Any] = {name: getattr(self, name) for name in fields}
        for name, value in changes.items():
            values[spelled.get(name, name)] = value
        return type(self).model_validate(values)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's ``model_copy``, except that ``update`` is validated (:meth:`replace`):
        pydantic's copies skip validation, so they could hold an http endpoint or a secret
        that is a plain ``str``."""
        if update:
            return self.replace(**update)
        return super().model_copy(deep=deep)

    # ---- derived values -------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """The issuer Logto uses: ``<endpoint>/oidc``."""
        return f"{self.endpoint}/oidc"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def development_mode(self) -> bool:
        """True when the configured endpoint itself is plain http on a loopback host (and
        ``allowInsecureLoopback`` is on): only then may provider endpoints be loopback http.
        A tenant configured with https never accepts an http endpoint from discovery."""
        return self.allowInsecureLoopback and self.endpoint.startswith("http://")

    @property
    def is_confidential(self) -> bool:
        """True when a client secret is configured (traditional web or M2M apps)."""
        return self.appSecret is not None

    @property
    def secret(self) -> str | None:
        return self.appSecret.get_secret_value() if self.appSecret is not None else None

    def sign_in_scopes(self) -> list[str]:
        """Default scopes followed by the configured ones, without duplicates."""
        return list(dict.fromkeys([*DEFAULT_SCOPES, *self.scopes]))

    def sign_in_resources(self) -> list[str]:
        """Configured resources, plus Logto's organizations resource when the organizations
        scope is requested (needed to obtain organization tokens later)."""
        resources = list(dict.fromkeys(self.resources))
        if UserInfoScope.organizations.value in self.scopes:
            org = ReservedResource.organizations.value
            if org not in resources:
                resources.append(org)
        return resources

    def wants_organizations(self) -> bool:
        return UserInfoScope.organizations.value in self.scopes
