"""Config, HTTP descriptions, errors, runtime, storage."""

from __future__ import annotations

from typing import Any

import pytest

from logto_core.config import ConfigError, LogtoConfig
from logto_core.enums import FirstScreen, OAuthScope, ReservedResource, UserInfoScope
from logto_core.errors import (
    LogtoError,
    LogtoUsageError,
    OAuthError,
    SignInRequiredError,
    TransportError,
    describe_error_body,
)
from logto_core.http import HttpRequest, HttpResponse
from logto_core.runtime import DEFAULT_RUNTIME, Runtime, system_clock, system_entropy
from logto_core.storage import MemoryStorage, Storage
from logto_core.urls import (
    is_absolute_uri,
    is_acceptable_endpoint,
    is_loopback_host,
    origin_and_path,
)


def test_config_accepts_tutorial_and_snake_case_names() -> None:
    camel = LogtoConfig(endpoint="https://x.logto.app/", appId="id", appSecret="sec")
    snake = LogtoConfig.model_validate(
        {"endpoint": "https://x.logto.app", "app_id": "id", "app_secret": "sec"}
    )
    assert camel == snake
    assert camel.endpoint == "https://x.logto.app"
    assert camel.issuer == "https://x.logto.app/oidc"
    assert camel.is_confidential and camel.secret == "sec"


def test_config_repr_and_errors_hide_the_secret() -> None:
    config = LogtoConfig(endpoint="https://x.logto.app", appId="id", appSecret="TOPSECRET")
    assert "TOPSECRET" not in repr(config) and "TOPSECRET" not in str(config)
    assert "TOPSECRET" not in config.model_dump_json()
    with pytest.raises(ConfigError) as info:
        LogtoConfig(endpoint="ftp://x", appId="id", appSecret="TOPSECRET")
    assert "TOPSECRET" not in str(info.value) and "endpoint" in str(info.value)
    assert isinstance(info.value, LogtoUsageError) and info.value.code == "config.invalid"
    with pytest.raises(ConfigError):
        LogtoConfig.model_validate({"endpoint": "https://x.app", "appId": ""})


def test_scopes_enum_and_string_are_the_same() -> None:
    a = LogtoConfig(
        endpoint="https://x.app",
        appId="i",
        scopes=[UserInfoScope.email, UserInfoScope.organizations],
    )
    b = LogtoConfig(
        endpoint="https://x.app", appId="i", scopes=["email", "urn:logto:scope:organizations"]
    )
    assert a == b
    assert a.sign_in_scopes() == [
        "openid",
        "offline_access",
        "profile",
        "email",
        "urn:logto:scope:organizations",
    ]
    assert a.sign_in_resources() == [ReservedResource.organizations.value]
    assert UserInfoScope.email == "email" and str(OAuthScope.offline_access) == "offline_access"
    assert FirstScreen("identifier:sign_in") is FirstScreen.identifier_sign_in


def test_defaults_are_not_duplicated() -> None:
    config = LogtoConfig(
        endpoint="https://x.app",
        appId="i",
        scopes=["openid", "email"],
        resources=["https://api", "https://api"],
    )
    assert config.sign_in_scopes() == ["openid", "offline_access", "profile", "email"]
    assert config.sign_in_resources() == ["https://api"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "http://x.logto.app"},
        {"endpoint": "https://x.app?q=1"},
        {"endpoint": "not a url"},
        {"appId": ""},
        {"prompt": "sometimes"},
        {"prompt": "none login"},
        {"prompt": ""},
        {"scopes": ["has space"]},
        {"resources": ["relative/path"]},
        {"resources": ["https://api#frag"]},
        {"idTokenAlgorithms": ("none",)},
        {"idTokenAlgorithms": ("HS256",)},
        {"idTokenAlgorithms": ()},
        {"clockTolerance": -1},
        {"unknown_option": 1},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    values: dict[str, Any] = {"endpoint": "https://x.logto.app", "appId": "id"}
    values.update(kwargs)
    with pytest.raises(ConfigError):
        LogtoConfig(**values)


def test_prompt_forms() -> None:
    base: dict[str, Any] = {"endpoint": "https://x.app", "appId": "i"}
    assert LogtoConfig(**base, prompt=["login", "consent", "login"]).prompt == "login consent"
    assert LogtoConfig(**base, prompt="login").prompt == "login"


def test_request_repr_redacts_credentials_and_body() -> None:
    request = HttpRequest.post_form(
        "https://x/token?secret=1", [("code", "CODEVALUE")], headers={"Authorization": "Basic QUJD"}
    )
    text = repr(request)
    assert "CODEVALUE" not in text and "QUJD" not in text and "secret=1" not in text
    assert request.header("AUTHORIZATION") == "Basic QUJD"
    assert str(HttpRequest.get("https://x/y")) == repr(HttpRequest.get("https://x/y"))
    assert HttpRequest.get("https://x/y").header("missing") is None


