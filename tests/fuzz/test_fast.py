"""The fast fuzz engine in the normal suite: a few thousand examples per target (~3 s in all).

This keeps the long profile (``run_long.py``) from rotting: every generator must produce
values its target's check accepts and values it refuses, the engine must be reproducible from
its seed, and a failure must be caught and saved as a reproducer that replays it.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from . import fast
from .generators import GENERATORS, body_secrets_in_place, callback_secrets_in_place
from .run_long import describe, main
from .targets import ACCEPTED, REDIRECT, STATE, TARGETS, Target

EXAMPLES = 2_000


def test_every_target_has_a_generator() -> None:
    assert set(GENERATORS) == set(TARGETS)


@pytest.mark.parametrize("name", list(TARGETS))
def test_fast_engine_target(name: str, tmp_path: Path) -> None:
    report = fast.run_fast(name, EXAMPLES, seed=1, failures_dir=tmp_path)
    assert not report.engine_error, report.engine_error
    assert report.failed == 0, describe(report)
    assert report.examples == EXAMPLES
    # The seeds are valid and the mutations break them: both outcomes must occur.
    accepted = report.outcomes.get(ACCEPTED, 0)
    refused = sum(report.outcomes.values()) - accepted + sum(report.known.values())
    assert accepted > EXAMPLES // 50, report.outcomes
    assert refused > EXAMPLES // 10, report.outcomes


def test_same_seed_same_inputs() -> None:
    for name in ("callback", "token", "sign_in_url"):
        first, second = GENERATORS[name](), GENERATORS[name]()
        rng_a, rng_b = random.Random(5), random.Random(5)
        assert [first(rng_a) for _ in range(50)] == [second(rng_b) for _ in range(50)]


def _fails_on_marker(value: object) -> None:
    if "BOOM" in repr(value):
        raise KeyError("BOOM")


def test_failure_is_recorded_with_a_reproducer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = iter([("ok", True, 0.0), ("BOOM", True, 0.0), ("BOOM!", False, float("nan"))])
    monkeypatch.setitem(GENERATORS, "callback", lambda: lambda rng: next(values))
    monkeypatch.setitem(
        TARGETS, "callback", Target("callback", TARGETS["callback"].strategy, _fails_on_marker)
    )
    report = fast.run_fast("callback", 3, failures_dir=tmp_path)
    assert report.examples == 3 and report.failed == 2
    (failure,) = report.failures.values()
    assert failure.kind.startswith("KeyError at test_fast.py")
    assert failure.example == 1 and failure.count == 2
    script = Path(failure.reproducer)
    assert script.parent == tmp_path
    # The reproducer replays the real check, which accepts this input: it runs clean.
    text = script.read_text()
    assert "VALUE = ('BOOM', True, 0.0)" in text
    replay = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert replay.returncode == 0, replay.stderr


def test_run_long_fast_engine(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    status = main(
        ["--examples", "300", "--jobs", "1", "--only", "token", "userinfo", "--json", str(out)]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "token" in printed and "300 examples" in printed and "total: 600 examples" in printed
    assert '"examples": 300' in out.read_text()


def test_secret_placement() -> None:
    good = f"{REDIRECT}?code=code-FUZZSECRET-1&state={STATE}"
    assert callback_secrets_in_place(good)
    assert not callback_secrets_in_place(f"{REDIRECT}?iss=code-FUZZSECRET-1&state={STATE}")
    assert not callback_secrets_in_place(f"{REDIRECT}/code-FUZZSECRET?code=x")
    assert callback_secrets_in_place(f"{REDIRECT}?state=%41")
    members = ("access_token",)
    assert body_secrets_in_place(b'{"access_token": "at-FUZZSECRET"}', members)
    assert body_secrets_in_place(b'{"access_token": "at-FUZZSECRET', members)  # not JSON
    assert not body_secrets_in_place(b'{"scope": "at-FUZZSECRET"}', members)
    assert not body_secrets_in_place(b'{"FUZZSECRET": 1, "access_token": "x"}', members)
    keys = b'{"keys": [{"kty": "EC", "d": "FUZZSECRET"}]}'
    assert body_secrets_in_place(keys, ("d",), nested="keys")
    assert not body_secrets_in_place(keys.replace(b'"d"', b'"kid"'), ("d",), nested="keys")
