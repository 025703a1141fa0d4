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
from .protocol.token_endpoint import client_authentication
from .scrub import Scrubber, request_secrets

T = TypeVar("T")

CLIENT_AUTHENTICATING = frozenset({"token", "revocation", "introspection", "device_authorization"})
"""Requests that authenticate the client, so that ``invalid_client`` is about its credentials."""


def config_secrets(config: LogtoConfig) -> set[str]:
    """The configured secret, as it is and as the SDK sends it (the Basic credentials)."""
    if config.secret is None:
        return set()
    headers, _ = client_authentication(config)
    return {config.secret} | request_secrets(HttpRequest("POST", "", tuple(headers.items())))


_CONFIG_SCRUBBERS: dict[tuple[str, str | None], Scrubber] = {}
_CONFIG_SCRUBBERS_MAX = 16


def _config_scrubber(config: LogtoConfig) -> Scrubber:
    # Built once per configuration (the client secret lives as long as the config anyway):
    # most errors leaving a flow (not signed in, no refresh token) carry no request secret.
    key = (config.appId, config.secret)
    scrubber = _CONFIG_SCRUBBERS.get(key)
    if scrubber is None:
        if len(_CONFIG_SCRUBBERS) >= _CONFIG_SCRUBBERS_MAX:
            _CONFIG_SCRUBBERS.clear()
        scrubber = _CONFIG_SCRUBBERS[key] = Scrubber(config_secrets(config))
    return scrubber


def run_scrubber(config: LogtoConfig, requests: Sequence[HttpRequest]) -> Scrubber:
    """A scrubber for the configured secret and every secret value the requests carried."""
    base = _config_scrubber(config)
    carried: set[str] = set()
    for request in requests:
        carried |= request_secrets(request)
    return Scrubber(carried, base=base) if carried else base


def leaving_flow(
    error: LogtoError, config: LogtoConfig, requests: Sequence[HttpRequest]
) -> LogtoError:
    """Scrub ``error`` (and its chain) of the run's secrets and add what the SDK knows of
    the fix. Changes it in place and returns it."""
    scrubber = run_scrubber(config, requests)
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
