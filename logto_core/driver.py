"""Running flows and operations: the few lines every adapter needs.

A transport is a callable that sends one :class:`HttpRequest` and returns its
:class:`HttpResponse`, raising :class:`TransportError` when it cannot; :func:`run_sync` and
:func:`run_async` drive a flow with one. :func:`run_operation` and
:func:`run_operation_async` drive an operation (:mod:`logto_core.operations`) with a
``perform`` callable that does any effect. All drivers are plain Python (the async ones only
await the callable), so the core stays free of any event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

from . import log
from .errors import LogtoError, TransportError
from .flows import Flow, Outcome, T
from .http import HttpRequest, HttpResponse

E = TypeVar("E")

MAX_REQUESTS_PER_FLOW = 12
"""No flow needs more than a handful of requests; a bound makes a runaway loop impossible."""

MAX_EFFECTS_PER_OPERATION = 64
"""An operation runs at most two flows plus a few storage and single-flight effects."""

CLEANUP_EFFECTS = 4
"""Effects still performed after the bound was hit, so that the operation can release what
it holds (a refresh leader settles its flight) before it is stopped."""


class FlowLimitError(LogtoError):
    """A flow asked for more requests than any legitimate run needs."""

    code = "flow_limit"


def run_sync(flow: Flow[T], send: Callable[[HttpRequest], HttpResponse]) -> Outcome[T]:
    """Drive ``flow`` to its outcome with a blocking transport."""
    try:
        request = next(flow)
        for _ in range(MAX_REQUESTS_PER_FLOW):
            log.sending(request)
            try:
                response = send(request)
            except TransportError as error:
                log.failed(request, error)
                request = flow.throw(error)
            else:
                log.received(request, response)
                request = flow.send(response)
    except StopIteration as stop:
        outcome: Outcome[T] = stop.value
        return outcome
    flow.close()
    raise FlowLimitError(f"a flow exceeded {MAX_REQUESTS_PER_FLOW} requests")


async def run_async(
    flow: Flow[T], send: Callable[[HttpRequest], Awaitable[HttpResponse]]
) -> Outcome[T]:
    """Drive ``flow`` to its outcome with an awaitable transport."""
    try:
        request = next(flow)
        for _ in range(MAX_REQUESTS_PER_FLOW):
            log.sending(request)
            try:
                response = await send(request)
            except TransportError as error:
                log.failed(request, error)
                request = flow.throw(error)
            else:
                log.received(request, response)
                request = flow.send(response)
    except StopIteration as stop:
        outcome: Outcome[T] = stop.value
        return outcome
    flow.close()
    raise FlowLimitError(f"a flow exceeded {MAX_REQUESTS_PER_FLOW} requests")


class _Steps(Generic[E, T]):
    """Feeds effect results (or failures) back into an operation, counting the effects.

    When the operation asks for more than ``max_effects``, a :class:`FlowLimitError` is thrown
    into it instead, so that it can still release what it holds (at most
    :data:`CLEANUP_EFFECTS` more effects); if it keeps going after that, it is closed.
    """

    def __init__(self, operation: Generator[E, Any, T], max_effects: int) -> None:
        self._operation = operation
        self._max = max_effects
        self._done = 0

    def start(self) -> E:
        return next(self._operation)

    def resume(self, result: object = None, error: BaseException | None = None) -> E:
        """Hand over the result of the effect just performed; answer the next one."""
        operation = self._operation
        effect = operation.throw(error) if error is not None else operation.send(result)
        self._done += 1
        if self._done == self._max:
            return self._operation.throw(_effect_limit(self._max))
        if self._done >= self._max + CLEANUP_EFFECTS:
            self._operation.close()
            raise _effect_limit(self._max)
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
    try:
        effect = steps.start()
        while True:  # bounded: _Steps stops the operation after max_effects
            log.sending(effect)
            try:
                result = perform(effect)
            except BaseException as error:
                log.failed(effect, error)
                effect = steps.resume(error=error)
            else:
                log.received(effect, result)
                effect = steps.resume(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    except BaseException as error:
        log.operation_failed(error)
        raise


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
    try:
        effect = steps.start()
        while True:  # bounded: _Steps stops the operation after max_effects
            log.sending(effect)
            try:
                result = await perform(effect)
            except BaseException as error:
                log.failed(effect, error)
                effect = steps.resume(error=error)
            else:
                log.received(effect, result)
                effect = steps.resume(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    except BaseException as error:
        log.operation_failed(error)
        raise
