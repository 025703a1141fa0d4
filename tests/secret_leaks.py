"""An oracle for "no secret anywhere", independent of ``logto_core.scrub``.

It does not search for the encodings the scrubber knows: it decodes the text every way an
echo could have encoded it (percent-decoding once and twice, form-decoding, JSON and HTML
unescaping, base64 of every run at every alignment, standard and URL-safe) and looks for
the raw secret values in every decoding.
"""

from __future__ import annotations

import base64
import binascii
import html
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, unquote_plus

_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{6,}")


def _base64_decodings(text: str) -> Iterator[str]:
    for run in _BASE64_RUN.findall(text):
        run = run.replace("-", "+").replace("_", "/")
        for offset in range(4):
            chunk = run[offset:]
            # A final partial group still decodes to its whole bytes.
            chunk = chunk[:-1] if len(chunk) % 4 == 1 else chunk + "=" * (-len(chunk) % 4)
            try:
                yield base64.b64decode(chunk).decode("latin-1")
            except (binascii.Error, ValueError):  # pragma: no cover - the alphabet is checked
                continue


def decodings(text: str) -> set[str]:
    """``text`` and what it decodes to, up to two layers deep."""
    layer = {text}
    seen = set(layer)
    for _ in range(2):
        following: set[str] = set()
        for item in layer:
            following |= {
                unquote(item),
                unquote_plus(item),
                html.unescape(item),
                item.replace("\\/", "/").replace('\\"', '"'),
            }
            following |= set(_base64_decodings(item))
        layer = following - seen
        seen |= layer
    return seen


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """The secrets (at least 6 characters long) found in ``text`` in any decoding."""
    wanted = [s for s in secrets if len(s) >= 6]
    views = decodings(text)
    return sorted({secret for secret in wanted for view in views if secret in view})


def error_texts(error: BaseException) -> Iterator[str]:
    """Everything an error shows: ``str()``, ``repr()``, its args and text attributes, and
    the same for each exception of its cause/context chain (shown or not)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield from (repr(arg) for arg in current.args)
        yield from _attribute_texts(vars(current))
        current = current.__cause__ or current.__context__


def _attribute_texts(values: dict[str, Any]) -> Iterator[str]:
    for value in values.values():
        if isinstance(value, str):
            yield value
        elif isinstance(value, bytes):
            yield value.decode("latin-1")
        elif value is not None and not isinstance(value, (int, float, BaseException)):
            yield repr(value)


def record_texts(records: Iterable[logging.LogRecord]) -> Iterator[str]:
    for record in records:
        yield record.getMessage()
        yield repr(record.args)
        if record.exc_info and record.exc_info[1] is not None:
            yield from error_texts(record.exc_info[1])


def assert_no_leak(texts: Iterable[str], secrets: Iterable[str]) -> None:
    secrets = list(secrets)
    for text in texts:
        found = leaks(text, secrets)
        assert not found, f"{len(found)} secret(s) leaked into: {text[:120]!r}"
