"""Long fuzz profile: every target for a million examples or more, in parallel processes.

    python tests/fuzz/run_long.py [--engine fast|hypothesis] [--examples N] [--minutes M]
                                  [--jobs J] [--seed S] [--only NAME ...] [--failures DIR]
                                  [--json FILE]

The default engine, ``fast`` (``tests/fuzz/fast.py``), mutates valid seed inputs with a
seeded ``random.Random`` and checks each with the target's own ``check`` from ``targets.py``
(the same invariant and oracle as the hypothesis profile). It runs each target until it has
checked ``--examples`` inputs (default 1,000,000) or the ``--minutes`` budget of the whole run
is spent, and prints per target the examples, seconds, rate, outcomes (accepted, typed errors
by code family, known findings) and failures, each failure kind with a reproducer script
saved under ``--failures``.

``--engine hypothesis`` runs the hypothesis strategies instead, in generate-only batches (no
database, no shrinking), with the budget split evenly between the targets; it manages
80-800 examples/s per process, so a million per target takes hours.

The exit status is 1 when a target failed (or the engine broke), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fuzz.fast import Failure, FastReport, delta, run_fast  # noqa: E402
from tests.fuzz.targets import ACCEPTED, KNOWN_HITS, OUTCOMES, TARGETS, code_family  # noqa: E402

BATCH = 20_000
DEFAULT_FAILURES = Path(tempfile.gettempdir()) / "logto-fuzz-failures"
# Rough cost per example (microseconds, fast engine): the costly targets start first so
# that the processes finish together.
COST = {
    "callback": 140,
    "id_token": 130,
    "sign_in_url": 90,
    "end_session_url": 80,
    "jwt": 45,
    "jwks": 38,
    "error_body": 35,
    "discovery": 35,
    "token": 35,
    "userinfo": 28,
}


# ---- hypothesis engine ------------------------------------------------------------------------


def run_hypothesis(name: str, examples: int, seconds: float) -> FastReport:
    """Run one target's hypothesis strategy in this process; report like the fast engine."""
    from hypothesis import HealthCheck, Phase, given, settings

    target = TARGETS[name]
    report = FastReport(target=name, seed=-1)
    outcomes_before = dict(OUTCOMES)
    known_before = dict(KNOWN_HITS)
    counted = [0]
    started = time.monotonic()

    def check(value: Any) -> None:
        counted[0] += 1
        target.check(value)

    while counted[0] < examples and time.monotonic() - started < seconds and not report.failures:
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
            summary = "".join(traceback.format_exception_only(type(error), error)).strip()
            report.failures[type(error).__name__] = Failure(
                kind=type(error).__name__, summary=summary[:2000], example=counted[0]
            )
    report.examples = counted[0]
    report.seconds = time.monotonic() - started
    report.outcomes = delta(OUTCOMES, outcomes_before)
    report.known = delta(KNOWN_HITS, known_before)
    return report


# ---- output -----------------------------------------------------------------------------------


def families(outcomes: dict[str, int]) -> dict[str, int]:
    """Outcome counts by code family, ``accepted`` first, then by count."""
    grouped: dict[str, int] = {}
    for code, count in outcomes.items():
        key = ACCEPTED if code == ACCEPTED else code_family(code)
        grouped[key] = grouped.get(key, 0) + count
    return dict(sorted(grouped.items(), key=lambda item: (item[0] != ACCEPTED, -item[1])))


def describe(report: FastReport) -> str:
    """Two or more lines: counts, outcomes, known findings, failures."""
    head = (
        f"{report.target:16} {report.examples:>10,} examples {report.seconds:>7.1f} s "
        f"{report.rate:>8,.0f}/s  failures: {report.failed}"
    )
    outcome = ", ".join(f"{name} {count:,}" for name, count in families(report.outcomes).items())
    lines = [head, f"    outcomes (per SDK call): {outcome or '-'}"]
    if report.known:
        known = ", ".join(f"{name} {count:,}" for name, count in report.known.items())
        lines.append(f"    known findings hit: {known}")
    for failure in report.failures.values():
        lines.append(f"    FAILURE x{failure.count}: {failure.kind}: {failure.summary[:300]}")
        if failure.reproducer:
            lines.append(f"      reproducer: {failure.reproducer}")
    if report.engine_error:
        lines.append(f"    ENGINE ERROR: {report.engine_error}")
    return "\n".join(lines)


def summary(reports: list[FastReport], wall: float) -> str:
    examples = sum(report.examples for report in reports)
    failed = sum(report.failed for report in reports)
    known = sum(sum(report.known.values()) for report in reports)
    slowest = min(reports, key=lambda report: report.examples) if reports else None
    return (
        f"total: {examples:,} examples in {wall:.0f} s wall clock, {failed} failures, "
        f"{known:,} known-finding hits"
        + (f"; fewest examples: {slowest.target} {slowest.examples:,}" if slowest else "")
    )


# ---- main -------------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--engine", choices=("fast", "hypothesis"), default="fast")
    parser.add_argument("--examples", type=int, default=1_000_000, help="examples per target")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget, total")
    parser.add_argument("--jobs", type=int, default=None, help="parallel processes")
    parser.add_argument("--seed", type=int, default=0, help="fast engine: run seed")
    parser.add_argument("--only", nargs="*", choices=sorted(TARGETS), help="targets to run")
    parser.add_argument("--failures", type=Path, default=DEFAULT_FAILURES, help="reproducers")
    parser.add_argument("--json", type=Path, default=None, help="write the reports here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = sorted(args.only or TARGETS, key=lambda name: -COST.get(name, 0))
    jobs = args.jobs or min(len(names), max(1, _cpus()))
    started = time.monotonic()
    budget = args.minutes * 60.0
    print(
        f"fuzzing {len(names)} targets with the {args.engine} engine: {args.examples:,} "
        f"examples each, {jobs} processes, {args.minutes:g} minutes at most"
        + (f", seed {args.seed}" if args.engine == "fast" else ""),
        flush=True,
    )
    reports: list[FastReport] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures: list[Future[FastReport]] = []
        for name in names:
            if args.engine == "fast":
                futures.append(
                    pool.submit(
                        run_fast,
                        name,
                        args.examples,
                        seed=args.seed,
                        deadline=time.time() + budget,
                        failures_dir=args.failures,
                    )
                )
            else:
                # Targets run `jobs` at a time, so each gets its share of the total budget.
                share = budget / -(-len(names) // jobs)
                futures.append(pool.submit(run_hypothesis, name, args.examples, share))
        for future in as_completed(futures):
            report = future.result()
            reports.append(report)
            print(describe(report), flush=True)
    wall = time.monotonic() - started
    reports.sort(key=lambda report: list(TARGETS).index(report.target))
    print(summary(reports, wall), flush=True)
    if args.json is not None:
        payload = {"engine": args.engine, "seed": args.seed, "wall_seconds": round(wall, 1)}
        payload["targets"] = [asdict(report) for report in reports]
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=True))
    broken = any(report.failed or report.engine_error for report in reports)
    return 1 if broken else 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())
