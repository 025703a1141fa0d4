"""Short, printable excerpts of text that came from outside (the provider, the browser).

Error messages quote provider text only through :func:`excerpt`: bounded in length, with
control characters (newlines, escapes, NUL, bidirectional overrides...) replaced, so that a
hostile provider can neither flood a log line nor forge one.
"""

from __future__ import annotations

MESSAGE_CHARS = 240
"""How much provider text a message quotes (the full value stays on an attribute)."""

BODY_CHARS = 200
"""How much of an unexpected response body an error keeps for diagnostics."""

ELLIPSIS = "..."


def printable(text: str) -> str:
    """``text`` with every non-printable character replaced by a space."""
    if text.isprintable():  # the common case, in C
        return text
    return "".join(ch if ch.isprintable() else " " for ch in text)


def excerpt(text: str, limit: int = MESSAGE_CHARS) -> str:
    """At most ``limit`` printable characters of ``text``, plus ``...`` when it was cut."""
    if len(text) <= limit:
        return printable(text)
    return printable(text[:limit]) + ELLIPSIS


def decode(body: bytes) -> str:
    """A response body as text, whatever its bytes."""
    return body.decode("utf-8", errors="replace")


def body_excerpt(body: bytes, limit: int = BODY_CHARS) -> str:
    """:func:`excerpt` of the beginning of a response body (only that much is decoded)."""
    return excerpt(decode(body[: limit * 4 + 4]), limit)
