"""What an error carries when it leaves a flow: the likely fix, and none of the run's secrets.

:func:`logto_core.flows._guarded` is the one place where the requests of a flow run and the
errors ending it meet. It hands every error that leaves the flow (raised, or returned as the
value, like a failed revocation) to :func:`leaving_flow`, which

* removes from it, and from the SDK errors it was raised from, every secret value that any
  request of the run carried, and the configured client secret, in every encoding
  (:mod:`logto_core.scrub`): a provider or gateway that echoes the request must not put the
  client secret, a code, a verifier or a refresh token into a message, ``repr()``, attribute
  or log record;
* names the likely fix of ``invalid_client`` (:mod:`logto_core.hints`).

Log records only ever carry an error's ``code`` (:mod:`logto_core.log`), and the drivers log
the errors of a flow after it ended, so they see the scrubbed values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import TypeVar

from . import hints
from .config import LogtoConfig
from .errors import LogtoError, OAuthError
from .http import HttpRequest
from .scrub import Scrubber, request_secrets
from .token_endpoint import client_authentication

T = TypeVar("T")

CLIENT_AUTHENTICATING = frozenset({"token", "revocation", "introspection"})
"""Requests that authenticate the client, so that ``invalid_client`` is about its credentials."""


def run_secrets(config: LogtoConfig, requests: Sequence[HttpRequest]) -> set[str]:
    """The configured secret (as it is and as the SDK would send it) and every secret value
    the requests carried."""
    found: set[str] = set()
    if config.secret is not None:
        headers, _ = client_authentication(config)
        found.add(config.secret)
        found |= request_secrets(HttpRequest("POST", "", tuple(headers.items())))
    for request in requests:
        found |= request_secrets(request)
    return found


def leaving_flow(
    error: LogtoError, config: LogtoConfig, requests: Sequence[HttpRequest]
) -> LogtoError:
    """Scrub ``error`` (and its chain) of the run's secrets and add what the SDK knows of
    the fix. Changes it in place and returns it."""
    scrubber = Scrubber(run_secrets(config, requests))
    for each in _chain(error):
        each.redact(scrubber)
    if (
        isinstance(error, OAuthError)
        and error.error == "invalid_client"
        and requests
        and requests[-1].purpose in CLIENT_AUTHENTICATING
    ):
        error.add_hint(
            hints.invalid_client(
                sent_secret=config.is_confidential, description=error.error_description
            )
        )
    return error


def leaving_flow_value(value: T, config: LogtoConfig, requests: Sequence[HttpRequest]) -> T:
    """:func:`leaving_flow` for the errors a flow returns in its value (the value itself, or
    a field of a dataclass value, such as ``SignOutResult.revocation_error``)."""
    for error in _errors_in(value):
        leaving_flow(error, config, requests)
    return value


def _errors_in(value: object) -> Iterator[LogtoError]:
    if isinstance(value, LogtoError):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            member = getattr(value, field.name)
            if isinstance(member, LogtoError):
                yield member


def _chain(error: BaseException) -> Iterator[LogtoError]:
    """The SDK errors of ``error``'s cause/context chain, ``error`` first. A context that was
    suppressed (``raise ... from None``) is dropped: nothing shows it, and it may hold the raw
    provider text (``json.JSONDecodeError.doc`` is the whole body)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__suppress_context__:
            current.__context__ = None
        if isinstance(current, LogtoError):
            yield current
        current = current.__cause__ or current.__context__
