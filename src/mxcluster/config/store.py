"""The SQLite store of one machine: blocks, unsubscribe entries, changesets (SPEC §5).

SQLite in WAL mode with ``synchronous=FULL``: a commit reported done has been fsync'd.
Every changeset, local or replicated, goes through ``apply`` (or ``apply_many`` for a
backlog): one transaction that records the changeset and applies its ops, so applying is
atomic and idempotent. Blocks are last-writer-wins by HLC timestamp, with the overwritten
version of a concurrent write kept (``conflicts``); unsubscribe entries follow the rule in
``unsubtable``. The result depends on which changesets were applied, not on their order.
The store is used from one thread at a time (the daemon gives it a dedicated executor
thread).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mxcluster import failpoints
from mxcluster.config import conflicts, unsubtable
from mxcluster.config.changeset import Changeset, ChangesetId, Op, decode_op
from mxcluster.config.hlc import Timestamp

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    level TEXT NOT NULL, block TEXT NOT NULL, value TEXT, hlc TEXT NOT NULL,
    origin TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (level, block)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changesets (
    origin TEXT NOT NULL, seq INTEGER NOT NULL, hlc TEXT NOT NULL, author TEXT NOT NULL,
    comment TEXT NOT NULL, machine TEXT NOT NULL, schema INTEGER NOT NULL,
    nops INTEGER NOT NULL, context TEXT NOT NULL DEFAULT '{}', PRIMARY KEY (origin, seq)
);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY, level TEXT NOT NULL, block TEXT NOT NULL,
    winner_hlc TEXT NOT NULL, winner_origin TEXT NOT NULL, winner_seq INTEGER NOT NULL,
    winner_value TEXT, loser_hlc TEXT NOT NULL, loser_origin TEXT NOT NULL,
    loser_seq INTEGER NOT NULL, loser_value TEXT, resolved INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS conflicts_open ON conflicts (level, block, resolved);
CREATE INDEX IF NOT EXISTS changesets_hlc ON changesets (hlc);
CREATE TABLE IF NOT EXISTS ops (
    origin TEXT NOT NULL, seq INTEGER NOT NULL, idx INTEGER NOT NULL, hlc TEXT NOT NULL,
    level TEXT NOT NULL, block TEXT NOT NULL, entry TEXT, body TEXT NOT NULL,
    PRIMARY KEY (origin, seq, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ops_target ON ops (level, block, entry, hlc);
"""

#: 2: unsubscribe entries keep a live add and a removal register (``unsubtable``)
STORE_SCHEMA = "2"

#: ops applied per executemany batch when streaming a large changeset
_BATCH = 10_000
#: after a changeset this large, checkpoint and truncate the WAL
_BIG_CHANGESET = 50_000


