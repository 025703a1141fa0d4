"""The coverage-guided engine in the normal suite: its byte decoder, its replay, and (only
where the optional atheris is installed) a smoke run of a few seconds.

Everything but the smoke runs is pure Python: the decoder (``bytes_random.py``) and the corpus
replay (``compare.py``) never import atheris, so a corpus can be checked on any machine.
"""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from .bytes_random import ByteRandom
from .compare import replay_corpus
from .fast import Failure, FastReport
from .generators import GENERATORS
from .raw_inputs import HEAD, decode
from .run_long import _log_summary, main, report_from_json, run_guided
from .targets import ACCEPTED, OUTCOMES, TARGETS

ROOT = Path(__file__).resolve().parents[2]
HAS_ATHERIS = importlib.util.find_spec("atheris") is not None
needs_atheris = pytest.mark.skipif(not HAS_ATHERIS, reason="atheris (the fuzz extra) missing")


def test_draws_read_the_bytes_in_order() -> None:
    rng = ByteRandom(bytes([0x00, 0x00, 0xFF, 0xFF, 7, 0x01, 0x02]))
    assert rng.random() == 0xFFFF / 65536  # bytes 0-1: the quiet end
    assert rng.random() == 0.0  # bytes 2-3
    assert rng.randrange(10) == 7  # one byte for a range below 256
    assert rng.randrange(1000) == 0x0102 % 1000  # two bytes for a larger one
    assert rng.consumed == 7
    # Exhausted: the quiet draw, forever.
    assert rng.random() == 0xFFFF / 65536 and rng.randrange(5) == 0 and rng.getrandbits(9) == 0
    assert rng.consumed == 7


def test_draws_stay_in_range() -> None:
    source = random.Random(3)
    for _ in range(300):
        rng = ByteRandom(source.randbytes(64))
        n = source.randrange(1, 70_000)
        assert 0 <= rng.randrange(n) < n
        assert 0.0 <= rng.random() < 1.0
        assert 0 <= rng.getrandbits(12) < 4096
        items = list(range(6))
        rng.shuffle(items)
        assert sorted(items) == list(range(6))
        assert len(set(rng.sample(range(20), 4))) == 4


def test_one_byte_changes_one_decision() -> None:
    # A modulo, not rejection sampling: a mutated byte does not shift the later draws.
    data = bytes(range(40, 80))
    changed = data[:3] + b"\x99" + data[4:]
    first, second = ByteRandom(data), ByteRandom(changed)
    draws = [(first.randrange(200), second.randrange(200)) for _ in range(len(data))]
    assert [i for i, (a, b) in enumerate(draws) if a != b] == [3]


@pytest.mark.parametrize("name", list(TARGETS))
def test_decoded_inputs_keep_the_target_shapes(name: str) -> None:
    """Random bytes decode into inputs the target's check takes, some accepted, some refused
    (as the fast engine's draws), and the same bytes into the same input."""
    generate, check = GENERATORS[name](), TARGETS[name].check
    source = random.Random(name)
    before = dict(OUTCOMES)
    for _ in range(300):
        data = source.randbytes(source.randrange(200))
        value = generate(ByteRandom(data))
        if name not in ("id_token", "jwt"):  # ECDSA signatures differ on every signing
            assert repr(generate(ByteRandom(data))) == repr(value)
        check(value)
    counts = {key: n - before.get(key, 0) for key, n in OUTCOMES.items()}
    accepted = counts.get(ACCEPTED, 0)
    assert accepted > 5, counts
    assert sum(counts.values()) - accepted > 30, counts


@pytest.mark.parametrize("name", list(TARGETS))
def test_raw_decoding_puts_the_bytes_in_the_main_member(name: str) -> None:
    generate, check = GENERATORS[name](), TARGETS[name].check
    source = random.Random(name)
    raw_seen = 0
    for _ in range(200):
        data = source.randbytes(source.randrange(40))
        value = decode(name, generate, data, raw=True)
        check(value)  # the shape the check takes, whatever the bytes
        if data and data[0] >= 0x80:
            raw_seen += 1
            text = repr(value)
            tail = data[HEAD:].decode("utf-8", "surrogateescape")
            assert repr(tail)[1:-1] in text or repr(data[HEAD:])[2:-1] in text
        else:  # the generator's draw from the rest, as without raw mode
            plain = generate(ByteRandom(data[1:]))
            if name not in ("id_token", "jwt"):
                assert repr(value) == repr(plain)
    assert raw_seen > 50


def test_raw_decoding_defuses_secret_markers() -> None:
    data = bytes([0xFF]) + bytes(8) + b"code=code-FUZZSECRET-1"
    url, _, _ = decode("callback", GENERATORS["callback"](), data, raw=True)
    assert url == "code=code-FUZZCOPIED-1"
    assert decode("jwt", GENERATORS["jwt"](), bytes([0x80]) + bytes(8) + b"\xff.a", raw=True) == (
        "\udcff.a"
    )


