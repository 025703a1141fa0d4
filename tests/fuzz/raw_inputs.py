"""Raw decoding for the coverage-guided engine: the fuzzer's bytes as the parser's own input.

With :class:`~tests.fuzz.bytes_random.ByteRandom` alone, every input the guided engine tries is
one the fast engine's generators could draw. In raw mode (``guided.py --raw``) half of the
inputs instead keep the generator's draw for the other members of the target's input (status,
flags, nonce, options) and put the fuzzer's remaining bytes, unchanged, in its main one: the
body of a provider response, the compact JWS, the callback URL, the redirect URI. That is the
input space libFuzzer's own mutations and comparison-guided insertions work best in.

Raw text is decoded with ``surrogateescape`` (bytes that are not UTF-8 become lone surrogates,
which parsers must handle anyway). A secret marker the fuzzer happens to write into raw text is
defused, as the generators do for a marker moved out of its place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .bytes_random import ByteRandom
from .generators import MARKER

HEAD = 9
"""Bytes of a raw-mode input: one for the mode, eight that drive the generator."""


def _text(raw: bytes) -> str:
    return raw.replace(MARKER.encode(), b"FUZZCOPIED").decode("utf-8", "surrogateescape")


def _body(raw: bytes) -> bytes:
    return raw.replace(MARKER.encode(), b"FUZZCOPIED")


def _first(value: tuple[Any, ...], replacement: Any) -> tuple[Any, ...]:
    return (replacement, *value[1:])


def _second(value: tuple[Any, ...], replacement: Any) -> tuple[Any, ...]:
    return (value[0], replacement, *value[2:])


_RAW: dict[str, Callable[[Any, bytes], Any]] = {
    "callback": lambda value, raw: _first(value, _text(raw)),
    "jwt": lambda value, raw: _text(raw),
    "id_token": lambda value, raw: _first(value, _text(raw)),
    "discovery": lambda value, raw: _second(value, _body(raw)),
    "token": lambda value, raw: _second(value, _body(raw)),
    "userinfo": lambda value, raw: _second(value, _body(raw)),
    "jwks": lambda value, raw: _second(value, _body(raw)),
    "error_body": lambda value, raw: _second(value, _body(raw)),
    "sign_in_url": lambda value, raw: dataclasses.replace(value, redirect_uri=_text(raw)),
    "end_session_url": lambda value, raw: _first(value, _text(raw)),
}
"""For each target: its input with the main member replaced by raw bytes."""


def decode(name: str, generate: Callable[[ByteRandom], Any], data: bytes, raw: bool) -> Any:
    """The target input that ``data`` stands for (see the module docstring)."""
    if not raw or not data or data[0] < 0x80:
        return generate(ByteRandom(data[1:] if raw else data))
    return _RAW[name](generate(ByteRandom(data[1:HEAD])), data[HEAD:])
