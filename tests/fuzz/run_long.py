"""Long fuzz profile: every target for a million examples or more, in parallel processes.

    python tests/fuzz/run_long.py [--examples N] [--minutes M] [--jobs J] [--only NAME ...]

Each target runs hypothesis in generate-only batches (``derandomize=False``, no database, no
shrinking phase, so memory stays flat and every batch explores fresh random inputs) until it
has checked ``--examples`` inputs or its share of ``--minutes`` is spent. It prints, per
target, the examples checked, the rate, the known findings hit and any failure; the exit
status is 1 when a target failed.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BATCH = 20_000


def run_target(name: str, examples: int, seconds: float) -> dict[str, Any]:
    """Run one target in this process; return its counts."""
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.fuzz.targets import KNOWN_HITS, TARGETS

    target = TARGETS[name]
    known_before = dict(KNOWN_HITS)  # a pool worker may have run another target before
    counted = [0]
    started = time.monotonic()
    failure = ""

    def check(value: Any) -> None:
        counted[0] += 1
        target.check(value)

    while counted[0] < examples and time.monotonic() - started < seconds and not failure:
        batch = min(BATCH, examples - counted[0])

        @settings(
            max_examples=batch,
            phases=[Phase.generate],
            derandomize=False,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(target.strategy)
        def run(value: Any) -> None:
            check(value)

        try:
            run()
        except Exception as error:  # report, do not crash the other targets
            failure = "".join(traceback.format_exception_only(type(error), error)).strip()
    elapsed = time.monotonic() - started
    return {
        "target": name,
        "examples": counted[0],
        "seconds": round(elapsed, 1),
        "rate": round(counted[0] / elapsed) if elapsed else 0,
        "known": {
            k: v - known_before.get(k, 0)
            for k, v in KNOWN_HITS.items()
            if v > known_before.get(k, 0)
        },
        "failure": failure[:2000],
    }


def main(argv: list[str] | None = None) -> int:
    from tests.fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000, help="examples per target")
    parser.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget, total")
    parser.add_argument("--jobs", type=int, default=None, help="parallel processes")
    parser.add_argument("--only", nargs="*", choices=sorted(TARGETS), help="targets to run")
    args = parser.parse_args(argv)
    names = args.only or list(TARGETS)
    jobs = args.jobs or min(len(names), max(1, _cpus()))
    # Targets run `jobs` at a time, so each gets its share of the total budget.
    rounds = -(-len(names) // jobs)
    per_target = args.minutes * 60.0 / rounds
    print(
        f"fuzzing {len(names)} targets, {args.examples} examples each, {jobs} processes, "
        f"at most {per_target:.0f} s per target",
        flush=True,
    )
    failed = False
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_target, name, args.examples, per_target) for name in names]
        for future in futures:
            result = future.result()
            failed |= bool(result["failure"])
            known = ", ".join(f"{k}={v}" for k, v in result["known"].items()) or "-"
            print(
                f"{result['target']:16} {result['examples']:>10} examples "
                f"{result['seconds']:>8} s {result['rate']:>7}/s  known findings: {known}"
                + (f"\n  FAILURE: {result['failure']}" if result["failure"] else ""),
                flush=True,
            )
    return 1 if failed else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())
