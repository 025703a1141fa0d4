"""The tutorial's ``Storage``: where a user's session lives (a Flask session, Redis, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Storage(ABC):
    """A string-valued key/value store for one user's session.

    Implement it over your framework's session (see the tutorial). Values are opaque strings
    that the SDK writes and reads back; they contain tokens, so keep the store server-side or
    encrypted.
    """

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None``."""

    @abstractmethod
    def set(self, key: str, value: str | None) -> None:
        """Store ``value`` under ``key`` (``None`` may be stored or treated as a delete)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""


class MemoryStorage(Storage):
    """A dictionary, private to one client instance. Fine for scripts and tests; a web app
    serving several users needs a per-user storage."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._data.get(key)

    def set(self, key: str, value: str | None) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def __repr__(self) -> str:
        return f"MemoryStorage(keys={sorted(self._data)})"
