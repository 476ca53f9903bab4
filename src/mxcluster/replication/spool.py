"""A disk spool for the chunks of a changeset still arriving.

A changeset of 1,000,000 unsubscribe entries arrives as hundreds of chunks but must be
applied in one transaction. Its chunks are spooled here until the last one arrives, then
the store applies the whole changeset reading the spool page by page: never in memory.

The spool is a private temporary SQLite database (deleted when closed, never fsync'd):
a crash loses partial transfers, which anti-entropy simply fetches again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator

from mxcluster.config.changeset import Op, decode_op

_PAGE = 5_000


class Spool:
    """Partial changesets, one slot per sending peer."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self.db.execute(
            "CREATE TABLE spool (slot TEXT NOT NULL, n INTEGER NOT NULL, body TEXT NOT NULL, "
            "PRIMARY KEY (slot, n)) WITHOUT ROWID"
        )
        self._count: dict[str, int] = {}

    def append(self, slot: str, ops: Iterable[Op]) -> None:
        """Add OPS, in order, after what SLOT holds."""
        start = self._count.get(slot, 0)
        rows = [(slot, start + i, json.dumps(op.encode())) for i, op in enumerate(ops)]
        self.db.execute("BEGIN")
        self.db.executemany("INSERT INTO spool VALUES (?, ?, ?)", rows)
        self.db.execute("COMMIT")
        self._count[slot] = start + len(rows)

    def ops(self, slot: str) -> Iterator[Op]:
        """The ops of SLOT in order, read a page at a time."""
        after = -1
        while True:
            rows = self.db.execute(
                "SELECT n, body FROM spool WHERE slot = ? AND n > ? ORDER BY n LIMIT ?",
                (slot, after, _PAGE),
            ).fetchall()
            for n, body in rows:
                after = n
                yield decode_op(json.loads(body))
            if len(rows) < _PAGE:
                return

    def size(self, slot: str) -> int:
        return self._count.get(slot, 0)

    def drop(self, slot: str) -> None:
        """Forget SLOT (transfer done, restarted or abandoned)."""
        if self._count.pop(slot, None) is not None:
            self.db.execute("DELETE FROM spool WHERE slot = ?", (slot,))

    def close(self) -> None:
        self.db.close()
