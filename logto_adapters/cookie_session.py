"""A session kept in the browser, encrypted, that never outgrows what a browser keeps.

A browser keeps a cookie of at most 4096 bytes (name, value and attributes: RFC 6265 section
6.1 asks for at least that, and Chromium and Firefox drop a longer one *silently*). A Logto
session holds an ID token, a refresh token and the access tokens obtained, JWTs of most of a
kilobyte each: two API tokens and an organization token pass 4 KB. A dropped cookie loses
the rotated refresh token, and the next refresh signs the user out. So this storage

* encrypts and authenticates the whole session with ``cryptography``'s Fernet (AES-128-CBC
  and HMAC-SHA256), keys rotated with ``MultiFernet`` (the first key encrypts, every key
  decrypts), with a maximum age;
* splits the value across at most ``max_cookies`` cookies (``<name>.0``, ``<name>.1``, ...),
  each under :data:`COOKIE_LIMIT` with its attributes, and deletes the chunks no longer
  needed;
* when even that is too small, first drops the cached access tokens (they come back with a
  refresh; the grant never goes), and then refuses the write with
  :class:`SessionTooLargeError`, which names the fix, before any cookie is set: the SDK
  reports it as a ``StorageError`` and this process keeps the rotated refresh token for the
  next request, instead of the browser discarding the session without a word.

Use one :class:`CookieSession` per request: read from the request's cookies, give it to the
client as its storage, and set :meth:`CookieSession.set_cookies` on the response. A cookie
that fails to decrypt (tampered, too old, another key) reads as no session.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from logto_core import log
from logto_core.errors import LogtoUsageError, SessionTooLargeError
from logto_core.session import StorageKey, decode_session, encode_session
from logto_core.storage import Storage

COOKIE_LIMIT = 4096
"""Bytes a browser keeps of one cookie, counting its name, value and attributes."""

DEFAULT_MAX_COOKIES = 2
"""Chunks a session may take: two full cookies already make an 8 KB ``Cookie`` header, the
default request-header limit of common servers (gunicorn, nginx)."""

DEFAULT_MAX_AGE = 14 * 24 * 3600
"""Seconds a session cookie lives, and that its encryption is accepted: Logto's
refresh-token lifetime."""

_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")


@dataclass(frozen=True, slots=True)
class SetCookie:
    """One ``Set-Cookie`` to send: ``value`` ``""`` with ``max_age`` 0 deletes it."""

    name: str
    value: str
    max_age: int
    path: str
    secure: bool
    same_site: str
    domain: str | None = None

    def header(self) -> str:
        """The ``Set-Cookie`` header value (always ``HttpOnly``: scripts never see tokens)."""
        parts = [f"{self.name}={self.value}", f"Path={self.path}", f"Max-Age={self.max_age}"]
        if self.domain:
            parts.append(f"Domain={self.domain}")
        parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        parts.append(f"SameSite={self.same_site}")
        return "; ".join(parts)

    def __repr__(self) -> str:  # the value is the encrypted session: its size says enough
        return f"SetCookie(name={self.name!r}, bytes={len(self.value)}, max_age={self.max_age})"


class CookieCipher:
    """The keys and cookie settings of an app, made once: ``keys`` are Fernet keys
    (``Fernet.generate_key()``; 32 bytes, URL-safe base64), the first encrypting.

    ``secure`` should stay on everywhere but plain-HTTP development; ``same_site`` ``Lax``
    lets the sign-in callback (a top-level navigation from Logto) carry the cookie.
    """

    def __init__(
        self,
        keys: str | bytes | Sequence[str | bytes],
        *,
        name: str = "logto_session",
        max_cookies: int = DEFAULT_MAX_COOKIES,
        max_age: int = DEFAULT_MAX_AGE,
        path: str = "/",
        secure: bool = True,
        same_site: str = "Lax",
        domain: str | None = None,
    ) -> None:
        listed = [keys] if isinstance(keys, (str, bytes)) else list(keys)
        if not listed:
            raise LogtoUsageError("CookieCipher needs at least one key", code="usage.cookie_key")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in listed])
        except (ValueError, TypeError):
            raise LogtoUsageError(
                "each cookie key must be a Fernet key: 32 random bytes in URL-safe base64 "
                "(cryptography.fernet.Fernet.generate_key())",
                code="usage.cookie_key",
            ) from None
        if _NAME.fullmatch(name) is None:
            raise LogtoUsageError(
                "the cookie name must be 1 to 64 letters, digits, '_' or '-'",
                code="usage.cookie_name",
            )
        if not 1 <= max_cookies <= 16:
            raise LogtoUsageError("max_cookies must be from 1 to 16", code="usage.cookie_count")
        if same_site not in ("Lax", "Strict", "None") or (same_site == "None" and not secure):
            raise LogtoUsageError(
                'same_site must be "Lax", "Strict" or "None" (which needs secure)',
                code="usage.cookie_same_site",
            )
        self.name = name
        self.max_cookies = max_cookies
        self.max_age = max_age
        self.path = path
        self.secure = secure
        self.same_site = same_site
        self.domain = domain

    def session(self, cookies: Mapping[str, str]) -> CookieSession:
        """The storage of one request, read from its cookies (name to value)."""
        return CookieSession(self, cookies)

    # ---- the value ---------------------------------------------------------------------

    def chunk_names(self) -> list[str]:
        return [f"{self.name}.{index}" for index in range(self.max_cookies)]

    def read(self, cookies: Mapping[str, str]) -> dict[str, str]:
        """What the cookies hold; empty when absent, incomplete, tampered or too old."""
        chunks: list[str] = []
        for name in self.chunk_names():
            chunk = cookies.get(name)
            if chunk is None:
                break
            chunks.append(chunk)
        if not chunks:
            return {}
        try:
            plain = self._fernet.decrypt("".join(chunks).encode("ascii"), ttl=self.max_age)
            data = json.loads(plain)
        except (InvalidToken, UnicodeError, ValueError):
            log.storage_unreadable()
            return {}
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            log.storage_unreadable()
            return {}
        return data

    def cookies_for(self, values: Mapping[str, str]) -> list[SetCookie]:
        """The ``Set-Cookie`` list storing ``values`` (and deleting unused chunks); raises
        :class:`SessionTooLargeError` when they cannot fit, after trying without the cached
        access tokens."""
        if not values:
            return [self._cookie(name, "", 0) for name in self.chunk_names()]
        chunks = self._chunks(values)
        if chunks is None:
            chunks = self._chunks(_without_access_tokens(values))
            if chunks is None:
                raise SessionTooLargeError(
                    f"the session does not fit in {self.max_cookies} cookie(s) of "
                    f"{COOKIE_LIMIT} bytes, even without its cached access tokens: keep "
                    "sessions on the server, or raise max_cookies",
                )
            log.cookie_tokens_dropped()
        names = self.chunk_names()
        cookies = [self._cookie(names[i], chunk, self.max_age) for i, chunk in enumerate(chunks)]
        cookies.extend(self._cookie(name, "", 0) for name in names[len(chunks) :])
        return cookies

    def _chunks(self, values: Mapping[str, str]) -> list[str] | None:
        plain = json.dumps(dict(values), separators=(",", ":")).encode("utf-8")
        token = self._fernet.encrypt(plain).decode("ascii")
        room = COOKIE_LIMIT - len(self._cookie(self.chunk_names()[-1], "", self.max_age).header())
        chunks = [token[i : i + room] for i in range(0, len(token), room)]
        return chunks if len(chunks) <= self.max_cookies else None

    def _cookie(self, name: str, value: str, max_age: int) -> SetCookie:
        return SetCookie(name, value, max_age, self.path, self.secure, self.same_site, self.domain)

    def __repr__(self) -> str:  # never the keys
        return f"CookieCipher(name={self.name!r}, max_cookies={self.max_cookies})"


def _without_access_tokens(values: Mapping[str, str]) -> dict[str, str]:
    """``values`` with the session's cached access tokens dropped (the grant is kept)."""
    text = values.get(StorageKey.SESSION)
    if text is None:
        return dict(values)
    slimmer = encode_session(decode_session(text).without_access_tokens())
    out = dict(values)
    if slimmer is None:
        out.pop(StorageKey.SESSION)
    else:
        out[StorageKey.SESSION] = slimmer
    return out


