"""The error code registry (logto_core/error_codes.py) against the sources and the docs.

The sources are read with ``ast`` (tests/error_code_scan.py says what is recognised): a code
given to an error that the registry does not declare, a declared code nothing gives, or a
code given to another class than the registry's fails here.
"""

from __future__ import annotations

import importlib
import re
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from logto_core import error_codes
from logto_core.error_codes import CODES, ErrorCode, describe
from logto_core.errors import DiscoveryError, LogtoError, OAuthError, StorageError

from .error_code_scan import PLACEHOLDER, Given, Scan, normalise, scan

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (ROOT / "logto_core", ROOT / "logto_adapters")
CODE_FORM = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?")


@pytest.fixture(scope="module")
def sources() -> Scan:
    return scan(PACKAGES)


def problems(found: Scan, entries: Iterable[ErrorCode]) -> list[str]:
    """Every disagreement between what the sources give and what ``entries`` declare."""
    declared = {entry.code: entry for entry in entries}
    families = {normalise(e.code): e for e in declared.values() if e.is_family}
    out: list[str] = []
    for given in found.given:
        if given.is_concrete:
            entry = declared.get(given.pattern)
            if entry is None or entry.is_family:
                out.append(f"{given.where}: {given.pattern!r} is not in the registry")
                continue
        else:
            family = families.get(given.pattern) or _covering(given, declared.values())
            if family is None:
                out.append(
                    f"{given.where}: the scan cannot tell which code this gives "
                    f"({given.pattern!r}): use a literal or a module constant, or declare "
                    "a family such as 'area.{detail}' for the provider's own text"
                )
                continue
            entry = family
        if entry.error.__name__ != given.error:
            out.append(
                f"{given.where}: {given.pattern!r} is given to {given.error}, the registry "
                f"says {entry.error.__name__}"
            )
    for entry in declared.values():
        if not any(_gives(given, entry) for given in found.given):
            out.append(f"the registry declares {entry.code!r}, which nothing raises")
    scanned = {(module, name) for module, name in found.error_classes}
    for entry in declared.values():
        key = (entry.error.__module__, entry.error.__qualname__)
        if key not in scanned:
            out.append(f"{entry.code!r}: {key} is not an error class of the scanned sources")
    return out


def _covering(given: Given, entries: Iterable[ErrorCode]) -> ErrorCode | None:
    """A declared code that a partly known pattern gives: the JWT chain's codes are
    ``<token kind>.<check>`` (``{}.expired``), the kinds being the registry's own prefixes.
    A pattern without a literal check after its placeholders covers nothing."""
    if not _has_literal_check(given.pattern):
        return None
    return next((e for e in entries if not e.is_family and _pattern_gives(given, e.code)), None)


def _has_literal_check(pattern: str) -> bool:
    last = pattern.rsplit(".", 1)[-1]
    return bool(last) and PLACEHOLDER not in last


def _pattern_gives(given: Given, code: str) -> bool:
    regex = "[a-z0-9_]+".join(map(re.escape, given.pattern.split(PLACEHOLDER)))
    return re.fullmatch(regex, code) is not None


def _gives(given: Given, entry: ErrorCode) -> bool:
    if given.error != entry.error.__name__:
        return False
    if entry.is_family:
        return given.pattern == normalise(entry.code)
    if given.is_concrete:
        return given.pattern == entry.code
    if _has_literal_check(given.pattern) and _pattern_gives(given, entry.code):
        return True
    # A family the sources give (``oauth.{}``) covers its listed members (oauth.invalid_grant).
    return any(
        given.pattern == normalise(family.code) and family.matches(entry.code)
        for family in CODES.values()
        if family.is_family
    )


# -- the registry against the sources ---------------------------------------------------


def test_the_sources_and_the_registry_agree(sources: Scan) -> None:
    assert problems(sources, CODES.values()) == []


def test_the_scan_sees_the_sdk(sources: Scan) -> None:
    # A scan that found nothing would agree with an empty registry.
    patterns = {given.pattern for given in sources.given}
    assert {
        "discovery.issuer_mismatch",  # code="..."
        "id_token.nonce_mismatch",  # f"id_token.{code}" with _fail("nonce_mismatch", ...)
        "transport.timeout",  # code=TIMEOUT
        "transport.failed",  # code=policy.FAILED, from another module
        "storage.read",  # f"storage.{action}" with storage_failed("read", ...) elsewhere
        "jwt.claims_invalid",  # a parameter's default
        "flow_limit",  # class attribute
        "oauth.{}",  # OAuthError's own code
    } <= patterns
    assert len(sources.given) > 100
    assert sources.unattributed == []


