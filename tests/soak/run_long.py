"""Long soak profile: both clients, hundreds of sessions, tens of thousands of operations.

    python tests/soak/run_long.py [--sessions N] [--operations N] [--minutes M] [--seed S]

Prints one summary line per client and every invariant violation; exit status 1 if any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from tests.soak.soak import run_soak

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--operations", type=int, default=20_000, help="per client")
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per client")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--max-timeouts", type=int, default=60)
    args = parser.parse_args(argv)
    failed = False
    for kind in ("sync", "aio"):
        report = run_soak(
            kind,
            sessions=args.sessions,
            operations=args.operations,
            seconds=args.minutes * 60.0,
            seed=args.seed,
            max_timeouts=args.max_timeouts,
        )
        print(report.summary(), flush=True)
        for violation in report.violations:
            print("  VIOLATION:", violation, flush=True)
        failed |= bool(report.violations)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
