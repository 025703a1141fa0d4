"""The one way a flow or an operation waits: it yields :class:`Sleep`.

The core never sleeps; it asks its adapter to, with a time on the runtime's clock
(:meth:`logto_core.runtime.Runtime.now`). An adapter waits :meth:`Sleep.seconds` (never
negative, never more than :data:`MAX_SLEEP`) and sends ``None`` back. A wait between two
attempts of a request (:func:`logto_core.exchange.exchange`) is a ``Sleep``; so will be the
interval of a device-authorization poll.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SLEEP = 300.0
"""The longest an adapter waits for one ``Sleep``, whatever its ``until`` says (a clock that
jumped back must not hang a caller)."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait until ``until`` (seconds since the epoch, on the runtime's clock); answer ``None``."""

    until: float

    def seconds(self, now: float) -> float:
        """How long to wait from ``now``: ``max(0, until - now)``, at most :data:`MAX_SLEEP`."""
        wait = self.until - now
        if not wait > 0:  # also NaN
            return 0.0
        return min(wait, MAX_SLEEP)


__all__ = ["MAX_SLEEP", "Sleep"]
