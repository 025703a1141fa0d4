"""The sign-in URL: parameters, validation of the options, reserved parameters."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.config import LogtoConfig
from logto_core.enums import (
    DirectSignInMethod,
    FirstScreen,
    Identifier,
    InteractionMode,
    Prompt,
    UserInfoScope,
)
from logto_core.errors import LogtoUsageError
from logto_core.protocol.pkce import code_challenge_s256, is_valid_code_verifier
from logto_core.protocol.signin_url import (
    OPTIONAL_PARAMETERS,
    RESERVED_PARAMETERS,
    DirectSignIn,
    SignInOptions,
    build_sign_in,
)
from logto_core.runtime import Runtime

ENDPOINT = "https://tenant.logto.app/oidc/auth"
REDIRECT = "https://app.example.com/callback"


def make_config(**overrides: Any) -> LogtoConfig:
    values: dict[str, Any] = {"endpoint": "https://tenant.logto.app", "appId": "app-id"}
    values.update(overrides)
    return LogtoConfig(**values)


def counting_runtime(now: float = 1_700_000_000.0) -> tuple[Runtime, list[int]]:
    draws: list[int] = []
    counter = itertools.count()

    def entropy(n: int) -> bytes:
        draws.append(n)
        start = next(counter) * n
        return bytes((start + i) % 256 for i in range(n))

    return Runtime(clock=lambda: now, entropy=entropy), draws


def params_of(url: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        out.setdefault(name, []).append(value)
    return out


def build(
    options: SignInOptions | None = None,
    *,
    config: LogtoConfig | None = None,
    endpoint: str = ENDPOINT,
) -> tuple[str, dict[str, list[str]]]:
    runtime, _ = counting_runtime()
    url, _attempt = build_sign_in(
        config or make_config(), endpoint, options or SignInOptions(REDIRECT), runtime
    )
    return url, params_of(url)


# ---- the basic URL ----------------------------------------------------------------------------


def test_basic_url_parameters_and_pending_attempt() -> None:
    runtime, draws = counting_runtime(now=1234.5)
    url, attempt = build_sign_in(make_config(), ENDPOINT, SignInOptions(REDIRECT), runtime)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "tenant.logto.app",
        "/oidc/auth",
        "",
    )
    params = params_of(url)
    assert params == {
        "client_id": ["app-id"],
        "redirect_uri": [REDIRECT],
        "response_type": ["code"],
        "scope": ["openid offline_access profile"],
        "prompt": ["consent"],
        "code_challenge": [code_challenge_s256(attempt.code_verifier)],
        "code_challenge_method": ["S256"],
        "state": [attempt.state],
        "nonce": [attempt.nonce],
    }
    assert draws == [32, 32, 32]
    assert attempt.redirect_uri == REDIRECT
    assert attempt.created_at == 1234.5
    assert is_valid_code_verifier(attempt.code_verifier)
    assert len({attempt.state, attempt.nonce, attempt.code_verifier}) == 3
    # Spaces are percent-encoded, never '+'.
    assert "scope=openid%20offline_access%20profile" in url


def test_scopes_resources_and_config_prompt() -> None:
    config = make_config(
        scopes=["email", UserInfoScope.organizations],
        resources=["https://api.example.com", "https://other.example.com"],
        prompt=[Prompt.login, Prompt.consent],
    )
    _, params = build(config=config)
    assert params["scope"] == ["openid offline_access profile email urn:logto:scope:organizations"]
    assert params["resource"] == [
        "https://api.example.com",
        "https://other.example.com",
        "urn:logto:resource:organizations",
    ]
    assert params["prompt"] == ["login consent"]


def test_endpoint_query_is_merged() -> None:
    url, params = build(endpoint="https://tenant.logto.app/oidc/auth?tenant=abc&x=")
    assert url.startswith("https://tenant.logto.app/oidc/auth?tenant=abc&x=&client_id=")
    assert params["tenant"] == ["abc"]
    assert params["x"] == [""]
    assert params["client_id"] == ["app-id"]


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://tenant.logto.app/oidc/auth",
        "https://tenant.logto.app/oidc/auth#frag",
        "ftp://tenant.logto.app/oidc/auth",
        "/oidc/auth",
        "https://user:pw@tenant.logto.app/oidc/auth",
        "https://tenant.logto.app:99999/oidc/auth",
        "https://tenant.logto.app/oidc/auth?client_id=evil",
        "https://tenant.logto.app/oidc/auth?State=x",
        "https://tenant.logto.app/oidc/auth?login_hint=x",
    ],
)
def test_bad_endpoint_refused(endpoint: str) -> None:
    runtime, draws = counting_runtime()
    with pytest.raises(LogtoUsageError) as info:
        build_sign_in(make_config(), endpoint, SignInOptions(REDIRECT), runtime)
    assert info.value.code == "sign_in.invalid_endpoint"
    assert draws == []


def test_non_string_endpoint_refused() -> None:
    runtime, _ = counting_runtime()
    with pytest.raises(LogtoUsageError):
        build_sign_in(make_config(), None, SignInOptions(REDIRECT), runtime)  # type: ignore[arg-type]


def test_loopback_http_endpoint_follows_config() -> None:
    endpoint = "http://localhost:3001/oidc/auth"
    config = make_config(endpoint="http://localhost:3001")
    url, _ = build(config=config, endpoint=endpoint)
    assert url.startswith(endpoint + "?")
    strict = make_config(endpoint="https://tenant.logto.app", allowInsecureLoopback=False)
    with pytest.raises(LogtoUsageError):
        build(config=strict, endpoint=endpoint)


# ---- redirect URI -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://localhost:3000/callback",
        "http://127.0.0.1/cb",
        "https://app.example.com",
        "https://app.example.com/cb?tab=1",
        "HTTPS://App.Example.com/cb",
        "https://exämple.com/ünïcode",
    ],
)
def test_valid_redirect_uri_sent_verbatim(redirect_uri: str) -> None:
    runtime, _ = counting_runtime()
    url, attempt = build_sign_in(make_config(), ENDPOINT, SignInOptions(redirect_uri), runtime)
    assert params_of(url)["redirect_uri"] == [redirect_uri]
    assert attempt.redirect_uri == redirect_uri


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "",
        "/callback",
        "app.example.com/callback",
        "ftp://app.example.com/cb",
        "javascript:alert(1)",
        "myapp://callback",
        "https://app.example.com/cb#frag",
        "https://app.example.com/cb#",
        "https:///cb",
        "https://app.example.com/c b",
        "https://app.example.com/cb\n",
        "https://app.example.com:notaport/cb",
        "https://user:pass@app.example.com/cb",
        "https://user@app.example.com/cb",
    ],
)
def test_invalid_redirect_uri_refused(redirect_uri: str) -> None:
    runtime, draws = counting_runtime()
    with pytest.raises(LogtoUsageError) as info:
        build_sign_in(make_config(), ENDPOINT, SignInOptions(redirect_uri), runtime)
    assert info.value.code == "sign_in.invalid_redirect_uri"
    assert "redirect_uri" in str(info.value)
    assert draws == []


def test_non_string_redirect_uri_refused() -> None:
    with pytest.raises(LogtoUsageError):
        build(SignInOptions(b"https://app.example.com/cb"))  # type: ignore[arg-type]


# ---- named options ----------------------------------------------------------------------------


def test_all_optional_parameters() -> None:
    options = SignInOptions(
        REDIRECT,
        interaction_mode=InteractionMode.signUp,
        first_screen=FirstScreen.identifier_register,
        identifiers=[Identifier.email, "phone", Identifier.email],
        direct_sign_in="social:google",
        login_hint="user@example.com",
        prompt=Prompt.login,
        organization_id="org_1",
        ui_locales="fr-CA en",
        max_age=0,
        extra_params={"one_time_token": "ott", "custom": ""},
    )
    _, params = build(options)
    assert params["interaction_mode"] == ["signUp"]
    assert params["first_screen"] == ["identifier:register"]
    assert params["identifier"] == ["email phone"]
    assert params["direct_sign_in"] == ["social:google"]
    assert params["login_hint"] == ["user@example.com"]
    assert params["prompt"] == ["login"]
    assert params["organization_id"] == ["org_1"]
    assert params["ui_locales"] == ["fr-CA en"]
    assert params["max_age"] == ["0"]
    assert params["one_time_token"] == ["ott"]
    assert params["custom"] == [""]


@pytest.mark.parametrize(
    ("field", "enum"),
    [("first_screen", FirstScreen), ("interaction_mode", InteractionMode)],
)
def test_enum_options_accept_members_and_plain_strings(field: str, enum: Any) -> None:
    for member in enum:
        for value in (member, member.value):
            _, params = build(SignInOptions(REDIRECT, **{field: value}))
            assert params[field] == [member.value]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_screen", "signIn"),
        ("first_screen", "SIGN_IN"),
        ("first_screen", InteractionMode.signIn),
        ("first_screen", 3),
        ("interaction_mode", "sign_in"),
        ("interaction_mode", FirstScreen.sign_in),
    ],
)
def test_invalid_enum_options_refused(field: str, value: Any) -> None:
    with pytest.raises(LogtoUsageError) as info:
        build(SignInOptions(REDIRECT, **{field: value}))
    assert info.value.code == "sign_in.invalid_option"
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("identifiers", "expected"),
    [
        ([Identifier.username], "username"),
        (("email", "phone"), "email phone"),
        (Identifier.email, "email"),
        ("email  phone", "email phone"),
        (["phone", "phone"], "phone"),
    ],
)
def test_identifiers(identifiers: Any, expected: str) -> None:
    _, params = build(SignInOptions(REDIRECT, identifiers=identifiers))
    assert params["identifier"] == [expected]


@pytest.mark.parametrize("identifiers", [[], "", ["fax"], ["Email"], 5, [FirstScreen.sign_in]])
def test_invalid_identifiers_refused(identifiers: Any) -> None:
    with pytest.raises(LogtoUsageError) as info:
        build(SignInOptions(REDIRECT, identifiers=identifiers))
    assert "identifier" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("social:google", "social:google"),
        ("sso:conn_123", "sso:conn_123"),
        ("sso:a:b", "sso:a:b"),
        (DirectSignIn(DirectSignInMethod.social, "github"), "social:github"),
        (DirectSignIn("sso", "abc"), "sso:abc"),
        ("social:日本", "social:日本"),
    ],
)
def test_direct_sign_in(value: Any, expected: str) -> None:
    _, params = build(SignInOptions(REDIRECT, direct_sign_in=value))
    assert params["direct_sign_in"] == [expected]


@pytest.mark.parametrize(
    "value",
    [
        "google",
        "oauth:google",
        "Social:google",
        "social:",
        ":google",
        "social:a b",
        "social:a\x00",
        "social:\ud800",
        DirectSignIn("email", "x"),
        DirectSignIn("sso", ""),
        DirectSignIn("sso", 5),  # type: ignore[arg-type]
        42,
    ],
)
def test_invalid_direct_sign_in_refused(value: Any) -> None:
    with pytest.raises(LogtoUsageError) as info:
        build(SignInOptions(REDIRECT, direct_sign_in=value))
    assert info.value.code == "sign_in.invalid_option"
    assert "direct_sign_in" in str(info.value)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("login", "login"),
        (Prompt.none, "none"),
        ([Prompt.login, "consent"], "login consent"),
        ("consent login consent", "consent login"),
        (("login",), "login"),
    ],
)
def test_prompt_overrides_config(prompt: Any, expected: str) -> None:
    _, params = build(SignInOptions(REDIRECT, prompt=prompt))
    assert params["prompt"] == [expected]


@pytest.mark.parametrize(
    "prompt", ["", "  ", [], "none login", [Prompt.none, Prompt.consent], "select_account", 1]
)
def test_invalid_prompt_refused(prompt: Any) -> None:
    with pytest.raises(LogtoUsageError) as info:
        build(SignInOptions(REDIRECT, prompt=prompt))
    assert "prompt" in str(info.value)


@pytest.mark.parametrize("max_age", [-1, True, "10", 1.5])
def test_invalid_max_age_refused(max_age: Any) -> None:
    with pytest.raises(LogtoUsageError, match="max_age"):
        build(SignInOptions(REDIRECT, max_age=max_age))


@pytest.mark.parametrize("field", ["login_hint", "organization_id", "ui_locales"])
@pytest.mark.parametrize("value", ["", 5, "bad\udc80"])
def test_invalid_text_options_refused(field: str, value: Any) -> None:
    with pytest.raises(LogtoUsageError) as info:
        build(SignInOptions(REDIRECT, **{field: value}))
    assert field in str(info.value)


# ---- extra parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "client_id",
        "CLIENT_ID",
        "Redirect_Uri",
        "state",
        "Nonce",
        "code_challenge",
        "code_challenge_METHOD",
        "scope",
        "resource",
        "prompt",
        "response_type",
        "response_mode",
        "request_uri",
        "login_hint",
        "Organization_Id",
        "first_screen",
        "identifier",
        "direct_sign_in",
        "interaction_mode",
        "ui_locales",
        "max_age",
        "client_secret",
        "code_verifier",
        "ſcope",  # LATIN SMALL LETTER LONG S case-folds to 's'
    ],
)
def test_reserved_extra_params_refused(name: str) -> None:
    runtime, draws = counting_runtime()
    options = SignInOptions(REDIRECT, extra_params={name: "evil"})
    with pytest.raises(LogtoUsageError) as info:
        build_sign_in(make_config(), ENDPOINT, options, runtime)
    assert info.value.code == "sign_in.reserved_parameter"
    assert repr(name) in str(info.value)
    assert draws == []


@pytest.mark.parametrize(
    "extra",
    [
        {"": "x"},
        {5: "x"},
        {"a": 5},
        {"a": None},
        {"a\ud800": "x"},
        {"a": "x\ud800"},
        [("a", "b")],
        "a=b",
    ],
)
def test_invalid_extra_params_refused(extra: Any) -> None:
    with pytest.raises(LogtoUsageError) as info:
        build(SignInOptions(REDIRECT, extra_params=extra))
    assert info.value.code == "sign_in.invalid_option"
    assert "extra_params" in str(info.value)


def test_every_named_option_is_reserved() -> None:
    assert set(OPTIONAL_PARAMETERS) <= RESERVED_PARAMETERS
    assert {
        "client_id",
        "redirect_uri",
        "response_type",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "scope",
        "resource",
        "prompt",
    } <= RESERVED_PARAMETERS
    assert all(name == name.casefold() for name in RESERVED_PARAMETERS)


def test_each_attempt_is_fresh() -> None:
    runtime, _ = counting_runtime()
    config = make_config()
    first = build_sign_in(config, ENDPOINT, SignInOptions(REDIRECT), runtime)[1]
    second = build_sign_in(config, ENDPOINT, SignInOptions(REDIRECT), runtime)[1]
    assert first.state != second.state
    assert first.nonce != second.nonce
    assert first.code_verifier != second.code_verifier


def test_pending_repr_hides_secrets() -> None:
    runtime, _ = counting_runtime()
    _, attempt = build_sign_in(make_config(), ENDPOINT, SignInOptions(REDIRECT), runtime)
    text = repr(attempt)
    for secret in (attempt.state, attempt.nonce, attempt.code_verifier):
        assert secret not in text


# ---- properties -------------------------------------------------------------------------------

printable_no_space = st.characters(
    blacklist_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp", "Co", "Cn"),
    blacklist_characters="#",
)
unicode_text = st.text(min_size=1, max_size=30)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def enum_or_value(enum: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(enum)).flatmap(lambda m: st.sampled_from([m, m.value]))


def not_reserved(name: str) -> bool:
    return name.casefold() not in RESERVED_PARAMETERS


redirect_uris = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["https", "http"]),
    st.sampled_from(["app.example.com", "localhost:3000", "127.0.0.1", "[::1]:8443"]),
    st.text(alphabet=printable_no_space, max_size=20),
)

direct_targets = st.text(alphabet=printable_no_space, min_size=1, max_size=15)

sign_in_options = st.builds(
    SignInOptions,
    redirect_uri=redirect_uris,
    interaction_mode=maybe(enum_or_value(InteractionMode)),
    first_screen=maybe(enum_or_value(FirstScreen)),
    identifiers=maybe(st.lists(enum_or_value(Identifier), min_size=1, max_size=4)),
    direct_sign_in=maybe(
        st.one_of(
            st.builds(DirectSignIn, enum_or_value(DirectSignInMethod), direct_targets),
            st.builds(lambda m, t: f"{m}:{t}", st.sampled_from(["social", "sso"]), direct_targets),
        )
    ),
    login_hint=maybe(unicode_text),
    prompt=maybe(
        st.one_of(
            st.sampled_from(["consent", "login", "none", Prompt.login]),
            st.lists(st.sampled_from([Prompt.login, Prompt.consent, "login"]), min_size=1),
        )
    ),
    organization_id=maybe(unicode_text),
    ui_locales=maybe(unicode_text),
    max_age=maybe(st.integers(min_value=0, max_value=10**12)),
    extra_params=maybe(
        st.dictionaries(unicode_text.filter(not_reserved), st.text(max_size=30), max_size=4)
    ),
)

configs = st.builds(
    make_config,
    scopes=st.lists(st.sampled_from(["email", "phone", "urn:logto:scope:organizations"])),
    resources=st.lists(st.sampled_from(["https://api.example.com", "urn:my:api"]), max_size=2),
)


def enum_wire(value: Any) -> str:
    return str(getattr(value, "value", value))


def expected_optional(options: SignInOptions) -> dict[str, str]:
    expected: dict[str, str] = {}
    if options.interaction_mode is not None:
        expected["interaction_mode"] = enum_wire(options.interaction_mode)
    if options.first_screen is not None:
        expected["first_screen"] = enum_wire(options.first_screen)
    if options.identifiers is not None:
        wire = [enum_wire(i) for i in options.identifiers]
        expected["identifier"] = " ".join(dict.fromkeys(wire))
    if isinstance(options.direct_sign_in, DirectSignIn):
        method = enum_wire(options.direct_sign_in.method)
        expected["direct_sign_in"] = f"{method}:{options.direct_sign_in.target}"
    elif options.direct_sign_in is not None:
        expected["direct_sign_in"] = options.direct_sign_in
    for name in ("login_hint", "organization_id", "ui_locales"):
        value = getattr(options, name)
        if value is not None:
            expected[name] = value
    if options.max_age is not None:
        expected["max_age"] = str(options.max_age)
    return expected


def expected_prompt(options: SignInOptions, config: LogtoConfig) -> str:
    if options.prompt is None:
        return config.prompt
    items: Sequence[Any] = (
        options.prompt.split() if isinstance(options.prompt, str) else options.prompt
    )
    return " ".join(dict.fromkeys(enum_wire(p) for p in items))


@settings(max_examples=150, deadline=None)
@given(options=sign_in_options, config=configs)
def test_property_url_round_trips_every_input(options: SignInOptions, config: LogtoConfig) -> None:
    runtime, _ = counting_runtime()
    url, attempt = build_sign_in(config, ENDPOINT, options, runtime)
    assert urlsplit(url).fragment == ""
    params = params_of(url)
    singles = {
        "client_id": config.appId,
        "redirect_uri": options.redirect_uri,
        "response_type": "code",
        "scope": " ".join(config.sign_in_scopes()),
        "prompt": expected_prompt(options, config),
        "code_challenge": code_challenge_s256(attempt.code_verifier),
        "code_challenge_method": "S256",
        "state": attempt.state,
        "nonce": attempt.nonce,
        **expected_optional(options),
        **(options.extra_params or {}),
    }
    expected = {name: [value] for name, value in singles.items()}
    if config.sign_in_resources():
        expected["resource"] = config.sign_in_resources()
    assert params == expected


def any_casing(name: str) -> st.SearchStrategy[str]:
    flips = st.lists(st.booleans(), min_size=len(name), max_size=len(name))
    return flips.map(
        lambda bits: "".join(c.upper() if b else c for c, b in zip(name, bits, strict=True))
    )


reserved_any_case = st.sampled_from(sorted(RESERVED_PARAMETERS)).flatmap(any_casing)


@settings(max_examples=200, deadline=None)
@given(name=reserved_any_case, value=st.text(max_size=10))
def test_property_reserved_parameter_never_injected(name: str, value: str) -> None:
    runtime, draws = counting_runtime()
    options = SignInOptions(REDIRECT, extra_params={"harmless": "1", name: value})
    with pytest.raises(LogtoUsageError) as info:
        build_sign_in(make_config(), ENDPOINT, options, runtime)
    assert info.value.code == "sign_in.reserved_parameter"
    assert draws == []


@settings(max_examples=150, deadline=None)
@given(
    extra=st.dictionaries(
        st.one_of(reserved_any_case, unicode_text), st.text(max_size=10), max_size=5
    )
)
def test_property_extra_params_cannot_change_sdk_parameters(extra: Mapping[str, str]) -> None:
    runtime, _ = counting_runtime()
    options = SignInOptions(REDIRECT, extra_params=extra)
    if any(not not_reserved(name) for name in extra):
        with pytest.raises(LogtoUsageError, match="extra_params may not set"):
            build_sign_in(make_config(), ENDPOINT, options, runtime)
        return
    url, attempt = build_sign_in(make_config(), ENDPOINT, options, runtime)
    params = params_of(url)
    assert params["state"] == [attempt.state]
    assert params["client_id"] == ["app-id"]
    assert params["redirect_uri"] == [REDIRECT]
    assert params["code_challenge_method"] == ["S256"]
    for name, values in params.items():
        if name in extra:
            assert values == [extra[name]]
        else:
            assert name.casefold() in RESERVED_PARAMETERS