def test_the_check_fails_without_an_entry(sources: Scan) -> None:
    entries = [e for e in CODES.values() if e.code != "discovery.issuer_mismatch"]
    found = problems(sources, entries)
    assert found
    assert all("'discovery.issuer_mismatch' is not in the registry" in p for p in found)
    assert problems(sources, []) != []


def test_the_check_fails_for_an_entry_nothing_raises(sources: Scan) -> None:
    stale = ErrorCode("discovery.never_raised", DiscoveryError, "nothing")
    assert "the registry declares 'discovery.never_raised', which nothing raises" in (
        problems(sources, [*CODES.values(), stale])
    )


def test_the_check_fails_for_another_class(sources: Scan) -> None:
    entries = [
        ErrorCode(e.code, StorageError, e.meaning) if e.code == "transport.tls" else e
        for e in CODES.values()
    ]
    found = problems(sources, entries)
    assert any(
        "'transport.tls' is given to TransportError, the registry says Storage" in p for p in found
    )


# -- what the scan recognises -----------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Sequence[Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return [tmp_path / "logto_core", tmp_path / "logto_adapters"]


_ERRORS = """
    class LogtoError(Exception):
        code: str = "logto_error"
        def __init__(self, message, *, code=None):
            super().__init__(message)
            if code is not None:
                self.code = code

    class OAuthError(LogtoError):
        code = "oauth"
        def __init__(self, error):
            super().__init__("", code=f"oauth.{error}")
            self.error = error

    class TransportError(LogtoError):
        code = "transport"
        def __init__(self, message, *, code=None, status=None):
            super().__init__(message, code=code)
"""


def test_the_scan_recognises_every_form(tmp_path: Path) -> None:
    packages = _tree(
        tmp_path,
        {
            "logto_core/__init__.py": "",
            "logto_core/errors.py": _ERRORS,
            "logto_core/policy.py": """
                from .errors import TransportError
                TIMEOUT = "transport.timeout"
                PREFIX = "transport."

                def timed_out():
                    return TransportError("late", code=TIMEOUT)

                def failed(reason, *, kind="failed"):
                    return TransportError(reason, code=PREFIX + kind)
            """,
            "logto_core/deep.py": """
                from . import errors
                from .errors import LogtoError as Base

                class WeirdError(Base):
                    code = "weird"

                def _fail(detail, message):
                    raise errors.TransportError(message, code=f"transport.{detail}")

                def check(flag):
                    _fail("closed", "x")
                    code = "weird.a" if flag else "weird.b"
                    raise WeirdError("y", code=code)
            """,
            "logto_adapters/__init__.py": "",
            "logto_adapters/common.py": """
                from logto_core import policy
                from logto_core.errors import LogtoError, TransportError

                def storage_failed(action):
                    return TransportError("x", code=f"transport.{action}")

                def send(name):
                    policy.failed("x", kind="reset")
                    policy.failed("y")
                    raise TransportError("y", code=policy.TIMEOUT)

                def unknown(value):
                    raise LogtoError("z", code=value.name)
            """,
            "logto_adapters/client.py": """
                from .common import storage_failed

                def read():
                    raise storage_failed("read")
            """,
        },
    )
    found = scan(packages)
    given = {(g.pattern, g.error) for g in found.given}
    assert given == {
        ("logto_error", "LogtoError"),
        ("oauth", "OAuthError"),
        ("oauth.{}", "OAuthError"),
        ("transport", "TransportError"),
        ("transport.timeout", "TransportError"),  # a constant, here and imported
        ("transport.failed", "TransportError"),  # a default, joined with +
        ("transport.reset", "TransportError"),  # a keyword argument of a call elsewhere
        ("transport.closed", "TransportError"),  # an f-string of a helper's argument
        ("transport.read", "TransportError"),  # a helper called from another module
        ("weird", "WeirdError"),  # a subclass across an import alias
        ("weird.a", "WeirdError"),
        ("weird.b", "WeirdError"),
        ("{}", "LogtoError"),  # unresolvable: the check refuses it
    }
    assert set(found.error_classes) == {
        ("logto_core.errors", "LogtoError"),
        ("logto_core.errors", "OAuthError"),
        ("logto_core.errors", "TransportError"),
        ("logto_core.deep", "WeirdError"),
    }


