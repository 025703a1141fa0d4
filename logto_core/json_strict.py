"""The one strict JSON decoder of the SDK: every body, token segment and cache it reads.

Python's :func:`json.loads` accepts more than RFC 8259 allows and trusts its input: it
turns ``NaN``, ``Infinity`` and ``-Infinity`` into floats (RFC 8259 section 6 has no such
values), turns ``1e400`` into infinity, silently keeps the last of two members with the same
name (RFC 8259 section 4 leaves that to the parser, and two parsers that pick differently
see two different documents: RFC 7515 section 5.2 and RFC 7517 section 5 let a parser refuse
it), guesses UTF-16 and UTF-32 for byte input (RFC 8259 section 8.1 requires UTF-8), and
recurses once per nesting level, so a deep enough document raises :class:`RecursionError`.

:func:`loads` refuses all of that before or while decoding, and raises only
:class:`StrictJsonError`, a plain :class:`ValueError` subclass: callers turn it into their
own typed SDK error (it is deliberately not a :class:`~logto_core.errors.LogtoError`, since
the right error class depends on what was being read: a provider response, a token, a
cache, the session storage). Its message never quotes the input.

Bounds, checked before the decoder runs (so its cost stays linear in ``max_bytes``):

* ``max_bytes``: the size of the input (bytes for ``bytes``, characters for ``str``);
* ``max_depth``: how deeply arrays and objects may nest (``[[1]]`` has depth 2);
* :data:`MAX_NUMBER_CHARS`: the length of a run of digits, so that converting a number can
  never be quadratic (CPython bounds integer conversion to 4,300 digits by default, but an
  application may lift that limit, and floats are not bounded by it at all).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "Reason",
    "StrictJsonError",
    "loads",
]

DEFAULT_MAX_BYTES = 1024 * 1024
"""Default size cap: 1 MiB, the adapters' cap on a provider response body."""

DEFAULT_MAX_DEPTH = 64
"""Default nesting cap. Logto's deepest documents (userinfo with ``custom_data`` and
``identities``) nest four or five levels; 64 leaves room for any sane ``custom_data``."""

MAX_NUMBER_CHARS = 400
"""Longest accepted run of digits in a number (a double needs at most 17 significant digits;
309 integer digits already overflow it)."""

Reason = Literal["size", "encoding", "depth", "number", "constant", "duplicate", "syntax"]