def test_response_helpers() -> None:
    response = HttpResponse.json(201, {"a": 1}, {"X-Thing": "v"})
    assert response.ok and response.header("x-thing") == "v"
    assert response.body == b'{"a":1}'
    assert "1" not in repr(HttpResponse.build(500, [("A", "b")], b"1111")).replace("500", "")
    assert not HttpResponse.build(302).ok


def test_error_hierarchy_and_repr() -> None:
    error = OAuthError(
        "invalid_grant", error_description="gone", status=400, logto_code="oidc.invalid_grant"
    )
    assert isinstance(error, LogtoError)
    assert (
        repr(error)
        == "OAuthError(code='oauth.invalid_grant', message='provider answered invalid_grant: gone (HTTP 400)')"
    )
    assert SignInRequiredError("x").code == "sign_in_required"
    assert TransportError("t", status=503, retry_after=2).retry_after == 2
    assert LogtoError("m", code="c").message == "m"
    assert LogtoError("only a message").code == "logto_error"


def test_describe_error_body() -> None:
    assert describe_error_body({"error": "x", "code": "oidc.x", "message": 5}) == {
        "error": "x",
        "code": "oidc.x",
    }
    assert describe_error_body({"error": ""}) is None
    assert describe_error_body([1]) is None


def test_runtime() -> None:
    fake = Runtime(clock=lambda: 5.0, entropy=lambda n: b"\x00" * n)
    assert fake.now() == 5.0 and fake.random_bytes(3) == b"\x00\x00\x00"
    broken = Runtime(entropy=lambda n: b"")
    with pytest.raises(LogtoUsageError, match="entropy"):
        broken.random_bytes(4)
    assert system_clock() > 1.7e9 and len(system_entropy(8)) == 8
    assert DEFAULT_RUNTIME.random_bytes(16) != DEFAULT_RUNTIME.random_bytes(16)


def test_memory_storage_is_per_instance() -> None:
    a, b = MemoryStorage(), MemoryStorage()
    a.set("k", "v")
    assert b.get("k") is None and a.get("k") == "v"
    a.set("k", None)
    assert a.get("k") is None
    a.set("x", "1")
    a.delete("x")
    a.delete("x")
    assert a.get("x") is None
    assert isinstance(a, Storage) and "keys" in repr(a)


def test_url_helpers() -> None:
    assert (
        is_loopback_host("127.0.0.5")
        and is_loopback_host("[::1]")
        and is_loopback_host("LOCALHOST.")
    )
    assert (
        not is_loopback_host("10.0.0.1")
        and not is_loopback_host(None)
        and not is_loopback_host("example.com")
    )
    assert not is_acceptable_endpoint("https://user:pw@x/", allow_insecure_loopback=True)
    assert not is_acceptable_endpoint("http://127.0.0.1/", allow_insecure_loopback=False)
    assert not is_acceptable_endpoint("https://x:99999/", allow_insecure_loopback=True)
    assert is_absolute_uri("urn:logto:resource:organizations") and not is_absolute_uri("https://")
    assert (
        not is_absolute_uri("1abc:x") and not is_absolute_uri("") and not is_absolute_uri("a b:c")
    )
    assert origin_and_path("HTTPS://Example.com/cb") == ("https", "example.com", 443, "/cb")
    assert origin_and_path("http://x:8080") == ("http", "x", 8080, "/")
    assert origin_and_path("nope") is None


def test_config_more_validation() -> None:
    with pytest.raises(ConfigError):
        LogtoConfig(endpoint="https://x.app", appId="i", scopes="email")
    with_org = LogtoConfig(
        endpoint="https://x.app",
        appId="i",
        scopes=["urn:logto:scope:organizations"],
        resources=["urn:logto:resource:organizations"],
    )
    assert with_org.sign_in_resources() == ["urn:logto:resource:organizations"]
    assert LogtoConfig(endpoint="http://localhost:1", appId="i").development_mode
    assert not LogtoConfig(endpoint="https://localhost:1", appId="i").development_mode


def test_retry_after_parsing() -> None:
    from logto_core.responses import parse_retry_after

    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-1") is None
    assert parse_retry_after(" 2.5 ") == 2.5


def test_oversized_error_body_is_not_parsed() -> None:
    from logto_core.errors import ProviderResponseError
    from logto_core.responses import raise_for_status

    body = b'{"error":"invalid_grant"}' + b" " * (1024 * 1024)
    with pytest.raises(ProviderResponseError):
        raise_for_status(HttpResponse.build(400, {}, body), what="token")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"appId": "tab\there"},
        {"appId": "\ud800"},
        {"appSecret": "caf\u00e9"},
        {"endpoint": "https://b\u00fccher.example"},
    ],
)
def test_config_text_must_be_sendable(kwargs: dict[str, object]) -> None:
    values: dict[str, Any] = {"endpoint": "https://x.logto.app", "appId": "id"}
    values.update(kwargs)
    with pytest.raises(ConfigError):
        LogtoConfig(**values)
