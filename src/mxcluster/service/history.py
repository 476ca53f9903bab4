"""Rollback: the operations that return the configuration to its state after a commit.

Blocks touched after the target commit get their value as of that commit (or are
deleted if they were not defined then); unsubscribe tables touched after it are replayed
up to the commit and the difference to today becomes per-entry add/remove operations.
"""

from __future__ import annotations

from typing import Any

from mxcluster.config.changeset import ChangesetId, Op
from mxcluster.config.store import Store
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
    then: dict[str, ChangesetId] = {}
    for cid, op in store.ops_for(level, "unsubscribe", upto):
        if op.op == "add" and op.entry is not None:
            then[op.entry] = cid
        elif op.op == "remove" and op.entry is not None:
            then.pop(op.entry, None)
        elif op.op == "clear":
            ctx = op.context or {}
            then = {e: w for e, w in then.items() if w.seq > ctx.get(w.origin, -1)}
    wanted = set(then)
    ops = []
    for current in store.unsub_iter(level):
        if current not in wanted:
            ops.append(Op("remove", level, "unsubscribe", entry=current))
        else:
            wanted.discard(current)
    ops += [Op("add", level, "unsubscribe", entry=e) for e in sorted(wanted)]
    return ops