def test_a_code_set_from_outside_is_reported(tmp_path: Path) -> None:
    packages = _tree(
        tmp_path,
        {
            "logto_core/__init__.py": "",
            "logto_core/errors.py": _ERRORS,
            "logto_core/late.py": """
                from .errors import LogtoError

                def relabel(error: LogtoError) -> None:
                    error.code = "late.relabelled"

                def build(kind: type[LogtoError]) -> LogtoError:
                    return kind("x", code="late.built")
            """,
            "logto_adapters/__init__.py": "",
        },
    )
    assert [u.split(": ", 1)[1] for u in scan(packages).unattributed] == [
        "error.code = 'late.relabelled'",
        "kind(..., code='late.built')",
    ]


# -- the registry itself ----------------------------------------------------------------


def test_codes_are_declared_once_and_well_formed() -> None:
    entries = error_codes._ENTRIES
    assert len(CODES) == len(entries)
    for entry in entries:
        assert entry.is_family or CODE_FORM.fullmatch(entry.code), entry.code
        assert entry.meaning and "\n" not in entry.meaning
        assert issubclass(entry.error, LogtoError)


def test_describe() -> None:
    entry = describe("discovery.issuer_mismatch")
    assert entry is not None
    assert entry.error is DiscoveryError
    assert entry.fix
    assert describe("no.such_code") is None
    family = describe("oauth.unsupported_grant_type")
    assert family is not None
    assert family.code == "oauth.{error}"
    assert family.error is OAuthError
    invalid_client = describe("oauth.invalid_client")
    assert invalid_client is not None
    assert invalid_client.code == "oauth.invalid_client"
    assert describe("oauth.") is None
    assert describe(OAuthError("weird error").code) is family


def test_every_raised_error_class_code_is_described() -> None:
    # A class default is what an error raised without a code carries.
    for cls in {entry.error for entry in CODES.values()}:
        assert describe(cls.code) is not None, cls


# -- the docs ---------------------------------------------------------------------------


def test_docs_errors_md_is_current() -> None:
    assert (ROOT / "docs" / "errors.md").read_text() == error_codes.markdown(), (
        "regenerate it: python -m logto_core.error_codes > docs/errors.md"
    )


_CITED = re.compile(r"`([a-z_]+\.[a-z_]+)`")


def _names_a_function(text: str) -> bool:
    """``callback.parse_callback``: a module of logto_core (or of its subpackages) and one
    of its names."""
    module, name = text.split(".")
    for package in ("logto_core", "logto_core.protocol", "logto_core.jose"):
        try:
            if hasattr(importlib.import_module(f"{package}.{module}"), name):
                return True
        except ImportError:
            continue
    return False


DOCS = [
    "security.md",
    "tutorial.md",
    "storage.md",
    "architecture.md",
    "test-provider.md",
    "protecting-apis.md",
    "backchannel-logout.md",
]


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_cite_declared_codes(doc: str) -> None:
    areas = {code.split(".")[0] for code in CODES if "." in code}
    cited = {
        match
        for match in _CITED.findall((ROOT / "docs" / doc).read_text())
        if match.split(".")[0] in areas
        and not match.endswith((".py", ".md"))
        and not _names_a_function(match)
    }
    assert sorted(code for code in cited if describe(code) is None) == []


_CLASS_AND_CODE = re.compile(r"`([A-Z][A-Za-z]*Error)` \(?`([a-z_]+(?:\.[a-z_]+)?)`")


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_name_the_registry_s_class(doc: str) -> None:
    # "`TokenValidationError` `userinfo.sub_mismatch`": the class the code is raised as.
    text = (ROOT / "docs" / doc).read_text()
    wrong = []
    for cls, code in _CLASS_AND_CODE.findall(text):
        entry = describe(code)
        if entry is None or entry.error.__name__ != cls:
            wrong.append((cls, code, entry.error.__name__ if entry else None))
    assert wrong == []


def test_a_chain_code_with_its_kind_unknown_covers_the_declared_codes_of_its_check() -> None:
    """``{}.expired`` (the JWT chain, kind from its rules) counts as giving
    ``id_token.expired``; a pattern without a literal check covers nothing."""
    entry = CODES["id_token.expired"]
    chain = Given("{}.expired", entry.error.__name__, "chain.py:1")
    assert _gives(chain, entry)
    assert not _gives(Given("{}.{}", entry.error.__name__, "chain.py:2"), entry)
    assert not _gives(Given("{}.expired", "LogtoUsageError", "chain.py:3"), entry)
    found = Scan(given=[Given("{}.no_such_check", entry.error.__name__, "chain.py:4")])
    assert any("cannot tell which code" in p for p in problems(found, [entry]))
