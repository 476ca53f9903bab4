"""Login throttling: failures slow down the next attempt, then lock out for a window."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mxcluster.users.throttle import LoginThrottle


@dataclass
class Clock:
    """Seconds; moved by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(clock, base_delay=0.5, max_delay=4.0, max_failures=5, window=60.0)


def test_first_attempt_is_not_delayed(throttle: LoginThrottle) -> None:
    """A user with no failures logs in at once."""
    assert throttle.delay("bob", "10.0.0.1") == 0.0
    assert not throttle.locked("bob", "10.0.0.1")


def test_delay_doubles_per_failure_up_to_the_cap(throttle: LoginThrottle) -> None:
    """Each failure doubles the wait before the next check, capped at max_delay."""
    delays = []
    for _ in range(5):
        throttle.failed("bob", "10.0.0.1")
        delays.append(throttle.delay("bob", "10.0.0.1"))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_locked_after_max_failures_until_the_window_passes(throttle: LoginThrottle,
                                                           clock: Clock) -> None:
    """max_failures within the window lock the pair out; after the window it starts afresh."""
    for _ in range(4):
        throttle.failed("bob", "10.0.0.1")
    assert not throttle.locked("bob", "10.0.0.1")
    throttle.failed("bob", "10.0.0.1")
    assert throttle.locked("bob", "10.0.0.1")
    clock.now += 59
    assert throttle.locked("bob", "10.0.0.1")
    clock.now += 2
    assert not throttle.locked("bob", "10.0.0.1")
    assert throttle.delay("bob", "10.0.0.1") == 0.0


def test_success_resets_the_failures(throttle: LoginThrottle) -> None:
    """A successful login forgets earlier failures."""
    for _ in range(3):
        throttle.failed("bob", "10.0.0.1")
    throttle.succeeded("bob", "10.0.0.1")
    assert throttle.delay("bob", "10.0.0.1") == 0.0


def test_pairs_are_independent(throttle: LoginThrottle) -> None:
    """Failures of one (user, address) do not slow other users or other addresses."""
    for _ in range(5):
        throttle.failed("bob", "10.0.0.1")
    assert throttle.locked("bob", "10.0.0.1")
    assert not throttle.locked("bob", "10.0.0.2")
    assert not throttle.locked("alice", "10.0.0.1")
