"""A ``random.Random`` whose every draw is read from a byte string: the decoder that lets a
coverage-guided fuzzer (atheris, ``guided.py``) drive the fast engine's generators.

The generators of :mod:`tests.fuzz.generators` make all their decisions through ``random()``,
``randrange()``, ``choice()``, ``shuffle()`` and ``sample()``. Fed a :class:`ByteRandom`, each
decision consumes the next one or two bytes of the fuzzer's input, so a byte the fuzzer mutates
changes one decision (which seed, which mutator, which nasty token, where) and the inputs keep
exactly the shapes the targets' checks expect. libFuzzer keeps the byte strings that reach new
code in ``logto_core`` and mutates those further: coverage guidance over the same input space as
the blind engine.

Once the bytes run out every draw is the same "quiet" one: ``random()`` is just below 1.0
and an index is 0, so the rest of the input is decided by one fixed path (and the empty input
by the first seed). Uniformly random bytes decode like the fast engine's ``random.Random``:
about the same share of inputs is accepted. Decoding is pure Python and deterministic, so a
corpus can be replayed (for coverage, or a failure) without atheris.
"""

from __future__ import annotations

import random


class ByteRandom(random.Random):
    """Draws read from ``data``, front to back; see the module docstring."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0
        super().__init__(0)

    @property
    def consumed(self) -> int:
        """How many bytes the draws so far have read (at most ``len(data)``)."""
        return min(self._position, len(self._data))

    def _take(self, count: int) -> int:
        chunk = self._data[self._position : self._position + count]
        self._position += count
        return int.from_bytes(chunk, "big")

    def random(self) -> float:
        # Two bytes: 1/65536 resolution is ample for the generators' probability gates.
        return (0xFFFF - self._take(2)) / 65536.0

    def _randbelow(self, n: int) -> int:
        # Used by randrange, choice, shuffle and sample. A modulo keeps a changed byte a
        # changed choice (rejection sampling would make one byte shift every later draw).
        if n <= 1:
            return 0
        return self._take((n.bit_length() + 7) // 8) % n

    def getrandbits(self, k: int) -> int:
        if k <= 0:
            return 0
        return self._take((k + 7) // 8) & ((1 << k) - 1)
