"""cProfile summaries of a hot path, for the report when a target is missed."""

from __future__ import annotations

import asyncio
import cProfile
import pstats
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent)


def _where(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if "site-packages/" in filename:
        filename = filename.split("site-packages/", 1)[1]
    elif filename.startswith(ROOT):
        filename = filename[len(ROOT) + 1 :]
    elif "/lib/python3" in filename:
        filename = "stdlib:" + filename.rsplit("/", 1)[-1]
    return f"{filename}:{line}({function})"


def summarise(profile: cProfile.Profile, calls: int, top: int = 10) -> dict[str, Any]:
    """Top functions by own time and the project's functions by cumulative time, per call."""
    stats = pstats.Stats(profile)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(value[2] for value in entries.values()) or 1e-12
    own = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    project = [
        item
        for item in entries.items()
        if item[0][0].startswith(ROOT)
        and "/benchmarks/" not in item[0][0]
        and "site-packages/" not in item[0][0]
    ]
    cumulative = sorted(project, key=lambda item: item[1][3], reverse=True)[:top]
    return {
        "calls": calls,
        "total_us_per_call": total / calls * 1e6,
        "own": [
            {"where": _where(key), "own_us": v[2] / calls * 1e6, "share": v[2] / total}
            for key, v in own
        ],
        "cumulative": [
            {"where": _where(key), "cum_us": v[3] / calls * 1e6, "share": v[3] / total}
            for key, v in cumulative
        ],
    }


def profile_sync(fn: Callable[[], Any], calls: int) -> dict[str, Any]:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        fn()
    profile.disable()
    return summarise(profile, calls)


async def profile_async(fn: Callable[[], Awaitable[Any]], calls: int) -> dict[str, Any]:
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        await fn()
    profile.disable()
    return summarise(profile, calls)


def profile_coroutine(make: Callable[[], Awaitable[Any]], calls: int) -> dict[str, Any]:
    """Profile ``calls`` runs of ``make()`` in a fresh event loop."""
    return asyncio.run(profile_async(make, calls))
