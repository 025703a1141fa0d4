"""Blind mutation (fast engine) against coverage-guided fuzzing (atheris), target by target.

    python tests/fuzz/compare.py [--seconds 120] [--only NAME ...] [--work DIR] [--json FILE]
                                 [--raw]

For each target both engines run at the same time, one process each (one per CPU on a 2-CPU
machine, so they share whatever else loads it), for the same ``--seconds``, without coverage
tracing. Then the branch coverage of ``logto_core`` that each run reached is measured with
coverage.py by replaying it: the fast engine is deterministic from its seed, so its exact
examples are regenerated and re-checked; atheris keeps every input that reached new code in
its corpus, so the corpus (and the failing inputs) is re-checked. Printed, and written to
``--json``: per target and engine the examples, examples/s, distinct failures (kinds of
exception and raising line), failures per minute, branches of ``logto_core`` covered, and the
union over all targets.

``--raw`` runs atheris with the raw decoding of ``raw_inputs.py``. The replays run under
``coverage run`` as ``compare.py replay-fast NAME N`` and ``compare.py replay-corpus NAME DIR``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 0
ENGINES = ("fast", "atheris")


# ---- replays (run under coverage) -------------------------------------------------------------


def replay_fast(name: str, examples: int, seed: int = SEED) -> int:
    """Re-run the fast engine's first ``examples`` examples of ``name``: the number failed."""
    from tests.fuzz.fast import run_fast

    return run_fast(name, examples, seed=seed).failed


def replay_corpus(name: str, directories: list[Path], raw: bool = False) -> int:
    """Decode and check every file in ``directories`` (``.py``/``.json``/``.log`` skipped):
    the number of inputs whose check raised."""
    from tests.fuzz.generators import GENERATORS
    from tests.fuzz.raw_inputs import decode
    from tests.fuzz.targets import TARGETS

    generate, check = GENERATORS[name](), TARGETS[name].check
    failed = 0
    for directory in directories:
        for path in sorted(directory.iterdir()):
            if not path.is_file() or path.suffix in (".py", ".json", ".log"):
                continue
            try:
                check(decode(name, generate, path.read_bytes(), raw))
            except Exception:
                failed += 1
    return failed


# ---- measurement ------------------------------------------------------------------------------


def _python() -> list[str]:
    return [sys.executable]


def _fuzz_pair(name: str, seconds: float, work: Path, raw: bool) -> dict[str, dict[str, Any]]:
    """Both engines on ``name`` at once; their JSON reports by engine."""
    out = {engine: work / f"{name}-{engine}.json" for engine in ENGINES}
    for path in out.values():
        path.unlink(missing_ok=True)
    fast = [
        *_python(),
        str(ROOT / "tests/fuzz/run_long.py"),
        "--engine=fast",
        f"--minutes={seconds / 60}",
        "--examples=1000000000",
        "--jobs=1",
        f"--seed={SEED}",
        f"--only={name}",
        f"--failures={work / 'failures-fast'}",
        f"--json={out['fast']}",
    ]
    guided = [
        *_python(),
        "-m",
        "tests.fuzz.guided",
        name,
        f"--seconds={seconds}",
        f"--corpus={work / 'corpus' / name}",
        f"--failures={work / 'failures-atheris'}",
        f"--json={out['atheris']}",
        "--seed=1",
        *(["--raw"] if raw else []),
    ]
    logs = {engine: (work / f"{name}-{engine}.log").open("wb") for engine in ENGINES}
    processes = {
        "fast": subprocess.Popen(fast, cwd=ROOT, stdout=logs["fast"], stderr=subprocess.STDOUT),
        "atheris": subprocess.Popen(
            guided, cwd=ROOT, stdout=logs["atheris"], stderr=subprocess.STDOUT
        ),
    }
    reports: dict[str, dict[str, Any]] = {}
    for engine, process in processes.items():
        process.wait(timeout=seconds + 600)
        logs[engine].close()
        if not out[engine].exists():
            raise RuntimeError(f"{engine} on {name} wrote no report; see {logs[engine].name}")
        payload = json.loads(out[engine].read_text())
        reports[engine] = payload["targets"][0] if engine == "fast" else payload
    return reports


