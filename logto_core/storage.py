"""The tutorial's ``Storage``: where a user's session lives (a Flask session, Redis, ...)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol


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


class AtomicStorage(Protocol):
    """A storage that can also replace one value only if it is still the one read: what
    makes a save atomic across processes (Redis, a database row with a version).

    A client whose storage has this method saves a session by reading its value, applying
    the change (:mod:`logto_core.changes`) and ``compare_and_set`` of the result; when another
    process wrote in between it reads again and applies the change again (a bounded number of
    times). Storages without it are read, changed and written under a lock of the process.
    """

    def compare_and_set(self, key: str, expected: str | None, value: str | None) -> bool:
        """As one step: if ``key`` holds ``expected`` now (``None``: holds nothing), store
        ``value`` under it (``None``: delete it) and answer True; else change nothing and
        answer False. ``expected`` is a value :meth:`Storage.get` returned (or ``None``)."""
        ...


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
