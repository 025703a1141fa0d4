"""Mutators of the fast fuzz engine: text, bytes, JSON values and compact JWS tokens.

Every mutator is a pure function of a seeded :class:`random.Random` and its input, so a run is
reproducible from its seed. They know nothing about coverage: they take a valid input and
break it in the ways parsers tend to get wrong (nasty characters, lone surrogates, control
characters, %-escapes, JSON structural tokens, truncation, duplicated segments, values of the
wrong type, non-canonical base64url). This is test tooling, so :mod:`random` is fine here.
"""

from __future__ import annotations

import base64
import json
import math
import random
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, unquote

# Strings that trip parsers: control characters, lone surrogates, characters whose case
# mapping changes length, URL and JSON syntax, percent escapes (broken ones included).
NASTY_TEXT: tuple[str, ...] = (
    "\x00",
    "\x01",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9f",
    "\t",
    "\r\n",
    "\n",
    " ",
    "\ud800",
    "\udfff",
    "\udc80",
    "\ud83d",
    "\ufeff",
    "\u2028",
    "\u202e",
    "\uffff",
    "\U0010ffff",
    "\u0130",
    "\u00df",
    "\ufb00",
    "\u212a",
    "\U0001f600",
    "%",
    "%0",
    "%00",
    "%zz",
    "%ff",
    "%C0%80",
    "%ed%a0%80",
    "%25",
    "%26",
    "%3D",
    "%23",
    "%2F",
    "%0A",
    "&",
    "=",
    "#",
    "?",
    "/",
    "//",
    "\\",
    "@",
    ":",
    ";",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    ",",
    ".",
    "..",
    "+",
    "-",
    "_",
    "==",
    "null",
    "true",
    "NaN",
    "-Infinity",
    "1e999",
    "-0",
    "<script>",
    "javascript:",
    "http://",
    "https://evil.example",
    "A" * 300,
)
NASTY_BYTES: tuple[bytes, ...] = (
    b"\x00",
    b"\xff",
    b"\xfe\xff",
    b"\xef\xbb\xbf",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xe2\x82",
    *(text.encode("utf-8", "surrogatepass") for text in NASTY_TEXT),
)
JSON_TOKENS: tuple[str, ...] = (
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "\\",
    '\\"',
    "\\u",
    "\\ud800",
    "\\udc00",
    "\\u0000",
    "null",
    "true",
    "false",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "1e999",
    "0x10",
    "01",
    "1" * 5000,  # more digits than int() accepts from a string by default
    "[" * 3000,  # deeper than the JSON decoder recurses
    '{"a":' * 3000,
    "/*",
    "//",
    ",}",
    ",]",
)
# Values a JSON member can be swapped for: every JSON type, edge numbers, odd strings.
JSON_SWAPS: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**63,
    -(2**63),
    2**70,
    10**30,
    0.5,
    -0.0,
    1e308,
    1e-320,
    math.nan,
    math.inf,
    -math.inf,
    "",
    " ",
    "\ud800",
    "\x00",
    "null",
    "0",
    "1e3",
    "A" * 5000,
    [],
    {},
    [None],
    [""],
    {"": None},
)
_SEPARATORS = ("&", "=", ".", "/", ",", " ", ":", "?", "#", "%")


def geometric(rng: random.Random, mean_extra: float = 1.0, cap: int = 8) -> int:
    """1, 2, 3, ... with falling probability: how many mutations to stack."""
    count = 1
    while count < cap and rng.random() < mean_extra / (mean_extra + 1.0):
        count += 1
    return count


def random_char(rng: random.Random) -> str:
    """One character from a range chosen to hit printable ASCII, controls, surrogates and
    multi-byte code points."""
    roll = rng.random()
    if roll < 0.35:
        return chr(rng.randrange(0x20, 0x7F))
    if roll < 0.5:
        return chr(rng.randrange(0x00, 0x20))
    if roll < 0.6:
        return chr(rng.randrange(0xD800, 0xE000))
    if roll < 0.75:
        return chr(rng.randrange(0x80, 0x800))
    if roll < 0.9:
        return chr(rng.randrange(0x800, 0x10000))
    return chr(rng.randrange(0x10000, 0x110000))


def _span(rng: random.Random, size: int) -> tuple[int, int]:
    start = rng.randrange(size + 1)
    end = min(size, start + rng.choice((1, 1, 2, 4, 8, 32, 256)))
    return start, end


