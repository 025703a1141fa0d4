"""URL checks shared by configuration, discovery and the callback parser."""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit

LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``."""
    if not host:
        return False
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_url(url: str) -> SplitResult | None:
    """``urlsplit`` that returns ``None`` instead of raising on malformed input."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on an invalid port
    except ValueError:
        return None
    return parts


def is_acceptable_endpoint(url: str, *, allow_insecure_loopback: bool) -> bool:
    """An endpoint the SDK may send credentials to: https, or http on a loopback host when
    the caller allowed it. Other schemes (file:, ftp:, javascript:) are always refused."""
    parts = split_url(url)
    if parts is None or not parts.hostname or parts.username or parts.password:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and allow_insecure_loopback and is_loopback_host(parts.hostname)


def is_absolute_uri(value: str) -> bool:
    """An absolute URI (scheme and something after it) without a fragment, as resource
    indicators must be (RFC 8707 section 2)."""
    if not value or "#" in value or any(c.isspace() for c in value):
        return False
    parts = split_url(value)
    if parts is None or not parts.scheme or not parts.scheme[0].isalpha():
        return False
    if parts.scheme in ("http", "https"):
        return bool(parts.netloc)
    return bool(parts.path or parts.netloc)


def origin_and_path(url: str) -> tuple[str, str, int | None, str] | None:
    """(scheme, host, port, path) of a URL, normalised for comparison, or None if malformed."""
    parts = split_url(url)
    if parts is None or not parts.scheme or not parts.hostname:
        return None
    default_port = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = parts.port if parts.port is not None else default_port
    return (parts.scheme.lower(), parts.hostname.lower(), port, parts.path or "/")
