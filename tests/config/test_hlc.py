"""The hybrid logical clock: monotonic, causal, and bounded against fast peers."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from mxcluster.config.hlc import DEFAULT_MAX_DRIFT_MS, HybridClock, Timestamp

FAST = settings(max_examples=60, deadline=None)
STAMPS = st.tuples(st.integers(0, 10**15), st.integers(0, 99_999),
                   st.text("abcXYZ09.-", max_size=8))
WALLS = st.lists(st.integers(0, 10_000), min_size=1, max_size=30)


class Walls:
    """A wall clock that returns the given readings in turn (the last one forever)."""

    def __init__(self, readings: list[int]) -> None:
        self.readings = list(readings)
        self.now = self.readings[0]

    def __call__(self) -> int:
        if self.readings:
            self.now = self.readings.pop(0)
        return self.now


@FAST
@given(walls=WALLS)
def test_now_is_strictly_increasing_even_when_the_wall_clock_goes_back(walls: list[int]) -> None:
    """Every timestamp is later than the one before, whatever the wall clock does."""
    clock = HybridClock("n1", Walls(walls))
    stamps = [clock.now() for _ in walls]
    assert all(a < b for a, b in itertools.pairwise(stamps))
    assert all(s.wall_ms >= w for s, w in zip(stamps, walls, strict=True))


@FAST
@given(local=st.integers(0, 1_000_000), lead=st.integers(0, DEFAULT_MAX_DRIFT_MS),
       counter=st.integers(0, 50))
def test_observe_makes_the_next_timestamp_later_than_the_remote(local: int, lead: int,
                                                                  counter: int) -> None:
    """After observing a remote timestamp within the bound, now() is later than it."""
    clock = HybridClock("a", lambda: local)
    remote = Timestamp(local + lead, counter, "b")
    assert clock.observe(remote)
    mine = clock.now()
    assert (mine.wall_ms, mine.counter) > (remote.wall_ms, remote.counter)
    assert mine.node == "a"


@FAST
@given(local=st.integers(0, 1_000_000), excess=st.integers(1, 10**9))
def test_observe_refuses_a_timestamp_beyond_the_drift_bound(local: int, excess: int) -> None:
    """A remote clock leading by more than the bound is refused and does not move ours."""
    clock = HybridClock("a", lambda: local)
    before = clock.now()
    assert not clock.observe(Timestamp(local + DEFAULT_MAX_DRIFT_MS + excess, 0, "b"))
    after = clock.now()
    assert after.wall_ms == before.wall_ms and after.counter == before.counter + 1


def test_observe_of_an_older_timestamp_changes_nothing() -> None:
    """Observing a timestamp behind ours is accepted and keeps our clock where it was."""
    clock = HybridClock("a", lambda: 5_000)
    clock.now()
    assert clock.observe(Timestamp(1_000, 7, "b"))
    assert clock.now() == Timestamp(5_000, 1, "a")


def test_clock_resumes_after_the_last_timestamp_it_persisted() -> None:
    """A clock restarted with its last timestamp never issues an earlier one."""
    last = Timestamp(9_000, 3, "a")
    clock = HybridClock("a", lambda: 1_000, last=last)
    assert clock.now() > last


@FAST
@given(a=STAMPS, b=STAMPS)
def test_encoding_round_trips_and_sorts_like_the_timestamps(a: tuple[int, int, str],
                                                            b: tuple[int, int, str]) -> None:
    """The fixed-width text form decodes back and sorts as the tuples do (SQLite order)."""
    ta, tb = Timestamp(*a), Timestamp(*b)
    assert Timestamp.decode(ta.encode()) == ta
    if (ta.wall_ms, ta.counter) != (tb.wall_ms, tb.counter):
        assert (ta < tb) == (ta.encode() < tb.encode())
