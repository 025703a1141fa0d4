"""Coverage-guided fuzzing of one target with atheris (libFuzzer), in this process.

    python -m tests.fuzz.guided NAME --seconds S [--corpus DIR] [--failures DIR]
                                [--json FILE] [--seed N] [--raw]

``logto_core`` is imported under ``atheris.instrument_imports``, so libFuzzer sees which of its
branches each input reaches. An input (bytes) is decoded by the fast engine's generator for the
target reading its decisions from a :class:`~tests.fuzz.bytes_random.ByteRandom`, and the value
goes through the target's own ``check`` (``targets.TARGETS[NAME].check``: typed errors only, no
secret in a message, the oracle on accepted results), exactly as in the fast engine (``--raw``: half of the inputs carry raw bytes in the target's
main member instead, see ``raw_inputs.py``). A failure
does not stop the run (libFuzzer would exit on the first crash): it is counted by kind, and the
first input of each kind is saved under ``--failures`` as ``NAME-atheris-<sha>.bin`` (the raw
input) and ``NAME-atheris-<sha>.py`` (a script replaying the decoded value, as the fast engine
writes). libFuzzer keeps the inputs that reached new code in ``--corpus`` (created and, when
empty, seeded with a few random inputs), so a later run goes on from there.

After ``--seconds`` the process writes its report (the fast engine's ``FastReport`` as JSON,
plus the corpus size) to ``--json`` and exits, 1 if a target check failed, else 0. A hang or
memory blow-up is caught by libFuzzer itself (``-timeout``, ``-rss_limit_mb``): the process
then dies with libFuzzer's report and the input saved with the ``--failures`` prefix, and
writes no JSON. ``run_long.py --engine atheris`` runs one such process per target.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pkgutil
import random
import sys
import tempfile
import time
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


SEED_INPUTS = 32
"""Random inputs written into an empty corpus (they decode like the fast engine's draws)."""
HANG_SECONDS = 20
"""libFuzzer's ``-timeout``: one input running this long is reported as a hang."""
DEFAULT_CORPUS = Path(__file__).resolve().parent / "corpus"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("name", help="target name (targets.TARGETS)")
    parser.add_argument("--seconds", type=float, required=True, help="fuzzing time")
    parser.add_argument("--corpus", type=Path, default=None, help="default: corpus/NAME")
    parser.add_argument(
        "--failures", type=Path, default=Path(tempfile.gettempdir()) / "logto-fuzz-failures"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's -seed (0: time)")
    parser.add_argument("--raw", action="store_true", help="raw decoding (raw_inputs.py)")
    return parser.parse_args(argv)


def seed_corpus(corpus: Path, name: str, count: int = SEED_INPUTS) -> None:
    """Fill an empty corpus with ``count`` random inputs, the same ones for a target."""
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    rng = random.Random(zlib.crc32(name.encode()))
    for index in range(count):
        (corpus / f"seed-{index:02d}").write_bytes(rng.randbytes(rng.randrange(8, 256)))


def _import_instrumented() -> None:
    """Import every ``logto_core`` module (and the fuzz code that uses it) instrumented."""
    import atheris  # (not a dependency of the test suite: imported only here)

    with atheris.instrument_imports(include=["logto_core"]):
        import logto_core

        for module in pkgutil.walk_packages(logto_core.__path__, "logto_core."):
            importlib.import_module(module.name)
        importlib.import_module("tests.fuzz.fast")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: .venv/bin/pip install -e '.[fuzz]'", file=sys.stderr)
        return 2
    _import_instrumented()
    from tests.fuzz.fast import FastReport, delta, record_failure
    from tests.fuzz.generators import GENERATORS
    from tests.fuzz.raw_inputs import decode
    from tests.fuzz.targets import KNOWN_HITS, OUTCOMES, TARGETS

    name = args.name
    if name not in TARGETS:
        print(f"unknown target {name!r}; targets: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    corpus = args.corpus or DEFAULT_CORPUS / name
    seed_corpus(corpus, name)
    args.failures.mkdir(parents=True, exist_ok=True)
    generate = GENERATORS[name]()
    check = TARGETS[name].check
    report = FastReport(target=name, seed=args.seed)
    outcomes_before, known_before = dict(OUTCOMES), dict(KNOWN_HITS)
    started = time.monotonic()
    deadline = started + args.seconds

    def finish() -> None:
        report.seconds = time.monotonic() - started
        report.outcomes = delta(OUTCOMES, outcomes_before)
        report.known = delta(KNOWN_HITS, known_before)
        if args.json is not None:
            engine = "atheris-raw" if args.raw else "atheris"
            payload: dict[str, Any] = {"engine": engine, **asdict(report)}
            payload["corpus_files"] = sum(1 for _ in corpus.iterdir())
            args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=True))
        sys.stdout.flush()
        sys.stderr.flush()
        # libFuzzer owns the process: leave without returning into it.
        os._exit(1 if report.failures else 0)

    def one_input(data: bytes) -> None:
        if time.monotonic() > deadline:
            finish()
        value = decode(name, generate, data, args.raw)
        report.examples += 1
        try:
            check(value)
        except Exception as error:
            digest = hashlib.sha1(data).hexdigest()[:12]  # a file name
            origin = (f"atheris-{digest}", f"atheris engine, input {name}-atheris-{digest}.bin")
            if record_failure(report, value, error, report.examples - 1, args.failures, 20, origin):
                (args.failures / f"{name}-atheris-{digest}.bin").write_bytes(data)

    libfuzzer = [
        sys.argv[0],
        f"-max_total_time={int(args.seconds) + 60}",  # a backstop: finish() ends the run
        f"-timeout={HANG_SECONDS}",
        "-rss_limit_mb=4096",
        f"-seed={args.seed}",
        f"-artifact_prefix={args.failures}/{name}-libfuzzer-",
        str(corpus),
    ]
    atheris.Setup(libfuzzer, one_input)
    atheris.Fuzz()
    return 0  # not reached: finish() or libFuzzer exits the process


if __name__ == "__main__":
    raise SystemExit(main())
