"""Short fuzz profile, part of the normal suite: every target for a few dozen examples.

The long profile (a million examples or more per target) is ``python tests/fuzz/run_long.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from .targets import TARGETS, Target

SHORT = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("target", list(TARGETS.values()), ids=list(TARGETS))
def test_fuzz_target(target: Target) -> None:
    @SHORT
    @given(target.strategy)
    def run(value: Any) -> None:
        target.check(value)

    run()
