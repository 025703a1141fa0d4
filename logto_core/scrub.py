"""Removing a request's secrets from provider text.

Some proxies and gateways answer an error by echoing the request they received: its
``Authorization`` header, its form body, sometimes percent-encoded again or base64-encoded.
Any provider text an error carries (``error_description``, a body excerpt, a header value...)
may therefore hold the client secret, an authorization code, a PKCE verifier or a refresh
token. :func:`request_secrets` lists the secret values one request carried;
:class:`Scrubber` finds them in a text in every encoding a request or an echo of it uses and
replaces each occurrence with :data:`REDACTED`.

The flows scrub every error leaving them with the secrets of all the requests they made
(:mod:`logto_core.reporting`), so that no message, ``str()``, ``repr()``, attribute or log
record ever shows one.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus

from . import excerpts
from .excerpts import ELLIPSIS
from .http import HttpRequest

REDACTED = "[redacted]"

SENSITIVE_FIELDS: frozenset[str] = frozenset(
    {
        "access_token",
        "actor_token",
        "assertion",
        "client_assertion",
        "client_secret",
        "code",
        "code_verifier",
        "device_code",
        "id_token_hint",
        "password",
        "refresh_token",
        "subject_token",
        "token",
    }
)
"""Form and query fields whose values are secrets (RFC 6749, 7009, 7521, 7636, 8628, 8693)."""

SENSITIVE_HEADERS: frozenset[str] = frozenset({"authorization", "cookie", "dpop"})

MIN_FRAGMENT = 4
"""Shortest end of a cut text dropped as the possible beginning of a secret."""

MIN_BASE64_CORE = 8
"""Shortest base64 run searched for inside a longer base64 text (shorter ones would match
ordinary text by chance)."""

_PERCENT_HEX = re.compile(r"%[0-9a-fA-F]{2}")
_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")

# How a value appears in an echo: form-urlencoded (urlencode uses quote_plus), percent-encoded
# by quote (with and without "/" left alone), escaped inside a JSON string or in HTML.
_PERCENT_ENCODINGS: tuple[Callable[[str], str], ...] = (
    lambda s: quote_plus(s, safe=""),
    lambda s: quote(s, safe=""),
    lambda s: quote(s, safe="/"),
)
_TEXT_ENCODINGS: tuple[Callable[[str], str], ...] = (
    lambda s: json.dumps(s)[1:-1],
    lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    lambda s: html.escape(s, quote=True),
)


def request_secrets(request: HttpRequest) -> set[str]:
    """The secret values ``request`` carries: credentials in its sensitive headers (the
    header value, the credentials, and for Basic the ``id:secret`` pair and the secret, as
    sent and decoded) and the values of sensitive form and query fields."""
    found: set[str] = set()
    for name, value in request.headers:
        if name in SENSITIVE_HEADERS:
            found.update(_header_secrets(name, value))
    texts = [request.url.partition("?")[2]]
    if request.body:
        texts.append(request.body.decode("utf-8", errors="replace"))
    for text in texts:
        for name, value in parse_qsl(text, keep_blank_values=False):
            if name in SENSITIVE_FIELDS:
                found.add(value)
    return {value for value in found if value}


def _header_secrets(name: str, value: str) -> set[str]:
    found = {value, value.strip()}
    if name != "authorization":
        return found
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    found.add(credentials)
    if scheme.lower() == "basic" and credentials:
        try:
            pair = base64.b64decode(credentials, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return found
        encoded_id, _, encoded_secret = pair.partition(":")
        # RFC 6749 2.3.1: both halves are form-urlencoded before base64.
        found.update(
            {
                pair,
                f"{unquote_plus(encoded_id)}:{unquote_plus(encoded_secret)}",
                encoded_secret,
                unquote_plus(encoded_secret),
            }
        )
    return found


def _normalise(text: str) -> str:
    # Percent-encoders differ in hex case (%2f / %2F); upper-casing the hex digits keeps every
    # position, so a match in the normalised text is a match at the same place in the original.
    if "%" not in text:
        return text
    return _PERCENT_HEX.sub(lambda m: m.group(0).upper(), text)


def _base64_forms(value: str) -> set[str]:
    """Base64 runs (standard and URL-safe, padding stripped) that appear wherever ``value``
    is base64-encoded, alone or inside a longer text: the exact encoding, and for each of the
    three alignments a group of 3 bytes can start at, the encoding of the whole groups."""
    data = value.encode("utf-8", errors="surrogatepass")
    forms: set[str] = set()
    if len(data) >= 3:
        forms.add(base64.b64encode(data).decode("ascii").rstrip("="))
    for start in range(3):
        whole = data[start:]
        whole = whole[: len(whole) - len(whole) % 3]
        core = base64.b64encode(whole).decode("ascii")
        if len(core) >= MIN_BASE64_CORE:
            forms.add(core)
    return forms | {form.replace("+", "-").replace("/", "_") for form in forms}


def _forms(secret: str) -> tuple[set[str], set[str]]:
    """The plain forms of ``secret`` (normalised) and its base64 forms. Base64 is searched
    for the forms a request carries a value in (as it is, form- or percent-encoded): what an
    echo that base64-encodes the request it received contains."""
    once = {encode(secret) for encode in _PERCENT_ENCODINGS}
    twice = {encode(form) for form in once for encode in _PERCENT_ENCODINGS}
    escaped = {encode(secret) for encode in _TEXT_ENCODINGS}
    plain = {_normalise(form) for form in {secret} | once | twice | escaped}
    encoded: set[str] = set()
    for form in {secret} | once:
        encoded |= _base64_forms(form)
    return plain, encoded - plain


class Scrubber:
    """Replaces every occurrence of the given secrets, in any of the encodings above, with
    :data:`REDACTED`. Base64 occurrences are widened to the partial groups around them.

    ``base`` adds the secrets of another scrubber (built once for the configured client
    secret, say) without deriving their forms again.
    """

    _plain: list[str]
    _base64: list[str]

    def __init__(self, secrets: Iterable[str], base: Scrubber | None = None) -> None:
        plain: set[str] = set(base._plain) if base is not None else set()
        encoded: set[str] = set(base._base64) if base is not None else set()
        for secret in {s for s in secrets if s}:
            forms, base64_forms = _forms(secret)
            plain |= forms
            encoded |= base64_forms
        self._plain = sorted(plain, key=len, reverse=True)
        self._base64 = sorted(encoded - plain, key=len, reverse=True)
        self._longest = max((len(n) for n in (*self._plain, *self._base64)), default=0)
        # A secret that shares text with the marker could reappear around it.
        self._marker_safe = not any(
            "[" in n or "]" in n or n in REDACTED for n in (*self._plain, *self._base64)
        )

    def __bool__(self) -> bool:
        return bool(self._plain)

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced."""
        if not self._plain or not text:
            return text
        scrubbed = _apply(text, self._mask(text), len(text))
        return scrubbed if self._marker_safe else self.settle(scrubbed)

    def settle(self, text: str) -> str:
        """Remove, without a marker, any secret still in ``text``: one that joining pieces
        made (next to the marker, around a control character replaced by a space, before an
        ellipsis). For text built from scrubbed parts. Each round shortens it: it ends."""
        while True:
            mask = self._mask(text)
            if mask.find(1) == -1:
                return text
            text = _apply(text, mask, len(text), marker="")

    def excerpt(self, text: str, limit: int) -> str:
        """A bounded excerpt of a possibly long ``text``, scrubbed *before* it is cut (a cut
        could otherwise leave the first half of a secret). Only the beginning is scanned."""
        if not self._plain:
            return excerpts.excerpt(text, limit)
        window = text[: limit * 4 + self._longest + 8]
        stop = len(window)
        if stop < len(text):
            # A secret starting at or after ``stop`` might reach beyond the window: leave it
            # out; one starting before it lies wholly inside the window and is replaced.
            stop -= self._longest + 6
        scrubbed = _apply(window, self._mask(window), stop)
        cut = stop < len(text)
        shown = excerpts.excerpt(scrubbed, limit)
        if cut and not shown.endswith(ELLIPSIS):
            shown += ELLIPSIS
        return self.settle(shown)

    def truncated(self, text: str) -> str:
        """Scrub a text that was cut (ending in ``...``) before it could be scrubbed: also drop
        a trailing part that is the beginning of a secret whose rest fell beyond the cut."""
        if not self._plain:
            return text
        cut = text.endswith(ELLIPSIS)
        body = self(text[: -len(ELLIPSIS)] if cut else text)
        if cut:
            body = body[: len(body) - self._partial_tail(body)]
        return self.settle(body + (ELLIPSIS if cut else ""))

    def _mask(self, text: str) -> bytearray:
        mask = bytearray(len(text))
        normalised = _normalise(text)
        for needle in self._plain:
            for start in _occurrences(normalised, needle):
                mask[start : start + len(needle)] = b"\x01" * len(needle)
        for needle in self._base64:
            for start in _occurrences(text, needle):
                begin, end = _widen_base64(text, start, start + len(needle))
                mask[begin:end] = b"\x01" * (end - begin)
        return mask

    def _partial_tail(self, text: str) -> int:
        """Length of the longest suffix of ``text`` (at least :data:`MIN_FRAGMENT` long) that
        is the beginning of some form of a secret."""
        tail = _normalise(text[-self._longest :])
        longest = 0
        for needle in (*self._plain, *self._base64):
            for size in range(min(len(needle) - 1, len(tail)), max(longest, MIN_FRAGMENT - 1), -1):
                if needle.startswith(tail[-size:]):
                    longest = size
                    break
        return longest


