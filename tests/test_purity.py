"""logto_core does no I/O and reads no clock or randomness except through runtime.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parent.parent / "logto_core"

FORBIDDEN_MODULES = {
    "requests",
    "httpx",
    "aiohttp",
    "urllib3",
    "socket",
    "ssl",
    "asyncio",
    "threading",
    "http.client",
    "http.server",
    "urllib.request",
    "time",
    "random",
    "secrets",
    "uuid",
    "datetime",
    "os",
    "subprocess",
}
# runtime.py is the one door to the clock and the OS entropy source.
ALLOWED = {"runtime.py": {"time", "os"}}
FORBIDDEN_CALLS = {"urandom", "token_bytes", "token_hex", "token_urlsafe", "getrandbits", "time_ns"}
CLOCK_CALLS = {"now", "utcnow", "today", "fromtimestamp"}
CLOCK_OWNERS = ("datetime", "date")


def _forbidden_call(func: ast.Attribute) -> bool:
    if func.attr in FORBIDDEN_CALLS:
        return True
    owner = ast.unparse(func.value)
    return func.attr in CLOCK_CALLS and owner.split(".")[-1] in CLOCK_OWNERS


def _core_sources() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _core_sources(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_io_clock_or_randomness(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    allowed = ALLOWED.get(path.name, set()) if path.parent == CORE else set()
    for name in _imported(tree):
        root_matches = {m for m in FORBIDDEN_MODULES if name == m or name.startswith(m + ".")}
        assert not (root_matches - allowed), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _core_sources(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_calls_no_clock_or_entropy_function(path: Path) -> None:
    if path == CORE / "runtime.py":
        return
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert not _forbidden_call(node.func), (
                f"{path.name}:{node.lineno} calls .{node.func.attr}()"
            )


def test_the_checks_would_catch_violations() -> None:
    tree = ast.parse("import time\nfrom socket import socket\n")
    assert _imported(tree) == {"time", "socket"}
    calls = [
        node.func
        for node in ast.walk(ast.parse("dt.datetime.now()\nos.urandom(3)\nruntime.now()"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert [_forbidden_call(f) for f in calls] == [True, True, False]