class CookieSession(Storage):
    """The :class:`~logto_core.storage.Storage` of one request, kept in its cookies. Every
    ``set`` checks the size at once (so a session that cannot fit fails the SDK call that
    wrote it, with the previous cookies untouched); :meth:`set_cookies` is what to send."""

    def __init__(self, cipher: CookieCipher, cookies: Mapping[str, str]) -> None:
        self._cipher = cipher
        self._values = cipher.read(cookies)
        self._pending: list[SetCookie] | None = None

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def set(self, key: str, value: str | None) -> None:
        values = dict(self._values)
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
        pending = self._cipher.cookies_for(values)  # raises before anything changes
        self._values, self._pending = values, pending

    def delete(self, key: str) -> None:
        self.set(key, None)

    @property
    def changed(self) -> bool:
        """Whether the response must set cookies."""
        return self._pending is not None

    def set_cookies(self) -> list[SetCookie]:
        """The cookies to set on the response (none when nothing was written)."""
        return list(self._pending or [])

    def __repr__(self) -> str:
        return f"CookieSession(keys={sorted(self._values)}, changed={self.changed})"


__all__ = [
    "COOKIE_LIMIT",
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_COOKIES",
    "CookieCipher",
    "CookieSession",
    "SessionTooLargeError",
    "SetCookie",
]
