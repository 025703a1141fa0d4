"""Configuration mistakes get a ConfigError that names the likely fix."""

from __future__ import annotations

from typing import Any

import pytest

from logto_core.config import ConfigError, LogtoConfig
from logto_core.errors import LogtoError

BASE: dict[str, Any] = {"endpoint": "https://tenant.logto.app", "appId": "app"}


def _refused(**changes: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        LogtoConfig(**{**BASE, **changes})
    return info.value


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://tenant.logto.app/oidc",
        "https://tenant.logto.app/oidc/",
        "https://tenant.logto.app/OIDC",
        "https://tenant.logto.app/oidc/.well-known/openid-configuration",
    ],
)
def test_an_issuer_pasted_as_endpoint_is_refused_with_the_fix(endpoint: str) -> None:
    message = str(_refused(endpoint=endpoint))
    assert "issuer" in message and "drop it" in message
    assert "'https://tenant.logto.app'" in message


def test_endpoints_merely_containing_oidc_are_fine() -> None:
    for endpoint in ("https://oidc.example.com", "https://x.example/oidc-tenant"):
        assert LogtoConfig(**{**BASE, "endpoint": endpoint}).issuer == endpoint + "/oidc"


@pytest.mark.parametrize("secret", ["", "   "])
def test_an_empty_secret_says_so(secret: str) -> None:
    message = str(_refused(appSecret=secret))
    assert "appSecret is empty" in message and "public" in message
    assert "printable ASCII" not in message
    assert "appSecret is empty" in str(_refused(app_secret=secret))


@pytest.mark.parametrize(
    "changes",
    [
        {"endpoint": "ftp://x"},
        {"appId": "tab\there"},
        {"appSecret": "caf\u00e9"},
        {"prompt": "sometimes"},
        {"scopes": ["has space"]},
        {"idTokenAlgorithms": ("HS256",)},
    ],
)
def test_messages_have_no_pydantic_prefix(changes: dict[str, Any]) -> None:
    message = str(_refused(**changes))
    assert message.startswith("invalid LogtoConfig: ") and "Value error" not in message


def test_a_config_cannot_be_changed_in_place() -> None:
    config = LogtoConfig(**BASE, appSecret="s3cret-value")
    with pytest.raises(ConfigError) as info:
        config.appId = "other"  # type: ignore[misc]
    assert isinstance(info.value, LogtoError) and info.value.code == "config.immutable"
    assert "immutable" in str(info.value) and "config.replace(appId=...)" in str(info.value)
    with pytest.raises(ConfigError):
        del config.appSecret
    with pytest.raises(ConfigError):
        config.anything = 1  # type: ignore[attr-defined]
    assert config.appId == "app" and config.secret == "s3cret-value"


def test_replace_makes_a_validated_copy_in_either_spelling() -> None:
    config = LogtoConfig(**BASE, appSecret="s3cret-value", scopes=["email"])
    changed = config.replace(app_id="other", clockTolerance=5)
    assert (changed.appId, changed.clockTolerance, changed.secret) == ("other", 5.0, "s3cret-value")
    assert changed.scopes == ["email"] and config.appId == "app"
    public = config.replace(appSecret=None)
    assert not public.is_confidential and config.is_confidential
    assert config.replace() == config
    for bad in ({"endpoint": "http://tenant.example"}, {"app_secret": ""}, {"nope": 1}):
        with pytest.raises(ConfigError) as info:
            config.replace(**bad)
        assert "s3cret-value" not in str(info.value)


def test_model_copy_validates_its_update() -> None:
    config = LogtoConfig(**BASE, appSecret="s3cret-value")
    with pytest.raises(ConfigError):
        config.model_copy(update={"endpoint": "http://tenant.example"})
    copied = config.model_copy(update={"appSecret": "new-secret"})
    assert copied.secret == "new-secret"  # a SecretStr again, not a plain str
    assert "new-secret" not in repr(copied)
    assert config.model_copy() == config and config.model_copy(deep=True) == config


def test_the_typed_signature_lists_every_field_in_both_spellings() -> None:
    # LogtoConfig declares its __init__ for type checkers only (tests/test_user_typing.py):
    # it must not fall behind the fields.
    import ast
    import inspect

    from pydantic.alias_generators import to_snake

    from logto_core import config as module

    tree = ast.parse(inspect.getsource(module))
    overloads = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and node.name == "__init__"
        and any(isinstance(d, ast.Name) and d.id == "overload" for d in node.decorator_list)
    ]
    expected = set(LogtoConfig.model_fields) | {to_snake(n) for n in LogtoConfig.model_fields}
    assert len(overloads) == 2
    required = []
    # One overload per spelling of the required appId; every other field in both spellings.
    for node, other in zip(overloads, ("app_id", "appId"), strict=True):
        names = [arg.arg for arg in node.args.kwonlyargs]
        assert set(names) == expected - {other} and len(names) == len(expected) - 1
        defaults = zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
        required.append({arg.arg for arg, default in defaults if default is None})
    assert required == [{"endpoint", "appId"}, {"endpoint", "app_id"}]