# ---- text -------------------------------------------------------------------------------------


def _t_flip(rng: random.Random, text: str) -> str:
    if not text:
        return random_char(rng)
    i = rng.randrange(len(text))
    return text[:i] + random_char(rng) + text[i + 1 :]


def _t_insert(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) + 1)
    token = rng.choice(NASTY_TEXT) if rng.random() < 0.8 else rng.choice(JSON_TOKENS)
    return text[:i] + token + text[i:]


def _t_delete(rng: random.Random, text: str) -> str:
    start, end = _span(rng, len(text))
    return text[:start] + text[end:]


def _t_truncate(rng: random.Random, text: str) -> str:
    return text[: rng.randrange(len(text) + 1)]


def _t_duplicate(rng: random.Random, text: str) -> str:
    start, end = _span(rng, len(text))
    at = rng.randrange(len(text) + 1)
    return text[:at] + text[start:end] * rng.choice((1, 1, 2, 50)) + text[at:]


def _t_segments(rng: random.Random, text: str) -> str:
    """Split on a separator the text holds; drop, duplicate, swap or empty a segment."""
    present = [sep for sep in _SEPARATORS if sep in text]
    if not present:
        return _t_insert(rng, text)
    sep = rng.choice(present)
    parts = text.split(sep)
    i = rng.randrange(len(parts))
    action = rng.randrange(5)
    if action == 0 and len(parts) > 1:
        del parts[i]
    elif action == 1:
        parts.insert(rng.randrange(len(parts) + 1), parts[i])
    elif action == 2:
        j = rng.randrange(len(parts))
        parts[i], parts[j] = parts[j], parts[i]
    elif action == 3:
        parts[i] = ""
    else:
        parts.insert(rng.randrange(len(parts) + 1), rng.choice(NASTY_TEXT))
    return sep.join(parts)


def _t_case(rng: random.Random, text: str) -> str:
    start, end = _span(rng, len(text))
    change = rng.choice((str.upper, str.lower, str.swapcase))
    return text[:start] + change(text[start:end]) + text[end:]


def _t_long(rng: random.Random, text: str) -> str:
    at = rng.randrange(len(text) + 1)
    return text[:at] + rng.choice("A%.=&\\\x00\ud800") * rng.choice((100, 5000, 20000)) + text[at:]


def _t_percent(rng: random.Random, text: str) -> str:
    """Percent-encode a span (as UTF-8, surrogates passed through) or decode one."""
    start, end = _span(rng, len(text))
    piece = text[start:end]
    if rng.random() < 0.5:
        changed = quote(piece.encode("utf-8", "surrogatepass"), safe="")
    else:
        changed = unquote(piece, errors="surrogateescape")
    return text[:start] + changed + text[end:]


def _t_ascii_flip(rng: random.Random, text: str) -> str:
    """Swap one character for a near neighbour: keeps the text in its alphabet."""
    if not text:
        return "A"
    i = rng.randrange(len(text))
    code = ord(text[i]) + rng.choice((-2, -1, 1, 2, 32, -32))
    return text[:i] + chr(max(0, min(code, 0x10FFFF))) + text[i + 1 :]


TEXT_MUTATORS: tuple[Callable[[random.Random, str], str], ...] = (
    _t_flip,
    _t_insert,
    _t_insert,
    _t_delete,
    _t_truncate,
    _t_duplicate,
    _t_segments,
    _t_segments,
    _t_case,
    _t_long,
    _t_percent,
    _t_ascii_flip,
)


def mutate_text(rng: random.Random, text: str) -> str:
    """``text`` with one or more stacked text mutations."""
    for _ in range(geometric(rng, 0.7)):
        text = rng.choice(TEXT_MUTATORS)(rng, text)
    return text


def nasty_text(rng: random.Random) -> str:
    """A short string of nasty tokens and random characters."""
    parts = [
        rng.choice(NASTY_TEXT) if rng.random() < 0.5 else random_char(rng)
        for _ in range(rng.randrange(1, 6))
    ]
    return "".join(parts)


# ---- bytes ------------------------------------------------------------------------------------


def _b_flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    i = rng.randrange(len(data))
    value = data[i] ^ (1 << rng.randrange(8)) if rng.random() < 0.5 else rng.randrange(256)
    return data[:i] + bytes([value]) + data[i + 1 :]


