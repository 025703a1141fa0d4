"""The only doors to the outside world that the core uses: a clock and an entropy source.

Every other module of :mod:`logto_core` receives the current time and random bytes from a
:class:`Runtime` value, so tests (and property tests exploring time) can replace both. This
module is the single place allowed to read the wall clock or the operating system's CSPRNG;
``tests/test_purity.py`` enforces that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import LogtoUsageError

Clock = Callable[[], float]
"""Returns the current time as seconds since the Unix epoch."""

Entropy = Callable[[int], bytes]
"""Returns ``n`` bytes from a cryptographically secure random source."""


def system_clock() -> float:
    """The wall clock, in seconds since the epoch."""
    return time.time()


def system_entropy(n: int) -> bytes:
    """``n`` bytes from the operating system's CSPRNG."""
    return os.urandom(n)


@dataclass(frozen=True, slots=True)
class Runtime:
    """The clock and entropy source handed to the core.

    Adapters create one with the system defaults; tests pass a fake clock and a seeded or
    counting entropy source.
    """

    clock: Clock = system_clock
    entropy: Entropy = system_entropy

    def now(self) -> float:
        return self.clock()

    def random_bytes(self, n: int) -> bytes:
        data = self.entropy(n)
        if not isinstance(data, bytes) or len(data) != n:
            # A broken entropy source must never silently shorten state or PKCE verifiers.
            raise LogtoUsageError(
                f"the entropy source must return {n} bytes", code="runtime.entropy"
            )
        return data


DEFAULT_RUNTIME = Runtime()