def _coverage(name: str, engine: str, report: dict[str, Any], work: Path, raw: bool) -> Path:
    """Replay one run under coverage.py; its data file."""
    data = work / f"{name}-{engine}.coverage"
    data.unlink(missing_ok=True)
    if engine == "fast":
        replay = ["replay-fast", name, str(report["examples"])]
    else:
        replay = ["replay-corpus", name, str(work / "corpus" / name), *(["--raw"] if raw else [])]
        failures = work / "failures-atheris"
        if failures.is_dir():
            failing = [p for p in failures.iterdir() if p.name.startswith(f"{name}-")]
            if failing:
                single = work / f"failing-{name}"
                single.mkdir(exist_ok=True)
                for path in failing:
                    (single / path.name).write_bytes(path.read_bytes())
                replay.append(str(single))
    subprocess.run(
        [
            *_python(),
            "-m",
            "coverage",
            "run",
            "--branch",
            "--source=logto_core",
            f"--data-file={data}",
            str(ROOT / "tests/fuzz/compare.py"),
            *replay,
        ],
        cwd=ROOT,
        check=True,
        timeout=3600,
    )
    return data


def _branches(data: list[Path], work: Path) -> tuple[int, int]:
    """(covered branches, branches) of ``logto_core`` in the union of ``data``."""
    combined = work / "combined.coverage"
    combined.unlink(missing_ok=True)
    subprocess.run(
        [
            *_python(),
            "-m",
            "coverage",
            "combine",
            "--keep",
            f"--data-file={combined}",
            *map(str, data),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    report = work / "coverage.json"
    subprocess.run(
        [
            *_python(),
            "-m",
            "coverage",
            "json",
            f"--data-file={combined}",
            "-o",
            str(report),
            "--fail-under=0",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    totals = json.loads(report.read_text())["totals"]
    return int(totals["covered_branches"]), int(totals["num_branches"])


def measure(names: list[str], seconds: float, work: Path, raw: bool = False) -> dict[str, Any]:
    """Fuzz every target with both engines (pairs at once), then replay every run under
    coverage (two replays at once: they only compete with each other)."""
    from tests.fuzz.targets import TARGETS

    names = names or list(TARGETS)
    reports: dict[str, dict[str, dict[str, Any]]] = {}
    for name in names:
        reports[name] = _fuzz_pair(name, seconds, work, raw)
        print(f"fuzzed {name}: " + _line(reports[name]), flush=True)
    runs = [(name, engine) for name in names for engine in ENGINES]
    with ThreadPoolExecutor(max_workers=2) as pool:
        files = dict(
            zip(
                runs,
                pool.map(
                    lambda run: _coverage(run[0], run[1], reports[run[0]][run[1]], work, raw), runs
                ),
                strict=True,
            )
        )
    results: dict[str, Any] = {"seconds": seconds, "targets": {}}
    for name in names:
        row: dict[str, Any] = {}
        for engine in ENGINES:
            report = reports[name][engine]
            covered, total = _branches([files[name, engine]], work)
            minutes = report["seconds"] / 60
            row[engine] = {
                "examples": report["examples"],
                "seconds": round(report["seconds"], 1),
                "rate": round(report["examples"] / report["seconds"]),
                "failure_kinds": sorted(report["failures"]),
                "failures_per_minute": round(len(report["failures"]) / minutes, 2),
                "branches": covered,
                "branches_total": total,
                "corpus_files": report.get("corpus_files"),
            }
        results["targets"][name] = row
        print(f"{name:16} " + _line(row), flush=True)
    results["union"] = {
        engine: _branches([files[name, engine] for name in names], work) for engine in ENGINES
    }
    print(f"union of all targets (covered, total branches): {results['union']}", flush=True)
    return results


def _line(row: dict[str, dict[str, Any]]) -> str:
    cells = []
    for engine, r in row.items():
        cell = f"{engine} {r['examples']:,} examples, {len(r.get('failure_kinds', r.get('failures', ())))} failure kinds"
        if "branches" in r:
            cell += f", {r['branches']}/{r['branches_total']} branches"
        cells.append(cell)
    return " | ".join(cells)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    fast = sub.add_parser("replay-fast")
    fast.add_argument("name")
    fast.add_argument("examples", type=int)
    corpus = sub.add_parser("replay-corpus")
    corpus.add_argument("name")
    corpus.add_argument("directories", nargs="+", type=Path)
    corpus.add_argument("--raw", action="store_true")
    parser.add_argument("--seconds", type=float, default=120.0, help="per target and engine")
    parser.add_argument("--only", nargs="*", default=[], help="targets (default: all)")
    parser.add_argument("--work", type=Path, default=None, help="corpora, logs, coverage")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--raw", action="store_true", help="atheris with raw decoding")
    args = parser.parse_args(argv)
    if args.command == "replay-fast":
        replay_fast(args.name, args.examples)
        return 0
    if args.command == "replay-corpus":
        replay_corpus(args.name, args.directories, args.raw)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="logto-fuzz-compare-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"comparing engines, {args.seconds:g} s per target and engine, in {work}", flush=True)
    results = measure(args.only, args.seconds, work, args.raw)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
