"""Login throttling: repeated failures are slowed down, then refused for a while (pure).

Per (user, client address): after each failure the next attempt is delayed
(``base_delay * 2**(failures-1)``, capped); after ``max_failures`` within ``window``
seconds the pair is locked out until the window has passed. A success resets it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Record:
    failures: int
    first: float


class LoginThrottle:
    """Decides how long to delay a login attempt and whether to refuse it."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        max_failures: int = 10,
        window: float = 300.0,
    ) -> None:
        self._clock = clock
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_failures = max_failures
        self.window = window
        self._records: dict[tuple[str, str], _Record] = {}

    def _record(self, user: str, address: str) -> _Record | None:
        rec = self._records.get((user, address))
        if rec is not None and self._clock() - rec.first > self.window:
            del self._records[(user, address)]
            return None
        return rec

    def locked(self, user: str, address: str) -> bool:
        rec = self._record(user, address)
        return rec is not None and rec.failures >= self.max_failures

    def delay(self, user: str, address: str) -> float:
        """Seconds to wait before checking this attempt."""
        rec = self._record(user, address)
        if rec is None or rec.failures == 0:
            return 0.0
        return float(min(self.max_delay, self.base_delay * 2 ** (rec.failures - 1)))

    def failed(self, user: str, address: str) -> None:
        rec = self._record(user, address)
        if rec is None:
            self._records[(user, address)] = _Record(1, self._clock())
        else:
            rec.failures += 1

    def succeeded(self, user: str, address: str) -> None:
        self._records.pop((user, address), None)