class StrictJsonError(ValueError):
    """The input is not strict JSON, or exceeds a bound.

    ``reason`` says which rule it broke: ``size``, ``encoding`` (not UTF-8, or a byte order
    mark), ``depth``, ``number`` (a digit run over :data:`MAX_NUMBER_CHARS`, or a value that
    overflows a double, such as ``1e400``), ``constant`` (``NaN``, ``Infinity``,
    ``-Infinity``), ``duplicate`` (an object repeats a member name) or ``syntax``.
    The message never contains any part of the input.
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


def _pairs_to_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise StrictJsonError("duplicate", "JSON object repeats a member name")
    return result


def _refuse_constant(name: str) -> Any:
    raise StrictJsonError("constant", "JSON has a non-standard number (NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJsonError("number", "JSON number is out of the range of a double")
    return value


# Built once: json.loads with hooks would build a new decoder (and scanner) on every call.
# The C scanner calls these hooks too, so decoding stays in C for everything else.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs_to_object,
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
)

# A JSON string token. Scanning left to right, the leftmost match starts exactly where the
# decoder would start a string (outside strings there are no quotes in valid JSON) and ends
# where it would end it. DOTALL so that a backslash before a newline cannot end the match
# early; the decoder refuses such a string anyway.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SQUARE = str.maketrans("{}", "[]")
# A digit, then a lookbehind that only lets a match go on where a run of digits starts (the
# character before it is no digit), so each run is scanned once: a plain [0-9]{401} rescans
# a run from each of its positions (quadratic). Leading with the digit keeps the regex
# engine's fast scan for the first character.
_LONG_DIGITS = re.compile(rf"[0-9](?<![0-9][0-9])[0-9]{{{MAX_NUMBER_CHARS}}}")


def _check_bounds(text: str, max_depth: int) -> None:
    # Each check first looks at the raw text (one pass in C) and only strips the strings,
    # whose content may hold brackets and digits freely, when the raw text fails it.
    structure: str | None = None
    if _LONG_DIGITS.search(text):
        structure = _STRING.sub('""', text)
        if _LONG_DIGITS.search(structure):
            raise StrictJsonError("number", f"JSON number has more than {MAX_NUMBER_CHARS} digits")
    # With no more opening brackets than the cap, no nesting can exceed it.
    if text.count("[") + text.count("{") <= max_depth:
        return
    if structure is None:
        structure = _STRING.sub('""', text)
    _check_depth(_NOT_BRACKET.sub("", structure).translate(_SQUARE), max_depth)


def _check_depth(brackets: str, max_depth: int) -> None:
    """Refuse a bracket sequence (``[`` and ``]`` only) nesting deeper than ``max_depth``.

    Each pass deletes every innermost pair ``[]`` (they never overlap, and every deepest
    bracket is one), so it lowers the depth by one: a balanced sequence of depth ``d`` is
    empty after ``d`` passes. Deleting balanced pairs keeps the depth of what remains, so a
    run of more than ``max_depth`` opening brackets, before or after any pass, proves the
    nesting too deep at once (the usual shape of a hostile document). At most ``max_depth``
    passes, each a C-speed ``str.replace`` and ``re.search``: the cost is linear in the
    input whatever its shape, with no Python loop per bracket.
    """
    # A substring search (CPython's two-way algorithm: linear), not a regex: a regex for a
    # run of 65 rescans every shorter run from each of its positions.
    too_deep = "[" * (max_depth + 1)
    remaining = brackets
    for _ in range(max_depth):
        if too_deep in remaining:
            raise StrictJsonError("depth", f"JSON nests deeper than {max_depth} levels")
        shorter = remaining.replace("[]", "")
        if shorter == remaining:
            break
        remaining = shorter
    if not remaining:
        return
    if brackets.count("[") != brackets.count("]"):
        raise StrictJsonError("syntax", "JSON brackets are unbalanced")
    raise StrictJsonError("depth", f"JSON nests deeper than {max_depth} levels")


def loads(
    data: str | bytes,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Any:
    """Decode one strict JSON text (RFC 8259), or raise :class:`StrictJsonError`.

    ``bytes`` must be UTF-8 without a byte order mark. Refused: input longer than
    ``max_bytes``, nesting deeper than ``max_depth``, digit runs longer than
    :data:`MAX_NUMBER_CHARS`, numbers outside the range of a double, ``NaN`` and
    ``Infinity``, objects with a repeated member name, and anything that is not exactly one
    JSON value (surrounded by optional whitespace). Never raises anything else, never
    :class:`RecursionError`.
    """
    if not isinstance(data, (str, bytes)):
        raise StrictJsonError("syntax", "JSON text must be str or bytes")
    if len(data) > max_bytes:
        raise StrictJsonError("size", f"JSON text exceeds the size limit ({max_bytes})")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJsonError("encoding", "JSON text is not UTF-8") from None
    else:
        text = data
    if text.startswith("\ufeff"):
        raise StrictJsonError("encoding", "JSON text starts with a byte order mark")
    _check_bounds(text, max_depth)
    try:
        return _DECODER.decode(text)
    except StrictJsonError:
        raise
    except (ValueError, RecursionError):
        # ValueError: syntax errors, and integers longer than CPython's conversion limit.
        # RecursionError cannot happen after the depth check, unless the caller's own stack
        # is already nearly exhausted; it is still reported as a refusal, never raised.
        raise StrictJsonError("syntax", "text is not valid JSON") from None
