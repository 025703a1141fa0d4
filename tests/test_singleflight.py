"""The flight table: lead, follow, done, ended, leases, what is kept and for how long."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logto_core.singleflight import (
    Done,
    Ended,
    FlightTable,
    Follow,
    Lead,
    callback_key,
    grant_key,
)

KEY = grant_key("rt-1")


def test_lead_follow_done_expire() -> None:
    table: FlightTable[str] = FlightTable()
    assert table.claim(KEY, "a", now=0) == Lead("a")
    assert table.claim(KEY, "b", now=1) == Follow("a")
    other = grant_key("rt-2")
    assert table.claim(other, "c", now=1) == Lead("c")
    table.publish(KEY, "a", "result", now=2, keep=10)
    table.publish(KEY, "a", "again", now=2, keep=10)  # publishing twice changes nothing
    assert table.claim(KEY, "d", now=5) == Done("result")
    assert table.claim(KEY, "e", now=12) == Lead("e")  # the kept result expired
    assert len(table) == 2


def test_keys_hold_digests_never_the_secret() -> None:
    assert "rt-1" not in KEY and KEY.startswith("grant:")
    assert callback_key("state-1").startswith("callback:") and "state-1" not in callback_key(
        "state-1"
    )
    assert grant_key("\ud800") != grant_key("x")  # lone surrogates from a storage: no crash


def test_results_not_worth_keeping_are_dropped() -> None:
    table: FlightTable[str] = FlightTable()
    table.claim(KEY, "a", now=0)
    table.publish(KEY, "a", "transient", now=1, keep=0)
    assert table.claim(KEY, "b", now=1) == Lead("b")


def test_an_ended_key_stays_ended_and_drops_a_late_result() -> None:
    table: FlightTable[str] = FlightTable()
    table.claim(KEY, "a", now=0)
    table.end(KEY, now=1)  # signed out while the refresh runs
    assert table.claim(KEY, "b", now=1) == Follow("a")  # the flight still resolves
    table.publish(KEY, "a", "late", now=2, keep=100)
    assert table.claim(KEY, "c", now=3) == Ended()  # never the late result
    table.end(grant_key("rt-9"), now=3)
    assert table.claim(grant_key("rt-9"), "d", now=4) == Ended()
    table.end(KEY, now=5, keep=1)
    assert table.claim(KEY, "e", now=7) == Lead("e")  # the end was forgotten in time


def test_a_flight_whose_lease_ran_out_is_taken_over() -> None:
    """A leader that vanished (a crash, a caller interrupted before its work started) never
    publishes: after its lease, the next claimer leads; the vanished one's late publication,
    if any, is ignored."""
    table: FlightTable[str] = FlightTable()
    assert table.claim(KEY, "a", now=0, lease=30) == Lead("a")
    assert table.claim(KEY, "b", now=29, lease=30) == Follow("a")
    assert table.claim(KEY, "c", now=30, lease=30) == Lead("c")
    table.publish(KEY, "a", "stale", now=31, keep=100)
    assert table.claim(KEY, "d", now=31) == Follow("c")
    table.publish(KEY, "c", "fresh", now=32, keep=100)
    assert table.claim(KEY, "e", now=33) == Done("fresh")


def test_clock_going_backwards_and_trimming() -> None:
    table: FlightTable[str] = FlightTable(max_kept=2)
    keys = [grant_key(f"rt-{i}") for i in range(3)]
    for i, key in enumerate(keys):
        table.claim(key, "h", now=float(i))
        table.publish(key, "h", i, now=float(i), keep=10)
    assert len(table) == 2  # the oldest went first
    assert table.claim(keys[0], "n", now=3) == Lead("n")
    assert table.claim(keys[2], "n", now=-50) == Lead("n")  # from the future: not trusted
    table.publish(grant_key("unknown"), "h", 0, now=0, keep=10)  # ignored
    assert len(table) == 3  # two running flights (never trimmed) and one kept result


@given(
    st.lists(
        st.tuples(st.sampled_from(["claim", "publish", "end"]), st.integers(0, 3)), max_size=60
    )
)
def test_any_sequence_keeps_at_most_one_leader_per_key(steps: list[tuple[str, int]]) -> None:
    table: FlightTable[int] = FlightTable(max_kept=3)
    leaders: dict[str, int] = {}
    now = 0.0
    for n, (action, which) in enumerate(steps):
        key = grant_key(f"rt-{which}")
        now += 1
        if action == "claim":
            ticket = table.claim(key, n, now)
            if isinstance(ticket, Lead):
                assert key not in leaders or now >= 60  # only a lapsed lease is taken over
                leaders[key] = n
            elif isinstance(ticket, Follow):
                assert ticket.handle == leaders[key]
        elif action == "publish" and key in leaders:
            table.publish(key, leaders.pop(key), n, now, keep=5)
        elif action == "end":
            table.end(key, now)
    assert len(table) <= 3 + len(leaders)
