"""Running flows and operations: the few lines every adapter needs.

An operation (:mod:`logto_core.operations`) or a flow (:mod:`logto_core.flows`) is a
generator of effects. :func:`run_operation` drives one to its value with a ``perform``
callable that does each effect and returns its result (a failure it raises is thrown into
the generator where it yielded); :func:`run_operation_async` is the same with an awaitable
``perform``. Both share one step object, :class:`_Steps`, which feeds results back, logs,
and bounds the run; the two drivers differ only in the ``await``. Both are plain Python, so
the core stays free of any event loop.

:func:`run_sync` and :func:`run_async` run a bare flow with a transport (``send``) and an
optional ``sleep`` for its :class:`~logto_core.sleep.Sleep` effects: tests and benchmarks use
them; the clients run flows inside operations.

Bounds. An operation may perform at most ``max_effects`` effects, not counting retries and
the waits before them (their exchange bounds those: at most
``RetryPolicy.max_retries`` of each per exchange), which have a backstop bound of their own.
Every flow also bounds itself (:data:`logto_core.flows.MAX_REQUESTS_PER_FLOW` exchanges),
wherever it runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from . import log
from .errors import FlowLimitError
from .flows import MAX_REQUESTS_PER_FLOW, Flow, Outcome, T
from .http import HttpRequest, HttpResponse
from .sleep import Sleep
from .transport_policy import MAX_RETRIES

E = TypeVar("E")

MAX_EFFECTS_PER_OPERATION = 64
"""An operation runs at most two flows plus a few storage and single-flight effects."""

CLEANUP_EFFECTS = 4
"""Effects still performed after the bound was hit, so that the operation can release what
it holds (a refresh leader settles its flight) before it is stopped."""

WAITS_PER_EFFECT = 2 * MAX_RETRIES
"""Backstop for the effects the bound does not count (retries and waits): at most this many
per counted effect."""


class _Steps(Generic[E, T]):
    """Feeds effect results (or failures) back into an operation, logging each effect and
    counting them.

    Retries and the waits before them are not counted (their exchange bounds them) but have a
    backstop bound of their own. When the operation asks for more than ``max_effects``, a
    :class:`FlowLimitError` is thrown into it instead, so that it can still release what it
    holds (at most :data:`CLEANUP_EFFECTS` more effects); if it keeps going after that, it is
    closed. ``done`` says when the run is over; ``value`` is then its value.
    """

    __slots__ = (
        "_counted",
        "_max",
        "_operation",
        "_stopping",
        "_uncounted",
        "done",
        "effect",
        "value",
    )

    def __init__(self, operation: Generator[E, Any, T], max_effects: int) -> None:
        self._operation = operation
        self._max = max_effects
        self._counted = 0
        self._uncounted = 0
        self._stopping = False
        self.done = False
        self.value: T | None = None
        self.effect: E | None = None

    def start(self) -> E | None:
        """The first effect to perform (``None`` when the run is already over)."""
        return self._step(None, None, first=True)

    def answer(self, result: object) -> E | None:
        """The effect just performed gave ``result``; the next effect to perform."""
        log.received(self.effect, result)
        return self._resume(result, None)

    def fail(self, error: BaseException) -> E | None:
        """The effect just performed raised ``error``: thrown into the operation."""
        log.failed(self.effect, error)
        return self._resume(None, error)

    def _resume(self, result: object, error: BaseException | None) -> E | None:
        effect = self.effect
        retry_or_wait = isinstance(effect, Sleep) or (
            isinstance(effect, HttpRequest) and effect.attempt > 0
        )
        if retry_or_wait and not self._stopping:
            self._uncounted += 1
        else:
            self._counted += 1
        over = self._counted + max(0, self._uncounted - WAITS_PER_EFFECT * self._max)
        if over >= self._max + CLEANUP_EFFECTS:
            self._operation.close()
            raise _effect_limit(self._max)
        if over >= self._max and not self._stopping:
            self._stopping = True  # from here on every effect counts
            result, error = None, _effect_limit(self._max)
        return self._step(result, error)

    def _step(
        self, result: object, error: BaseException | None, *, first: bool = False
    ) -> E | None:
        """Advance the operation to its next effect (log it), or to its end."""
        operation = self._operation
        try:
            if first:
                effect = next(operation)
            elif error is None:
                effect = operation.send(result)
            else:
                effect = operation.throw(error)
        except StopIteration as stop:
            self.done, self.value, self.effect = True, stop.value, None
            return None
        except BaseException as failure:
            log.operation_failed(failure)
            raise
        self.effect = effect
        log.sending(effect)
        return effect


def _effect_limit(limit: int) -> FlowLimitError:
    return FlowLimitError(f"an operation exceeded {limit} effects")


def run_operation(
    operation: Generator[E, Any, T],
    perform: Callable[[E], object],
    *,
    max_effects: int = MAX_EFFECTS_PER_OPERATION,
) -> T:
    """Drive ``operation`` to its value, doing each effect with ``perform``. Whatever
    ``perform`` raises (any exception) is thrown into the operation where it yielded."""
    steps = _Steps(operation, max_effects)
    effect = steps.start()
    while not steps.done:  # bounded: _Steps stops the operation after max_effects
        try:
            result = perform(effect)  # type: ignore[arg-type]
        except BaseException as error:
            effect = steps.fail(error)
        else:
            effect = steps.answer(result)
    return steps.value  # type: ignore[return-value]


async def run_operation_async(
    operation: Generator[E, Any, T],
    perform: Callable[[E], Awaitable[object]],
    *,
    max_effects: int = MAX_EFFECTS_PER_OPERATION,
) -> T:
    """:func:`run_operation` with an awaitable ``perform``. A cancellation while performing
    an effect is thrown into the operation too, so it can release what it holds (the leader
    of a refresh settles its flight) before the cancellation propagates."""
    steps = _Steps(operation, max_effects)
    effect = steps.start()
    while not steps.done:  # bounded: _Steps stops the operation after max_effects
        try:
            result = await perform(effect)  # type: ignore[arg-type]
        except BaseException as error:
            effect = steps.fail(error)
        else:
            effect = steps.answer(result)
    return steps.value  # type: ignore[return-value]


def run_sync(
    flow: Flow[T],
    send: Callable[[HttpRequest], HttpResponse],
    *,
    sleep: Callable[[Sleep], None] | None = None,
) -> Outcome[T]:
    """Drive ``flow`` to its outcome with a blocking transport; ``sleep`` does its waits
    (without one, a wait ends at once: for tests on a fake clock)."""

    def perform(effect: HttpRequest | Sleep) -> object:
        if isinstance(effect, Sleep):
            if sleep is not None:
                sleep(effect)
            return None
        return send(effect)

    return run_operation(flow, perform, max_effects=MAX_REQUESTS_PER_FLOW)


async def run_async(
    flow: Flow[T],
    send: Callable[[HttpRequest], Awaitable[HttpResponse]],
    *,
    sleep: Callable[[Sleep], Awaitable[None]] | None = None,
) -> Outcome[T]:
    """:func:`run_sync` with an awaitable transport (and ``sleep``)."""

    async def perform(effect: HttpRequest | Sleep) -> object:
        if isinstance(effect, Sleep):
            if sleep is not None:
                await sleep(effect)
            return None
        return await send(effect)

    return await run_operation_async(flow, perform, max_effects=MAX_REQUESTS_PER_FLOW)


__all__ = [
    "CLEANUP_EFFECTS",
    "MAX_EFFECTS_PER_OPERATION",
    "MAX_REQUESTS_PER_FLOW",
    "FlowLimitError",
    "run_async",
    "run_operation",
    "run_operation_async",
    "run_sync",
]
