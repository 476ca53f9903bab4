"""Conflict records: both versions of a block written concurrently (SPEC §5).

When a changeset writes a block whose stored version it had not seen (not in its causal
context), last-writer-wins picks the winner and the loser is kept here until an
administrator resolves it (``clustercheck``).

A record is *settled* (marked resolved) on every machine that applies a write of its
block (``set`` or ``delete``) made by a changeset that had seen both of its versions
(both commits in its causal context): whoever wrote it had both in front of them, which
is what resolving in ``clustercheck`` does. Because the settling write replicates, so
does the resolution; under causal delivery the record always exists before the write
that settles it arrives. ``resolve`` marks records resolved on this machine only.

Functions over the store's connection; they run inside the store's transactions.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from mxcluster.config.changeset import Changeset, ChangesetId, Op


def settle(db: sqlite3.Connection, cs: Changeset, op: Op) -> int:
    """Mark resolved the open records of OP's block whose two versions CS had both seen."""
    rows = db.execute(
        "SELECT id, winner_origin, winner_seq, loser_origin, loser_seq FROM conflicts "
        "WHERE level = ? AND block = ? AND resolved = 0",
        (op.level, op.block),
    ).fetchall()
    done = [(rid,) for rid, w_origin, w_seq, l_origin, l_seq in rows
            if cs.covers(ChangesetId(w_origin, w_seq)) and cs.covers(ChangesetId(l_origin, l_seq))]
    db.executemany("UPDATE conflicts SET resolved = 1 WHERE id = ?", done)
    return len(done)


def record(db: sqlite3.Connection, cs: Changeset, op: Op, value: str | None) -> None:
    """Keep the losing version when CS writes OP's block concurrently with the stored one."""
    row = db.execute(
        "SELECT value, hlc, origin, seq FROM blocks WHERE level = ? AND block = ?",
        (op.level, op.block),
    ).fetchone()
    if row is None or cs.covers(ChangesetId(row[2], row[3])):
        return
    if row[0] == value:
        return  # both sides wrote the same content: nothing was overwritten
    mine = (cs.hlc.encode(), cs.id.origin, cs.id.seq, value)
    theirs = (row[1], row[2], row[3], row[0])
    winner, loser = (mine, theirs) if mine[0] > theirs[0] else (theirs, mine)
    db.execute(
        "INSERT INTO conflicts (level, block, winner_hlc, winner_origin, winner_seq, "
        "winner_value, loser_hlc, loser_origin, loser_seq, loser_value) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (op.level, op.block, *winner, *loser),
    )


def listing(db: sqlite3.Connection, include_resolved: bool = False) -> list[dict[str, Any]]:
    """Every (unresolved) conflict record, oldest first."""
    rows = db.execute(
        "SELECT id, level, block, winner_hlc, winner_origin, winner_seq, winner_value, "
        "loser_hlc, loser_origin, loser_seq, loser_value, resolved FROM conflicts "
        + ("" if include_resolved else "WHERE resolved = 0 ") + "ORDER BY id"
    )
    return [
        {"id": r[0], "level": r[1], "block": r[2],
         "winner": _version(r[3], r[4], r[5], r[6]),
         "loser": _version(r[7], r[8], r[9], r[10]),
         "resolved": bool(r[11])}
        for r in rows
    ]


def _version(hlc: str, origin: str, seq: int, value: str | None) -> dict[str, Any]:
    return {"hlc": hlc, "commit": f"{origin}-{seq}",
            "value": None if value is None else json.loads(value)}


def resolve(db: sqlite3.Connection, level: str, block: str) -> int:
    """Mark the conflicts of (LEVEL, BLOCK) resolved; returns how many."""
    cur = db.execute(
        "UPDATE conflicts SET resolved = 1 WHERE level = ? AND block = ? AND resolved = 0",
        (level, block),
    )
    return cur.rowcount