def test_replay_corpus_counts_failing_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index in range(20):
        (corpus / f"input-{index}").write_bytes(random.Random(index).randbytes(60))
    (corpus / "token-atheris-0.py").write_text("raise SystemExit(1)\n")  # a reproducer: skipped
    assert replay_corpus("token", [corpus]) == 0

    def fails_when_accepted(value: tuple[int, bytes]) -> None:
        if 200 <= value[0] < 300:
            raise KeyError("planted")

    monkeypatch.setitem(
        TARGETS,
        "token",
        TARGETS["token"].__class__("token", TARGETS["token"].strategy, fails_when_accepted),
    )
    statuses = [
        GENERATORS["token"]()(ByteRandom(p.read_bytes()))[0] for p in corpus.glob("input-*")
    ]
    assert replay_corpus("token", [corpus]) == sum(200 <= s < 300 for s in statuses) > 0


def test_report_round_trips_through_json() -> None:
    report = FastReport(target="jwt", seed=4, examples=10, seconds=1.5, outcomes={"accepted": 3})
    report.failures["KeyError at x.py:1"] = Failure(
        kind="KeyError at x.py:1", summary="s", example=2
    )
    from dataclasses import asdict

    assert report_from_json({"engine": "atheris", **asdict(report), "corpus_files": 3}) == report


def test_log_summary_keeps_libfuzzer_verdict(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(
        "#1 INITED\n==1== ERROR: libFuzzer: timeout after 20 seconds\nTest unit written to ./t-1\n"
    )
    summary = _log_summary(log)
    assert "timeout after 20 seconds" in summary and "t-1" in summary and str(log) in summary


@needs_atheris
def test_atheris_smoke_run(tmp_path: Path) -> None:
    """A few seconds of guided fuzzing of one target: a report, a grown corpus, no failure."""
    report = run_guided("end_session_url", 3.0, tmp_path / "corpus", tmp_path / "failures", 1)
    assert not report.engine_error, report.engine_error
    assert report.examples > 100 and not report.failures
    assert report.outcomes.get(ACCEPTED, 0) > 0
    grown = list((tmp_path / "corpus" / "end_session_url").iterdir())
    assert len(grown) > 32  # the 32 seed inputs and what reached new code


_PLANTED = """
import sys
sys.path.insert(0, {root!r})
from tests.fuzz import guided, targets

def check(value):
    if value[3] is False:  # sign-out without provider metadata: half of the inputs
        raise KeyError("planted")
    real(value)

real = targets.TARGETS["end_session_url"].check
targets.TARGETS["end_session_url"] = targets.Target("end_session_url", None, check)
guided.main(sys.argv[1:])
"""


@needs_atheris
def test_atheris_failure_is_saved_and_fuzzing_goes_on(tmp_path: Path) -> None:
    script = tmp_path / "planted.py"
    script.write_text(_PLANTED.format(root=str(ROOT)))
    out = tmp_path / "report.json"
    failures = tmp_path / "failures"
    command = [sys.executable, str(script), "end_session_url", "--seconds=3", "--seed=1"]
    command += [f"--corpus={tmp_path / 'corpus'}", f"--failures={failures}", f"--json={out}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    report = json.loads(out.read_text())
    (failure,) = report["failures"].values()
    assert failure["kind"].startswith("KeyError at") and failure["count"] > 10
    assert report["examples"] > failure["count"]  # not stopped at the first one
    # The raw input and a reproducer; the reproducer replays the real check, which passes.
    (raw,) = failures.glob("end_session_url-atheris-*.bin")
    script_path = Path(failure["reproducer"])
    assert script_path == raw.with_suffix(".py")
    value = GENERATORS["end_session_url"]()(ByteRandom(raw.read_bytes()))
    assert value[3] is False
    replay = subprocess.run(
        [sys.executable, str(script_path)], capture_output=True, timeout=60, check=False
    )
    assert replay.returncode == 0, replay.stderr


@needs_atheris
def test_run_long_runs_engines_in_turn(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # The fast engine finishes its 300 examples at once and leaves its time to atheris.
    engines = ["--engine", "fast", "atheris", "--minutes", "0.1", "--examples", "300"]
    where = [f"--corpus={tmp_path}", f"--failures={tmp_path / 'f'}"]
    status = main([*engines, "--jobs", "1", "--only", "end_session_url", *where])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "with the fast engine" in printed and "with the atheris engine" in printed
    assert "fewest examples: end_session_url 300" in printed  # the fast engine's run
    atheris_minutes = float(
        printed.split("atheris engine: coverage-guided, 1 processes, ")[1].split()[0]
    )
    assert atheris_minutes > 0.05  # more than half the budget: the fast engine left it time
    assert (tmp_path / "end_session_url").is_dir()
