"""Running a flow over a transport: the few lines every adapter needs.

A transport is a callable that sends one :class:`HttpRequest` and returns its
:class:`HttpResponse`, raising :class:`TransportError` when it cannot. Both drivers are plain
Python (the async one only awaits the callable), so the core stays free of any event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .errors import LogtoError, TransportError
from .flows import Flow, Outcome, T
from .http import HttpRequest, HttpResponse

MAX_REQUESTS_PER_FLOW = 12
"""No flow needs more than a handful of requests; a bound makes a runaway loop impossible."""


class FlowLimitError(LogtoError):
    """A flow asked for more requests than any legitimate run needs."""

    code = "flow_limit"


def run_sync(flow: Flow[T], send: Callable[[HttpRequest], HttpResponse]) -> Outcome[T]:
    """Drive ``flow`` to its outcome with a blocking transport."""
    try:
        request = next(flow)
        for _ in range(MAX_REQUESTS_PER_FLOW):
            try:
                response = send(request)
            except TransportError as error:
                request = flow.throw(error)
            else:
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
            try:
                response = await send(request)
            except TransportError as error:
                request = flow.throw(error)
            else:
                request = flow.send(response)
    except StopIteration as stop:
        outcome: Outcome[T] = stop.value
        return outcome
    flow.close()
    raise FlowLimitError(f"a flow exceeded {MAX_REQUESTS_PER_FLOW} requests")
