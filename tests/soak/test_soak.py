"""Short soak profile (part of the normal suite): 150 sessions, 1,500 operations per client,
random faults. It checks behaviour, not speed: the time bound is only a hang guard, so a busy
machine makes it slower, never red. The long profile is ``tests/soak/run_long.py``."""

from __future__ import annotations

import pytest

from .soak import FAULTS, run_soak


@pytest.mark.parametrize("kind", ["sync", "aio"])
def test_soak_short(kind: str) -> None:
    report = run_soak(kind, sessions=150, operations=1500, seconds=600.0, seed=7)
    print(report.summary())
    assert report.violations == []
    assert report.operations == 1500  # the hang guard did not cut the run short
    assert report.sign_ins >= 100 and report.refreshes >= 300
    # Every kind of fault was exercised, and transient ones were recovered from.
    assert set(report.faults) == set(FAULTS)
    assert report.transient_recovered >= 20
    assert all(
        code.split(".")[0]
        in {
            "transport",
            "provider_response",
            "token",
            "id_token",
            "oauth",
            "sign_in_required",
            "jwks",
            "userinfo",
        }
        for code in report.errors
    )
