"""Hybrid logical clock (Kulkarni et al., 2014): causality-respecting timestamps.

Pure: the wall clock is passed in. A timestamp orders as (wall milliseconds, counter,
node); the node id breaks ties so every machine picks the same winner. Timestamps are
serialised as fixed-width strings so SQLite and JSON sort them like tuples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: How far a remote timestamp may lead our wall clock before we refuse to follow it
#: (SPEC §5: a peer whose clock is off cannot push the clock forward beyond the bound).
DEFAULT_MAX_DRIFT_MS = 5_000


@dataclass(frozen=True, order=True)
class Timestamp:
    """One HLC reading; compares as (wall_ms, counter, node)."""

    wall_ms: int
    counter: int
    node: str

    def encode(self) -> str:
        """Fixed-width sortable form: ``0001732550000000.00000.NODE``."""
        return f"{self.wall_ms:016d}.{self.counter:05d}.{self.node}"

    @classmethod
    def decode(cls, text: str) -> Timestamp:
        wall, counter, node = text.split(".", 2)
        return cls(int(wall), int(counter), node)

    @classmethod
    def zero(cls) -> Timestamp:
        return cls(0, 0, "")


class HybridClock:
    """Issues monotonically increasing timestamps for one node."""

    def __init__(
        self,
        node: str,
        wall_ms: Callable[[], int],
        last: Timestamp | None = None,
        max_drift_ms: int = DEFAULT_MAX_DRIFT_MS,
    ) -> None:
        self.node = node
        self._wall_ms = wall_ms
        self._last = last or Timestamp.zero()
        self.max_drift_ms = max_drift_ms

    @property
    def last(self) -> Timestamp:
        return self._last

    def now(self) -> Timestamp:
        """A timestamp later than every one issued or observed so far."""
        wall = self._wall_ms()
        if wall > self._last.wall_ms:
            ts = Timestamp(wall, 0, self.node)
        else:
            ts = Timestamp(self._last.wall_ms, self._last.counter + 1, self.node)
        self._last = ts
        return ts

    def observe(self, remote: Timestamp) -> bool:
        """Merge a remote timestamp; False (and ignored) if it leads by more than the bound."""
        if remote.wall_ms - self._wall_ms() > self.max_drift_ms:
            return False
        if (remote.wall_ms, remote.counter) > (self._last.wall_ms, self._last.counter):
            self._last = Timestamp(remote.wall_ms, remote.counter, self.node)
        return True