@dataclass(frozen=True)
class BlockRow:
    """A block as stored at one level; ``value`` None means deleted (inherits)."""

    level: str
    block: str
    value: Any
    hlc: str
    origin: str
    seq: int

    @property
    def defined(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class LogEntry:
    """One line of the commit log."""

    id: ChangesetId
    hlc: Timestamp
    author: str
    comment: str
    machine: str
    nops: int


class Store:
    """One machine's configuration database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        # 64 MiB page cache: a 1M-entry import touches three large B-trees at random
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(_SCHEMA)
        #: bumped by every write: readers cache derived views (membership) against it
        self.generation = 0
        self._migrate()
        unsubtable.create(self.db)
        if self.meta("store_schema") != STORE_SCHEMA:
            self.set_meta("store_schema", STORE_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        """Bring a database made by an earlier 0.1 development build up to date."""
        unsubtable.migrate(self.db)

    # -- metadata -----------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.generation += 1
        self.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- reading ------------------------------------------------------------------

    def block(self, level: str, block: str) -> BlockRow | None:
        row = self.db.execute(
            "SELECT level, block, value, hlc, origin, seq FROM blocks WHERE level=? AND block=?",
            (level, block),
        ).fetchone()
        return None if row is None else _block_row(row)

    def blocks_at(self, level: str) -> list[BlockRow]:
        rows = self.db.execute(
            "SELECT level, block, value, hlc, origin, seq FROM blocks WHERE level = ? "
            "AND value IS NOT NULL ORDER BY block",
            (level,),
        )
        return [_block_row(r) for r in rows]

    def levels(self) -> list[str]:
        """Every level at which some block is defined."""
        rows = self.db.execute("SELECT DISTINCT level FROM blocks WHERE value IS NOT NULL")
        return sorted(str(r[0]) for r in rows)

    def unsub_count(self, level: str) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM unsub WHERE level = ? AND present = 1", (level,)
        ).fetchone()
        return int(row[0])

    def unsub_page(self, level: str, after: str = "", limit: int = 100) -> list[str]:
        """Entries in sort order, ``limit`` at a time after ``after`` (keyset paging)."""
        rows = self.db.execute(
            "SELECT entry FROM unsub WHERE level = ? AND present = 1 AND entry > ? "
            "ORDER BY entry LIMIT ?",
            (level, after, limit),
        )
        return [str(r[0]) for r in rows]

    def unsub_iter(self, level: str, page: int = 5_000) -> Iterator[str]:
        """Every present entry at LEVEL in sort order, without holding them all."""
        after = ""
        while True:
            chunk = self.unsub_page(level, after, page)
            yield from chunk
            if len(chunk) < page:
                return
            after = chunk[-1]

    def unsub_any(self, level: str, candidates: Iterable[str]) -> str | None:
        """The first of CANDIDATES present at LEVEL, or None (one index probe each)."""
        return first_present(self.db, level, candidates)

    def version_vector(self) -> dict[str, int]:
        rows = self.db.execute("SELECT origin, max(seq) FROM changesets GROUP BY origin")
        return {str(o): int(s) for o, s in rows}

    def has_changeset(self, cid: ChangesetId) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM changesets WHERE origin = ? AND seq = ?", (cid.origin, cid.seq)
        ).fetchone()
        return row is not None

    def next_seq(self, origin: str) -> int:
        row = self.db.execute(
            "SELECT coalesce(max(seq), 0) FROM changesets WHERE origin = ?", (origin,)
        ).fetchone()
        return int(row[0]) + 1

    def missing_for(self, remote_vv: dict[str, int]) -> Iterator[ChangesetId]:
        """Ids of changesets the holder of REMOTE_VV lacks, in HLC (hence causal) order."""
        rows = self.db.execute("SELECT origin, seq FROM changesets ORDER BY hlc").fetchall()
        for origin, seq in rows:
            if seq > remote_vv.get(origin, 0):
                yield ChangesetId(origin, seq)

    def changeset(self, cid: ChangesetId) -> Changeset | None:
        """The whole changeset CID; its ops are read lazily, in order (may be huge)."""
        row = self.db.execute(
            "SELECT hlc, author, comment, machine, schema, context FROM changesets "
            "WHERE origin = ? AND seq = ?",
            (cid.origin, cid.seq),
        ).fetchone()
        if row is None:
            return None
        hlc, author, comment, machine, schema, context = row
        return Changeset(cid, Timestamp.decode(hlc), author, comment, machine,
                         self._iter_ops(cid), schema, json.loads(context))

    def _iter_ops(self, cid: ChangesetId, page: int = 5_000) -> Iterator[Op]:
        after = -1
        while True:
            rows = self.db.execute(
                "SELECT idx, body FROM ops WHERE origin = ? AND seq = ? AND idx > ? "
                "ORDER BY idx LIMIT ?",
                (cid.origin, cid.seq, after, page),
            ).fetchall()
            for idx, body in rows:
                after = idx
                yield decode_op(json.loads(body))
            if len(rows) < page:
                return

    def conflicts(self, include_resolved: bool = False) -> list[dict[str, Any]]:
        """Conflict records: both versions of a block written concurrently."""
        return conflicts.listing(self.db, include_resolved)

    def resolve_conflicts(self, level: str, block: str) -> int:
        """Mark the conflicts of (LEVEL, BLOCK) resolved; returns how many."""
        return conflicts.resolve(self.db, level, block)

    def commitlog(self, limit: int = 20) -> list[LogEntry]:
        rows = self.db.execute(_LOG_SELECT + "ORDER BY hlc DESC LIMIT ?", (limit,))
        return [_log_entry(row) for row in rows]

    def log_entry(self, cid: ChangesetId) -> LogEntry | None:
        row = self.db.execute(
            _LOG_SELECT + "WHERE origin = ? AND seq = ?", (cid.origin, cid.seq)
        ).fetchone()
        return None if row is None else _log_entry(row)

    def changeset_ops(self, cid: ChangesetId, limit: int | None = None) -> list[Op]:
        rows = self.db.execute(
            "SELECT body FROM ops WHERE origin = ? AND seq = ? ORDER BY idx LIMIT ?",
            (cid.origin, cid.seq, -1 if limit is None else limit),
        )
        return [decode_op(json.loads(r[0])) for r in rows]

    def ops_after(self, hlc: str) -> Iterator[tuple[str, str, str | None]]:
        """Distinct (level, block, entry) targets written by ops later than HLC."""
        rows = self.db.execute(
            "SELECT DISTINCT level, block, entry FROM ops WHERE hlc > ?", (hlc,)
        )
        for level, block, entry in rows:
            yield str(level), str(block), entry

    def ops_for(self, level: str, block: str, upto_hlc: str) -> Iterator[tuple[ChangesetId, Op]]:
        """(changeset id, op) on (LEVEL, BLOCK), oldest first, up to and including UPTO_HLC."""
        rows = self.db.execute(
            "SELECT origin, seq, body FROM ops WHERE level = ? AND block = ? AND hlc <= ? "
            "ORDER BY hlc, idx",
            (level, block, upto_hlc),
        )
        for origin, seq, body in rows:
            yield ChangesetId(origin, seq), decode_op(json.loads(body))

    # -- writing ------------------------------------------------------------------

    def apply(self, cs: Changeset) -> bool:
        """Record and apply CS in one fsync'd transaction; False if already applied."""
        return self.apply_many([cs])[0]

    def apply_many(self, changesets: Iterable[Changeset]) -> list[bool]:
        """Record and apply CHANGESETS, in order, in one fsync'd transaction.

        Each one exactly as ``apply`` would (one already present, or met earlier in the
        sequence, is skipped: False in its place). All or none are applied. One fsync for
        a whole backlog is what makes catching up fast (``Replicator.receive_many``).
        """
        applied: list[bool] = []
        nops, latest = 0, Timestamp.zero()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for cs in changesets:
                n = self._record(cs)
                applied.append(n is not None)
                nops += n or 0
                latest = max(latest, cs.hlc) if n is not None else latest
            if not any(applied):
                self.db.execute("ROLLBACK")
                return applied
            self._store_hlc(latest)
            failpoints.hit("commit.before_fsync")
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.generation += 1
        failpoints.hit("commit.after_fsync")
        if nops >= _BIG_CHANGESET:  # give the disk back: SQLite never shrinks the WAL
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return applied

    def _record(self, cs: Changeset) -> int | None:
        """Inside a transaction: apply and record CS; its op count, None if present."""
        if self.has_changeset(cs.id):
            return None
        nops = self._apply_ops(cs)
        h = cs.header()
        self.db.execute(
            "INSERT INTO changesets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (h["origin"], h["seq"], h["hlc"], h["author"], h["comment"], h["machine"],
             h["schema"], nops, json.dumps(cs.context, sort_keys=True)),
        )
        return nops

    def _store_hlc(self, hlc: Timestamp) -> None:
        current = self.meta("hlc")
        if current is None or hlc.encode() > current:
            self.set_meta("hlc", hlc.encode())

    def _apply_ops(self, cs: Changeset) -> int:
        n = 0
        batch: list[tuple[int, Op]] = []
        for idx, op in enumerate(cs.ops):
            batch.append((idx, op))
            n += 1
            if len(batch) >= _BATCH:
                self._apply_batch(cs, batch)
                batch = []
        self._apply_batch(cs, batch)
        return n

    def _apply_batch(self, cs: Changeset, batch: list[tuple[int, Op]]) -> None:
        if not batch:
            return
        hlc, origin, seq = cs.hlc.encode(), cs.id.origin, cs.id.seq
        self.db.executemany(
            "INSERT INTO ops VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (origin, seq, i, hlc, op.level, op.block, op.entry, json.dumps(op.encode()))
                for i, op in batch
            ],
        )
        unsubtable.apply_entries(self.db, cs.id, hlc, batch)
        for _, op in batch:
            if op.op in ("set", "delete"):
                value = json.dumps(op.value, sort_keys=True) if op.op == "set" else None
                conflicts.settle(self.db, cs, op)
                conflicts.record(self.db, cs, op, value)
                self.db.execute(_UPSERT_BLOCK, (op.level, op.block, value, hlc, origin, seq))
            elif op.op == "clear":
                unsubtable.apply_clear(self.db, cs.id, op)


