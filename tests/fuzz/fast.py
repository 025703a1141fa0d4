"""The fast fuzz engine: seeded mutation of valid inputs, judged by the targets' own checks.

A coverage-agnostic mutation fuzzer in pure Python. For each target it draws inputs from the
target's generator (:mod:`tests.fuzz.generators`) with a ``random.Random`` seeded from the
run seed and the target name, and passes each one to the same ``check`` the hypothesis
profile uses (``targets.TARGETS[name].check``, which applies ``guarded``/``assert_clean`` and
the target's oracle). Anything that check raises is a failure: it is counted, and the first
few of each kind are saved as runnable reproducers.

It runs one to two orders of magnitude faster than hypothesis (no shrinking, no strategy
interpretation, no example database), which is what makes a million examples per target fit
in minutes.
"""

from __future__ import annotations

import random
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .generators import GENERATORS
from .targets import KNOWN_HITS, OUTCOMES, TARGETS

ROOT = Path(__file__).resolve().parents[2]
CHECK_EVERY = 256
"""Examples between two looks at the clock."""


@dataclass
class Failure:
    """One kind of failure (exception type and the line that raised it) and its first input."""

    kind: str
    summary: str
    example: int
    count: int = 1
    reproducer: str = ""


@dataclass
class FastReport:
    """What one target's run did."""

    target: str
    seed: int
    examples: int = 0
    seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    known: dict[str, int] = field(default_factory=dict)
    failures: dict[str, Failure] = field(default_factory=dict)
    engine_error: str = ""

    @property
    def failed(self) -> int:
        return sum(failure.count for failure in self.failures.values())

    @property
    def rate(self) -> float:
        return self.examples / self.seconds if self.seconds else 0.0


def target_seed(seed: int, name: str) -> int:
    """The random seed of one target: stable across processes and Python runs."""
    return (seed * 1_000_003) ^ zlib.crc32(name.encode())


def _kind(error: BaseException) -> str:
    """Exception type and the innermost line of the SDK or test code it came from."""
    where = "?"
    frame = error.__traceback__
    while frame is not None:
        filename = frame.tb_frame.f_code.co_filename
        if "logto_core" in filename or "tests" in filename:
            where = f"{Path(filename).name}:{frame.tb_lineno}"
        frame = frame.tb_next
    return f"{type(error).__name__} at {where}"


def write_reproducer(
    directory: Path,
    target: str,
    value: Any,
    error: BaseException,
    seed: int,
    example: int,
    origin: tuple[str, str] | None = None,
) -> Path:
    """A Python script that replays ``value`` through the target's check.

    ``origin`` is (file name part, description) of where the input came from; the default
    names the fast engine's seed and example index."""
    directory.mkdir(parents=True, exist_ok=True)
    stem, where = origin or (
        f"seed{seed}-example{example}",
        f"fast engine, seed {seed}, example {example}",
    )
    path = directory / f"{target}-{stem}.py"
    summary = "".join(traceback.format_exception_only(type(error), error)).strip()
    comment = "\n".join(f"# {line}" for line in summary[:2000].splitlines())
    path.write_text(
        f"# Fuzz failure: target {target!r}, {where}.\n"
        f"{comment}\n"
        "# Replay from the repository root: .venv/bin/python <this file>\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from math import inf, nan  # noqa: F401  (repr of floats)\n"
        "from logto_core.protocol.signin_url import SignInOptions  # noqa: F401  (repr of options)\n"
        "from tests.fuzz.targets import TARGETS\n"
        f"VALUE = {value!r}\n"
        f"TARGETS[{target!r}].check(VALUE)\n",
        encoding="utf-8",
        errors="surrogatepass",
    )
    return path


def run_fast(
    name: str,
    examples: int,
    *,
    seed: int = 0,
    deadline: float | None = None,
    failures_dir: Path | None = None,
    max_saved: int = 5,
) -> FastReport:
    """Fuzz target ``name`` in this process for ``examples`` inputs or until ``deadline``
    (a ``time.time()`` value), whichever comes first."""
    report = FastReport(target=name, seed=target_seed(seed, name))
    outcomes_before = dict(OUTCOMES)
    known_before = dict(KNOWN_HITS)
    started = time.monotonic()
    try:
        generate = GENERATORS[name]()
        _loop(report, generate, examples, deadline, failures_dir, max_saved)
    except Exception as error:  # a bug in the engine or a generator, not in the SDK
        report.engine_error = "".join(traceback.format_exception(error))[-3000:]
    report.seconds = time.monotonic() - started
    report.outcomes = delta(OUTCOMES, outcomes_before)
    report.known = delta(KNOWN_HITS, known_before)
    return report


def _loop(
    report: FastReport,
    generate: Any,
    examples: int,
    deadline: float | None,
    failures_dir: Path | None,
    max_saved: int,
) -> None:
    check = TARGETS[report.target].check
    rng = random.Random(report.seed)
    for index in range(examples):
        if deadline is not None and index % CHECK_EVERY == 0 and time.time() > deadline:
            break
        value = generate(rng)
        report.examples = index + 1
        try:
            check(value)
        except Exception as error:
            record_failure(report, value, error, index, failures_dir, max_saved)


def record_failure(
    report: FastReport,
    value: Any,
    error: BaseException,
    index: int,
    failures_dir: Path | None,
    max_saved: int,
    origin: tuple[str, str] | None = None,
) -> Failure | None:
    """Count ``error`` under its kind; the first of a kind (up to ``max_saved`` kinds) is
    saved as a reproducer. Returns the new :class:`Failure`, or ``None`` for a known kind."""
    kind = _kind(error)
    known = report.failures.get(kind)
    if known is not None:
        known.count += 1
        return None
    summary = "".join(traceback.format_exception_only(type(error), error)).strip()[:500]
    failure = Failure(kind=kind, summary=summary, example=index)
    if failures_dir is not None and len(report.failures) < max_saved:
        path = write_reproducer(
            failures_dir, report.target, value, error, report.seed, index, origin
        )
        failure.reproducer = str(path)
    report.failures[kind] = failure
    return failure


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """The counts added to ``after`` since the snapshot ``before``."""
    return {key: n - before.get(key, 0) for key, n in after.items() if n > before.get(key, 0)}
