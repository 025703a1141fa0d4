"""Where to send the user after sign-in: only a path on the app's own origin.

Apps often carry a "return to" target through the sign-in (``/sign-in?next=/orders``). Taken
as it is, that is an open redirect (``next=https://evil.example`` or ``next=//evil.example``).
:func:`safe_return_to` accepts only a relative path and falls back to a default otherwise.
"""

from __future__ import annotations


def safe_return_to(target: str | None, default: str = "/") -> str:
    """``target`` if it is a plain absolute path on this origin (``/a/b?c#d``), else ``default``.

    Refused: anything with a scheme or host, protocol-relative ``//host`` and ``/\\host`` (which
    browsers treat as a host), backslashes, control characters and whitespace at the start.
    """
    if not isinstance(target, str) or not target.startswith("/"):
        return default
    if target.startswith(("//", "/\\")) or "\\" in target:
        return default
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return default
    # A single leading slash with no backslash cannot carry a scheme or a host.
    return target
