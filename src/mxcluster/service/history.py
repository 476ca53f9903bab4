"""Rollback: the operations that return the configuration to its state after a commit.

Blocks touched after the target commit get their value as of that commit (or are
deleted if they were not defined then); unsubscribe tables touched after it are replayed
up to the commit and the difference to today becomes per-entry add/remove operations.
"""

from __future__ import annotations

from typing import Any

from mxcluster.config.changeset import ChangesetId, Op
from mxcluster.config.store import Store
from mxcluster.config.unsubtable import seen
from mxcluster.errors import NotFoundError


def rollback_ops(store: Store, cid: ChangesetId) -> list[Op]:
    """Operations that undo every change made after CID (empty when nothing changed)."""
    entry = store.log_entry(cid)
    if entry is None:
        raise NotFoundError(f"no commit {cid}", hint="see 'commitlog' for commit ids")
    upto = entry.hlc.encode()
    blocks: set[tuple[str, str]] = set()
    tables: set[str] = set()
    for level, block, item in store.ops_after(upto):
        if item is None and block != "unsubscribe":
            blocks.add((level, block))
        elif block == "unsubscribe":
            tables.add(level)
            blocks.add((level, block))
    ops = [op for lb in sorted(blocks) if (op := _block_op(store, *lb, upto)) is not None]
    for level in sorted(tables):
        ops += _table_ops(store, level, upto)
    return ops


def _block_op(store: Store, level: str, block: str, upto: str) -> Op | None:
    then: Any = None
    for _, op in store.ops_for(level, block, upto):
        if op.op == "set":
            then = op.value
        elif op.op == "delete":
            then = None
    row = store.block(level, block)
    now = None if row is None else row.value
    if now == then:
        return None
    return Op("delete", level, block) if then is None else Op("set", level, block, then)


def _table_ops(store: Store, level: str, upto: str) -> list[Op]:
    """Per-entry operations that make LEVEL's table what it was at UPTO.

    The table then is the store's merge rule (``config.unsubtable``) applied to the ops
    stamped up to UPTO: an entry is present when its latest add that no clear had seen
    is later than its latest remove (the ops come in that order: timestamp, position).
    """
    cleared: dict[str, int] = {}
    for _, op in store.ops_for(level, "unsubscribe", upto):
        if op.op == "clear":
            for origin, seq in (op.context or {}).items():
                cleared[origin] = max(cleared.get(origin, 0), seq)
    added: dict[str, int] = {}
    removed: dict[str, int] = {}
    for position, (cid, op) in enumerate(store.ops_for(level, "unsubscribe", upto)):
        if op.entry is None:
            continue
        if op.op == "add" and not seen(cleared, cid.origin, cid.seq):
            added[op.entry] = position
        elif op.op == "remove":
            removed[op.entry] = position
    wanted = {e for e, at in added.items() if at > removed.get(e, -1)}
    ops = []
    for current in store.unsub_iter(level):
        if current not in wanted:
            ops.append(Op("remove", level, "unsubscribe", entry=current))
        else:
            wanted.discard(current)
    ops += [Op("add", level, "unsubscribe", entry=e) for e in sorted(wanted)]
    return ops
