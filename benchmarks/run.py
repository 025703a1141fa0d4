"""Run every benchmark, check the targets, profile the misses, write docs/benchmarks.md.

    python -m benchmarks            # the full run (a few minutes on 2 cores)
    python -m benchmarks --quick    # smaller sizes, for a smoke test
    python benchmarks/run.py        # the same as the first line

The command builds ``.venv-bench`` on first use and re-runs itself inside it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import venv


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue, measured: name, goal, value, met."""
    page, callback = results["pageview"], results["callback"]
    flows, conns = results["requests"], results["connections"]
    concurrent, throughput = results["concurrent"], results["throughput"]["throughput"]
    out: list[dict[str, Any]] = []

    def add(key: str, name: str, goal: str, value: str, met: bool) -> None:
        out.append({"key": key, "name": name, "goal": goal, "value": value, "met": met})

    for kind in ("sync", "aio"):
        speedup = page[kind]["speedup_vs_official"]
        add(
            f"pageview-{kind}",
            f"page view cheaper than the official SDK ({kind})",
            ">= 10x (aim 20x)",
            f"{speedup:.1f}x",
            speedup >= 10,
        )
    for kind in ("sync", "aio"):
        ratio = flows["steady"][kind]["ratio_vs_official"]
        add(
            f"flowtime-{kind}",
            f"time inside SDK calls, full tutorial flow ({kind})",
            "<= official",
            f"{ratio:.2f}x official",
            ratio <= 1.0,
        )
    ratio = callback["callback_over_floor"]
    add(
        "callback",
        "callback CPU vs raw ES384 verification",
        "<= 1.5x",
        f"{ratio:.2f}x",
        ratio <= 1.5,
    )
    cached = max(page[kind]["provider_requests"] for kind in ("sync", "aio"))
    add(
        "cached",
        "provider requests for cached operations",
        "0",
        str(cached),
        cached == 0,
    )
    scaling = flows["scaling"]
    once = all(
        scaling[kind][users]["discovery"] == 1 and scaling[kind][users]["jwks"] == 1
        for kind in ("sync", "aio")
        for users in scaling[kind]
    )
    add(
        "once",
        "discovery and JWKS once per process (1..100 users)",
        "1 each",
        "1 each" if once else "more",
        once,
    )
    for case in ("sync", "aio"):
        count = conns[case]["connections_with_sign_in"]
        add(
            f"conn-{case}",
            f"TCP connections, sign-in + 100 sequential refreshes ({case})",
            "1",
            str(count),
            count == 1,
        )
    fresh = conns["aio-fresh-loop"]["connections_with_sign_in"]
    add(
        "conn-aio-fresh-loop",
        "TCP connections, same, asyncio.run per call (aio, Flask async views)",
        "1 (informative: a closed loop cannot keep a connection)",
        str(fresh),
        fresh == 1,
    )
    for case in ("sync", "aio"):
        worst = max(v["refresh_requests"] for v in concurrent[case].values())
        errors = sum(v["errors"] for v in concurrent[case].values())
        add(
            f"single-{case}",
            f"refreshes for N concurrent callers, N up to 1000 ({case})",
            "exactly 1",
            f"max {worst}, {errors} errors",
            worst == 1 and errors == 0,
        )
    for level, values in throughput["aio"].items():
        ratio = values["ratio_vs_official"]
        add(
            f"throughput-{level}",
            f"sign-in throughput at concurrency {level} (aio vs official)",
            ">= 1x (no target in the issue; compared)",
            f"{ratio:.2f}x",
            ratio >= 1.0,
        )
    return out


PROFILES = {
    "pageview-sync": ("page view, sync client", lambda h: h.page_view("sync")),
    "pageview-aio": ("page view, async client", lambda h: h.page_view("aio")),
    "callback": ("callback handling in the core", lambda h: h.callback()),
    "flowtime-sync": ("full tutorial flow, sync client", lambda h: h.tutorial_flow("sync")),
    "flowtime-aio": ("full tutorial flow, async client", lambda h: h.tutorial_flow("aio")),
    "conn-aio-fresh-loop": ("refresh with asyncio.run per call", lambda h: h.fresh_loop_refresh()),
    "throughput-100": (
        "sign-in flows at concurrency 100, async client",
        lambda h: h.throughput("aio"),
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    parser.add_argument("--no-profile", action="store_true", help="skip profiling misses")
    parser.add_argument(
        "--out", default="docs/benchmarks.md", help="report path (the chart goes beside it)"
    )
    args = parser.parse_args(argv)
    venv.ensure()  # re-executes inside .venv-bench when needed

    from benchmarks import (
        b1_pageview,
        b2_callback,
        b3_requests,
        b4_connections,
        b5_concurrent,
        b6_throughput,
        hotpaths,
        report,
    )

    started = time.perf_counter()
    results: dict[str, Any] = {}
    steps = (
        ("pageview", "1/6 signed-in page view", b1_pageview.run),
        ("callback", "2/6 sign-in callback CPU vs verification floor", b2_callback.run),
        ("requests", "3/6 provider requests for the tutorial flow", b3_requests.run),
        ("connections", "4/6 TCP connections for sequential refreshes", b4_connections.run),
        ("concurrent", "5/6 concurrent getAccessToken on an expired token", b5_concurrent.run),
        ("throughput", "6/6 sign-in throughput and memory per session", b6_throughput.run),
    )
    for key, title, run in steps:
        _log(title)
        step_started = time.perf_counter()
        results[key] = run(quick=args.quick)
        _log(f"   done in {time.perf_counter() - step_started:.1f} s")
    checks = targets(results)
    profiles: dict[str, Any] = {}
    if not args.no_profile:
        for check in checks:
            if check["met"] or check["key"] not in PROFILES:
                continue
            title, profile = PROFILES[check["key"]]
            _log(f"profiling a miss: {title}")
            profiles[check["key"]] = {"title": title, **profile(hotpaths)}
    elapsed = time.perf_counter() - started
    out = Path(args.out)
    report.write(out, results, checks, profiles, elapsed=elapsed, quick=args.quick)
    _log(f"wrote {out} and {report.chart_path(out)} in {elapsed:.0f} s")
    for check in checks:
        mark = "met " if check["met"] else "MISS"
        print(f"{mark}  {check['name']}: {check['value']} (target {check['goal']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
