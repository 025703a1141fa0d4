"""TLS failures of both transports: found in the library's exception, named, logged once.

requests and httpx both report a refused certificate as a generic connection error with the
:mod:`ssl` exception somewhere in its chain (``__cause__``, ``__context__``, or urllib3's
``reason``/``args``). :func:`tls_problem` digs it out and turns it into a
``transport.tls`` :class:`~logto_core.errors.TransportError` that names the host and the
likely fix, with the TLS library's reason (never the URL's query) kept as a
:class:`~logto_core.transport_policy.TlsFailure` in ``__cause__``, and logs it once at
WARNING under the ``logto`` logger: a certificate problem is a deployment error that
retrying does not cure, and it is not retried.

A TLS connection cut short by the network (an EOF or a reset during the handshake) is not a
certificate problem: it stays ``transport.connection`` (retried for discovery and JWKS).
"""

from __future__ import annotations

import ssl

from logto_core import transport_policy as policy
from logto_core.errors import TransportError
from logto_core.http import HttpRequest
from logto_core.log import logger

# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH_CODES = frozenset({62, 64})
# Handshakes cut short by the network rather than refused by either side (anyio reports a
# peer that closed mid-handshake as the SSLWantReadError of its last read).
_CUT_SHORT = (
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
    ssl.SSLSyscallError,
    ssl.SSLWantReadError,
    ssl.SSLWantWriteError,
)
_CUT_SHORT_REASONS = frozenset({"UNEXPECTED_EOF_WHILE_READING"})
_MAX_DEPTH = 12

try:  # urllib3's own host name check (used when the SSL context does not check names)
    from urllib3.util.ssl_match_hostname import CertificateError as _CertificateError
except ImportError:  # pragma: no cover - urllib3 is absent with the httpx extra only

    class _CertificateError(ValueError):  # type: ignore[no-redef]
        pass


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it wraps, nearest first, each once (bounded)."""
    found: list[BaseException] = []
    pending: list[BaseException] = [error]
    while pending and len(found) < _MAX_DEPTH:
        current = pending.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        reason = getattr(current, "reason", None)  # urllib3's MaxRetryError, ProxyError
        linked = [current.__cause__, current.__context__, reason, *current.args[:1]]
        pending.extend(link for link in linked if isinstance(link, BaseException))
    return found


def tls_problem(
    request: HttpRequest, error: BaseException, *, trust_fix: str
) -> TransportError | None:
    """The ``transport.tls`` error for a library exception caused by TLS, or ``None`` (not
    TLS, or a handshake the network cut short). Logs the error it returns, once."""
    problem: TransportError | None = None
    for cause in _chain(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            code = cause.verify_code if isinstance(cause.verify_code, int) else None
            reason = cause.verify_message if isinstance(cause.verify_message, str) else ""
            problem = policy.tls_failed(
                request,
                reason or "certificate verify failed",
                verification=True,
                hostname_mismatch=code in _NAME_MISMATCH_CODES,
                verify_code=code,
                trust_fix=trust_fix,
            )
        elif isinstance(cause, _CertificateError):
            problem = policy.tls_failed(
                request,
                str(cause),
                verification=True,
                hostname_mismatch=True,
                trust_fix=trust_fix,
            )
        elif isinstance(cause, ssl.SSLError):
            reason = cause.reason if isinstance(cause.reason, str) else type(cause).__name__
            if isinstance(cause, _CUT_SHORT) or reason in _CUT_SHORT_REASONS:
                return None
            problem = policy.tls_failed(request, reason, verification=False, trust_fix=trust_fix)
        if problem is not None:
            logger.warning("%s", problem.message)
            return problem
    return None


__all__ = ["tls_problem"]
