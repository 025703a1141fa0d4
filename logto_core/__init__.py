"""logto_core: the pure, synchronous protocol core of logto-sansio (no network, no clock).

The sans-IO entry points, for driving the core with any transport:

* :class:`Context` (configuration, runtime, provider cache, exchange policy) and the client
  methods as *operations* (:mod:`logto_core.operations`: ``sign_in_op``, ``callback_op``,
  ``get_access_token_op``, ``sign_out_op``, ...), generators of effects;
* the effects they yield: :class:`HttpRequest` (answer an :class:`HttpResponse`),
  :class:`Sleep`, ``LoadSession`` / ``SaveSession`` (the user's session), ``Claim`` /
  ``AwaitFlight`` / ``Publish`` / ``EndFlight`` (single flight, see :mod:`.coordination`) and
  ``Shielded`` (work the caller must not interrupt);
* :func:`run_operation` / :func:`run_operation_async`, which drive an operation with a
  ``perform`` callable that does each effect.

The protocol steps (build/parse pairs) are in :mod:`logto_core.protocol`, JOSE in
:mod:`logto_core.jose`, the state machine in :mod:`logto_core.flows`.
"""

from . import operations
from .config import LogtoConfig
from .context import Context
from .driver import run_operation, run_operation_async
from .errors import LogtoError
from .http import HttpRequest, HttpResponse
from .runtime import Runtime
from .session import SessionState
from .sleep import Sleep

__all__ = [
    "Context",
    "HttpRequest",
    "HttpResponse",
    "LogtoConfig",
    "LogtoError",
    "Runtime",
    "SessionState",
    "Sleep",
    "operations",
    "run_operation",
    "run_operation_async",
]
