from __future__ import annotations

from urllib.parse import urljoin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.return_to import safe_return_to


@pytest.mark.parametrize("good", ["/", "/orders", "/a/b?c=1#d", "/%2F%2Fevil.example"])
def test_relative_paths_are_kept(good: str) -> None:
    assert safe_return_to(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/a\\b",
        "javascript:alert(1)",
        "orders",
        "/\tevil",
        "/\x00",
        " /x",
    ],
)
def test_anything_else_falls_back(bad: str | None) -> None:
    assert safe_return_to(bad, default="/home") == "/home"


@settings(max_examples=500)
@given(st.text(max_size=40))
def test_result_never_leaves_the_origin(target: str) -> None:
    result = safe_return_to(target)
    resolved = urljoin("https://app.example/base/", result)
    assert resolved.startswith("https://app.example/")
