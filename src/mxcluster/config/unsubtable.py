"""Merge of the unsubscribe tables: per-entry add/remove and ``clear`` (SPEC §5).

The stored state is a function of the *set* of applied operations, never of the order
they arrived in, so every machine that applied the same changesets holds the same table.
Per (level, entry) the store keeps two registers, and per level one context:

* the **live add** ``A``: the latest ``add`` of the entry that no applied ``clear`` of
  the level had seen (columns ``add_*``);
* the **removal** ``R``: the latest ``remove`` of the entry (columns ``rm_*``);
* the **cleared context** ``K`` of the level: the union (pointwise maximum) of the causal
  contexts of every ``clear`` applied there (table ``unsub_cleared``).

"Latest" is by (HLC timestamp, position of the op in its changeset): timestamps of two
changesets never tie, and inside one changeset the later op wins. The entry is present
when ``A`` exists and is later than ``R``; a row with neither is not kept.

So, between an add and a remove the clock decides (last writer wins, the remove kept as
a tombstone); a clear removes exactly the adds written by changesets inside its context,
and an add it had not seen survives it whatever the clocks say. A clear never revives
anything and never overrides a remove: a remove it had not seen, stamped between the
cleared add and the clear, still decides the entry, in every arrival order.

When a clear removes ``A`` of an entry, an older add that the clear had *not* seen may
become the live add. Only changesets outside the clear's context can hold one, so the
clear reads their ops back from the changeset log (``ops``): in practice the handful of
changesets concurrent with the clear.

Functions over the store's connection, run inside its transactions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping

from mxcluster.config.changeset import ChangesetId, Op, decode_op

#: present = the live add is later than the removal (ties broken by position)
_PRESENT = ("add_hlc IS NOT NULL AND (rm_hlc IS NULL OR add_hlc > rm_hlc"
            " OR (add_hlc = rm_hlc AND add_idx > rm_idx))")

TABLES = (
    f"""CREATE TABLE IF NOT EXISTS unsub (
    level TEXT NOT NULL, entry TEXT NOT NULL,
    add_hlc TEXT, add_idx INTEGER, add_origin TEXT, add_seq INTEGER,
    rm_hlc TEXT, rm_idx INTEGER,
    present INTEGER GENERATED ALWAYS AS ({_PRESENT}) STORED,
    PRIMARY KEY (level, entry)
) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS unsub_cleared (level TEXT PRIMARY KEY, context TEXT NOT NULL)",
)

_UPSERT_ADD = """
INSERT INTO unsub (level, entry, add_hlc, add_idx, add_origin, add_seq) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT(level, entry) DO UPDATE SET add_hlc = excluded.add_hlc,
    add_idx = excluded.add_idx, add_origin = excluded.add_origin, add_seq = excluded.add_seq
WHERE unsub.add_hlc IS NULL
   OR (excluded.add_hlc, excluded.add_idx) > (unsub.add_hlc, unsub.add_idx)
"""

_UPSERT_REMOVE = """
INSERT INTO unsub (level, entry, rm_hlc, rm_idx) VALUES (?, ?, ?, ?)
ON CONFLICT(level, entry) DO UPDATE SET rm_hlc = excluded.rm_hlc, rm_idx = excluded.rm_idx
WHERE unsub.rm_hlc IS NULL
   OR (excluded.rm_hlc, excluded.rm_idx) > (unsub.rm_hlc, unsub.rm_idx)
"""

# the live add of the row was written inside the context given as JSON (parameter 2)
_SEEN = ("add_seq <= coalesce((SELECT value FROM json_each(?2) WHERE key = unsub.add_origin),"
         " 0)")
_DROP_SEEN = f"DELETE FROM unsub WHERE level = ?1 AND rm_hlc IS NULL AND {_SEEN}"
_FORGET_SEEN = (f"UPDATE unsub SET add_hlc = NULL, add_idx = NULL, add_origin = NULL, "
                f"add_seq = NULL WHERE level = ?1 AND add_hlc IS NOT NULL AND {_SEEN}")

_ADDS_AFTER = """
SELECT entry, hlc, idx, seq FROM ops
WHERE origin = ? AND seq > ? AND level = ? AND entry IS NOT NULL
  AND json_extract(body, '$.op') = 'add'
"""


