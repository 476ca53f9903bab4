"""Invariants of a settled simulated cluster, checked against the stores themselves."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from mxcluster.config.levels import Level
from mxcluster.config.registry import BLOCKS
from mxcluster.config.resolve import chain, resolve
from mxcluster.config.store import Store
from mxcluster.membership import AdminState, is_membership_block

from .sim import Node


def config_tables(store: Store) -> tuple[list[Any], list[Any]]:
    """Every block row and every unsubscribe row with all its registers, and every
    level's cleared context."""
    blocks = store.db.execute(
        "SELECT level, block, value, hlc, origin, seq FROM blocks ORDER BY level, block"
    ).fetchall()
    unsub = store.db.execute("SELECT * FROM unsub ORDER BY level, entry").fetchall()
    unsub += store.db.execute("SELECT * FROM unsub_cleared ORDER BY level").fetchall()
    return blocks, unsub


def active(nodes: list[Node]) -> list[Node]:
    """The nodes every settled view agrees are members (not disconnected, not removed)."""
    view = nodes_agreeing_on_states(nodes)
    return [n for n in nodes if view.get(n.serial) is AdminState.MEMBER]


def nodes_agreeing_on_states(nodes: list[Node]) -> dict[str, AdminState]:
    """The administrative states, asserting every non-removed node sees the same."""
    views = [{s: r.state for s, r in n.rep.states.items()} for n in nodes
             if n.rep.states.get(n.serial, None) is None
             or n.rep.states[n.serial].state is not AdminState.REMOVED]
    for view in views[1:]:
        assert view == views[0], f"state views differ: {views}"
    return views[0] if views else {}


def assert_same_config(nodes: list[Node]) -> None:
    """Connected machines hold identical block and unsubscribe tables (same winners)."""
    if not nodes:
        return
    first = config_tables(nodes[0].store)
    for node in nodes[1:]:
        other = config_tables(node.store)
        assert other[0] == first[0], f"blocks differ: {nodes[0].name} vs {node.name}"
        assert other[1] == first[1], f"unsubscribe tables differ: {nodes[0].name} vs {node.name}"
        assert node.rep.vv == nodes[0].rep.vv


def assert_nothing_lost(nodes: list[Node], connected: list[Node]) -> None:
    """Every acknowledged commit is on its own disk, and on every connected machine when
    its origin is connected."""
    for node in nodes:
        for cid in node.acked:
            assert node.store.has_changeset(cid), f"{cid} lost on its own machine"
    for origin in connected:
        for cid in origin.acked:
            for node in connected:
                assert node.store.has_changeset(cid), f"{cid} missing on {node.name}"


@dataclass(frozen=True)
class _Write:
    origin: str
    seq: int
    hlc: str
    value: str | None
    context: dict[str, int]

    def covers(self, other: _Write) -> bool:
        if self.origin == other.origin:
            return other.seq < self.seq
        return self.context.get(other.origin, 0) >= other.seq


def _writes(store: Store, membership: bool = False) -> dict[tuple[str, str], list[_Write]]:
    contexts = {(o, s): json.loads(c) for o, s, c in
                store.db.execute("SELECT origin, seq, context FROM changesets")}
    out: dict[tuple[str, str], list[_Write]] = defaultdict(list)
    rows = store.db.execute(
        "SELECT origin, seq, hlc, level, block, body FROM ops WHERE entry IS NULL")
    for origin, seq, hlc, level, block, body in rows:
        op = json.loads(body)
        if op["op"] not in ("set", "delete") or (
                is_membership_block(block) and not membership):
            continue
        value = json.dumps(op.get("value"), sort_keys=True) if op["op"] == "set" else None
        out[(level, block)].append(_Write(origin, seq, hlc, value, contexts[(origin, seq)]))
    return out


def assert_conflicts_kept(store: Store) -> None:
    """Every concurrent write the winner overwrote without having seen it is kept as a
    conflict record (a concurrent delete may be recorded once for several)."""
    losers: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for rec in store.conflicts(include_resolved=True):
        value = rec["loser"]["value"]
        losers[(rec["level"], rec["block"])].add(
            None if value is None else json.dumps(value, sort_keys=True))
    for target, writes in _writes(store).items():
        row = store.block(*target)
        assert row is not None
        winner = max(writes, key=lambda w: w.hlc)
        assert (winner.origin, winner.seq) == (row.origin, row.seq), f"LWW broken at {target}"
        for head in writes:
            if head is winner or any(w.covers(head) for w in writes if w is not head):
                continue
            if head.value == winner.value or head.value in losers[target]:
                continue
            assert head.value is None and any(
                w.value is None and w.hlc > head.hlc for w in writes), (
                f"overwritten write {head.origin}-{head.seq} at {target} not kept")


def assert_conflicts_settled(store: Store) -> None:
    """A conflict record is resolved exactly when a write of its block saw both versions
    (the simulated cluster never resolves by hand)."""
    writes = _writes(store, membership=True)
    for rec in store.conflicts(include_resolved=True):
        versions = [_version(rec[side]["commit"]) for side in ("winner", "loser")]
        settled = any(all(w.covers(v) for v in versions)
                      for w in writes[(rec["level"], rec["block"])])
        assert rec["resolved"] == settled, f"conflict record {rec} settled: {settled}"


def _version(commit: str) -> _Write:
    origin, _, seq = commit.rpartition("-")
    return _Write(origin, int(seq), "", None, {})


def assert_flattened(node: Node) -> None:
    """A removed machine's own level holds exactly what it effectively used before."""
    store = node.store
    me = node.membership().by_serial(node.serial)
    levels = chain(node.name, me.group if me else None, True)
    own = levels[0]

    def lookup(level: Level, block: str) -> Any:
        row = store.block(str(level), block)
        return None if row is None else row.value

    for spec in BLOCKS.values():
        clustered = resolve(spec, levels, lookup)
        alone = resolve(spec, [own], lookup, standalone=True)
        assert alone.value == clustered.value, f"{spec.name} changed by flattening"
        if spec.table and clustered.source is not None:
            assert list(store.unsub_iter(str(own))) == list(
                store.unsub_iter(str(clustered.source)))