def _b_insert(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    token = rng.choice(NASTY_BYTES) if rng.random() < 0.6 else rng.choice(JSON_TOKENS).encode()
    return data[:i] + token + data[i:]


def _b_delete(rng: random.Random, data: bytes) -> bytes:
    start, end = _span(rng, len(data))
    return data[:start] + data[end:]


def _b_truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _b_duplicate(rng: random.Random, data: bytes) -> bytes:
    start, end = _span(rng, len(data))
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[start:end] * rng.choice((1, 1, 2, 100)) + data[at:]


def _b_text(rng: random.Random, data: bytes) -> bytes:
    """A text mutation, bytes that are not UTF-8 kept as they were where possible."""
    text = mutate_text(rng, data.decode("utf-8", "surrogateescape"))
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate the mutation added: encode it as is
        return text.encode("utf-8", "surrogatepass")


BYTES_MUTATORS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    _b_flip,
    _b_insert,
    _b_insert,
    _b_delete,
    _b_truncate,
    _b_duplicate,
    _b_text,
)


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """``data`` with one or more stacked byte mutations."""
    for _ in range(geometric(rng, 0.7)):
        data = rng.choice(BYTES_MUTATORS)(rng, data)
    return data


# ---- JSON values ------------------------------------------------------------------------------


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value: mostly an edge-case scalar, sometimes a small container."""
    roll = rng.random()
    if depth >= 2 or roll < 0.6:
        return rng.choice(JSON_SWAPS)
    if roll < 0.75:
        return nasty_text(rng)
    if roll < 0.87:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {nasty_text(rng): random_json(rng, depth + 1) for _ in range(rng.randrange(3))}


def _mutate_number(rng: random.Random, value: float) -> Any:
    roll = rng.randrange(6)
    if roll == 0:
        return value + rng.choice((-1, 1, -60, 60, -3600, 3600))
    if roll == 1:
        return -value
    if roll == 2:
        return float(value) + rng.choice((0.5, -0.5, 1e-9))
    if roll == 3:
        return str(value)
    if roll == 4:
        return value * rng.choice((10, 1000, 10**12))
    return rng.choice(JSON_SWAPS)


def _mutate_key(rng: random.Random, key: str, names: Sequence[str]) -> str:
    roll = rng.randrange(4)
    if roll == 0:
        return key.upper()
    if roll == 1:
        return key + rng.choice((" ", "\x00", "\ud800", "_"))
    if roll == 2 and names:
        return rng.choice(names)
    return mutate_text(rng, key)


def mutate_json(rng: random.Random, value: Any, names: Sequence[str] = ()) -> Any:
    """A copy of ``value`` with one change somewhere in it (containers are copied along the
    path, never modified). ``names`` are member names worth adding or renaming to."""
    if isinstance(value, dict):
        return _mutate_object(rng, value, names)
    if isinstance(value, list):
        return _mutate_array(rng, value, names)
    if isinstance(value, str):
        roll = rng.random()
        if roll < 0.55:
            return mutate_text(rng, value)
        if roll < 0.7:
            return nasty_text(rng)
        return random_json(rng)
    if isinstance(value, bool) or value is None:
        return random_json(rng) if rng.random() < 0.8 else (not value)
    if isinstance(value, (int, float)):
        return _mutate_number(rng, value)
    return random_json(rng)


def _mutate_object(rng: random.Random, value: dict[str, Any], names: Sequence[str]) -> Any:
    result = dict(value)
    keys = list(result)
    roll = rng.random()
    if keys and roll < 0.5:
        key = rng.choice(keys)
        result[key] = mutate_json(rng, result[key], names)
    elif keys and roll < 0.65:
        del result[rng.choice(keys)]
    elif roll < 0.8:
        key = rng.choice(names) if names and rng.random() < 0.6 else nasty_text(rng)
        result[key] = random_json(rng)
    elif keys and roll < 0.9:
        key = rng.choice(keys)
        result[_mutate_key(rng, key, names)] = result.pop(key)
    elif roll < 0.95:
        return [result] if rng.random() < 0.5 else list(result.values())
    else:
        return random_json(rng)
    return result


def _mutate_array(rng: random.Random, value: list[Any], names: Sequence[str]) -> Any:
    result = list(value)
    roll = rng.random()
    if result and roll < 0.45:
        i = rng.randrange(len(result))
        result[i] = mutate_json(rng, result[i], names)
    elif result and roll < 0.6:
        del result[rng.randrange(len(result))]
    elif roll < 0.75:
        result.insert(rng.randrange(len(result) + 1), random_json(rng))
    elif result and roll < 0.85:
        result.append(result[rng.randrange(len(result))])
    elif result and roll < 0.92:
        return result[0]
    else:
        return random_json(rng)
    return result


def mutate_json_times(rng: random.Random, value: Any, names: Sequence[str] = ()) -> Any:
    for _ in range(geometric(rng, 0.8, cap=5)):
        value = mutate_json(rng, value, names)
    return value


def dump_json(rng: random.Random, value: Any) -> bytes:
    """Serialise like a provider might, or nearly: sometimes with raw (even lone-surrogate)
    UTF-8, padding, a byte-order mark, or a duplicated member."""
    roll = rng.random()
    if roll < 0.8:
        text = json.dumps(value)
    elif roll < 0.9:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(value, indent=rng.choice((1, 4)))
    if isinstance(value, dict) and value and rng.random() < 0.05:
        # Duplicate member: JSON parsers disagree on which one wins.
        key = rng.choice(list(value))
        text = "{" + json.dumps(key) + ":" + json.dumps(random_json(rng)) + "," + text[1:]
    data = text.encode("utf-8", "surrogatepass")
    if rng.random() < 0.03:
        data = rng.choice((b"\xef\xbb\xbf", b" \n\t", b"\x00")) + data
    return data


# ---- compact JWS ------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode_loose(segment: str) -> bytes | None:
    """The bytes of a base64url segment, or ``None`` when it does not decode."""
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (ValueError, TypeError):
        return None


def _non_canonical(rng: random.Random, segment: str) -> str:
    """Spellings a strict decoder must refuse: padding, the standard alphabet, stray bits in
    the last character, an impossible length."""
    roll = rng.randrange(5)
    if roll == 0:
        return segment + rng.choice(("=", "==", "==="))
    if roll == 1:
        return segment.replace("-", "+").replace("_", "/") + rng.choice(("+", "/", ""))
    if roll == 2 and segment:
        last = segment[-1]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        index = alphabet.index(last) if last in alphabet else 0
        return segment[:-1] + alphabet[(index + rng.randrange(1, 4)) % 64]
    if roll == 3:
        return segment + "A"
    return segment + rng.choice(" \n\t.")


def mutate_segment(rng: random.Random, segment: str, names: Sequence[str] = ()) -> str:
    """Change one base64url segment through its decoded bytes or JSON, or its spelling."""
    roll = rng.random()
    if roll < 0.35:
        decoded = b64url_decode_loose(segment)
        if decoded is not None:
            try:
                value = json.loads(decoded)
                return b64url(dump_json(rng, mutate_json_times(rng, value, names)))
            except (ValueError, RecursionError):  # not JSON, or nested too deep for it
                return b64url(mutate_bytes(rng, decoded))
    if roll < 0.55:
        decoded = b64url_decode_loose(segment) or b""
        return b64url(mutate_bytes(rng, decoded))
    if roll < 0.7:
        return _non_canonical(rng, segment)
    if roll < 0.8:
        return b64url(dump_json(rng, random_json(rng)))
    return mutate_text(rng, segment)


def mutate_token(
    rng: random.Random, token: str, others: Sequence[str] = (), names: Sequence[str] = ()
) -> str:
    """A compact JWS with one or more segment-level or text-level changes; ``others`` are
    tokens whose segments may be spliced in (a valid signature from another token)."""
    for _ in range(geometric(rng, 0.5, cap=4)):
        parts = token.split(".")
        roll = rng.random()
        if roll < 0.55:
            i = rng.randrange(len(parts))
            parts[i] = mutate_segment(rng, parts[i], names)
        elif roll < 0.65 and others:
            other = rng.choice(others).split(".")
            i = rng.randrange(min(len(parts), len(other)))
            parts[i] = other[i]
        elif roll < 0.8:
            i = rng.randrange(len(parts))
            action = rng.randrange(4)
            if action == 0 and len(parts) > 1:
                del parts[i]
            elif action == 1:
                parts.insert(i, parts[i])
            elif action == 2:
                parts.insert(i, "")
            else:
                j = rng.randrange(len(parts))
                parts[i], parts[j] = parts[j], parts[i]
        else:
            return mutate_text(rng, token)
        token = ".".join(parts)
    return token
