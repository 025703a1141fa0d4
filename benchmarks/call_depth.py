"""How deep one call goes: the modules and functions of the SDK (``logto_core`` and
``logto_adapters``) that one warm ``signIn`` runs through, counted with ``sys.setprofile``.

A design measure, not a timing: the redesign's closing note compares it before and after.
Run with ``python -m benchmarks.call_depth`` (prints one line per client).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import logto_adapters
import logto_core
from logto_adapters import aio, sync
from logto_core.storage import MemoryStorage
from logto_core.testing import TestProvider

ENDPOINT = "https://tenant.example.com"
REDIRECT = "https://app.example.com/callback"
PACKAGES = tuple(
    str(Path(package.__file__ or "").parent) for package in (logto_core, logto_adapters)
)


def traced(call: Callable[[], Any]) -> tuple[set[str], set[tuple[str, str, int]]]:
    modules: set[str] = set()
    functions: set[tuple[str, str, int]] = set()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code.co_filename.startswith(PACKAGES):
            modules.add(code.co_filename)
            functions.add((code.co_filename, code.co_name, code.co_firstlineno))

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return modules, functions


def main() -> None:
    for kind, module in (("sync", sync), ("aio", aio)):
        provider = TestProvider(ENDPOINT, clock=time.time)
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")

        def transport(request: Any, provider: TestProvider = provider) -> Any:
            return provider.respond(request).response

        async def async_transport(request: Any, provider: TestProvider = provider) -> Any:
            return provider.respond(request).response

        config = module.LogtoConfig(endpoint=ENDPOINT, appId="app", appSecret="s" * 32)
        client = module.LogtoClient(
            config,
            MemoryStorage(),
            transport=transport if kind == "sync" else async_transport,
        )

        def sign_in(client: Any = client) -> Any:
            result = client.signIn(REDIRECT)
            return asyncio.run(result) if asyncio.iscoroutine(result) else result

        sign_in()  # warm: discovery fetched, imports done
        modules, functions = traced(sign_in)
        if "-v" in sys.argv:
            for name in sorted(f"{Path(f).name}:{n}" for f, n, _ in functions):
                print("   ", name)
        counts = f"{len(modules)} modules, {len(functions)} functions"
        print(f"{kind}: one warm signIn runs through {counts}")


if __name__ == "__main__":
    main()
