"""Long fuzz profile: every target for a million examples or more, in parallel processes.

    python tests/fuzz/run_long.py [--engine fast|hypothesis|atheris ...] [--examples N]
                                  [--minutes M] [--jobs J] [--seed S] [--only NAME ...]
                                  [--failures DIR] [--corpus DIR] [--json FILE]

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

``--engine atheris`` fuzzes with coverage guidance (``tests/fuzz/guided.py``: libFuzzer
through atheris, the fast engine's generators decoding its inputs, the same checks): one
process per target, ``--jobs`` at a time, each for its share of ``--minutes`` (``--examples``
does not apply), its corpus kept in ``--corpus``/NAME so that the next run goes on from there.
Needs the ``fuzz`` extra (``pip install -e '.[fuzz]'``). Several engines (``--engine fast
atheris``) run one after the other, each with an even share of the time still left.

The exit status is 1 when a target failed (or the engine broke), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fuzz.fast import Failure, FastReport, delta, run_fast  # noqa: E402
from tests.fuzz.guided import DEFAULT_CORPUS  # noqa: E402
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


# ---- atheris engine ---------------------------------------------------------------------------

GUIDED_GRACE = 120.0
"""Seconds a guided process may take beyond its fuzzing time (start-up, signing seeds)."""


def run_guided(name: str, seconds: float, corpus: Path, failures: Path, seed: int) -> FastReport:
    """Fuzz ``name`` with atheris in a process of its own (libFuzzer owns the process it runs
    in and ends it); its report, or one with ``engine_error`` set when it wrote none."""
    failures.mkdir(parents=True, exist_ok=True)
    report_path = failures / f"{name}-atheris.json"
    log_path = failures / f"{name}-atheris.log"
    report_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.guided",
        name,
        f"--seconds={seconds:.1f}",
        f"--corpus={corpus / name}",
        f"--failures={failures}",
        f"--json={report_path}",
        f"--seed={seed}",
    ]
    status: int | str
    with log_path.open("wb") as log:
        try:
            status = subprocess.run(
                command,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=seconds + GUIDED_GRACE,
                check=False,
            ).returncode
        except subprocess.TimeoutExpired:
            status = "timed out"
    if report_path.exists():
        return report_from_json(json.loads(report_path.read_text()))
    return FastReport(
        target=name,
        seed=seed,
        engine_error=f"atheris ended ({status}) without a report: {_log_summary(log_path)}",
    )


def report_from_json(payload: dict[str, Any]) -> FastReport:
    """A :class:`FastReport` from its ``asdict`` form (extra members ignored)."""
    return FastReport(
        target=payload["target"],
        seed=payload["seed"],
        examples=payload["examples"],
        seconds=payload["seconds"],
        outcomes=payload["outcomes"],
        known=payload["known"],
        failures={kind: Failure(**failure) for kind, failure in payload["failures"].items()},
        engine_error=payload["engine_error"],
    )


def _log_summary(log_path: Path) -> str:
    """libFuzzer's own verdict (a hang, a memory blow-up, a crash of the engine) from its log,
    or the log's last lines."""
    lines = log_path.read_text(errors="replace").splitlines()
    verdict = [
        line
        for line in lines
        if "ERROR: libFuzzer" in line or "Test unit written to" in line or "Error" in line
    ]
    return " | ".join((verdict or lines[-5:])[-5:])[:1500] + f" (log: {log_path})"


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
    parser.add_argument(
        "--engine",
        nargs="+",
        choices=("fast", "hypothesis", "atheris"),
        default=["fast"],
        help="one or more, run in turn with the budget split between them",
    )
    parser.add_argument("--examples", type=int, default=1_000_000, help="examples per target")
    parser.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget, total")
    parser.add_argument("--jobs", type=int, default=None, help="parallel processes")
    parser.add_argument("--seed", type=int, default=0, help="fast engine: run seed")
    parser.add_argument("--only", nargs="*", choices=sorted(TARGETS), help="targets to run")
    parser.add_argument("--failures", type=Path, default=DEFAULT_FAILURES, help="reproducers")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="atheris corpora")
    parser.add_argument("--json", type=Path, default=None, help="write the reports here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = sorted(args.only or TARGETS, key=lambda name: -COST.get(name, 0))
    jobs = args.jobs or min(len(names), max(1, _cpus()))
    started = time.monotonic()
    engines = list(dict.fromkeys(args.engine))
    reports: list[FastReport] = []
    for index, engine in enumerate(engines):
        # An engine that finishes early (the fast one once it has its examples) leaves its
        # time to the ones after it.
        left = args.minutes * 60.0 - (time.monotonic() - started)
        share = max(left, 0.0) / (len(engines) - index)
        print(_announce(engine, args, len(names), jobs, share), flush=True)
        for report in _run_engine(engine, names, jobs, share, args):
            reports.append(report)
            print(describe(report), flush=True)
    wall = time.monotonic() - started
    reports.sort(key=lambda report: list(TARGETS).index(report.target))
    print(summary(reports, wall), flush=True)
    if args.json is not None:
        payload: dict[str, Any] = {
            "engine": " ".join(engines),
            "seed": args.seed,
            "wall_seconds": round(wall, 1),
        }
        payload["targets"] = [asdict(report) for report in reports]
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=True))
    broken = any(report.failed or report.engine_error for report in reports)
    return 1 if broken else 0


def _announce(engine: str, args: argparse.Namespace, targets: int, jobs: int, budget: float) -> str:
    what = "coverage-guided" if engine == "atheris" else f"{args.examples:,} examples each"
    return (
        f"fuzzing {targets} targets with the {engine} engine: {what}, {jobs} processes, "
        f"{budget / 60:g} minutes at most" + (f", seed {args.seed}" if engine == "fast" else "")
    )


def _run_engine(
    engine: str, names: list[str], jobs: int, budget: float, args: argparse.Namespace
) -> Iterator[FastReport]:
    """Every target with ``engine`` within ``budget`` seconds; reports as they finish."""
    # Targets that run `jobs` at a time each get their share of the budget.
    per_target = budget / -(-len(names) // jobs)
    if engine == "atheris":
        with ThreadPoolExecutor(max_workers=jobs) as threads:
            guided = [
                threads.submit(run_guided, name, per_target, args.corpus, args.failures, args.seed)
                for name in names
            ]
            for done in as_completed(guided):
                yield done.result()
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures: list[Future[FastReport]] = []
        deadline = time.time() + budget
        for name in names:
            if engine == "fast":
                futures.append(
                    pool.submit(
                        run_fast,
                        name,
                        args.examples,
                        seed=args.seed,
                        deadline=deadline,
                        failures_dir=args.failures,
                    )
                )
            else:
                futures.append(pool.submit(run_hypothesis, name, args.examples, per_target))
        for future in as_completed(futures):
            yield future.result()


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    raise SystemExit(main())
