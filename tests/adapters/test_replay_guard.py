"""The app's replay cache: one check-and-record step, even for threads racing on one token."""

from __future__ import annotations

import threading

from logto_adapters._replay import ReplayGuard

NOW = 1_700_000_000.0


def test_record_then_replay_then_forget() -> None:
    guard = ReplayGuard()
    assert guard.record("k", NOW + 10, NOW) is True
    assert guard.record("k", NOW + 10, NOW + 1) is False
    assert guard.record("k", NOW + 20, NOW + 10) is True  # its time was over
    guard.forget("k")
    assert guard.record("k", NOW + 30, NOW + 11) is True


def test_threads_racing_on_one_token_let_exactly_one_through() -> None:
    guard = ReplayGuard()
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def deliver() -> None:
        start.wait(timeout=10)
        fresh = guard.record("same-jti", NOW + 60, NOW)
        with lock:
            results.append(fresh)

    threads = [threading.Thread(target=deliver) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == [False] * 15 + [True]


def test_bounded_and_kept_across_a_fork() -> None:
    guard = ReplayGuard(limit=2)
    for key in "abc":
        guard.record(key, NOW + 60, NOW)
    assert list(guard.cache) == ["b", "c"]
    child = guard.after_fork_in_child()
    assert child.record("c", NOW + 60, NOW + 1) is False  # the child still knows it
    assert child is not guard
