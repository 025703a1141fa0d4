"""The examples of the docs run: a doc that shows code shows code that works."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from logto_adapters.testing import serve_provider
from logto_core.testing import TestProvider

ROOT = Path(__file__).resolve().parent.parent
REDIRECT = "http://127.0.0.1:9/callback"
API = "https://api.example.com"


def example(doc: str, name: str) -> str:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- example: {re.escape(name)} .*?-->\n```python\n(.*?)```", text, re.DOTALL
    )
    assert found is not None, f"no example {name!r} in docs/{doc}"
    return found.group(1)


def test_the_custom_transport_example_signs_in_and_gets_a_token() -> None:
    code = example("architecture.md", "custom-transport")
    assert len(code.strip().splitlines()) <= 30  # short enough to read at a glance
    with serve_provider(lambda url: TestProvider(url, clock=_now), max_delay=5.0) as served:
        provider = served.provider
        provider.add_client("app", secret="s" * 32, redirect_uris=[REDIRECT], kind="traditional")
        provider.add_user("ada", name="Ada")
        provider.add_resource(API, ["read"])
        namespace: dict[str, Any] = {
            "ENDPOINT": served.url,
            "APP_ID": "app",
            "APP_SECRET": "s" * 32,
            "REDIRECT_URI": REDIRECT,
            "__name__": "example",
        }
        exec(compile(code, "docs/architecture.md", "exec"), namespace)
        ops, run_operation, perform = (namespace[n] for n in ("ops", "run_operation", "perform"))
        callback = provider.approve(namespace["url"], "ada")
        run_operation(ops.callback_op(namespace["context"], callback), perform)
        assert namespace["stored"].is_authenticated
        token = run_operation(ops.get_access_token_op(namespace["context"]), perform)
        assert isinstance(token, str) and token


def _now() -> float:
    import time

    return time.time()
