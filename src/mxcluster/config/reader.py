"""A read-only view of the store for the mail path's thread.

WAL lets it read while the store thread writes; it never writes, so the one-writer rule
of ``Store`` holds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from mxcluster.config.store import first_present


class UnsubReader:
    """Matches recipients against an unsubscribe table over its own connection."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def close(self) -> None:
        self.db.close()

    def contains_any(self, level: str, candidates: Iterable[str]) -> str | None:
        """The first of CANDIDATES present at LEVEL, or None."""
        return first_present(self.db, level, candidates)