def create(db: sqlite3.Connection) -> None:
    for table in TABLES:
        db.execute(table)


def migrate(db: sqlite3.Connection) -> None:
    """Rebuild a table of store schema 1 (one last-writer row per entry, with a clear's
    tombstone in it) from the changeset log, which holds every op ever applied."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(unsub)")}
    if not columns or "add_hlc" in columns:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DROP TABLE unsub")
        create(db)
        rebuild(db)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def cleared(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """The cleared context of every level that has had a clear."""
    rows = db.execute("SELECT level, context FROM unsub_cleared")
    return {str(level): json.loads(ctx) for level, ctx in rows}


def seen(context: Mapping[str, int], origin: str, seq: int) -> bool:
    """True when changeset (ORIGIN, SEQ) is inside CONTEXT."""
    return seq <= context.get(origin, 0)


def apply_entries(db: sqlite3.Connection, cid: ChangesetId, hlc: str,
                  ops: Iterable[tuple[int, Op]]) -> None:
    """Apply the add/remove OPS (with their positions) of changeset CID stamped HLC."""
    adds = [(op.level, op.entry, hlc, idx, cid.origin, cid.seq)
            for idx, op in ops if op.op == "add"]
    removes = [(op.level, op.entry, hlc, idx) for idx, op in ops if op.op == "remove"]
    if adds:
        # an add a clear applied earlier had seen is no live add (only when applied out
        # of causal order: a clear's context is applied before the clear)
        ctx = cleared(db)
        db.executemany(_UPSERT_ADD, [a for a in adds
                                     if not seen(ctx.get(a[0], {}), cid.origin, cid.seq)])
    if removes:
        db.executemany(_UPSERT_REMOVE, removes)


def apply_clear(db: sqlite3.Connection, cid: ChangesetId, op: Op) -> None:
    """Apply a clear of OP's level made by changeset CID: drop the live adds it had seen."""
    level = op.level
    known = cleared(db).get(level, {})
    for origin, seq in (op.context or {}).items():
        if isinstance(seq, int) and seq > known.get(origin, 0):
            known[origin] = seq
    text = json.dumps(known, sort_keys=True)
    db.execute("INSERT INTO unsub_cleared VALUES (?, ?) ON CONFLICT(level) DO UPDATE "
               "SET context = excluded.context", (level, text))
    db.execute(_DROP_SEEN, (level, text))
    db.execute(_FORGET_SEEN, (level, text))
    _revive_unseen_adds(db, cid, level, known)


def _revive_unseen_adds(db: sqlite3.Connection, cid: ChangesetId, level: str,
                        known: Mapping[str, int]) -> None:
    """Offer every add outside KNOWN as the live add of its entry (the latest one wins)."""
    origins = {str(o): int(s) for o, s in
               db.execute("SELECT origin, max(seq) FROM changesets GROUP BY origin")}
    origins[cid.origin] = max(origins.get(cid.origin, 0), cid.seq)
    for origin, top in sorted(origins.items()):
        after = known.get(origin, 0)
        if top <= after:
            continue
        rows = db.execute(_ADDS_AFTER, (origin, after, level)).fetchall()
        db.executemany(_UPSERT_ADD, [(level, entry, hlc, idx, origin, seq)
                                     for entry, hlc, idx, seq in rows])


def rebuild(db: sqlite3.Connection, page: int = 10_000) -> None:
    """Recompute every unsubscribe table from the changeset log (used by migrations)."""
    db.execute("DELETE FROM unsub")
    db.execute("DELETE FROM unsub_cleared")
    log = db.execute("SELECT origin, seq, hlc FROM changesets ORDER BY hlc").fetchall()
    for origin, seq, hlc in log:
        cid, after = ChangesetId(origin, seq), -1
        while True:
            rows = db.execute(
                "SELECT idx, body FROM ops WHERE origin = ? AND seq = ? AND idx > ? "
                "ORDER BY idx LIMIT ?",
                (origin, seq, after, page)).fetchall()
            ops = [(idx, decode_op(json.loads(body))) for idx, body in rows]
            apply_entries(db, cid, hlc, ops)
            for _, op in ops:
                if op.op == "clear":
                    apply_clear(db, cid, op)
            if len(rows) < page:
                break
            after = rows[-1][0]
