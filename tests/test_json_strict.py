"""The strict JSON decoder (``logto_core.json_strict``) and every parser that uses it.

Properties: valid JSON within the bounds decodes exactly as the standard library decodes it;
a document holding ``NaN``/``Infinity``, a repeated member name, or nesting beyond the cap,
anywhere, never gets past the decoder, nor past any provider parse function, and nothing but
the SDK's typed errors (``StrictJsonError`` for the decoder itself) is ever raised.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logto_core.errors import LogtoError, OAuthError, ProviderResponseError
from logto_core.http import HttpResponse
from logto_core.jose.jwt import decode_unverified
from logto_core.jose.keys import KeySet, parse_jwks_response
from logto_core.json_strict import (
    DEFAULT_MAX_DEPTH,
    MAX_NUMBER_CHARS,
    StrictJsonError,
    loads,
)
from logto_core.protocol.discovery import parse_discovery_response
from logto_core.protocol.token_endpoint import parse_token_response
from logto_core.protocol.userinfo import parse_userinfo_response
from logto_core.provider_state import ProviderState
from logto_core.responses import read_object
from tests.factories import config, discovery_document
from tests.jwt_factory import NOW, b64, jwks_body

POISON = "\x00poison\x00"
POISON_JSON = json.dumps(POISON)  # "\u0000poison\u0000": no generated text contains it

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=25,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=5)


def _with_poison(value: Any, draw: st.DrawFn) -> Any:
    """``value`` with ``POISON`` added somewhere (a new element or member of a container)."""
    containers: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, (list, dict)):
            containers.append(node)
            for child in node.values() if isinstance(node, dict) else node:
                walk(child)

    walk(value)
    target = draw(st.sampled_from(containers))
    if isinstance(target, list):
        target.insert(draw(st.integers(0, len(target))), POISON)
    else:
        key = draw(st.text(max_size=6).filter(lambda k: k not in target))
        target[key] = POISON
    return value


@st.composite
def poisoned(draw: st.DrawFn, replacement: st.SearchStrategy[str]) -> str:
    """A JSON object text with one value replaced by the text ``replacement`` draws."""
    value = _with_poison(draw(json_objects), draw)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))
    assert text.count(POISON_JSON) == 1
    return text.replace(POISON_JSON, draw(replacement))


def duplicate_object(draw: st.DrawFn) -> str:
    key = draw(st.text(max_size=6))
    first, second = draw(json_values), draw(json_values)
    others = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3))
    members = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in others.items() if k != key]
    members.insert(draw(st.integers(0, len(members))), f"{json.dumps(key)}: {json.dumps(first)}")
    members.insert(draw(st.integers(0, len(members))), f"{json.dumps(key)}: {json.dumps(second)}")
    return "{" + ", ".join(members) + "}"


NON_STANDARD = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
with_constants = poisoned(NON_STANDARD)
with_duplicates = poisoned(st.composite(duplicate_object)())


def _reason(text: str | bytes, **bounds: int) -> str:
    with pytest.raises(StrictJsonError) as info:
        loads(text, **bounds)
    assert isinstance(info.value, ValueError)
    return info.value.reason


# ---- the decoder ---------------------------------------------------------------------------------


@settings(max_examples=300)
@given(json_values, st.booleans())
def test_valid_json_decodes_as_the_standard_library_does(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert loads(text) == json.loads(text)
    assert loads(text.encode("utf-8")) == json.loads(text)


@settings(max_examples=300)
@given(with_constants)
def test_nan_infinity_and_overflow_never_get_past(text: str) -> None:
    assert _reason(text) in ("constant", "number")


@settings(max_examples=300)
@given(with_duplicates)
def test_repeated_member_names_never_get_past(text: str) -> None:
    assert _reason(text) == "duplicate"


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["[", '{"k": ']), min_size=1, max_size=200), st.booleans())
def test_nesting_is_bounded(openers: list[str], spaced: bool) -> None:
    closers = "".join("]" if o == "[" else "}" for o in reversed(openers))
    text = ("  " if spaced else "").join(openers) + "1" + closers
    if len(openers) <= DEFAULT_MAX_DEPTH:
        assert loads(text) == json.loads(text)
    else:
        assert _reason(text) == "depth"


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@st.composite
def deep_trees(draw: st.DrawFn) -> Any:
    """A spine of up to 90 nested arrays and objects, with shallow siblings at every level
    (the depth check must not be fooled by brackets that close between the levels)."""
    value: Any = draw(json_leaves)
    shallow = st.sampled_from([[], {}, 0, "[", [[]], {"a": []}, [{}, []]])
    for _ in range(draw(st.integers(1, 90))):
        siblings = draw(st.lists(shallow, max_size=3))
        siblings.insert(draw(st.integers(0, len(siblings))), value)
        value = siblings if draw(st.booleans()) else {f"k{i}": v for i, v in enumerate(siblings)}
    return value


@settings(max_examples=300)
@given(deep_trees())
def test_depth_check_is_exact(tree: Any) -> None:
    text = json.dumps(tree)
    if _depth(tree) <= DEFAULT_MAX_DEPTH:
        assert loads(text) == tree
    else:
        assert _reason(text) == "depth"


@settings(max_examples=500)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_give_a_value_or_a_strict_json_error(data: bytes) -> None:
    try:
        value = loads(data)
    except StrictJsonError:
        return
    # Whatever is accepted, the standard library reads the same way.
    assert value == json.loads(data)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("NaN", "constant"),
        ("[Infinity]", "constant"),
        ('{"a": -Infinity}', "constant"),
        ("[1e400]", "number"),
        ('{"a": 1, "a": 1}', "duplicate"),
        ('{"a": {"b": 1, "b": 2}}', "duplicate"),
        ("[" * 100_000, "depth"),  # refused before the decoder recurses
        ("[" * 60 + "]" * 61, "syntax"),
        ("[" * 65 + "]" * 65, "depth"),
        ("1" * (MAX_NUMBER_CHARS + 1), "number"),
        ("", "syntax"),
        ("{} {}", "syntax"),
        ("{'a': 1}", "syntax"),
        ('"\x01"', "syntax"),  # control character in a string
        ("\ufeff{}", "encoding"),
    ],
)
def test_refusals(text: str, reason: str) -> None:
    assert _reason(text) == reason


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf{}",  # UTF-8 byte order mark
        '{"a": 1}'.encode("utf-16"),  # the standard library would guess UTF-16
        '{"a": 1}'.encode("utf-32-le"),
        b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate is no UTF-8
        b'{"a": "\xff"}',
    ],
)
def test_only_utf8_bytes(data: bytes) -> None:
    # UTF-32 without a BOM is valid UTF-8 (NUL bytes), then no JSON: refused either way.
    assert _reason(data) in ("encoding", "syntax")


def test_brackets_and_digits_inside_strings_are_not_structure() -> None:
    text = json.dumps({"a": "[" * 1000 + "{" * 1000, "b": "9" * 5000, "c": '\\"[[[['})
    assert loads(text)["b"] == "9" * 5000
    assert loads(json.dumps(["x"] * 5000)) == ["x"] * 5000  # wide, not deep


def test_bounds_are_parameters() -> None:
    assert loads("[[1]]", max_depth=2) == [[1]]
    assert _reason("[[[1]]]", max_depth=2) == "depth"
    assert _reason(b"[1, 2]", max_bytes=5) == "size"
    assert loads(b"[1,2]", max_bytes=5) == [1, 2]
    assert _reason(12) == "syntax"  # type: ignore[arg-type]


def test_the_depth_cap_keeps_decoding_within_a_deep_call_stack() -> None:
    # The C decoder recurses once per level and counts against the interpreter's recursion
    # limit; with nesting capped at 64, a caller 300 frames from the limit is always safe.
    document = "[" * DEFAULT_MAX_DEPTH + "]" * DEFAULT_MAX_DEPTH
    results: list[Any] = []

    def descend(depth: int) -> None:
        if depth > 0:
            descend(depth - 1)
        else:
            results.append(loads(document))
            with pytest.raises(StrictJsonError):
                loads("[" * 5000 + "]" * 5000)

    descend(sys.getrecursionlimit() - 300)
    assert len(results) == 1


@settings(max_examples=100)
@given(st.text(alphabet="abcdefghij", min_size=8, max_size=8), NON_STANDARD)
def test_messages_never_quote_the_input(marker: str, literal: str) -> None:
    for text in (f'{{"{marker}": {literal}}}', f'{{"{marker}": 1, "{marker}": 2}}', marker):
        with pytest.raises(StrictJsonError) as info:
            loads(text)
        assert marker not in str(info.value)


# ---- every parser that reads provider JSON, tokens or caches -----------------------------------

TOKEN = {"access_token": "at-0123", "token_type": "Bearer", "expires_in": 60}
USERINFO = {"sub": "user-1", "name": "Ada"}


def _body(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse.build(status, {"content-type": "application/json"}, text.encode())


def _embed(document: dict[str, Any], text: str) -> str:
    """``document`` as JSON with the poisoned object ``text`` as an extra member."""
    return json.dumps(document)[:-1] + ', "x_extra": ' + text + "}"


PARSERS: dict[str, tuple[dict[str, Any], Callable[[str], object]]] = {
    "discovery": (
        discovery_document(),
        lambda text: parse_discovery_response(_body(text), config()),
    ),
    "token": (TOKEN, lambda text: parse_token_response(_body(text))),
    "userinfo": (
        USERINFO,
        lambda text: parse_userinfo_response(_body(text), expected_sub="user-1"),
    ),
    "jwks": (jwks_body(["P-256"]), lambda text: parse_jwks_response(_body(text), now=NOW)),
    "jwks cache": (
        {"keys": jwks_body(["P-256"])["keys"], "fetched_at": NOW},
        KeySet.from_json,
    ),
    "provider state": (
        {"metadata": discovery_document(), "metadata_fetched_at": NOW},
        ProviderState.from_json,
    ),
    "object body": ({"a": 1}, lambda text: read_object(_body(text), what="test")),
    "token header": (
        {"alg": "ES256"},
        lambda text: decode_unverified(f"{b64(text.encode())}.{b64(b'{}')}.c2ln"),
    ),
}

EXPECTED_CODES = {
    "discovery": "provider_response.not_json",
    "token": "provider_response.not_json",
    "userinfo": "provider_response.not_json",
    "jwks": "jwks.malformed",
    "jwks cache": "jwks.cache_invalid",
    "provider state": "provider_state.cache_invalid",
    "object body": "provider_response.not_json",
    "token header": "jwt.malformed",
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_each_parser_accepts_its_valid_document(name: str) -> None:
    document, parse = PARSERS[name]
    parse(json.dumps(document))


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_no_parser_lets_non_strict_json_through(name: str, data: st.DataObject) -> None:
    document, parse = PARSERS[name]
    kind = data.draw(st.sampled_from(["constant", "duplicate", "depth"]))
    if kind == "constant":
        extra = data.draw(with_constants)
    elif kind == "duplicate":
        extra = data.draw(with_duplicates)
    else:
        depth = data.draw(st.integers(DEFAULT_MAX_DEPTH, 3000))
        extra = "[" * depth + "]" * depth  # one more level inside the document
    with pytest.raises(LogtoError) as info:
        parse(_embed(document, extra))
    assert info.value.code == EXPECTED_CODES[name]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(PARSERS)), st.text(max_size=200) | json_values.map(json.dumps))
def test_parsers_raise_only_typed_errors(name: str, text: str) -> None:
    _, parse = PARSERS[name]
    with contextlib.suppress(LogtoError):
        parse(text)


def test_an_error_body_with_nan_is_no_oauth_error() -> None:
    # raise_for_status decodes error bodies strictly too: an ambiguous error is not trusted.
    for text in ('{"error": "invalid_grant", "x": NaN}', '{"error": "a", "error": "b"}'):
        with pytest.raises(ProviderResponseError) as info:
            parse_token_response(_body(text, status=400))
        assert not isinstance(info.value, OAuthError)
        assert info.value.code == "provider_response.status"


@pytest.mark.parametrize(
    "text",
    [
        "[",
        "[]",
        '{"metadata_fetched_at": "x"}',
        '{"metadata_fetched_at": true}',
        '{"last_forced_jwks_refetch": "x"}',
        '{"metadata": {"issuer": 1}}',
        '{"metadata": [1]}',
        '{"keys": 5}',
        '{"metadata": null, "metadata": null}',
    ],
)
def test_provider_state_cache_errors_are_typed(text: str) -> None:
    with pytest.raises(LogtoError) as info:
        ProviderState.from_json(text)
    assert info.value.code == "provider_state.cache_invalid"