# ">=": ops of one changeset share its timestamp and later ones must win; distinct
# changesets never share a timestamp (the node id is part of it), and a changeset is
# applied at most once, so this stays last-writer-wins and idempotent.
_UPSERT_BLOCK = """
INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(level, block) DO UPDATE SET value = excluded.value, hlc = excluded.hlc,
    origin = excluded.origin, seq = excluded.seq
WHERE excluded.hlc >= blocks.hlc
"""


_LOG_SELECT = "SELECT origin, seq, hlc, author, comment, machine, nops FROM changesets "


def _log_entry(row: tuple[Any, ...]) -> LogEntry:
    origin, seq, hlc, author, comment, machine, nops = row
    return LogEntry(ChangesetId(origin, seq), Timestamp.decode(hlc), author, comment,
                    machine, nops)


def first_present(db: sqlite3.Connection, level: str, candidates: Iterable[str]) -> str | None:
    """The first of CANDIDATES present in LEVEL's unsubscribe table (an index probe each)."""
    for cand in candidates:
        row = db.execute(
            "SELECT 1 FROM unsub WHERE level = ? AND entry = ? AND present = 1", (level, cand)
        ).fetchone()
        if row is not None:
            return cand
    return None


def _block_row(row: tuple[Any, ...]) -> BlockRow:
    level, block, value, hlc, origin, seq = row
    return BlockRow(level, block, None if value is None else json.loads(value), hlc, origin, seq)