def _occurrences(text: str, needle: str) -> Iterable[int]:
    start = text.find(needle)
    while start != -1:
        yield start
        start = text.find(needle, start + 1)


def _widen_base64(text: str, begin: int, end: int) -> tuple[int, int]:
    # The groups shared with the neighbouring bytes carry a few bits of the secret too.
    for _ in range(3):
        if begin > 0 and text[begin - 1] in _BASE64_ALPHABET:
            begin -= 1
    for _ in range(3):
        if end < len(text) and text[end] in _BASE64_ALPHABET:
            end += 1
    for _ in range(2):
        if end < len(text) and text[end] == "=":
            end += 1
    return begin, end


def _apply(text: str, mask: bytearray, stop: int, marker: str = REDACTED) -> str:
    """``text[:stop]`` with each masked run replaced by one ``marker`` (a run that starts
    before ``stop`` is replaced whole)."""
    parts: list[str] = []
    index = 0
    while index < stop:
        hidden = mask.find(1, index)
        if hidden == -1 or hidden >= stop:
            parts.append(text[index:stop])
            break
        parts.append(text[index:hidden])
        parts.append(marker)
        index = mask.find(0, hidden)
        if index == -1:
            break
    return "".join(parts)


__all__ = ["REDACTED", "SENSITIVE_FIELDS", "Scrubber", "request_secrets"]
